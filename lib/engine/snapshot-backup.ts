/**
 * Snapshot backups (seeds 002-004, Cinder's rules in cinder-and-peers.md §2). Two ways in:
 *
 * 1. Back up an existing snapshot: `{ snapshot: { path, id, createdAt }, volumeId }`. The record keeps the
 *    snapshot's id, its dataTimestamp is the snapshot's creation time, and an incremental's parent is the
 *    newest available backup of the volume whose dataTimestamp is earlier (createBackup does the choosing).
 * 2. Back up a live volume through a temporary snapshot: `{ volume, temporarySnapshot: { provider, … } }`.
 *    A provider (lib/snapshot) takes the snapshot, createBackup reads it, and the snapshot is removed at
 *    the end: always, also on failure or cancel. The record names the provider.
 *
 * Options (one plain object, validated with SnapshotBackupOptionsSchema; everything but the last four is
 * JSON, so a node's config or a msg can carry it):
 *   volumeId?          the volume the backups belong to; required for way 1 (default for way 2: from `volume`)
 *   snapshot?          way 1: { path, id, createdAt (Date or ISO 8601) }
 *   volume?            way 2: path of the live file or block device
 *   temporarySnapshot? way 2: { provider: 'auto'|'btrfs'|'reflink'|'lvm'|'command'|'copy', snapshotDir?,
 *                      lvmSize?, createCommand?, deleteCommand?, timeoutSeconds? } (see lib/snapshot/index.ts)
 *   stateDir?          way 2: where owner files of temporaries go (default lib/snapshot/owners.ts defaultStateDir)
 *   mode?, parentId?, name?, description?, chunkSize?, blockSize?, compression?, compressionLevel?,
 *   lockWaitMs?        as for createBackup
 *   signal?, onProgress?, log?, onLockWait?   as for createBackup
 *   keepBase?          way 2: keep the btrfs/reflink temporary as the base of the next incremental, which then
 *                      reads only the ranges whose extents changed (default true; base-snapshot.ts)
 *   fullReadEvery?     way 2: after this many changed-extent incrementals in a row, read everything once
 *                      (default 30; 0: never)
 *   onSnapshot?        called with the temporary snapshot once it exists, before the backup reads it
 *   runner?            runs the providers' commands (tests replace it to check the lvm commands)
 */
import * as path from 'path';
import { z } from 'zod';
import { errorMessage, invalid, throwIfAborted } from '../errors';
import type { Repository } from '../repository/repository';
import { BackupKind, BackupRecord, Compression } from '../repository/records';
import { checkVolumeId, volumeIdForPath } from '../repository/names';
import {
  CommandRunner,
  NULL_LOGGER,
  ProviderContext,
  SnapshotProviderConfig,
  TemporarySnapshot,
  defaultStateDir,
  dropTemporarySnapshot,
  runCommand,
  selectProvider,
  takeTemporarySnapshot,
} from '../snapshot';
import { createBackup } from './backup';
import { DEFAULT_FULL_READ_EVERY, adoptAsBase, describeBase, keepsBases, planFromBase, retireBases, volumeIdentity } from './base-snapshot';
import type { CreateBackupOptions, Logger, ProgressListener } from './types';

/** How far in the future a snapshot's time may be (clock skew): a later one would become everyone's parent. */
const MAX_FUTURE_MS = 5 * 60_000;

const dateInput = z
  .union([z.date(), z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 date')])
  .transform((v) => (v instanceof Date ? v : new Date(v)))
  .refine((d) => !Number.isNaN(d.getTime()), 'must be a valid date')
  .refine((d) => d.getTime() <= Date.now() + MAX_FUTURE_MS, 'is in the future');

const fn = <T>(what: string) => z.custom<T>((v) => v === undefined || typeof v === 'function', `${what} must be a function`);

export const ExistingSnapshot = z
  .object({
    path: z.string().min(1),
    id: z.string().min(1).max(1024),
    createdAt: dateInput,
  })
  .strict();

export const SnapshotBackupOptionsSchema = z
  .object({
    volumeId: z.string().optional(),
    snapshot: ExistingSnapshot.optional(),
    volume: z.string().min(1).optional(),
    temporarySnapshot: SnapshotProviderConfig.optional(),
    stateDir: z.string().min(1).optional(),
    keepBase: z.boolean().optional(),
    fullReadEvery: z.number().int().nonnegative().optional(),
    mode: BackupKind.optional(),
    parentId: z.string().optional(),
    name: z.string().optional(),
    description: z.string().optional(),
    chunkSize: z.number().int().positive().optional(),
    blockSize: z.number().int().positive().optional(),
    compression: Compression.optional(),
    compressionLevel: z.number().int().optional(),
    lockWaitMs: z.number().nonnegative().optional(),
    signal: z.custom<AbortSignal>((v) => v === undefined || v instanceof AbortSignal, 'signal must be an AbortSignal').optional(),
    onProgress: fn<ProgressListener>('onProgress').optional(),
    log: z.custom<Logger>((v) => v === undefined || (typeof v === 'object' && v !== null), 'log must be a logger').optional(),
    onLockWait: fn<CreateBackupOptions['onLockWait']>('onLockWait').optional(),
    onSnapshot: fn<(snapshot: TemporarySnapshot) => void | Promise<void>>('onSnapshot').optional(),
    runner: fn<CommandRunner>('runner').optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (!!o.snapshot === !!o.volume) {
      ctx.addIssue({ code: 'custom', message: 'give either snapshot (back up an existing snapshot) or volume (back up through a temporary snapshot), not both' });
    }
    if (o.snapshot && !o.volumeId) {
      ctx.addIssue({ code: 'custom', path: ['volumeId'], message: "is required when backing up an existing snapshot: the snapshot's path does not say which volume it belongs to" });
    }
    if (o.snapshot && o.temporarySnapshot) {
      ctx.addIssue({ code: 'custom', path: ['temporarySnapshot'], message: 'makes no sense with an existing snapshot' });
    }
  });

export type SnapshotBackupOptions = z.input<typeof SnapshotBackupOptionsSchema>;

function parseOptions(input: SnapshotBackupOptions): z.output<typeof SnapshotBackupOptionsSchema> {
  const parsed = SnapshotBackupOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => (i.path.length ? `${i.path.join('.')} ${i.message}` : i.message));
    throw invalid(`invalid snapshot backup options: ${issues.join('; ')}`);
  }
  return parsed.data;
}

/** The options every kind of snapshot backup passes on to createBackup. */
function commonOptions(o: z.output<typeof SnapshotBackupOptionsSchema>): Omit<CreateBackupOptions, 'volume'> {
  return {
    mode: o.mode,
    parentId: o.parentId,
    name: o.name,
    description: o.description,
    chunkSize: o.chunkSize,
    blockSize: o.blockSize,
    compression: o.compression,
    compressionLevel: o.compressionLevel,
    lockWaitMs: o.lockWaitMs,
    onLockWait: o.onLockWait,
    signal: o.signal,
    onProgress: o.onProgress,
    log: o.log,
  };
}

export async function createSnapshotBackup(repo: Repository, input: SnapshotBackupOptions): Promise<BackupRecord> {
  const o = parseOptions(input);
  const log = o.log ?? NULL_LOGGER;
  const common = commonOptions(o);
  if (o.snapshot) {
    return createBackup(repo, {
      ...common,
      volume: o.snapshot.path,
      volumeId: checkVolumeId(o.volumeId),
      snapshot: { id: o.snapshot.id, createdAt: o.snapshot.createdAt, provider: null },
    });
  }

  const volume = path.resolve(o.volume as string);
  const volumeId = checkVolumeId(o.volumeId ?? volumeIdForPath(volume));
  const stateDir = o.stateDir ?? defaultStateDir();
  const ctx: ProviderContext = { runner: o.runner ?? runCommand, log, signal: o.signal };
  throwIfAborted(o.signal);
  const provider = await selectProvider(volume, o.temporarySnapshot ?? {}, ctx);
  const keepBase = (o.keepBase ?? true) && keepsBases(provider.name);
  // Taken before the snapshot: a file replaced after it is caught by the next backup.
  const identity = await volumeIdentity(volume);
  const temporary = await takeTemporarySnapshot(provider, volume, { host: repo.host, stateDir }, ctx);
  let backupFailed = false;
  let kept = false;
  try {
    const baseSnapshot = keepBase ? await describeBase(temporary, repo.host, stateDir, identity) : undefined;
    await o.onSnapshot?.(temporary);
    const record = await createBackup(repo, {
      ...common,
      volume: temporary.path,
      volumeId,
      // A temporary's own id means nothing once it is gone: the record keeps the provider only.
      snapshot: { id: null, createdAt: temporary.createdAt, provider: temporary.provider },
      sourcePath: volume,
      readPlan: (parent, size) =>
        keepBase
          ? planFromBase({ parent, size, temporary, volume: identity, host: repo.host, fullReadEvery: o.fullReadEvery ?? DEFAULT_FULL_READ_EVERY, log, signal: o.signal })
          : Promise.resolve({ changed: null, reason: o.keepBase === false || !parent ? null : `the ${provider.name} provider keeps no base snapshots`, extentRuns: 0 }),
      baseSnapshot,
    });
    if (keepBase) kept = await keepAsBase(repo, stateDir, temporary, record, log);
    // One base per volume: the previous one (or, with keepBase off or not kept, every one, ours too) goes now.
    await retireBases(repo, record, kept, { ...ctx, signal: undefined }).catch((err) =>
      log.warn(`could not look for older base snapshots of volume ${volumeId}: ${errorMessage(err)}; start-up cleanup will remove them`),
    );
    return kept || !record.baseSnapshot ? record : { ...record, baseSnapshot: null };
  } catch (err) {
    backupFailed = true;
    throw err;
  } finally {
    // Not tied to o.signal: a cancelled backup must still remove its snapshot.
    if (!kept) await dropQuietly(temporary, stateDir, volume, backupFailed, { ...ctx, signal: undefined });
  }
}

/**
 * Hands the temporary to its backup (its owner file then names the backup). When that fails (say, the state
 * directory cannot be written) the backup still stands, without a base: retireBases makes its record forget
 * the base and removes the snapshot.
 */
async function keepAsBase(repo: Repository, stateDir: string, temporary: TemporarySnapshot, record: BackupRecord, log: Logger): Promise<boolean> {
  try {
    await adoptAsBase(repo, stateDir, temporary, record.volumeId, record.id);
    return true;
  } catch (err) {
    log.warn(`could not keep ${temporary.name} as the base snapshot of backup ${record.id}: ${errorMessage(err)}; the backup stands: the next incremental reads everything`);
    return false;
  }
}

async function dropQuietly(temporary: TemporarySnapshot, stateDir: string, volume: string, backupFailed: boolean, ctx: ProviderContext): Promise<void> {
  try {
    await dropTemporarySnapshot(temporary, stateDir, ctx);
  } catch (err) {
    // The owner file stays, so start-up cleanup retries; the backup itself is not affected by this.
    ctx.log.warn(
      `could not remove the temporary ${temporary.provider} snapshot ${temporary.name} of ${volume}` +
        `${backupFailed ? ' after the backup failed' : ''}: ${errorMessage(err)}; cleanupTemporarySnapshots will retry`,
    );
  }
}
