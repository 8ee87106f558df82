import { invalid } from '../../errors';
import type { Command } from '../command';
import { cinderRestore, isCinderRepo } from '../cinder';
import { PROGRESS_OPTIONS, REPO_OPTIONS, REPO_USAGE, formatBytes, openRepo, printJson, progressReporter, required, str } from '../common';

export const restore: Command = {
  name: 'restore',
  summary: 'restore a backup into a file or block device, or verify it',
  usage: `volume-backup restore --repo R --backup ID (--target PATH [--overwrite] | --verify-only) [--json]
  --target PATH          a new file (created sparse), an existing file (overwritten and cut to the
                         backup's size) or a block device at least as large (the rest is left as it is);
                         never a path inside a repository
  --overwrite            allow writing over an existing file or a block device (refused without it)
  --verify-only          read and check every object and block hash, write nothing
  --progress MODE        bar (default on a terminal), json or none
${REPO_USAGE}`,
  options: { ...REPO_OPTIONS, ...PROGRESS_OPTIONS, backup: { type: 'string' }, target: { type: 'string' }, 'verify-only': { type: 'boolean' }, overwrite: { type: 'boolean' } },
  async run(values, ctx) {
    const { restoreBackup } = await import('../../engine/restore');
    const backupId = required(values, 'backup');
    const target = str(values, 'target');
    if (!target && !values['verify-only']) throw invalid('give --target PATH to restore into, or --verify-only');
    if (target && values['verify-only']) throw invalid('--target and --verify-only exclude each other');
    if (isCinderRepo(values)) return cinderRestore(values, ctx);
    const repo = await openRepo(values, ctx);
    const progress = progressReporter(values, ctx);
    try {
      const result = await restoreBackup(repo, { backupId, target, verifyOnly: !!values['verify-only'], overwrite: !!values.overwrite, signal: ctx.signal, onProgress: progress.listener });
      progress.stop();
      if (values.json) printJson(ctx, result);
      else if (result.verifyOnly) ctx.stdout.write(`backup ${backupId} verified: ${result.blocksVerified} blocks of ${formatBytes(result.size)} match their SHA-256 (chain of ${result.chain.length})\n`);
      else {
        // Says what was checked: each block against its hash before it was written (the target is not read back).
        const pastEnd = result.bytesLeftPastEnd > 0 ? `; the device's last ${formatBytes(result.bytesLeftPastEnd)}, past the backup's end, were left as they were` : '';
        ctx.stdout.write(`backup ${backupId} restored to ${result.target}: ${formatBytes(result.size)}, each block checked against its SHA-256 before it was written (chain of ${result.chain.length}), ${(result.durationMs / 1000).toFixed(1)} s${pastEnd}\n`);
      }
    } finally {
      progress.stop();
      await repo.close();
    }
  },
};
