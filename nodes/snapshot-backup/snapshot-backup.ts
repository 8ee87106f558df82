/**
 * snapshot-backup: back up a point-in-time snapshot of a volume. The snapshot is given by the message
 * (msg.snapshot = {path, id, createdAt}); its time becomes the backup's data timestamp, so an
 * incremental picks a parent taken before the snapshot. Taking the snapshot here (a provider such as
 * btrfs or LVM) waits for the engine's snapshot support and is refused with a clear error until then.
 */
import { z } from 'zod';
import { createBackup } from '../../lib/engine/backup';
import { invalid } from '../../lib/errors';
import { volumeIdForPath } from '../../lib/repository/names';
import type { BackupRecord } from '../../lib/repository/records';
import { commonBackupOptions } from '../common/backup-options';
import { sizeAndTime } from '../common/format';
import { operationNode } from '../common/operation-node';
import type { Node, NodeAPI, NodeDef } from '../common/red';
import { checkOptions, resolveProperties } from '../common/resolve';

const Snapshot = z.object(
  {
    path: z.string({ error: 'snapshot.path must be the path of the snapshot (text)' }).min(1),
    id: z.union([z.string(), z.number()]).nullish().transform((v) => (v === undefined || v === null ? null : String(v))),
    createdAt: z.union([z.string(), z.number(), z.date()]).transform((v, ctx) => {
      const date = v instanceof Date ? v : new Date(v);
      if (Number.isNaN(date.getTime())) {
        ctx.addIssue({ code: 'custom', message: 'snapshot.createdAt must be a date (ISO text or milliseconds)' });
        return z.NEVER;
      }
      return date;
    }),
  },
  { error: (issue) => (issue.input === undefined ? 'is missing: give {path, id, createdAt} of an existing snapshot' : 'must be an object {path, id, createdAt}') },
);

const Input = z.object({
  source: z.enum(['existing', 'provider'], { error: 'must be "existing" or "provider"' }).default('existing'),
  snapshot: Snapshot.optional(),
  sourcePath: z.string({ error: 'must be the path of the live volume (text)' }).optional(),
  mode: z.enum(['full', 'incremental', 'differential'], { error: 'must be "full", "incremental" or "differential"' }).default('incremental'),
  parentId: z.string({ error: 'must be a backup id (text)' }).optional(),
});

export = function register(RED: NodeAPI): void {
  function SnapshotBackup(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    operationNode<BackupRecord>(RED, node, def, {
      createRepository: true,
      async run(ctx) {
        const { values, from } = await resolveProperties(RED, node, def, ctx.msg, {
          source: { setting: 'source', msgProperty: 'snapshotSource' },
          snapshot: { setting: 'snapshot', msgProperty: 'snapshot' },
          sourcePath: { setting: 'volume', msgProperty: 'volume' },
          mode: { setting: 'mode', msgProperty: 'mode' },
          parentId: { setting: 'parentId', msgProperty: 'parentId' },
        });
        const input = checkOptions(Input, values, from);
        if (input.source === 'provider') {
          throw invalid('taking snapshots (btrfs, reflink, LVM, command) is not available in this version yet: take the snapshot before this node and pass it as msg.snapshot = {path, id, createdAt}');
        }
        if (!input.snapshot) throw invalid(`invalid input: snapshot (from ${from.snapshot}) is missing: give {path, id, createdAt} of an existing snapshot`);
        const common = await commonBackupOptions(RED, node, def, ctx);
        // A snapshot's path changes every time; the volume id must follow the live volume instead.
        const volumeId = common.volumeId ?? (input.sourcePath ? volumeIdForPath(input.sourcePath) : undefined);
        if (!volumeId) {
          throw invalid(`a snapshot backup needs the live volume's path (msg.volume) or a volume id (msg.volumeId), so that its backups form one chain`);
        }
        return createBackup(ctx.repo, {
          ...common,
          volume: input.snapshot.path,
          volumeId,
          sourcePath: input.sourcePath,
          mode: input.mode,
          parentId: input.parentId,
          snapshot: { id: input.snapshot.id, createdAt: input.snapshot.createdAt, provider: null },
        });
      },
      summary: (record, ms) => sizeAndTime(record.size, ms),
    });
  }
  RED.nodes.registerType('volume-snapshot-backup', SnapshotBackup);
};
