/**
 * Delete a backup: refused while another backup names it as parent (Cinder's rule), unless `cascade`
 * asks to delete the dependents too, children first. Each deletion moves the record to `deleting`
 * (compare-and-swap), re-checks that no new dependent appeared (set-then-check against concurrent
 * incrementals), removes the objects, then the record.
 */
import { VolumeBackupError, throwIfAborted } from '../errors';
import { dependentsOf, descendantsOf } from '../repository/catalog';
import { deleteBackupObjects } from '../repository/backup-objects';
import { checkBackupId } from '../repository/names';
import type { BackupRecord } from '../repository/records';
import type { Repository } from '../repository/repository';
import type { DeleteOptions, DeleteResult } from './types';

export async function deleteBackup(repo: Repository, options: DeleteOptions): Promise<DeleteResult> {
  const backupId = checkBackupId(options.backupId);
  const record = await repo.getRecord(backupId);
  const records = await repo.listRecords(record.volumeId);
  const descendants = descendantsOf(records, backupId);
  if (descendants.length > 0 && !options.cascade) {
    throw new VolumeBackupError(
      'HAS_DEPENDENTS',
      `backup ${backupId} cannot be deleted: ${dependentsOf(records, backupId).map((r) => r.id).join(', ')} ` +
        `depend${dependentsOf(records, backupId).length === 1 ? 's' : ''} on it (delete them first, or use cascade)`,
      { backupId, dependents: descendants.map((r) => r.id) },
    );
  }
  const victims = [...descendants, record];
  const result: DeleteResult = { deleted: [], bytesFreed: 0 };
  for (const victim of victims) {
    throwIfAborted(options.signal);
    const freed = await deleteOne(repo, victim, new Set(victims.map((v) => v.id)));
    result.deleted.push(victim);
    result.bytesFreed += freed;
    options.onDeleted?.(victim);
  }
  return result;
}

/**
 * Delete one backup whose dependents (if any) are all in `alsoGoing`. Exported for prune, which
 * decides its own victims. Returns the bytes freed.
 */
export async function deleteOne(repo: Repository, record: BackupRecord, alsoGoing: Set<string> = new Set()): Promise<number> {
  await repo.transition(record.id, ['available', 'error', 'deleting'], 'deleting', { leaseExpiresAt: null });
  const now = await repo.listRecords(record.volumeId);
  const newcomers = dependentsOf(now, record.id).filter((r) => !alsoGoing.has(r.id));
  if (newcomers.length > 0) {
    // Give it back. As `available` only if nobody committed its deletion (see below): a deletion left
    // by a crashed or concurrent deleter may have removed objects already, so then it can only be `error`.
    await repo
      .updateRecord(record.id, (current) => {
        if (current.status !== 'deleting') throw new VolumeBackupError('CONFLICT', `backup ${record.id} is ${current.status}`);
        return current.metadataSha256 !== null && current.failReason === null
          ? { status: 'available', leaseExpiresAt: null }
          : { status: 'error', failReason: current.failReason ?? 'its deletion was interrupted; some objects may be gone' };
      }, record.volumeId)
      .catch(() => undefined);
    throw new VolumeBackupError(
      'HAS_DEPENDENTS',
      `backup ${record.id} was not deleted: ${newcomers.map((r) => r.id).join(', ')} started using it as parent meanwhile`,
      { backupId: record.id, dependents: newcomers.map((r) => r.id) },
    );
  }
  // Commit point (compare-and-swap): from here on objects go, so the record stops vouching for its
  // metadata. A second deleter of the same backup that saw a new dependent can then no longer give it
  // back as available (above), and if it already gave it back, this fails and nothing is deleted.
  // (Added for prune, issue 6: two deleters of one backup, or one finishing a crashed deletion.)
  await repo.updateRecord(record.id, (current) => {
    if (current.status !== 'deleting') {
      throw new VolumeBackupError('CONFLICT', `backup ${record.id} was not deleted: it became ${current.status} meanwhile`, { backupId: record.id, status: current.status });
    }
    return { metadataSha256: null };
  }, record.volumeId);
  const freed = await deleteBackupObjects(repo, record.objectPrefix);
  await repo.deleteRecord(record);
  return freed;
}
