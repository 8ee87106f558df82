import type { Command } from '../command';
import { REPO_OPTIONS, REPO_USAGE, openRepo, printJson, required } from '../common';

export const exportCommand: Command = {
  name: 'export',
  summary: "print a backup's record for import into another repository",
  usage: `volume-backup export --repo R --backup ID          (record on stdout)
${REPO_USAGE}`,
  options: { ...REPO_OPTIONS, backup: { type: 'string' } },
  async run(values, ctx) {
    const { exportRecord } = await import('../../repository/transfer');
    const repo = await openRepo(values, ctx);
    try {
      ctx.stdout.write((await exportRecord(repo, required(values, 'backup'))) + '\n');
    } finally {
      await repo.close();
    }
  },
};

export const importCommand: Command = {
  name: 'import',
  summary: 'adopt an exported record whose objects were copied into this repository',
  usage: `volume-backup import --repo R                      (record on stdin)
${REPO_USAGE}`,
  options: { ...REPO_OPTIONS },
  async run(values, ctx) {
    const { importRecord } = await import('../../repository/transfer');
    const text = await ctx.readStdin();
    const repo = await openRepo(values, ctx, true);
    try {
      const record = await importRecord(repo, text);
      if (values.json) printJson(ctx, record);
      else ctx.stdout.write(`imported backup ${record.id} of volume ${record.volumeId}\n`);
    } finally {
      await repo.close();
    }
  },
};
