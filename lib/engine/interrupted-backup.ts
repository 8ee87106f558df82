/**
 * What is left of a backup whose process stopped (killed, crashed, the machine rebooted): a `creating`
 * record and its partial objects. The record becomes `error` and the objects are removed, by the start-up
 * cleanup and, for its own volume, by the next backup (which holds the volume's lease, so no live backup
 * of the volume can be meant): the space comes back before that backup needs it.
 */
import * as path from 'path';
import { errorMessage } from '../errors';
import { deleteBackupObjects } from '../repository/backup-objects';
import { ownerHost, stillRunning } from '../repository/owner';
import type { BackupRecord } from '../repository/records';
import type { Repository } from '../repository/repository';
import type { Logger } from './types';

export interface FailedBackup {
  backupId: string;
  volumeId: string;
  reason: string;
  objectsRemoved: boolean;
  bytesFreed: number;
}

/** `record` (creating, its writer judged stopped) → error with the reason; its partial objects removed. */
export async function failInterruptedBackup(repo: Repository, record: BackupRecord, now: Date, foundBy: string, log?: Logger): Promise<FailedBackup> {
  const reason = `interrupted: the process on host ${ownerHost(record)} that was creating this backup stopped (found by ${foundBy} at ${now.toISOString()})`;
  // Fence first: if the writer were alive after all, its final compare-and-swap to available now fails.
  await repo.transition(record.id, ['creating'], 'error', { failReason: reason, leaseExpiresAt: null });
  let bytesFreed = 0;
  let objectsRemoved = true;
  try {
    bytesFreed = await deleteBackupObjects(repo, record);
  } catch (err) {
    objectsRemoved = false;
    log?.warn(`cleanup: backup ${record.id} is now error, but its partial objects could not all be removed (${errorMessage(err)}); prune removes them later`);
  }
  log?.warn(`cleanup: backup ${record.id} of volume ${record.volumeId} was interrupted; marked error and ${bytesFreed} bytes of partial objects removed`);
  return { backupId: record.id, volumeId: record.volumeId, reason, objectsRemoved, bytesFreed };
}

/**
 * Called by a backup once it took the volume's lease over from a dead holder: the volume's earlier backups
 * still `creating` whose writer is gone (a process of this host that is no more, or an expired lease) are failed here.
 */
export async function failStoppedBackupsOf(repo: Repository, volumeId: string, log?: Logger): Promise<void> {
  const now = new Date();
  for (const record of await repo.listRecords(volumeId)) {
    if (record.status !== 'creating' || !record.owner || stillRunning(record, repo.host, now)) continue;
    try {
      await failInterruptedBackup(repo, record, now, 'the next backup of the volume', log);
      // Its half-written objects (temporary files of the killed writer, posix) too; the start-up cleanup walks the whole repository for them.
      await repo.removeStaleTemporaries(path.posix.dirname(record.objectPrefix));
    } catch (err) {
      log?.warn(`backup ${record.id} was interrupted, but could not be cleaned up here (${errorMessage(err)}); volume-backup cleanup retries`);
    }
  }
}
