/**
 * Base snapshots (issue 16): a btrfs or reflink temporary kept after its backup succeeded, so that the
 * next incremental compares file extents with it and reads only what changed. One per volume: recorded
 * in its backup's record (baseSnapshot), owned by that backup (its owner file says so), replaced when the
 * next backup of the volume succeeds, removed when its backup is deleted or pruned, and by start-up
 * cleanup when its backup no longer keeps it.
 */
import { promises as fsp } from 'fs';
import { errorMessage } from '../errors';
import type { Repository } from '../repository/repository';
import type { BackupRecord, BaseSnapshot } from '../repository/records';
import { changedRanges, rangeBytes, readExtents } from '../snapshot/extents';
import { OwnerRecord, markOwnerAsBase, removeOwnerFile } from '../snapshot/owners';
import { ProviderContext, ProviderName, RemovalHandle, TemporarySnapshot } from '../snapshot/provider';
import { removeTemporary } from '../snapshot/remove';
import type { Logger, ReadPlan } from './types';

/** Re-read everything after this many changed-extent incrementals in a row, unless told otherwise. */
export const DEFAULT_FULL_READ_EVERY = 30;

/** How long listing a file's extents may take (a fragmented multi-TiB image has millions). */
const EXTENTS_TIMEOUT_MS = 600_000;

/** The providers whose snapshots are copy-on-write and can have their extents compared. */
export function keepsBases(provider: ProviderName): provider is 'btrfs' | 'reflink' {
  return provider === 'btrfs' || provider === 'reflink';
}

/** Which file a base snapshot is of: the live volume's inode and real path, taken before the snapshot. */
export interface VolumeIdentity {
  sourceInode: number;
  source: string;
}

export async function volumeIdentity(volume: string): Promise<VolumeIdentity> {
  const [stat, source] = await Promise.all([fsp.stat(volume), fsp.realpath(volume)]);
  return { sourceInode: stat.ino, source };
}

/** A snapshot file's ctime in ns (null: gone): it changes with every write to the file, and with a replacement. */
async function changedAtNs(file: string): Promise<string | null> {
  try {
    return (await fsp.stat(file, { bigint: true })).ctimeNs.toString();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** The record's description of a temporary kept as a base (its ctime taken now, before anyone could touch it). */
export async function describeBase(temporary: TemporarySnapshot, host: string, stateDir: string, volume: VolumeIdentity): Promise<BaseSnapshot> {
  const removes = temporary.handle.provider === 'btrfs' ? temporary.handle.subvolume : temporary.path;
  const changedAt = await changedAtNs(temporary.path);
  return { provider: temporary.provider as 'btrfs' | 'reflink', name: temporary.name, host, path: temporary.path, removes, stateDir, ...volume, changedAtNs: changedAt ?? undefined };
}

function handleOf(base: BaseSnapshot): RemovalHandle {
  return base.provider === 'btrfs' ? { provider: 'btrfs', subvolume: base.removes } : { provider: 'reflink', file: base.removes };
}

export interface PlanInput {
  parent: BackupRecord | null;
  size: number;
  temporary: TemporarySnapshot;
  volume: VolumeIdentity;
  host: string;
  /** 0: never force a full read. */
  fullReadEvery: number;
  log: Logger;
  signal?: AbortSignal;
}

const full = (reason: string | null): ReadPlan => ({ changed: null, reason, extentRuns: 0 });

/** Why the parent's base cannot stand for the parent's bytes here, or null when it can. */
async function baseProblem(parent: BackupRecord, base: BaseSnapshot | null | undefined, input: PlanInput): Promise<string | null> {
  if (!base) return `the parent backup ${parent.id} kept no base snapshot`;
  if (base.host !== input.host) return `the base snapshot of backup ${parent.id} is on host ${base.host}`;
  if (base.provider !== input.temporary.provider) return `the base snapshot is a ${base.provider} snapshot, this one ${input.temporary.provider}`;
  // Extent addresses compare only on one file system, and inode numbers repeat across file systems.
  if (base.source !== input.volume.source) return `the volume is ${input.volume.source}, the base snapshot is of ${base.source ?? 'a file it does not name'}`;
  const changedAt = await changedAtNs(base.path);
  if (changedAt === null) return `the base snapshot ${base.path} is gone`;
  if (base.sourceInode !== input.volume.sourceInode) return 'the volume file was replaced since the base snapshot (another inode)';
  // Its extents would then describe the new bytes, not the parent's: say, a base "refreshed" with cp --reflink.
  if (changedAt !== base.changedAtNs) return `the base snapshot ${base.path} was changed since its backup (its ctime is not the one recorded)`;
  if (parent.size !== input.size) return `the volume's size changed (${parent.size} → ${input.size} bytes)`;
  return null;
}

/** What the incremental on `parent` has to read: the ranges whose extents differ from the base, or all. */
export async function planFromBase(input: PlanInput): Promise<ReadPlan> {
  const { parent, log } = input;
  if (!parent) return full(null);
  const plan = await choosePlan(parent, input);
  if (plan.changed) {
    log.info(`changed extents: reading ${rangeBytes(plan.changed)} of ${input.size} bytes in ${plan.changed.length} range(s), the rest as in backup ${parent.id}`);
  } else {
    log.info(`full read: ${plan.reason}`);
  }
  return plan;
}

async function choosePlan(parent: BackupRecord, input: PlanInput): Promise<ReadPlan> {
  const problem = await baseProblem(parent, parent.baseSnapshot, input);
  if (problem) return full(problem);
  const runs = (parent.readStats?.extentRuns ?? 0) + 1;
  if (input.fullReadEvery > 0 && runs > input.fullReadEvery) {
    return full(`${input.fullReadEvery} changed-extent incremental(s) in a row before this one (fullReadEvery): this one reads everything, to catch a file system that reports extents wrongly`);
  }
  try {
    const options = { timeoutMs: EXTENTS_TIMEOUT_MS, signal: input.signal };
    const [before, after] = await Promise.all([readExtents(parent.baseSnapshot!.path, options), readExtents(input.temporary.path, options)]);
    if (before.size !== input.size || after.size !== input.size) return full(`the snapshots' sizes differ (${before.size}, ${after.size}, volume ${input.size})`);
    return { changed: changedRanges(before, after), reason: null, extentRuns: runs };
  } catch (err) {
    if (input.signal?.aborted) throw err;
    return full(`the file system did not report extents: ${errorMessage(err)}`);
  }
}

/** The temporary now belongs to backup `backupId`: start-up cleanup keeps it while that backup does. */
export async function adoptAsBase(repo: Repository, stateDir: string, temporary: TemporarySnapshot, volumeId: string, backupId: string): Promise<void> {
  await markOwnerAsBase(stateDir, temporary.name, { repositoryId: repo.config.id, volumeId, backupId });
}

/** Removes a base snapshot and its owner file (a base already gone is fine). */
export async function removeBase(base: BaseSnapshot, ctx: ProviderContext): Promise<void> {
  await removeTemporary(handleOf(base), ctx);
  await removeOwnerFile(base.stateDir, base.name);
}

/**
 * The bases of the volume on this host that backups made before `current` keep (and `current`'s own
 * unless `keepOwn`): the record forgets it first (so nobody builds on it), then it is removed. A later
 * backup's base is left alone (one that ran after ours released the volume). Failures are logged:
 * start-up cleanup removes what is left.
 */
export async function retireBases(repo: Repository, current: BackupRecord, keepOwn: boolean, ctx: ProviderContext): Promise<void> {
  const { volumeId } = current;
  for (const record of await repo.listRecords(volumeId)) {
    const base = record.baseSnapshot;
    if (!base || base.host !== repo.host || (record.id === current.id && keepOwn) || record.createdAt > current.createdAt) continue;
    try {
      await repo.updateRecord(record.id, () => ({ baseSnapshot: null }), volumeId);
      await removeBase(base, ctx);
      ctx.log.info(`removed the base snapshot ${base.name} of backup ${record.id}`);
    } catch (err) {
      ctx.log.warn(`could not remove the base snapshot ${base.name} of backup ${record.id}: ${errorMessage(err)}; start-up cleanup will retry`);
    }
  }
}

/** After a backup's record is deleted: its base goes too (on the host that has it). */
export async function removeBaseOf(repo: Repository, record: BackupRecord, ctx: ProviderContext): Promise<void> {
  const base = record.baseSnapshot;
  if (!base || base.host !== repo.host) return;
  try {
    await removeBase(base, ctx);
  } catch (err) {
    ctx.log.warn(`could not remove the base snapshot ${base.name} of deleted backup ${record.id}: ${errorMessage(err)}; start-up cleanup will retry`);
  }
}

/** For start-up cleanup with a repository: whether a kept base is still its backup's, and its volume's newest (null: another repository). */
export function baseInUse(repo: Repository): (owner: OwnerRecord & { base: NonNullable<OwnerRecord['base']> }) => Promise<boolean | null> {
  return async (owner) => {
    if (owner.base.repositoryId !== repo.config.id) return null;
    let record: BackupRecord;
    try {
      record = (await repo.readRecord(owner.base.backupId, owner.base.volumeId)).record;
    } catch (err) {
      return (err as { code?: string }).code === 'NOT_FOUND' ? false : null;
    }
    if (record.status === 'creating') return true;
    if (record.status === 'error' || record.status === 'deleting' || record.baseSnapshot?.name !== owner.name) return false;
    // A later backup of the volume that keeps a base here replaced it (retiring it failed then: say, its
    // record could not be written): the next incremental builds on the later one, so one base is enough.
    const replaced = (await repo.listRecords(record.volumeId)).some(
      (r) => r.createdAt > record.createdAt && (r.status === 'available' || r.status === 'restoring') && r.baseSnapshot?.host === owner.host,
    );
    return !replaced;
  };
}
