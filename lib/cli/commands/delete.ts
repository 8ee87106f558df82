import type { Command } from '../command';
import { REPO_OPTIONS, REPO_USAGE, formatBytes, openRepo, printJson, required } from '../common';

export const del: Command = {
  name: 'delete',
  summary: 'delete a backup (refused while others depend on it, unless --cascade)',
  usage: `volume-backup delete --repo R --backup ID [--cascade] [--json]
  --cascade              also delete every backup that depends on this one, children first
${REPO_USAGE}`,
  options: { ...REPO_OPTIONS, backup: { type: 'string' }, cascade: { type: 'boolean' } },
  async run(values, ctx) {
    const { deleteBackup } = await import('../../engine/delete');
    const repo = await openRepo(values, ctx);
    try {
      const result = await deleteBackup(repo, { backupId: required(values, 'backup'), cascade: !!values.cascade, signal: ctx.signal });
      if (values.json) return printJson(ctx, result);
      for (const r of result.deleted) ctx.stdout.write(`deleted ${r.id} (${r.kind}, ${r.dataTimestamp})\n`);
      ctx.stdout.write(`${result.deleted.length} backup(s) deleted, ${formatBytes(result.bytesFreed)} freed\n`);
    } finally {
      await repo.close();
    }
  },
};
