/**
 * snapshot-backup: back up a point-in-time snapshot of a volume, in one of two ways:
 * - existing: the message names a snapshot taken elsewhere (msg.snapshot = {path, id, createdAt});
 *   its time becomes the backup's data timestamp, so an incremental picks a parent taken before it;
 * - provider: the node takes a temporary snapshot of the live volume (btrfs, reflink, lvm, command,
 *   copy or auto), backs it up and removes it, also when the backup fails or is cancelled.
 */
import { z } from 'zod';
import { createSnapshotBackup, SnapshotBackupOptions } from '../../lib/engine/snapshot-backup';
import { invalid } from '../../lib/errors';
import { volumeIdForPath } from '../../lib/repository/names';
import type { BackupRecord } from '../../lib/repository/records';
import { ProviderChoice } from '../../lib/snapshot';
import { FullReadEvery, commonBackupOptions, effectiveKind, fullIfNoParent } from '../common/backup-options';
import { backupSummary, formatBytes, formatDuration } from '../common/format';
import { registerOperationNode } from '../common/operation-node';
import type { NodeAPI, NodeDef } from '../common/red';
import { checkOptions, resolveProperties, sameNamed } from '../common/resolve';

const Input = z.object({
  source: z.enum(['existing', 'provider'], { error: 'must be "existing" or "provider"' }).default('existing'),
  snapshot: z.unknown().optional(),
  volume: z.string({ error: 'must be the path of the live volume (text)' }).optional(),
  mode: z.enum(['full', 'incremental', 'differential'], { error: 'must be "full", "incremental" or "differential"' }).default('incremental'),
  parentId: z.string({ error: 'must be a backup id (text)' }).optional(),
  temporarySnapshot: z.record(z.string(), z.unknown(), { error: 'must be an object such as {"provider": "btrfs"}' }).optional(),
  fullReadEvery: FullReadEvery.optional(),
});

/** The provider settings of the node's form, as the engine's SnapshotProviderConfig. */
function providerConfigFromNode(def: NodeDef): Record<string, unknown> {
  const textOf = (key: string) => (typeof def[key] === 'string' && (def[key] as string).trim() ? (def[key] as string).trim() : undefined);
  const command = (key: string, label: string) => {
    const value = textOf(key);
    if (!value) return undefined;
    try {
      const argv = JSON.parse(value);
      if (Array.isArray(argv) && argv.every((a) => typeof a === 'string')) return argv;
    } catch {
      // reported below
    }
    throw invalid(`the ${label} command must be a JSON array of strings, e.g. ["/usr/local/bin/snap", "{volume}"]`);
  };
  const provider = ProviderChoice.safeParse(textOf('provider') ?? 'auto');
  if (!provider.success) throw invalid(`unknown snapshot provider ${JSON.stringify(def.provider)}: use ${ProviderChoice.options.join(', ')}`);
  const timeout = textOf('timeoutSeconds');
  return {
    provider: provider.data,
    snapshotDir: textOf('snapshotDir'),
    lvmSize: textOf('lvmSize'),
    createCommand: command('createCommand', 'create'),
    deleteCommand: command('deleteCommand', 'delete'),
    timeoutSeconds: timeout === undefined ? undefined : Number(timeout),
  };
}

/**
 * The status after a backup: as the other backup nodes' ("24 MiB read, 321 KiB stored, 0.1 s"), but a
 * backup through a temporary snapshot says what it really read and how: "38 KiB read (extents), …" or
 * "24 MiB read (full), …"; the reason for a full read is in the log and in msg.payload.readStats.
 */
function snapshotBackupSummary(record: BackupRecord, durationMs: number): string {
  const stats = record.readStats;
  if (!stats) return backupSummary(record, durationMs);
  const how = stats.method === 'changed-extents' ? 'extents' : 'full';
  return `${formatBytes(stats.bytesRead)} read (${how}), ${formatBytes(record.storedBytes)} stored, ${formatDuration(durationMs)}`;
}

export = function register(RED: NodeAPI): void {
  registerOperationNode<BackupRecord>(RED, 'volume-snapshot-backup', (node, def) => ({
    createRepository: true,
    async run(ctx) {
      const { values, from } = await resolveProperties(RED, node, def, ctx.msg, {
        source: { setting: 'source', msgProperty: 'snapshotSource' },
        ...sameNamed('snapshot', 'volume', 'mode', 'parentId', 'fullReadEvery'),
        // Node form first (the provider select); "msg" there means msg.temporarySnapshot.
        temporarySnapshot: { setting: '', msgProperty: 'temporarySnapshot' },
      });
      const input = checkOptions(Input, values, from);
      const givenVolumeId = (await commonBackupOptions(RED, node, def, ctx, input.mode)).volumeId;
      // A snapshot's path changes every time; the volume id follows the live volume instead.
      const volumeId = givenVolumeId ?? (input.volume ? volumeIdForPath(input.volume) : undefined);
      let before: Date | undefined;
      const options: SnapshotBackupOptions = { parentId: input.parentId };
      if (input.source === 'existing') {
        if (input.snapshot === undefined) {
          throw invalid(`invalid input: snapshot (from ${from.snapshot}) is missing: give {path, id, createdAt} of an existing snapshot, or choose "take a snapshot"`);
        }
        if (!volumeId) {
          throw invalid('a backup of an existing snapshot needs the live volume (msg.volume) or a volume id (msg.volumeId), so that its backups form one chain');
        }
        const createdAt = (input.snapshot as { createdAt?: unknown }).createdAt;
        before = typeof createdAt === 'string' || createdAt instanceof Date ? new Date(createdAt) : undefined;
        Object.assign(options, { snapshot: input.snapshot as SnapshotBackupOptions['snapshot'], volumeId });
      } else {
        if (!input.volume || !volumeId) throw invalid(`invalid input: volume (from ${from.volume}) is missing: give the path of the live volume to snapshot`);
        const temporarySnapshot = def.provider === 'msg' ? input.temporarySnapshot : providerConfigFromNode(def);
        // On unless unticked (flows from before the checkbox existed keep bases too); without a number,
        // the engine's default (DEFAULT_FULL_READ_EVERY) applies, as for flows from before the field.
        const keepBase = def.keepBase !== false;
        Object.assign(options, { volume: input.volume, volumeId, temporarySnapshot, keepBase, fullReadEvery: keepBase ? input.fullReadEvery : undefined });
      }
      const mode = await effectiveKind(ctx.repo, { volumeId, mode: input.mode, parentId: input.parentId, before, fullIfNoParent: fullIfNoParent(def) });
      const { volumeId: _ignored, ...common } = await commonBackupOptions(RED, node, def, ctx, mode);
      Object.assign(options, common, { mode });
      // Drop unset keys: the engine's schema is strict about what it is given.
      for (const key of Object.keys(options) as (keyof SnapshotBackupOptions)[]) if (options[key] === undefined) delete options[key];
      if (options.temporarySnapshot) {
        const t = options.temporarySnapshot as Record<string, unknown>;
        for (const key of Object.keys(t)) if (t[key] === undefined) delete t[key];
      }
      return createSnapshotBackup(ctx.repo, options);
    },
    summary: snapshotBackupSummary,
  }));
};
