/** Message → CreateBackupOptions, shared by backup-create, backup-incremental and snapshot-backup. */
import { z } from 'zod';
import type { CreateBackupOptions } from '../../lib/engine/types';
import { findParent, listBackups } from '../../lib/repository/catalog';
import type { BackupKind } from '../../lib/repository/records';
import type { Repository } from '../../lib/repository/repository';
import { Compression } from '../../lib/repository/records';
import type { OperationContext } from './operation-node';
import type { Node, NodeAPI, NodeDef } from './red';
import { PropertySource, checkOptions, parseSeconds, parseSize, resolveProperties, sameNamed, wholeNumber } from './resolve';

/** Properties every backup node reads: node setting name → standard msg property. */
export const BACKUP_SOURCES = {
  ...sameNamed('volumeId'),
  name: { setting: 'backupName', msgProperty: 'backupName' },
  ...sameNamed('description', 'lockWait'),
  // No node setting: these come from the message or from the driver-config.
  ...sameNamed('chunkSize', 'blockSize', 'compression'),
} satisfies Record<string, PropertySource>;

const size = z.union([z.number(), z.string()]).optional();

export const BackupInput = z.object({
  volumeId: z.string({ error: 'must be text' }).optional(),
  name: z.string({ error: 'must be text' }).max(1024).optional(),
  description: z.string({ error: 'must be text' }).max(4096).optional(),
  chunkSize: size,
  blockSize: size,
  compression: Compression.optional(),
  lockWait: z.union([z.number(), z.string()], { error: 'must be a number of seconds' }).optional(),
});

/** snapshot-backup's "re-read everything every N changed-extent incrementals" (0: never; not given: the engine's 30). */
export const FullReadEvery = wholeNumber('a whole number of changed-extent incrementals (0: never re-read everything)');

type Common = Pick<
  CreateBackupOptions,
  'volumeId' | 'name' | 'description' | 'chunkSize' | 'blockSize' | 'compression' | 'lockWaitMs' | 'onLockWait' | 'signal' | 'onProgress' | 'log'
>;

/**
 * Read the common backup properties. The driver-config's chunk and block sizes apply to full backups
 * only: an incremental inherits its parent's sizes, and giving other ones would be refused.
 */
export async function commonBackupOptions(RED: NodeAPI, node: Node, def: NodeDef, ctx: OperationContext, kind: BackupKind = 'full'): Promise<Common> {
  const { values, from } = await resolveProperties(RED, node, def, ctx.msg, BACKUP_SOURCES);
  const input = checkOptions(BackupInput, values, from);
  const defaults = ctx.config.defaults;
  return {
    volumeId: input.volumeId,
    name: input.name,
    description: input.description,
    chunkSize: parseSize(input.chunkSize, `chunk size (from ${from.chunkSize})`) ?? (kind === 'full' ? defaults.chunkSize : undefined),
    blockSize: parseSize(input.blockSize, `block size (from ${from.blockSize})`) ?? (kind === 'full' ? defaults.blockSize : undefined),
    compression: input.compression ?? defaults.compression,
    // Another backup of the same volume (any node, process or host) holds its lock: fail at once (BUSY), or wait.
    lockWaitMs: parseSeconds(input.lockWait, `the lock wait (from ${from.lockWait})`) ?? 0,
    onLockWait: ctx.onLockWait,
    signal: ctx.signal,
    onProgress: ctx.onProgress,
    log: ctx.log,
  };
}

/**
 * The kind of backup to make: an incremental or differential without a parent yet (a new volume, or
 * everything older was pruned) becomes a full backup when the node allows it, instead of failing.
 */
export async function effectiveKind(
  repo: Repository,
  request: { volumeId: string; mode: BackupKind; parentId?: string; before?: Date; fullIfNoParent: boolean },
): Promise<BackupKind> {
  if (request.mode === 'full' || request.parentId || !request.fullIfNoParent) return request.mode;
  const records = await listBackups(repo, { volumeId: request.volumeId });
  return findParent(records, request.volumeId, request.mode, request.before) ? request.mode : 'full';
}

/** The node's "full backup when there is no parent" checkbox (default on). */
export function fullIfNoParent(def: NodeDef): boolean {
  return def.fullIfNoParent !== false && def.fullIfNoParent !== 'false';
}
