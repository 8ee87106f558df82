/**
 * Cancel from anywhere (Cinder cancels by force-delete): a cancel request is written into the record of
 * the running operation (creating, restoring, deleting) by any host: `volume-backup cancel`, the
 * sidebar's Cancel button, msg.cancel. The operation's owner reads it at its next lease renewal and
 * stops as for Ctrl-C; the request stays on the record, so it says who cancelled, where and when.
 */
import * as os from 'os';
import { VolumeBackupError } from '../errors';
import { renewRecordLease } from '../repository/locks';
import { stillRunning } from '../repository/owner';
import { checkBackupId } from '../repository/names';
import { BackupRecord, CancelRequest, isTransient } from '../repository/records';
import type { Repository } from '../repository/repository';
import type { Logger } from './types';

export interface CancelBy {
  /** What asks: "cli", "sidebar", "node". */
  source: string;
  /** Who asks (default: this process's login name). */
  user?: string;
  /** From where (default: the repository's host). */
  host?: string;
}

/** Record a cancel request on a running operation's record; refused (CONFLICT) when nothing runs. */
export async function requestCancel(repo: Repository, backupId: string, by: CancelBy): Promise<BackupRecord> {
  checkBackupId(backupId);
  return repo.updateRecord(backupId, (current) => {
    if (!isTransient(current.status)) {
      throw new VolumeBackupError('CONFLICT', `backup ${backupId} is ${current.status}: no operation on it is running, so there is nothing to cancel`, { backupId, status: current.status });
    }
    // Its process was killed: no one would ever read the request (and "it stops within a minute" would be false).
    if (current.owner && !stillRunning(current, repo.host, new Date())) {
      throw new VolumeBackupError('CONFLICT', `backup ${backupId} is ${current.status}, but process ${current.owner.pid} of host ${current.owner.host} that was ${current.status} it is gone, so there is nothing to cancel: run volume-backup cleanup to end it`, { backupId, status: current.status });
    }
    if (current.cancelRequest) return {}; // asked already: the first request stands
    return { cancelRequest: { host: by.host ?? repo.host, user: by.user ?? loginName(), source: by.source, at: new Date().toISOString() } };
  });
}

/** "cancelled by alice on host ops-1 (cli) at 2026-…" */
export function describeCancelRequest(request: CancelRequest): string {
  return `cancelled by ${request.user ? `${request.user} on ` : ''}host ${request.host} (${request.source}) at ${request.at}`;
}

/** The error an operation stops with when it was asked to. */
export function cancelRequested(request: CancelRequest): VolumeBackupError {
  return new VolumeBackupError('CANCELLED', describeCancelRequest(request), { cancelRequest: request });
}

/**
 * Keep a running operation's record lease fresh and watch it for cancel requests: the returned signal
 * fires on the caller's signal or on a request found at a renewal. `stop` ends the renewals.
 */
export function watchRecord(repo: Repository, backupId: string, volumeId: string, signal?: AbortSignal, log?: Logger): { signal: AbortSignal; stop: () => void } {
  const controller = new AbortController();
  const stop = renewRecordLease(repo, backupId, volumeId, undefined, (request) => {
    log?.warn(`backup ${backupId}: ${describeCancelRequest(request)}; stopping`);
    controller.abort(cancelRequested(request));
  });
  return { signal: signal ? AbortSignal.any([signal, controller.signal]) : controller.signal, stop };
}

function loginName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? '';
  }
}
