import type { Command } from '../command';
import { REPO_OPTIONS, REPO_USAGE, openRepo, printJson, required } from '../common';

export const cancelCommand: Command = {
  name: 'cancel',
  summary: 'stop a running backup, restore or delete, from any host',
  usage: `volume-backup cancel --repo R --backup ID [--json]
Writes a cancel request (host, user, time) into the backup's record. The process running the
operation, on whatever host, sees it at its next lease renewal (within a minute) and stops as for
Ctrl-C: a backup being created ends in error and its objects are removed, a restore stops (the backup
is available again), a delete stops. The record keeps who cancelled. Exit 1 when nothing is running.
${REPO_USAGE}`,
  options: { ...REPO_OPTIONS, backup: { type: 'string' } },
  async run(values, ctx) {
    const { requestCancel } = await import('../../engine/cancel');
    const backupId = required(values, 'backup');
    const repo = await openRepo(values, ctx);
    try {
      const record = await requestCancel(repo, backupId, { source: 'cli' });
      if (values.json) return printJson(ctx, record);
      const owner = record.owner ? `${record.owner.operation} by process ${record.owner.pid} on host ${record.owner.host}` : record.status;
      ctx.stdout.write(`cancel of backup ${backupId} requested (${owner}): it stops at its next lease renewal, within a minute\n`);
    } finally {
      await repo.close();
    }
  },
};
