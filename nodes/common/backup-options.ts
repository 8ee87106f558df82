/** Message → CreateBackupOptions, shared by backup-create, backup-incremental and snapshot-backup. */
import { z } from 'zod';
import type { CreateBackupOptions } from '../../lib/engine/types';
import { Compression } from '../../lib/repository/records';
import type { OperationContext } from './operation-node';
import type { Node, NodeAPI, NodeDef } from './red';
import { PropertySource, checkOptions, parseSize, resolveProperties } from './resolve';

/** Properties every backup node reads: node setting name → standard msg property. */
export const BACKUP_SOURCES = {
  volumeId: { setting: 'volumeId', msgProperty: 'volumeId' },
  name: { setting: 'backupName', msgProperty: 'backupName' },
  description: { setting: 'description', msgProperty: 'description' },
  // No node setting: these come from the message or from the driver-config.
  chunkSize: { setting: 'chunkSize', msgProperty: 'chunkSize' },
  blockSize: { setting: 'blockSize', msgProperty: 'blockSize' },
  compression: { setting: 'compression', msgProperty: 'compression' },
} satisfies Record<string, PropertySource>;

const size = z.union([z.number(), z.string()]).optional();

export const BackupInput = z.object({
  volumeId: z.string({ error: 'must be text' }).optional(),
  name: z.string({ error: 'must be text' }).max(1024).optional(),
  description: z.string({ error: 'must be text' }).max(4096).optional(),
  chunkSize: size,
  blockSize: size,
  compression: Compression.optional(),
});

type Common = Pick<CreateBackupOptions, 'volumeId' | 'name' | 'description' | 'chunkSize' | 'blockSize' | 'compression' | 'signal' | 'onProgress' | 'log'>;

/** Read the common backup properties and fill in the driver-config's defaults. */
export async function commonBackupOptions(RED: NodeAPI, node: Node, def: NodeDef, ctx: OperationContext): Promise<Common> {
  const { values, from } = await resolveProperties(RED, node, def, ctx.msg, BACKUP_SOURCES);
  const input = checkOptions(BackupInput, values, from);
  const defaults = ctx.config.defaults;
  return {
    volumeId: input.volumeId,
    name: input.name,
    description: input.description,
    chunkSize: parseSize(input.chunkSize, `chunk size (from ${from.chunkSize})`) ?? defaults.chunkSize,
    blockSize: parseSize(input.blockSize, `block size (from ${from.blockSize})`) ?? defaults.blockSize,
    compression: input.compression ?? defaults.compression,
    signal: ctx.signal,
    onProgress: ctx.onProgress,
    log: ctx.log,
  };
}
