import type { Command } from '../command';
import { cinderShow, isCinderRepo } from '../cinder';
import { describeValue } from '../../text';
import { REPO_OPTIONS, REPO_USAGE, openRepo, printJson, required } from '../common';

export const show: Command = {
  name: 'show',
  summary: "show one backup's record",
  usage: `volume-backup show --repo R --backup ID [--json]
${REPO_USAGE}`,
  options: { ...REPO_OPTIONS, backup: { type: 'string' } },
  async run(values, ctx) {
    if (isCinderRepo(values)) return cinderShow(values, ctx);
    const { getBackup } = await import('../../repository/catalog');
    const repo = await openRepo(values, ctx);
    try {
      const record = await getBackup(repo, required(values, 'backup'));
      if (values.json) return printJson(ctx, record);
      for (const [k, v] of Object.entries(record)) ctx.stdout.write(`${k.padEnd(16)} ${v === null ? '-' : describeValue(v)}\n`);
    } finally {
      await repo.close();
    }
  },
};
