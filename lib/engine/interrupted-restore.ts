/**
 * What is left of a restore that was killed: its target is incomplete. A target the restore had created
 * (it did not exist before) is removed, so a half-written file never looks like a good copy; an
 * existing file or device is left as it is and named in the warning (restore again, or use another copy).
 * Only by the cleanup of the host that ran the restore (it runs on that machine); another host's cleanup,
 * which found the restore's lease expired, reports the target.
 */
import { promises as fs } from 'fs';
import { errorMessage } from '../errors';
import { ownerHost } from '../repository/owner';
import type { BackupRecord, RestoreTarget } from '../repository/records';
import type { Logger } from './types';

export async function reportInterruptedRestore(
  record: BackupRecord,
  /** The host whose cleanup this is. */
  thisHost: string,
  log?: Logger,
): Promise<{ backupId: string; volumeId: string; target: RestoreTarget | null; targetRemoved: boolean }> {
  const target = record.restoreTarget ?? null;
  const host = target?.host ?? ownerHost(record);
  let targetRemoved = false;
  let what = 'the target is incomplete';
  if (target && target.created && host === thisHost) {
    try {
      await fs.rm(target.path, { force: true });
      targetRemoved = true;
      what = `the incomplete target ${target.path}, which the restore had created, was removed`;
    } catch (err) {
      what = `its incomplete target ${target.path} could not be removed (${errorMessage(err)}): remove it`;
    }
  } else if (target) {
    what = `its target ${target.path} on host ${host} is incomplete${target.created ? ' (the restore had created it: remove it there)' : ': restore again before using it'}`;
  }
  log?.warn(`cleanup: the restore of backup ${record.id} on host ${ownerHost(record)} was interrupted; it failed (${what}) and the backup is available again`);
  return { backupId: record.id, volumeId: record.volumeId, target, targetRemoved };
}
