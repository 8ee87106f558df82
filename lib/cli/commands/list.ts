import type { BackupRecord } from '../../repository/records';
import type { Command, CommandContext } from '../command';
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
      await warnStopped(records, repo.host, ctx);
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

/** A backup left creating, restoring or deleting by a process that is gone looks busy forever: say what to do. */
async function warnStopped(records: BackupRecord[], host: string, ctx: CommandContext): Promise<void> {
  // Loaded on use, as the catalog is: --help loads no repository code (nor zod).
  const [{ stillRunning }, { isTransient }] = await Promise.all([import('../../repository/owner'), import('../../repository/records')]);
  const now = new Date();
  for (const r of records) {
    // Records of older versions name no owner: the start-up cleanup judges those by the volume's lease.
    if (!r.owner || !isTransient(r.status) || stillRunning(r, host, now)) continue;
    ctx.stderr.write(`warning: backup ${r.id} is ${r.status}, but process ${r.owner.pid} of host ${r.owner.host} that was ${r.status} it is gone: run volume-backup cleanup to end that\n`);
  }
}
