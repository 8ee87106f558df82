import { VolumeBackupError } from '../../errors';
import type { PruneReport, VolumePruneReport } from '../../engine/prune';
import { durationMsBefore, parseDuration } from '../../repository/durations';
import type { Command, Values } from '../command';
import { PROGRESS_OPTIONS, REPO_OPTIONS, REPO_USAGE, formatBytes, openRepo, printJson, progressReporter, str } from '../common';

/** CLI option → policy key. */
const RULES: Record<string, string> = {
  'keep-last': 'keepLast',
  'keep-hourly': 'keepHourly',
  'keep-daily': 'keepDaily',
  'keep-weekly': 'keepWeekly',
  'keep-monthly': 'keepMonthly',
  'keep-yearly': 'keepYearly',
  'keep-within': 'keepWithin',
  'keep-within-hourly': 'keepWithinHourly',
  'keep-within-daily': 'keepWithinDaily',
  'keep-within-weekly': 'keepWithinWeekly',
  'keep-within-monthly': 'keepWithinMonthly',
  'keep-within-yearly': 'keepWithinYearly',
  'keep-failed-for': 'keepFailedFor',
};

export const prune: Command = {
  name: 'prune',
  summary: 'delete the backups a retention policy no longer keeps (never one another backup needs)',
  usage: `volume-backup prune --repo R [--volume-id ID] [--keep-last N] [--keep-hourly N] [--keep-daily N]
                    [--keep-weekly N] [--keep-monthly N] [--keep-yearly N] [--keep-within 30d]
                    [--keep-failed-for 7d] [--dry-run] [--json]
  Rules as restic's forget, per volume, by the backups' data timestamps; a backup is kept if any rule
  keeps it, and a kept backup keeps every backup it depends on. N may be "unlimited".
  --volume-id ID         only this volume (default: every volume in the repository)
  --keep-last N          the N newest backups
  --keep-hourly N        the newest backup of each of the N newest hours that have backups
  --keep-daily N         … days;  --keep-weekly N … ISO weeks;  --keep-monthly N … months;  --keep-yearly N … years
  --keep-within D        every backup within D (e.g. 30d, 1y2m3d4h) of the newest backup
  --keep-within-daily D  the newest backup of each day within D of the newest (also -hourly, -weekly, -monthly, -yearly)
  --keep-failed-for D    keep failed backups this long after they failed (default: delete them)
  --time-zone TZ         the calendar of the hour/day/week rules (default: this machine's, e.g. Europe/Berlin or UTC)
  --orphan-grace D       delete objects no backup references once seen so for D (default 24h; 0h: at once)
  --dry-run              show what would be kept (and why) and deleted; change nothing
  --progress MODE        json: one JSON line per deleted backup on stderr; none (default)
${REPO_USAGE}`,
  options: {
    ...REPO_OPTIONS,
    ...PROGRESS_OPTIONS,
    'volume-id': { type: 'string' },
    ...Object.fromEntries(Object.keys(RULES).map((k) => [k, { type: 'string' as const }])),
    'time-zone': { type: 'string' },
    'orphan-grace': { type: 'string' },
    'dry-run': { type: 'boolean' },
  },
  async run(values, ctx) {
    const { pruneRepository } = await import('../../engine/prune');
    const policy = policyFrom(values);
    const grace = str(values, 'orphan-grace');
    const orphanGracePeriodMs = grace === undefined ? undefined : durationMsBefore(new Date(), parseDuration(grace, '--orphan-grace'));
    const repo = await openRepo(values, ctx);
    const progress = progressReporter({ progress: 'none', ...values }, ctx);
    const show = (report: PruneReport) => {
      progress.stop();
      if (values.json) printJson(ctx, report);
      else ctx.stdout.write(formatReport(report));
      for (const problem of report.problems) ctx.stderr.write(`warning: ${problem}\n`);
    };
    try {
      show(await pruneRepository(repo, {
        policy,
        volumeId: str(values, 'volume-id'),
        dryRun: !!values['dry-run'],
        orphanGracePeriodMs,
        signal: ctx.signal,
        onProgress: progress.listener,
        log: { info: () => undefined, warn: () => undefined },
      }));
    } catch (err) {
      // A prune that did its work but found damage (a parent loop) still shows what it did, then fails.
      const done = err instanceof VolumeBackupError ? (err.details?.report as PruneReport | undefined) : undefined;
      if (done) show(done);
      throw err;
    } finally {
      progress.stop();
      await repo.close();
    }
  },
};

function policyFrom(values: Values): Record<string, string> {
  const policy: Record<string, string> = {};
  for (const [option, key] of Object.entries(RULES)) {
    const v = str(values, option);
    if (v !== undefined) policy[key] = v;
  }
  policy.timeZone = str(values, 'time-zone') ?? Intl.DateTimeFormat().resolvedOptions().timeZone ?? 'UTC';
  return policy;
}

function formatReport(report: PruneReport): string {
  const lines = [`${report.dryRun ? 'dry run: ' : ''}${report.policy}`];
  for (const v of report.volumes) lines.push(...formatVolume(v, report.dryRun));
  const verb = report.dryRun ? 'would delete' : 'deleted';
  lines.push(
    `${verb} ${report.backupsDeleted} backup(s) and ${report.orphansDeleted} unreferenced object(s), ` +
      `${formatBytes(report.bytesFreed)} ${report.dryRun ? 'would be ' : ''}freed`,
  );
  return lines.join('\n') + '\n';
}

function formatVolume(v: VolumePruneReport, dryRun: boolean): string[] {
  const row = (action: string, r: { id: string; kind: string; dataTimestamp: string }, why: string) =>
    `  ${action.padEnd(12)} ${r.id}  ${r.kind.padEnd(12)} ${r.dataTimestamp}  ${why}`;
  const lines = [`volume ${v.volumeId}: keep ${v.kept.length}, ${dryRun ? 'would delete' : 'deleted'} ${v.deleted.length}, ${formatBytes(v.bytesFreed)}`];
  for (const k of v.kept) lines.push(row('keep', k, k.reasons.join('; ')));
  for (const d of v.deleted) lines.push(row(dryRun ? 'would delete' : 'deleted', d, `${d.reason} (${formatBytes(d.bytesFreed)})`));
  for (const o of v.orphans) lines.push(`  ${'unreferenced'.padEnd(12)} ${o.name}  ${formatBytes(o.size)}  ${o.action}`);
  return lines;
}
