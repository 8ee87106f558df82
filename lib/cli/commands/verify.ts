import type { VerifyProblem, VerifyResult } from '../../engine/verify';
import { invalid } from '../../errors';
import type { Command, CommandContext, Values } from '../command';
import { cinderVerify, isCinderRepo } from '../cinder';
import { PROGRESS_OPTIONS, REPO_OPTIONS, REPO_USAGE, formatBytes, openRepo, printJson, progressReporter, str } from '../common';

export const verify: Command = {
  name: 'verify',
  summary: 'check the whole repository (or one backup); exits 1 when anything is wrong',
  usage: `volume-backup verify --repo R [--backup ID] [--read-data] [--json]
       volume-backup verify --repo R --volume PATH [--backup ID | --volume-id ID] [--json]
  --volume PATH          compare this volume (or a snapshot of it) block by block with a backup (default:
                         the volume's newest), e.g. to check that changed-extent incrementals missed nothing
  --backup ID            only this backup and the chain it needs (default: every backup, plus orphans)
  --read-data            also read every object: digests and every block's SHA-256 (slower)
  --progress MODE        bar, json or none, per backup read (with --read-data)
Checks that every record is well-formed, every chain complete, every object the metadata lists is
there with its size; reports objects no record owns and operations whose owner stopped.
Exit code: 0 when everything is fine, 1 when any problem was found.
${REPO_USAGE}`,
  options: { ...REPO_OPTIONS, ...PROGRESS_OPTIONS, backup: { type: 'string' }, 'read-data': { type: 'boolean' }, volume: { type: 'string' }, 'volume-id': { type: 'string' } },
  async run(values, ctx) {
    if (str(values, 'volume') !== undefined) {
      if (values['read-data']) throw invalid('--read-data checks the repository; --volume compares a volume with a backup: give one of them');
      return (await import('./verify-volume')).verifyVolumeCommand(values, ctx);
    }
    if (str(values, 'volume-id') !== undefined) throw invalid('--volume-id goes with --volume PATH');
    const { verifyRepository } = await import('../../engine/verify');
    const { isMissingConfigError } = await import('../../repository/missing-config');
    if (isCinderRepo(values)) return cinderVerify(values, ctx, (result) => report(values, ctx, result));
    let repo;
    try {
      repo = await openRepo(values, ctx);
    } catch (err) {
      // A repository without its repository.json is a finding, the worst one: nothing in it can be opened.
      if (!isMissingConfigError(err)) throw err;
      const problem: VerifyProblem = { kind: 'missing-config', message: err.message, backupIds: [] };
      report(values, ctx, { ok: false, readData: !!values['read-data'], recordsChecked: 0, backupsVerified: 0, objectsChecked: 0, bytesVerified: 0, problems: [problem], notes: [], durationMs: 0 });
      return 1;
    }
    const progress = progressReporter(values, ctx);
    try {
      const result = await verifyRepository(repo, {
        backupId: str(values, 'backup'),
        readData: !!values['read-data'],
        signal: ctx.signal,
        onProgress: progress.listener,
        log: { info: (m) => ctx.stderr.write(`${m}\n`), warn: (m) => ctx.stderr.write(`warning: ${m}\n`) },
      });
      progress.stop();
      report(values, ctx, result);
      return result.ok ? 0 : 1;
    } finally {
      progress.stop();
      await repo.close();
    }
  },
};

function report(values: Values, ctx: CommandContext, result: VerifyResult): void {
  if (values.json) return printJson(ctx, result);
  for (const p of result.problems) ctx.stdout.write(`problem (${p.kind}): ${p.message}\n`);
  for (const n of result.notes) ctx.stdout.write(`note: ${n.message}\n`);
  const read = result.readData ? `, ${formatBytes(result.bytesVerified)} read and checked block by block` : '';
  ctx.stdout.write(
    `${result.recordsChecked} record(s), ${result.backupsVerified} backup(s) and ${result.objectsChecked} object(s) checked${read}: ` +
      `${result.ok ? 'no problems' : `${result.problems.length} problem(s)`}\n`,
  );
}
