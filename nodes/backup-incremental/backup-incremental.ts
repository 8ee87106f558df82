/**
 * backup-incremental: stores only the blocks that changed since a parent backup. The parent is the newest
 * available backup of the volume (incremental) or the newest full one (differential), or msg.parentId.
 */
import { z } from 'zod';
import { createBackup } from '../../lib/engine/backup';
import type { BackupRecord } from '../../lib/repository/records';
import { commonBackupOptions, effectiveKind, fullIfNoParent } from '../common/backup-options';
import { volumeIdForPath } from '../../lib/repository/names';
import { backupSummary } from '../common/format';
import { registerOperationNode } from '../common/operation-node';
import type { NodeAPI } from '../common/red';
import { checkOptions, resolveProperties, sameNamed, text } from '../common/resolve';

const Input = z.object({
  volume: text('the path of the disk image or block device to back up'),
  mode: z.enum(['incremental', 'differential'], { error: 'must be "incremental" or "differential"' }).default('incremental'),
  parentId: z.string({ error: 'must be a backup id (text)' }).optional(),
});

export = function register(RED: NodeAPI): void {
  registerOperationNode<BackupRecord>(RED, 'volume-backup-incremental', (node, def) => ({
    createRepository: true,
    async run(ctx) {
      const { values, from } = await resolveProperties(RED, node, def, ctx.msg, sameNamed('volume', 'mode', 'parentId'));
      const input = checkOptions(Input, values, from);
      const volumeId = (await commonBackupOptions(RED, node, def, ctx, input.mode)).volumeId ?? volumeIdForPath(input.volume);
      const mode = await effectiveKind(ctx.repo, { volumeId, mode: input.mode, parentId: input.parentId, fullIfNoParent: fullIfNoParent(def) });
      const common = await commonBackupOptions(RED, node, def, ctx, mode);
      return createBackup(ctx.repo, { ...common, volumeId, volume: input.volume, mode, parentId: input.parentId });
    },
    summary: backupSummary,
  }));
};
