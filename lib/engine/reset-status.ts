/**
 * reset-status (Cinder's reset_status): the operator's tool for a record whose owner host is gone for
 * good, which start-up cleanup will therefore never fix. It takes over from an owner that stopped, but
 * stays inside the state machine (records.ts: a failed backup never becomes available again), and it guards itself: it refuses while the owner's lease is live (unless forced), and it makes a backup
 * `available` only after checking that its metadata, segments (or hash list) and every object are there, right size.
 */
import { PreconditionFailedError, VolumeBackupError, errorMessage, invalid } from '../errors';
import { listBackupObjects, loadHashList, ownedObjects, readMetadata } from '../repository/backup-objects';
import { chainOf } from '../repository/catalog';
import { metadataObjectName, sha256 } from '../repository/format';
import { listVolumeLeases } from '../repository/locks';
import { checkBackupId } from '../repository/names';
import type { BackupRecord } from '../repository/records';
import type { Repository } from '../repository/repository';

export interface ResetStatusOptions {
  backupId: string;
  status: 'available' | 'error';
  /** Reset even though the owner's lease is still live (the owner is known to be gone). */
  force?: boolean;
  signal?: AbortSignal;
}

export interface ResetStatusResult {
  record: BackupRecord;
  previousStatus: BackupRecord['status'];
  /** Objects checked before making the backup available. */
  objectsChecked: number;
}

export async function resetStatus(repo: Repository, options: ResetStatusOptions): Promise<ResetStatusResult> {
  const backupId = checkBackupId(options.backupId);
  if (options.status !== 'available' && options.status !== 'error') {
    throw invalid(`reset-status sets a backup to available or error, not ${JSON.stringify(options.status)}`);
  }
  const current = await repo.readRecord(backupId);
  const { record } = current;
  const live = await liveOwner(repo, record);
  if (live && !options.force) {
    throw new VolumeBackupError(
      'BUSY',
      `backup ${backupId} is ${record.status} and ${live}: host ${record.host} may still be working on it. ` +
        `Wait until then (or run "volume-backup cleanup" on ${record.host}); use --force only if ${record.host} is gone for good`,
      { backupId, host: record.host },
    );
  }

  let patch: Partial<BackupRecord>;
  let objectsChecked = 0;
  if (options.status === 'available') {
    const complete = await checkComplete(repo, record, options.signal);
    objectsChecked = complete.objectsChecked;
    patch = { status: 'available', failReason: null, leaseExpiresAt: null, ...complete.patch };
  } else {
    const was = record.status === 'error' ? '' : ` (was ${record.status}${record.failReason ? `: ${record.failReason}` : ''})`;
    patch = { status: 'error', failReason: record.status === 'error' ? record.failReason : `reset to error by an operator${was}`, leaseExpiresAt: null };
  }
  let next: BackupRecord;
  try {
    // One compare-and-swap on the version checked above; the status machine is the repository's to check.
    next = await repo.replaceRecord(current, patch);
  } catch (err) {
    if (err instanceof PreconditionFailedError) {
      throw new VolumeBackupError('CONFLICT', `backup ${backupId} changed while it was being reset (its owner may be alive): look at it again and retry`, { backupId });
    }
    throw err;
  }
  return { record: next, previousStatus: record.status, objectsChecked };
}

/** Why the owner may still be at work (a live record lease, or its volume lease), or null. */
async function liveOwner(repo: Repository, record: BackupRecord): Promise<string | null> {
  const now = Date.now();
  if (record.leaseExpiresAt && Date.parse(record.leaseExpiresAt) > now) return `its lease runs until ${record.leaseExpiresAt}`;
  if (record.status === 'creating') {
    const lease = (await listVolumeLeases(repo)).find((l) => l.volumeId === record.volumeId)?.holder;
    if (lease && lease.host === record.host && Date.parse(lease.expiresAt) > now) {
      return `the volume's lease is held by host ${lease.host} (pid ${lease.pid}) until ${lease.expiresAt}`;
    }
  }
  return null;
}

/** Everything a restore needs from this backup must be there; returns what the record should say. */
async function checkComplete(repo: Repository, record: BackupRecord, signal?: AbortSignal): Promise<{ patch: Partial<BackupRecord>; objectsChecked: number }> {
  const refuse = (why: string) =>
    new VolumeBackupError('CONFLICT', `backup ${record.id} cannot be made available: ${why}. Reset it to error instead`, { backupId: record.id });
  if (record.parentId) {
    let chain;
    try {
      chain = chainOf(await repo.listRecords(record.volumeId), record.id);
    } catch (err) {
      throw refuse(errorMessage(err));
    }
    const broken = chain.slice(0, -1).find((r) => r.status !== 'available' && r.status !== 'restoring');
    if (broken) throw refuse(`it needs ${broken.id}, which is ${broken.status}`);
  }
  let listed: Map<string, number>;
  let metadataSha256: string;
  let objectCount = 1;
  // What the metadata lists (not every object under the prefix): verify compares the record with it.
  let storedBytes: number;
  try {
    const { metadata, storedLength } = await readMetadata(repo, record, signal);
    storedBytes = storedLength;
    listed = new Map((await listBackupObjects(repo, record)).map((e) => [e.name, e.size]));
    if (metadata.formatVersion === 1) await loadHashList(repo, record, metadata, signal);
    // A backup whose writer stopped after writing its metadata has no digest in its record yet.
    metadataSha256 = record.metadataSha256 ?? sha256(await repo.readObject(metadataObjectName(record.objectPrefix), signal));
    for await (const o of ownedObjects(repo, record, metadata, signal)) {
      const size = listed.get(o.name);
      if (size === undefined) throw refuse(`object ${o.name} is missing`);
      if (size !== o.length) throw refuse(`object ${o.name} is ${size} bytes; its metadata says ${o.length}`);
      objectCount++;
      storedBytes += o.length;
    }
  } catch (err) {
    if (err instanceof VolumeBackupError && (err.code === 'OBJECT_MISSING' || err.code === 'CORRUPT')) throw refuse(errorMessage(err));
    throw err;
  }
  return {
    patch: { metadataSha256, storedBytes, objectCount },
    objectsChecked: objectCount,
  };
}
