import { invalid } from '../../errors';
import type { Command, CommandContext, Values } from '../command';
import { REPO_OPTIONS, REPO_USAGE, loadBackends, openRepo, parseBytes, printJson, required, str } from '../common';

export const exportCommand: Command = {
  name: 'export',
  summary: "print a backup's record for import into another repository, or write it for Cinder",
  usage: `volume-backup export --repo R --backup ID          (record on stdout)
volume-backup export --repo R --backup ID --format cinder --to DIR [--chain] [--compression C]
  --format cinder        write the backup in Cinder's posix layout under DIR (Cinder's backup_posix_path,
                         or a directory to copy there) and print, per backup, the backup_url that
                         \`cinder backup-import cinder.backup.drivers.posix.PosixBackupDriver URL\` takes
  --to DIR               where the layout goes (<id[0:2]>/<id[2:4]>/<id>/ per backup)
  --chain                the backup's chain as Cinder incrementals (import them in the order printed);
                         default: one full Cinder backup with the whole image
  --compression C        zlib (default, Cinder's), zstd or none
  --chunk-size BYTES     Cinder object size (default: the backup's chunk size)
  --work-dir D           where the work image is restored (default: the temporary directory)
${REPO_USAGE}`,
  options: { ...REPO_OPTIONS, backup: { type: 'string' }, format: { type: 'string' }, to: { type: 'string' }, chain: { type: 'boolean' }, compression: { type: 'string' }, 'chunk-size': { type: 'string' }, 'work-dir': { type: 'string' } },
  async run(values, ctx) {
    const format = str(values, 'format');
    if (format !== undefined && format !== 'cinder') throw invalid('--format takes cinder (without --format: the record for another repository)');
    if (format === 'cinder') return exportForCinder(values, ctx);
    for (const k of ['to', 'chain', 'compression', 'chunk-size', 'work-dir']) if (values[k] !== undefined) throw invalid(`--${k} goes with --format cinder`);
    const { exportRecord } = await import('../../repository/transfer');
    const repo = await openRepo(values, ctx);
    try {
      ctx.stdout.write((await exportRecord(repo, required(values, 'backup'))) + '\n');
    } finally {
      await repo.close();
    }
  },
};

async function exportForCinder(values: Values, ctx: CommandContext): Promise<void> {
  const backupId = required(values, 'backup');
  const to = required(values, 'to');
  const compression = str(values, 'compression') ?? 'zlib';
  if (!['zlib', 'zstd', 'none'].includes(compression)) throw invalid('--compression must be zlib, zstd or none for Cinder');
  const chunkSize = parseBytes('chunk-size', str(values, 'chunk-size'));
  const { exportToCinder } = await import('../../cinder/export');
  const repo = await openRepo(values, ctx);
  try {
    const exported = await exportToCinder(repo, { backupId, to, chain: !!values.chain, compression: compression as 'zlib' | 'zstd' | 'none', chunkSize, workDir: str(values, 'work-dir'), signal: ctx.signal });
    if (values.json) return printJson(ctx, exported);
    ctx.stderr.write(`wrote ${exported.length} Cinder backup(s) under ${to}; import them into Cinder in this order:\n`);
    for (const e of exported) ctx.stdout.write(`cinder backup-import ${e.backupService} ${e.backupUrl}\n`);
  } finally {
    await repo.close();
  }
}

export const importCommand: Command = {
  name: 'import',
  summary: 'adopt an exported record whose objects were copied into this repository, or import Cinder backups',
  usage: `volume-backup import --repo R                      (record on stdin)
volume-backup import --repo R --from cinder:… (--backup ID | --volume-id V) [--compression C] [--work-dir D]
  --from STORE           a Cinder store: cinder:PATH, cinder+s3://bucket[/prefix]?…, cinder+gs://… (or
                         cinder+ and the URL of another object-store backend)
  --backup ID            import this Cinder backup and its chain (ids, names, descriptions, times and
                         parent links kept; backups already in the repository are kept as they are)
  --volume-id V          import every backup of this volume
  --compression C        none, zlib or zstd for the imported objects (default: the repository's default)
  --work-dir D           where the sparse work image is made (default: the temporary directory)
${REPO_USAGE}`,
  options: { ...REPO_OPTIONS, from: { type: 'string' }, backup: { type: 'string' }, 'volume-id': { type: 'string' }, compression: { type: 'string' }, 'work-dir': { type: 'string' } },
  async run(values, ctx) {
    if (str(values, 'from') !== undefined) return importFromCinder(values, ctx);
    for (const k of ['backup', 'volume-id', 'compression', 'work-dir']) if (values[k] !== undefined) throw invalid(`--${k} goes with --from cinder:…`);
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

async function importFromCinder(values: Values, ctx: CommandContext): Promise<void> {
  const from = required(values, 'from');
  const { isCinderUrl, openCinder } = await import('../../open');
  if (!isCinderUrl(from)) throw invalid('--from takes a Cinder store: cinder:PATH, or cinder+ and the URL of an object-store backend (cinder+s3://bucket[/prefix]?…, cinder+gs://…)');
  const compression = str(values, 'compression');
  if (compression !== undefined && !['none', 'zlib', 'zstd'].includes(compression)) throw invalid('--compression must be none, zlib or zstd');
  if ((str(values, 'backup') === undefined) === (str(values, 'volume-id') === undefined)) throw invalid('give --backup ID (that backup and its chain) or --volume-id V (every backup of the volume)');
  const { importCinderBackups } = await import('../../cinder/import');
  const log = { info: (m: string) => ctx.stderr.write(`${m}\n`), warn: (m: string) => ctx.stderr.write(`warning: ${m}\n`) };
  await loadBackends(values, ctx);
  const store = await openCinder(from, { log });
  try {
    const repo = await openRepo(values, ctx, true);
    try {
      const result = await importCinderBackups(store, repo, {
        backupId: str(values, 'backup'),
        volumeId: str(values, 'volume-id'),
        compression: compression as 'none' | 'zlib' | 'zstd' | undefined,
        workDir: str(values, 'work-dir'),
        signal: ctx.signal,
        log,
      });
      if (values.json) return printJson(ctx, { imported: result.imported, skipped: result.skipped });
      ctx.stdout.write(`imported ${result.imported.length} Cinder backup(s)${result.skipped.length ? `, ${result.skipped.length} already in the repository kept as they are` : ''}: ${result.imported.map((r) => r.id).join(', ') || '-'}\n`);
    } finally {
      await repo.close();
    }
  } finally {
    await store.close();
  }
}
