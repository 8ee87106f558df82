/** backup-create: a full backup of the volume named by the node or by msg.volume. */
import { z } from 'zod';
import { createBackup } from '../../lib/engine/backup';
import type { BackupRecord } from '../../lib/repository/records';
import { commonBackupOptions } from '../common/backup-options';
import { backupSummary } from '../common/format';
import { registerOperationNode } from '../common/operation-node';
import type { NodeAPI } from '../common/red';
import { checkOptions, resolveProperties, sameNamed, text } from '../common/resolve';

export = function register(RED: NodeAPI): void {
  registerOperationNode<BackupRecord>(RED, 'volume-backup-create', (node, def) => ({
    createRepository: true,
    async run(ctx) {
      const { values, from } = await resolveProperties(RED, node, def, ctx.msg, sameNamed('volume'));
      const { volume } = checkOptions(z.object({ volume: text('the path of the disk image or block device to back up') }), values, from);
      const common = await commonBackupOptions(RED, node, def, ctx);
      return createBackup(ctx.repo, { ...common, volume, mode: 'full' });
    },
    summary: backupSummary,
  }));
};
