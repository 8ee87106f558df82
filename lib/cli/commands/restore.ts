import { invalid } from '../../errors';
import type { Command } from '../command';
import { cinderRestore, isCinderRepo } from '../cinder';
import { PROGRESS_OPTIONS, REPO_OPTIONS, REPO_USAGE, formatBytes, openRepo, printJson, progressReporter, required, str } from '../common';

export const restore: Command = {
  name: 'restore',
  summary: 'restore a backup into a file or block device, or verify it',
  usage: `volume-backup restore --repo R --backup ID (--target PATH [--overwrite] [--base ID [--trust-base]] | --verify-only) [--json]
  --target PATH          a new file (created sparse), an existing file (overwritten and cut to the
                         backup's size) or a block device at least as large (the rest is left as it is);
                         never a path inside a repository
  --overwrite            allow writing over an existing file or a block device (refused without it)
  --verify-only          read and check every object and block hash, write nothing
  --base ID              the target already holds backup ID's bytes (say, last drill's restore): write
                         only the blocks that differ between ID and --backup; a sample of the target's
                         blocks is checked against ID's hashes first (naming the target's content this
                         way allows writing over it: no --overwrite needed)
  --trust-base           with --base: skip that check (blocks the target holds wrongly stay wrong)
  --progress MODE        bar (default on a terminal), json or none
${REPO_USAGE}`,
  options: { ...REPO_OPTIONS, ...PROGRESS_OPTIONS, backup: { type: 'string' }, target: { type: 'string' }, 'verify-only': { type: 'boolean' }, overwrite: { type: 'boolean' }, base: { type: 'string' }, 'trust-base': { type: 'boolean' } },
  async run(values, ctx) {
    const { restoreBackup } = await import('../../engine/restore');
    const backupId = required(values, 'backup');
    const target = str(values, 'target');
    if (!target && !values['verify-only']) throw invalid('give --target PATH to restore into, or --verify-only');
    if (target && values['verify-only']) throw invalid('--target and --verify-only exclude each other');
    const baseId = str(values, 'base');
    if (baseId && !target) throw invalid('--base needs --target: the target that holds the base backup\'s bytes');
    if (values['trust-base'] && !baseId) throw invalid('--trust-base goes with --base ID');
    if (isCinderRepo(values)) {
      if (baseId) throw invalid('--base works with this project\'s repositories, not with a Cinder store');
      return cinderRestore(values, ctx);
    }
    const repo = await openRepo(values, ctx);
    const progress = progressReporter(values, ctx);
    try {
      const result = await restoreBackup(repo, { backupId, target, verifyOnly: !!values['verify-only'], overwrite: !!values.overwrite, baseId, trustBase: !!values['trust-base'], signal: ctx.signal, onProgress: progress.listener, log: { info: (m) => ctx.stderr.write(`${m}\n`), warn: (m) => ctx.stderr.write(`warning: ${m}\n`) } });
      progress.stop();
      if (values.json) printJson(ctx, result);
      else if (result.verifyOnly) ctx.stdout.write(`backup ${backupId} verified: ${result.blocksVerified} blocks of ${formatBytes(result.size)} match their SHA-256 (chain of ${result.chain.length})\n`);
      else {
        // Says what was checked: each block against its hash before it was written (the target is not read back).
        const pastEnd = result.bytesLeftPastEnd > 0 ? `; the device's last ${formatBytes(result.bytesLeftPastEnd)}, past the backup's end, were left as they were` : '';
        // A base restore writes (and checks) only the blocks that differ from the base: say so, not "each block".
        const what = result.base
          ? ` on base ${result.base.backupId}: ${formatBytes(result.size)}, ${formatBytes(result.bytesWritten)} written, each checked against its SHA-256 before it was written, ${formatBytes(result.base.bytesUnchanged)} left as the base had them (${result.base.blocksSampled ? `${result.base.blocksSampled} target blocks checked against the base first` : 'the base trusted'})`
          : `: ${formatBytes(result.size)}, each block checked against its SHA-256 before it was written`;
        ctx.stdout.write(`backup ${backupId} restored to ${result.target}${what} (chain of ${result.chain.length}), ${(result.durationMs / 1000).toFixed(1)} s${pastEnd}\n`);
      }
    } finally {
      progress.stop();
      await repo.close();
    }
  },
};
