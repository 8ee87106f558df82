/**
 * Owners of transient states. Whoever moves a record into creating, restoring or deleting writes
 * itself into `owner` (host, pid, the pid's start time) and keeps `leaseExpiresAt` fresh; the start-up
 * cleanup of that host finishes or rolls the operation back as soon as the process is gone, and any
 * host's cleanup does once the lease has expired.
 */
import { processAlive, processStartTime } from '../util/process';
import { BackupRecord, OperationOwner, leaseExpired } from './records';

/** This process as the owner of `operation`, on the repository's host. */
export function thisProcessAs(operation: OperationOwner['operation'], host: string): OperationOwner {
  return { operation, host, pid: process.pid, pidStart: processStartTime(process.pid) };
}

function isThisProcess(owner: OperationOwner, host: string): boolean {
  return owner.host === host && owner.pid === process.pid && (owner.pidStart === null || owner.pidStart === processStartTime(process.pid));
}

/** Whether `record` is held by this very process (a renewal must not revive what someone else took over). */
export function heldByThisProcess(record: BackupRecord, host: string): boolean {
  return !!record.owner && isThisProcess(record.owner, host);
}

/** The host whose cleanup handles a transient record: its owner's; for records of older versions, its host. */
export function ownerHost(record: BackupRecord): string {
  return record.owner?.host ?? record.host;
}

/**
 * Why the operation holding a transient record may still be running, judged by the cleanup of `host`
 * (on that machine) at `now`; null when it has stopped. A process of this host is asked directly; an
 * operation of another host (or an owner older versions did not record) by its lease.
 */
export function stillRunning(record: BackupRecord, host: string, now: Date): string | null {
  const owner = record.owner;
  if (owner && owner.host === host) {
    if (isThisProcess(owner, host)) return `this process is ${describe(owner)} it`;
    if (processAlive(owner)) return `process ${owner.pid} of this host is ${describe(owner)} it`;
    return null;
  }
  if (record.leaseExpiresAt && !leaseExpired(record, now)) {
    return `its lease runs until ${record.leaseExpiresAt}${owner ? ` (process ${owner.pid} of host ${owner.host})` : ''}: the operation may still be running; clean up again after that`;
  }
  return null;
}

function describe(owner: OperationOwner): string {
  return owner.operation === 'create' ? 'creating' : owner.operation === 'restore' ? 'restoring' : 'deleting';
}
