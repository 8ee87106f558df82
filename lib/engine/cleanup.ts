/**
 * Start-up cleanup of one host's leftovers (Cinder's init_host). A record in a transient state names
 * the process that put it there (`owner`: host, pid, start time) and carries that operation's lease:
 *   records owned by this host whose process is gone, and any host's records whose lease expired:
 *     creating  → error with the reason, its partial objects removed;
 *     restoring → available, and the interrupted restore reported as failed;
 *     deleting  → the deletion is finished (or given back if a backup started depending on it before
 *                 its deletion was committed: delete-batch.ts);
 *   records of older versions (no owner) are matched by `host` as before;
 *   leases in locks/ held by dead processes of this host → released;
 *   temporary snapshots left by dead processes of this host → removed.
 * An operation that is still running (a live process of this host, or another host's whose lease is
 * fresh) is left alone.
 */
import { VolumeBackupError, errorMessage, throwIfAborted } from '../errors';
import { LeaseHolder, listVolumeLeases, pidAlive, releaseDeadLease } from '../repository/locks';
import { checkHost } from '../repository/names';
import { BackupRecord, RestoreTarget, isTransient, leaseExpired } from '../repository/records';
import { ownerHost, stillRunning } from '../repository/owner';
import type { Repository } from '../repository/repository';
import { CleanupResult as SnapshotCleanupResult, cleanupTemporarySnapshots } from '../snapshot/cleanup';
import { baseInUse } from './base-snapshot';
import { deleteOne } from './delete';
import { failInterruptedBackup } from './interrupted-backup';
import { endInterruptedRestore, reportInterruptedRestore } from './interrupted-restore';
import type { Logger } from './types';

export interface HostCleanupOptions {
  /** Whose leftovers (default: the repository's host, i.e. this instance). */
  host?: string;
  /** Also remove this host's leftover temporary snapshots (default true). */
  snapshots?: boolean;
  /** Where the snapshot owner files are (default: the snapshot module's default). */
  stateDir?: string;
  signal?: AbortSignal;
  log?: Logger;
  /** The time leases are judged against (tests). */
  now?: () => Date;
}

export interface CleanedBackup {
  backupId: string;
  volumeId: string;
}

export interface HostCleanupResult {
  host: string;
  /** Backups that were being created: now `error`, their partial objects removed. */
  failedBackups: (CleanedBackup & { reason: string; objectsRemoved: boolean; bytesFreed: number })[];
  /**
   * Restores that were interrupted: the backup is `available` again, the restore itself failed. `target`
   * (null for records of older versions) is incomplete; removed when the restore had created it and it
   * is on this machine.
   */
  failedRestores: (CleanedBackup & { target: RestoreTarget | null; targetRemoved: boolean })[];
  /** Deletions that were finished. */
  finishedDeletes: (CleanedBackup & { bytesFreed: number })[];
  /** Deletions given back because a backup depends on them now. */
  keptDeletes: (CleanedBackup & { reason: string })[];
  releasedLeases: { volumeId: string; pid: number; operation: string }[];
  /** This host's operations left alone because they are still running. */
  skipped: (CleanedBackup & { status: string; reason: string })[];
  snapshots: SnapshotCleanupResult | null;
  /** What could not be cleaned, and why (the next cleanup retries). */
  errors: { backupId?: string; volumeId?: string; message: string }[];
}

export async function cleanupHost(repo: Repository, options: HostCleanupOptions = {}): Promise<HostCleanupResult> {
  const host = checkHost(options.host ?? repo.host);
  const now = options.now ?? (() => new Date());
  const log = options.log;
  const result = emptyResult(host);
  const stuck = (await repo.listRecords()).filter((r) => isTransient(r.status) && (ownerHost(r) === host || leaseExpired(r, now())));
  const leases = await listVolumeLeases(repo);
  const leaseOf = new Map(leases.map((l) => [l.volumeId, l.holder]));

  for (const record of stuck) {
    throwIfAborted(options.signal);
    const which = { backupId: record.id, volumeId: record.volumeId };
    try {
      // A backup of an older version names no owner: its writer holds the volume's lease instead.
      const running = record.status === 'creating' && !record.owner ? runningBackup(leaseOf.get(record.volumeId) ?? null, record, host) : stillRunning(record, host, now());
      if (running) {
        result.skipped.push({ ...which, status: record.status, reason: running });
        continue;
      }
      switch (record.status) {
        case 'creating': {
          result.failedBackups.push(await failInterruptedBackup(repo, record, now(), 'start-up cleanup', log));
          break;
        }
        case 'restoring': {
          await endInterruptedRestore(repo, record);
          result.failedRestores.push(await reportInterruptedRestore(record, host, log));
          break;
        }
        case 'deleting': {
          try {
            const bytesFreed = await deleteOne(repo, record);
            log?.info(`cleanup: finished deleting backup ${record.id} (${bytesFreed} bytes freed)`);
            result.finishedDeletes.push({ ...which, bytesFreed });
          } catch (err) {
            if (!(err instanceof VolumeBackupError && err.code === 'HAS_DEPENDENTS')) throw err;
            result.keptDeletes.push({ ...which, reason: errorMessage(err) });
          }
          break;
        }
        default:
          break;
      }
    } catch (err) {
      if (err instanceof VolumeBackupError && err.code === 'CANCELLED') throw err;
      // A record that changed under us (its owner finished after all) is not an error worth shouting about.
      log?.warn(`cleanup: backup ${record.id}: ${errorMessage(err)}`);
      result.errors.push({ ...which, message: errorMessage(err) });
    }
  }

  await releaseDeadLeases(repo, leases, host, result, log);

  if (host === repo.host) await removeStaleTemporaries(repo, result, log);

  if (options.snapshots !== false) {
    try {
      result.snapshots = await cleanupTemporarySnapshots({ host, stateDir: options.stateDir, log, baseInUse: baseInUse(repo) });
    } catch (err) {
      result.errors.push({ message: `temporary snapshots: ${errorMessage(err)}` });
    }
  }
  return result;
}

function emptyResult(host: string): HostCleanupResult {
  return {
    host,
    failedBackups: [],
    failedRestores: [],
    finishedDeletes: [],
    keptDeletes: [],
    releasedLeases: [],
    skipped: [],
    snapshots: null,
    errors: [],
  };
}

/** Volume leases in locks/ held by dead processes of `host` → released. */
async function releaseDeadLeases(
  repo: Repository,
  leases: Awaited<ReturnType<typeof listVolumeLeases>>,
  host: string,
  result: HostCleanupResult,
  log: Logger | undefined,
): Promise<void> {
  for (const lease of leases) {
    try {
      if (await releaseDeadLease(repo, lease, host)) {
        log?.info(`cleanup: released the lease on volume ${lease.volumeId} held by process ${lease.holder!.pid} (${lease.holder!.operation}), which is gone`);
        result.releasedLeases.push({ volumeId: lease.volumeId, pid: lease.holder!.pid, operation: lease.holder!.operation });
      }
    } catch (err) {
      result.errors.push({ volumeId: lease.volumeId, message: `could not release its lease: ${errorMessage(err)}` });
    }
  }
}

/** Half-written temporary files of killed processes (posix): only on the machine itself. */
async function removeStaleTemporaries(repo: Repository, result: HostCleanupResult, log: Logger | undefined): Promise<void> {
  try {
    const removed = await repo.removeStaleTemporaries();
    if (removed > 0) log?.info(`cleanup: removed ${removed} temporary file(s) that killed processes of this machine left behind`);
  } catch (err) {
    result.errors.push({ message: `temporary files: ${errorMessage(err)}` });
  }
}

/** Why a `creating` record of this host is still being written, or null when its writer is gone. */
function runningBackup(holder: LeaseHolder | null, record: BackupRecord, host: string): string | null {
  // A running backup holds its volume's lease, taken before its record was made; a lease taken later
  // belongs to a later backup of the volume, so this record's writer is gone.
  if (!holder || holder.host !== host || holder.operation !== 'backup') return null;
  if (Date.parse(holder.acquiredAt) > Date.parse(record.createdAt)) return null;
  if (holder.pid === process.pid) return `it is being written by this process`;
  if (pidAlive(holder.pid)) return `process ${holder.pid} of this host holds the volume's lease and is running`;
  return null;
}
