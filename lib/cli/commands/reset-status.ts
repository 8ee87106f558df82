import { invalid } from '../../errors';
import type { Command } from '../command';
import { REPO_OPTIONS, REPO_USAGE, openRepo, printJson, required } from '../common';

export const resetStatusCommand: Command = {
  name: 'reset-status',
  summary: 'set a backup to error or available (for records of a host that is gone for good)',
  usage: `volume-backup reset-status --repo R --backup ID --status error|available [--force] [--json]
  --status error         mark it failed (prune or delete then removes it and its objects)
  --status available     only after checking its metadata, segments (or hash list) and every object's size
  --force                even though its owner's lease is still live (the owner is known to be gone)
Use this for a host that will not come back; a host that restarts cleans up its own records
("volume-backup cleanup" on that host).
${REPO_USAGE}`,
  options: { ...REPO_OPTIONS, backup: { type: 'string' }, status: { type: 'string' }, force: { type: 'boolean' } },
  async run(values, ctx) {
    const { resetStatus } = await import('../../engine/reset-status');
    const backupId = required(values, 'backup');
    const status = required(values, 'status');
    if (status !== 'error' && status !== 'available') throw invalid('--status must be error or available');
    const repo = await openRepo(values, ctx);
    try {
      const result = await resetStatus(repo, { backupId, status, force: !!values.force, signal: ctx.signal });
      if (values.json) return printJson(ctx, result);
      ctx.stdout.write(`backup ${backupId}: ${result.previousStatus} → ${result.record.status}${result.objectsChecked ? ` (${result.objectsChecked} objects checked)` : ''}\n`);
    } finally {
      await repo.close();
    }
  },
};
