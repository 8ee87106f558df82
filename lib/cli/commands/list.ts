import type { Command } from '../command';
import { cinderList, isCinderRepo } from '../cinder';
import { REPO_OPTIONS, REPO_USAGE, describeRecordLine, openRepo, printJson, str } from '../common';

export const list: Command = {
  name: 'list',
  summary: 'list the backups in a repository',
  usage: `volume-backup list --repo R [--volume-id ID] [--json]
${REPO_USAGE}`,
  options: { ...REPO_OPTIONS, 'volume-id': { type: 'string' } },
  async run(values, ctx) {
    if (isCinderRepo(values)) return cinderList(values, ctx);
    const { listBackups } = await import('../../repository/catalog');
    const repo = await openRepo(values, ctx);
    try {
      // A record that is not valid (damaged, or with control characters) is not listed: say so.
      const records = await listBackups(repo, { volumeId: str(values, 'volume-id') }, (name, reason) =>
        ctx.stderr.write(`warning: ${name} is not a valid record and is not listed: ${reason} (volume-backup verify reports it)\n`),
      );
      if (values.json) return printJson(ctx, records);
      ctx.stdout.write('ID                                    VOLUME  KIND          STATUS     DATA TIMESTAMP            SIZE      STORED  PARENT  NAME\n');
      for (const r of records) {
        ctx.stdout.write(describeRecordLine(r) + '\n');
        // A kept base snapshot holds disk space on its host: say where it is.
        if (r.baseSnapshot) ctx.stdout.write(`  base snapshot (${r.baseSnapshot.provider}) on ${r.baseSnapshot.host}: ${r.baseSnapshot.removes}\n`);
      }
    } finally {
      await repo.close();
    }
  },
};
