/**
 * Delete a backup: refused while another backup names it as parent (Cinder's rule), unless `cascade`
 * asks to delete the dependents too, children first. Each deletion moves the record to `deleting`
 * (compare-and-swap), re-checks that no new dependent appeared (set-then-check against concurrent
 * incrementals), removes the objects, then the record.
 */
import { VolumeBackupError, throwIfAborted } from '../errors';
import { dependentsOf, descendantsOf } from '../repository/catalog';
import { deleteBackups } from './delete-batch';
import { checkBackupId } from '../repository/names';
import type { BackupRecord } from '../repository/records';
import { ParentIndex } from '../repository/parent-index';
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
  // One index for the whole cascade: each check lists the records and reads only new ones.
  const index = new ParentIndex(repo, record.volumeId, records);
  const result: DeleteResult = { deleted: [], bytesFreed: 0 };
  for (const victim of victims) {
    throwIfAborted(options.signal);
    const freed = await deleteOne(repo, victim, new Set(victims.map((v) => v.id)), index);
    result.deleted.push(victim);
    result.bytesFreed += freed;
    options.onDeleted?.(victim);
  }
  return result;
}

/**
 * Delete one backup whose dependents (if any) are all in `alsoGoing`: a batch of one of the deletion
 * protocol in delete-batch.ts. Returns the bytes freed; HAS_DEPENDENTS when something started using
 * it meanwhile (it is given back), CONFLICT when its status does not allow deleting.
 */
export async function deleteOne(repo: Repository, record: BackupRecord, alsoGoing: Set<string> = new Set(), index?: ParentIndex): Promise<number> {
  const outcome = await deleteBackups(repo, [record], { alsoGoing, index });
  const freed = outcome.deleted.get(record.id);
  if (freed !== undefined) return freed;
  const users = outcome.givenBack.get(record.id);
  if (users) {
    throw new VolumeBackupError(
      'HAS_DEPENDENTS',
      `backup ${record.id} was not deleted: ${users.join(', ')} started using it as parent meanwhile`,
      { backupId: record.id, dependents: users },
    );
  }
  throw outcome.failed.get(record.id) ?? new VolumeBackupError('CONFLICT', `backup ${record.id} was not deleted`, { backupId: record.id });
}
