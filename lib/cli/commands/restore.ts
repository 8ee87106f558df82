import { restoreBackup } from '../../engine/restore';
import { invalid } from '../../errors';
import type { Command } from '../command';
import { PROGRESS_OPTIONS, REPO_OPTIONS, REPO_USAGE, formatBytes, openRepo, printJson, progressReporter, required, str } from '../common';

export const restore: Command = {
  name: 'restore',
  summary: 'restore a backup into a file or block device, or verify it',
  usage: `volume-backup restore --repo R --backup ID (--target PATH | --verify-only) [--json]
  --target PATH          a new file (created sparse) or an existing file/block device at least as large
  --verify-only          read and check every object and block hash, write nothing
  --progress MODE        bar (default on a terminal), json or none
${REPO_USAGE}`,
  options: { ...REPO_OPTIONS, ...PROGRESS_OPTIONS, backup: { type: 'string' }, target: { type: 'string' }, 'verify-only': { type: 'boolean' } },
  async run(values, ctx) {
    const backupId = required(values, 'backup');
    const target = str(values, 'target');
    if (!target && !values['verify-only']) throw invalid('give --target PATH to restore into, or --verify-only');
    if (target && values['verify-only']) throw invalid('--target and --verify-only exclude each other');
    const repo = await openRepo(values, ctx);
    const progress = progressReporter(values, ctx);
    try {
      const result = await restoreBackup(repo, { backupId, target, verifyOnly: !!values['verify-only'], signal: ctx.signal, onProgress: progress.listener });
      progress.stop();
      if (values.json) printJson(ctx, result);
      else if (result.verifyOnly) ctx.stdout.write(`backup ${backupId} verified: ${result.blocksVerified} blocks of ${formatBytes(result.size)} match their SHA-256 (chain of ${result.chain.length})\n`);
      else ctx.stdout.write(`backup ${backupId} restored to ${result.target}: ${formatBytes(result.size)}, every block verified (chain of ${result.chain.length}), ${(result.durationMs / 1000).toFixed(1)} s\n`);
    } finally {
      progress.stop();
      await repo.close();
    }
  },
};
