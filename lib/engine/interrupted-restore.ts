/**
 * What is left of a restore that was killed: its target is incomplete. A target the restore had created
 * (it did not exist before) is removed, so a half-written file never looks like a good copy; an
 * existing file or device is left as it is and named in the warning (restore again, or use another copy).
 * Only by the cleanup of the host that ran the restore (it runs on that machine); another host's cleanup,
 * which found the restore's lease expired, reports the target.
 */
import { promises as fs } from 'fs';
import { VolumeBackupError, errorMessage } from '../errors';
import { ownerHost, stillRunning } from '../repository/owner';
import type { BackupRecord, RestoreTarget } from '../repository/records';
import type { Repository } from '../repository/repository';
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

/** A restore whose process is gone: its backup is available again (the restore itself failed; reportInterruptedRestore says what of its target). */
export async function endInterruptedRestore(repo: Repository, record: BackupRecord): Promise<void> {
  await repo.updateRecord(record.id, (current) => {
    // Only the restore judged stopped: not a new one that took the backup meanwhile.
    if (current.status !== 'restoring' || JSON.stringify(current.owner ?? null) !== JSON.stringify(record.owner ?? null)) {
      throw new VolumeBackupError('CONFLICT', `backup ${record.id} changed meanwhile (now ${current.status})`, { backupId: record.id });
    }
    return { status: 'available', restoreTarget: null };
  }, record.volumeId);
}

/**
 * Before a new restore of `backupId`: a restore of it that was killed left it `restoring` until a
 * start-up cleanup runs. Its owner being gone (judged as that cleanup judges), end it here as the cleanup
 * would (its half-written new target removed), so running the restore again just works. A restore that
 * is still running is left alone: the new one is then refused, naming it.
 */
export async function endStoppedRestoreOf(repo: Repository, backupId: string, log?: Logger): Promise<void> {
  const record = await repo.getRecord(backupId).catch(() => null); // a missing record: the restore says so itself
  if (!record || record.status !== 'restoring' || stillRunning(record, repo.host, new Date())) return;
  try {
    await endInterruptedRestore(repo, record);
  } catch (err) {
    if (err instanceof VolumeBackupError && err.code === 'CONFLICT') return; // another process took it meanwhile
    throw err;
  }
  await reportInterruptedRestore(record, repo.host, log);
}
