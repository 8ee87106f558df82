/**
 * Deleting backups safely beside writers and restorers in other processes: the one implementation of
 * the deletion protocol (deleteOne is a batch of one; prune deletes in batches).
 *
 *  1. mark:   each record available|error|deleting → deleting (compare-and-swap);
 *  2. check:  list the volume's records once; a marked backup that any other record names as parent
 *             (a new incremental, a restore target's chain…) is given back — and so is every marked
 *             ancestor of one given back;
 *  3. commit: children first, each remaining record gets metadataSha256 = null (compare-and-swap, only
 *             while still deleting): from here on its objects go, so it can never be given back as
 *             available again — a second deleter or a crash-recovery that finds a new dependent then
 *             turns it into `error` instead;
 *  4. delete: objects, then the record, children first.
 * Writers create their record (naming the parent) before checking the parent is available, restores
 * mark their target before checking its chain: set-then-check on both sides, so one always sees the
 * other. A crash leaves records in `deleting`; the next prune or delete finishes or gives them back.
 */
import { VolumeBackupError, cancelled } from '../errors';
import { deleteBackupObjects } from '../repository/backup-objects';
import { renewRecordLease, takeRecord } from '../repository/locks';
import { cancelRequested } from './cancel';
import { ParentIndex } from '../repository/parent-index';
import type { BackupRecord, BackupStatus, CancelRequest } from '../repository/records';
import { Repository } from '../repository/repository';
import { mapLimit } from '../util/concurrency';
import { NULL_LOGGER } from '../snapshot/provider';
import { runCommand } from '../snapshot/runner';
import { removeBaseOf } from './base-snapshot';
import type { Logger } from './types';

const MARKABLE: BackupStatus[] = ['available', 'error', 'deleting'];
const PARALLEL = 8;

export interface DeleteBatchOptions {
  /** Backups that are being deleted anyway (cascade): they do not count as dependents. */
  alsoGoing?: ReadonlySet<string>;
  /** A parent index kept across batches (prune); made fresh when absent. */
  index?: ParentIndex;
  signal?: AbortSignal;
  /** Called as each backup is gone (objects and record). */
  onDeleted?: (record: BackupRecord, bytesFreed: number) => void;
  /** Where a base snapshot that could not be removed is reported. */
  log?: Logger;
}

export interface DeleteBatchOutcome {
  /** Deleted: id → bytes freed. */
  deleted: Map<string, number>;
  /** Given back: id → the ids of the backups that still need it. */
  givenBack: Map<string, string[]>;
  /** Not deleted for another reason (status changed, gone, storage error): id → the error. */
  failed: Map<string, Error>;
}

/**
 * Delete backups of one volume (see the header). Never throws for one backup's trouble; see the outcome.
 * Each marked record names this process as its owner, with a lease renewed until the batch ends: if the
 * process dies, its host's cleanup (or any host's, once the lease expired) finishes the deletion.
 */
export async function deleteBackups(repo: Repository, records: readonly BackupRecord[], options: DeleteBatchOptions = {}): Promise<DeleteBatchOutcome> {
  const renewals: (() => void)[] = [];
  // A cancel request on any of the marked records (volume-backup cancel, the sidebar) stops the batch.
  const requested = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, requested.signal]) : requested.signal;
  const onCancelRequest = (request: CancelRequest) => requested.abort(cancelRequested(request));
  try {
    return await deleteBatch(repo, records, { ...options, signal }, (id, volumeId) => renewals.push(renewRecordLease(repo, id, volumeId, undefined, onCancelRequest)));
  } finally {
    for (const stop of renewals) stop();
  }
}

async function deleteBatch(
  repo: Repository,
  records: readonly BackupRecord[],
  options: DeleteBatchOptions,
  renewLease: (backupId: string, volumeId: string) => void,
): Promise<DeleteBatchOutcome> {
  const outcome: DeleteBatchOutcome = { deleted: new Map(), givenBack: new Map(), failed: new Map() };
  if (records.length === 0) return outcome;
  const volumeId = records[0].volumeId;
  if (records.some((r) => r.volumeId !== volumeId)) throw new VolumeBackupError('INVALID_ARGUMENT', 'deleteBackups: all backups must be of one volume');

  const marked = await markAll(repo, records, volumeId, outcome, renewLease);
  if (options.signal?.aborted) {
    await giveBack(repo, volumeId, [...marked], outcome, () => []);
    throw cancelled(options.signal.reason);
  }
  // 2. check, on a listing made after every mark
  const index = options.index ?? new ParentIndex(repo, volumeId);
  await index.refresh();
  const blockers = await findBlockers(repo, volumeId, marked, options.alsoGoing ?? new Set<string>(), index);
  const levels = heights([...marked].filter((id) => !blockers.has(id)), index);
  const committed = await commitAll(repo, volumeId, levels, marked, blockers, index, outcome);
  await giveBack(repo, volumeId, [...blockers.keys()], outcome, (id) => blockers.get(id)!);
  await deleteCommitted(repo, new Map(records.map((r) => [r.id, r])), levels, committed, options, outcome);
  return outcome;
}

/** 1. mark: each record → deleting, owned by this process; the ids marked (the others are in outcome.failed). */
async function markAll(
  repo: Repository,
  records: readonly BackupRecord[],
  volumeId: string,
  outcome: DeleteBatchOutcome,
  renewLease: (backupId: string, volumeId: string) => void,
): Promise<Set<string>> {
  const marked = new Set<string>();
  await mapLimit(records, PARALLEL, async (r) => {
    try {
      await repo.updateRecord(r.id, (current) => {
        if (!MARKABLE.includes(current.status)) {
          throw new VolumeBackupError('CONFLICT', `backup ${r.id} is ${current.status}; expected ${MARKABLE.join(' or ')}`, { backupId: r.id, status: current.status });
        }
        return { status: 'deleting', ...takeRecord(repo, 'delete') };
      }, volumeId);
      marked.add(r.id);
      renewLease(r.id, volumeId);
    } catch (err) {
      outcome.failed.set(r.id, noRoomToMark(repo, r.id, err as Error));
    }
  });
  return marked;
}

/**
 * A full file system: a deletion must first record itself (a few KiB), so "free space, or prune old
 * backups" would send the user round in a circle. Say what does free the way.
 */
function noRoomToMark(repo: Repository, backupId: string, err: Error): Error {
  if (!(err instanceof VolumeBackupError && err.code === 'STORAGE')) return err;
  const code = String(err.details?.code);
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return err;
  return new VolumeBackupError('STORAGE', `backup ${backupId} cannot be deleted yet: the file system of the repository at ${repo.location} is full (${code}), and a deletion first records itself there (a few KiB); free a little space on it outside the repository, then delete or prune again`, { ...err.details, backupId }, { cause: err });
}

/** 2. check: marked id → the backups that still need it (outside the batch, or a marked child that stays). */
async function findBlockers(
  repo: Repository,
  volumeId: string,
  marked: ReadonlySet<string>,
  alsoGoing: ReadonlySet<string>,
  index: ParentIndex,
): Promise<Map<string, string[]>> {
  const blockers = new Map<string, string[]>();
  for (const id of marked) {
    const users = await stillNeeding(repo, volumeId, index.dependents(id).filter((d) => !marked.has(d) && !alsoGoing.has(d)));
    if (users.length) blockers.set(id, users);
  }
  // A marked backup whose marked child stays must stay too.
  for (let changed = true; changed; ) {
    changed = false;
    for (const id of marked) {
      if (blockers.has(id)) continue;
      const staying = index.dependents(id).filter((d) => blockers.has(d));
      if (staying.length) {
        blockers.set(id, staying);
        changed = true;
      }
    }
  }
  return blockers;
}

/**
 * 3. commit, children first: a backup is committed only once every marked child of it is (one that
 * cannot be joins `blockers`). Returns the committed ids.
 */
async function commitAll(
  repo: Repository,
  volumeId: string,
  levels: string[][],
  marked: ReadonlySet<string>,
  blockers: Map<string, string[]>,
  index: ParentIndex,
  outcome: DeleteBatchOutcome,
): Promise<Set<string>> {
  const committed = new Set<string>();
  for (const level of levels) {
    await mapLimit(level, PARALLEL, async (id) => {
      const waiting = index.dependents(id).filter((d) => marked.has(d) && !committed.has(d));
      if (waiting.length) {
        blockers.set(id, waiting);
        return;
      }
      try {
        await repo.updateRecord(id, (current) => {
          if (current.status !== 'deleting') {
            throw new VolumeBackupError('CONFLICT', `backup ${id} was not deleted: it became ${current.status} meanwhile`, { backupId: id, status: current.status });
          }
          return { metadataSha256: null };
        }, volumeId);
        committed.add(id);
      } catch (err) {
        outcome.failed.set(id, err as Error);
      }
    });
  }
  return committed;
}

/** 4. delete, children first (a crash from here on leaves committed records the next run finishes). */
async function deleteCommitted(
  repo: Repository,
  byId: ReadonlyMap<string, BackupRecord>,
  levels: string[][],
  committed: ReadonlySet<string>,
  options: DeleteBatchOptions,
  outcome: DeleteBatchOutcome,
): Promise<void> {
  for (const level of levels) {
    await mapLimit(level.filter((id) => committed.has(id)), PARALLEL, async (id) => {
      const record = byId.get(id)!;
      try {
        if (options.signal?.aborted) throw cancelled(options.signal.reason);
        const freed = await deleteBackupObjects(repo, record);
        await repo.deleteRecord(record);
        await removeBaseOf(repo, record, { runner: runCommand, log: options.log ?? NULL_LOGGER });
        outcome.deleted.set(id, freed);
        options.onDeleted?.(record, freed);
      } catch (err) {
        outcome.failed.set(id, err as Error);
      }
    });
  }
}

/**
 * The dependents that may still need their parent: all but those whose own deletion is committed
 * (deleting, metadataSha256 cleared: they can only ever end deleted or `error`) or that are gone. So
 * a crash that left a committed chain is finished in any order, not turned into `error` backups.
 */
async function stillNeeding(repo: Repository, volumeId: string, ids: string[]): Promise<string[]> {
  const needing: string[] = [];
  for (const id of ids) {
    try {
      const { record } = await repo.readRecord(id, volumeId);
      if (!(record.status === 'deleting' && record.metadataSha256 === null)) needing.push(id);
    } catch (err) {
      if (!(err instanceof VolumeBackupError && err.code === 'NOT_FOUND')) needing.push(id); // unreadable: assume it needs it
    }
  }
  return needing;
}

/** Undo a mark: available if its deletion was never committed, else error (objects may be gone). */
async function giveBack(repo: Repository, volumeId: string, ids: string[], outcome: DeleteBatchOutcome, users: (id: string) => string[]): Promise<void> {
  await mapLimit(ids, PARALLEL, async (id) => {
    outcome.givenBack.set(id, users(id));
    await repo
      .updateRecord(id, (current) => {
        if (current.status !== 'deleting') throw new VolumeBackupError('CONFLICT', `backup ${id} is ${current.status}`);
        return current.metadataSha256 !== null && current.failReason === null
          ? { status: 'available', leaseExpiresAt: null }
          : { status: 'error', failReason: current.failReason ?? 'its deletion was interrupted; some objects may be gone' };
      }, volumeId)
      .catch(() => undefined); // gone or changed meanwhile: nothing left to give back
  });
}

/** Ids grouped by how deep their descendants among `ids` go: leaves first, so children precede parents. */
function heights(ids: string[], index: ParentIndex): string[][] {
  const set = new Set(ids);
  const height = new Map<string, number>();
  const heightOf = (id: string, seen: Set<string>): number => {
    const known = height.get(id);
    if (known !== undefined) return known;
    if (seen.has(id)) return 0; // a loop in the records: do not recurse forever
    seen.add(id);
    const children = index.dependents(id).filter((d) => set.has(d));
    const h = children.length ? 1 + Math.max(...children.map((c) => heightOf(c, seen))) : 0;
    height.set(id, h);
    return h;
  };
  const levels: string[][] = [];
  for (const id of ids) (levels[heightOf(id, new Set())] ??= []).push(id);
  return levels.filter(Boolean);
}
