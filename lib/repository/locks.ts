/**
 * Volume leases: at most one backup of a volume runs at a time, anywhere. A lease is an object
 * locks/<volumeId>.json created with putIfAbsent and renewed with replaceIfMatch; a lease whose holder
 * stopped renewing expires and can be taken over, so a crashed host never blocks a volume for long.
 */
import * as os from 'os';
import { randomUUID } from 'crypto';
import { ObjectNotFoundError, PreconditionFailedError, VolumeBackupError } from '../errors';
import { checkVolumeId } from './names';
import { leaseObjectName } from './layout';
import type { Repository } from './repository';
import { heldByThisProcess, thisProcessAs } from './owner';
import { BackupRecord, CancelRequest, OperationOwner, isTransient } from './records';
import { sleep } from '../util/concurrency';

export const DEFAULT_LEASE_TTL_MS = 60_000;

export interface LeaseHolder {
  host: string;
  pid: number;
  operation: string;
  backupId: string | null;
  token: string;
  acquiredAt: string;
  expiresAt: string;
}

export interface LeaseOptions {
  operation: string;
  backupId?: string | null;
  ttlMs?: number;
  /** How long to wait for another holder (0: fail at once). */
  waitMs?: number;
  signal?: AbortSignal;
  onWait?: (holder: LeaseHolder) => void;
  /** Called when renewal finds the lease taken by someone else (the operation should stop). */
  onLost?: (reason: string) => void;
}

export function lockName(volumeId: string): string {
  return leaseObjectName(checkVolumeId(volumeId));
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class VolumeLease {
  private timer: NodeJS.Timeout | null = null;
  private etag: string;
  private released = false;

  constructor(
    private readonly repo: Repository,
    readonly volumeId: string,
    private holder: LeaseHolder,
    etag: string,
    private readonly ttlMs: number,
    private readonly onLost?: (reason: string) => void,
    /** The holder whose lease this one replaced because it was dead (killed, expired); null when the volume was free. */
    readonly replacedDead: LeaseHolder | null = null,
  ) {
    this.etag = etag;
    this.timer = setInterval(() => void this.renew(), Math.max(1000, Math.floor(ttlMs / 3)));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    if (this.released) return;
    const next = { ...this.holder, expiresAt: new Date(Date.now() + this.ttlMs).toISOString() };
    try {
      this.etag = await this.repo.replaceLease(this.volumeId, encode(next), this.etag);
      this.holder = next;
    } catch (err) {
      if (err instanceof PreconditionFailedError || err instanceof ObjectNotFoundError) {
        this.stopTimer();
        this.onLost?.(`the lease on volume ${this.volumeId} was taken over by another process`);
      }
      // Other errors (a network blip): try again at the next tick; the TTL leaves room for that.
    }
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.stopTimer();
    try {
      const current = await this.repo.readLease(this.volumeId);
      if (decode(current.data)?.token === this.holder.token) await this.repo.deleteLease(this.volumeId);
    } catch (err) {
      if (!(err instanceof ObjectNotFoundError)) throw err;
    }
  }
}

function encode(holder: LeaseHolder): Buffer {
  return Buffer.from(JSON.stringify(holder) + '\n');
}

function decode(data: Buffer): LeaseHolder | null {
  try {
    const v = JSON.parse(data.toString('utf8')) as LeaseHolder;
    return typeof v.token === 'string' && typeof v.expiresAt === 'string' ? v : null;
  } catch {
    return null;
  }
}

/** A lease is dead when it expired, or when its holder was a process of this host that is gone. */
function isDead(holder: LeaseHolder | null, host: string): boolean {
  if (!holder) return true;
  if (Date.parse(holder.expiresAt) < Date.now()) return true;
  return holder.host === host && holder.pid !== process.pid && !pidAlive(holder.pid);
}

export async function acquireVolumeLease(repo: Repository, volumeId: string, options: LeaseOptions): Promise<VolumeLease> {
  const ttlMs = options.ttlMs ?? DEFAULT_LEASE_TTL_MS;
  const deadline = Date.now() + (options.waitMs ?? 0);
  let announced = false;
  for (;;) {
    const holder: LeaseHolder = {
      host: repo.host || os.hostname(),
      pid: process.pid,
      operation: options.operation,
      backupId: options.backupId ?? null,
      token: randomUUID(),
      acquiredAt: new Date().toISOString(),
      expiresAt: new Date(Date.now() + ttlMs).toISOString(),
    };
    try {
      const etag = await repo.createLease(volumeId, encode(holder));
      return new VolumeLease(repo, volumeId, holder, etag, ttlMs, options.onLost);
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
    let current;
    try {
      current = await repo.readLease(volumeId);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) continue; // released meanwhile
      throw err;
    }
    const other = decode(current.data);
    if (isDead(other, holder.host)) {
      try {
        const etag = await repo.replaceLease(volumeId, encode(holder), current.etag);
        return new VolumeLease(repo, volumeId, holder, etag, ttlMs, options.onLost, other);
      } catch (err) {
        if (!(err instanceof PreconditionFailedError || err instanceof ObjectNotFoundError)) throw err;
        continue;
      }
    }
    if (Date.now() >= deadline || options.signal?.aborted) {
      throw new VolumeBackupError(
        'BUSY',
        `volume ${volumeId} is busy: host ${other!.host} (pid ${other!.pid}) is running ${other!.operation}` +
          `${other!.backupId ? ` of backup ${other!.backupId}` : ''} since ${other!.acquiredAt}; try again when it has finished`,
        { volumeId, holder: other },
      );
    }
    if (!announced) {
      options.onWait?.(other!);
      announced = true;
    }
    await sleep(Math.min(500, Math.max(10, deadline - Date.now())));
  }
}


/**
 * Keep a running operation's record lease fresh, so others can tell it is alive. Returns the stopper.
 * Only while this process still owns the record: a record the operation left, or that a cleanup or
 * another deleter took over, is not touched.
 */
export function renewRecordLease(
  repo: Repository,
  backupId: string,
  volumeId: string,
  ttlMs = DEFAULT_LEASE_TTL_MS,
  onCancelRequest?: (request: CancelRequest) => void,
): () => void {
  let cancelSeen = false;
  const timer = setInterval(() => {
    repo
      .updateRecord(backupId, (current) => {
        if (!isTransient(current.status) || !heldByThisProcess(current, repo.host)) throw new VolumeBackupError('CONFLICT', `backup ${backupId} is no longer held by this process`);
        // Someone asked (from any host) to stop this operation: volume-backup cancel, the sidebar, msg.cancel.
        if (current.cancelRequest && onCancelRequest && !cancelSeen) {
          cancelSeen = true;
          onCancelRequest(current.cancelRequest);
        }
        return { leaseExpiresAt: new Date(Date.now() + ttlMs).toISOString() };
      }, volumeId)
      .catch(() => undefined); // a missed renewal is retried at the next tick
  }, Math.max(1000, Math.floor(ttlMs / 3)));
  timer.unref();
  return () => clearInterval(timer);
}

/** The owner and first lease of an operation this process starts on a record (see owner.ts). */
export function takeRecord(repo: Repository, operation: OperationOwner['operation'], ttlMs = DEFAULT_LEASE_TTL_MS): Pick<BackupRecord, 'owner' | 'leaseExpiresAt' | 'cancelRequest'> {
  // A cancel request of an earlier operation on the record does not stop this one.
  return { owner: thisProcessAs(operation, repo.host), leaseExpiresAt: new Date(Date.now() + ttlMs).toISOString(), cancelRequest: null };
}

/** The lease objects under locks/, whatever their state. */
export async function listVolumeLeases(repo: Repository): Promise<{ volumeId: string; holder: LeaseHolder | null; etag: string }[]> {
  const out: { volumeId: string; holder: LeaseHolder | null; etag: string }[] = [];
  for (const volumeId of await repo.listLeaseVolumes()) {
    const current = await repo.readLease(volumeId).catch((err) => {
      if (err instanceof ObjectNotFoundError) return null; // released meanwhile
      throw err;
    });
    if (current) out.push({ volumeId, holder: decode(current.data), etag: current.etag });
  }
  return out;
}

/**
 * Start-up cleanup of one lease: release it if its holder is a process of `host` (on this machine) that
 * is gone. Compare-and-swap first (expire it), so a lease someone took over meanwhile is never removed.
 */
export async function releaseDeadLease(repo: Repository, lease: { volumeId: string; holder: LeaseHolder | null; etag: string }, host: string): Promise<boolean> {
  const holder = lease.holder;
  if (!holder || holder.host !== host || holder.pid === process.pid || pidAlive(holder.pid)) return false;
  const tombstone: LeaseHolder = { ...holder, token: randomUUID(), expiresAt: new Date(0).toISOString() };
  try {
    await repo.replaceLease(lease.volumeId, encode(tombstone), lease.etag);
  } catch (err) {
    if (err instanceof PreconditionFailedError || err instanceof ObjectNotFoundError) return false;
    throw err;
  }
  const current = await repo.readLease(lease.volumeId).catch(() => null);
  if (current && decode(current.data)?.token === tombstone.token) await repo.deleteLease(lease.volumeId);
  return true;
}
