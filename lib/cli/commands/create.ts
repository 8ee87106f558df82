import type { CreateBackupOptions } from '../../engine/types';
import type { ProviderChoice } from '../../snapshot';
import { invalid } from '../../errors';
import type { BackupRecord, ReadStats } from '../../repository/records';
import type { Command, CommandContext, Values } from '../command';
import { PROGRESS_OPTIONS, REPO_OPTIONS, REPO_USAGE, formatBytes, openRepo, parseBytes, printJson, progressReporter, str } from '../common';

export const create: Command = {
  name: 'create',
  summary: 'back up a volume (full, incremental or differential)',
  usage: `volume-backup create --repo R --volume PATH [--volume-id ID] [--name N] [--description D]
                     [--incremental | --differential] [--parent ID]
                     [--chunk-size BYTES] [--block-size BYTES] [--compression none|zlib|zstd] [--json]
                     [--snapshot PROVIDER [--snapshot-dir DIR] [--snapshot-size SIZE]
                      [--snapshot-create JSON --snapshot-delete JSON]
                      [--no-base-snapshot] [--full-read-every N]]
       volume-backup create --repo R --volume-id ID --from-snapshot PATH --snapshot-id ID --snapshot-time ISO8601 …
  --volume PATH          disk image or block device to back up
  --volume-id ID         default: derived from the volume path (stable)
  --snapshot PROVIDER    read the volume through a temporary snapshot, removed afterwards: auto, btrfs,
                         reflink, lvm, command or copy (copy is a full copy, not point-in-time)
  --snapshot-dir DIR     where btrfs/reflink/copy temporaries go (default: beside the volume)
  --snapshot-size SIZE   lvm: copy-on-write area, e.g. 2G or 10%ORIGIN (default)
  --snapshot-create JSON command: argv array, e.g. '["zfs-snap","{volume}","{name}"]'; prints the path
  --snapshot-delete JSON command: argv array with {path} {id} {volume} {name} {dir}
  --no-base-snapshot     btrfs/reflink: remove the snapshot afterwards instead of keeping it as the base
                         of the next incremental (which then reads only the changed extents)
  --full-read-every N    read everything after N changed-extent incrementals in a row (default 30; 0: never)
  --from-snapshot PATH   back up an existing snapshot (instead of --volume); needs --volume-id,
  --snapshot-id ID       the snapshot's id,
  --snapshot-time T      and its creation time (ISO 8601), which becomes the backup's data time
  --incremental          store only blocks changed since the newest available backup (or --parent)
  --differential         store only blocks changed since the newest full backup
  --chunk-size BYTES     object size, e.g. 8M (default 8 MiB); a multiple of the block size
  --block-size BYTES     hash block, e.g. 32K (default 32 KiB)
  --compression C        none, zlib or zstd (default: the repository's, see init; else zstd level 1)
  --progress MODE        bar (default on a terminal), json (JSON lines on stderr) or none
  --lock-wait SECONDS    wait this long while another backup of the volume runs (default 0: fail, BUSY)
${REPO_USAGE}`,
  options: {
    ...REPO_OPTIONS,
    ...PROGRESS_OPTIONS,
    volume: { type: 'string' },
    'volume-id': { type: 'string' },
    name: { type: 'string' },
    description: { type: 'string' },
    incremental: { type: 'boolean' },
    differential: { type: 'boolean' },
    parent: { type: 'string' },
    'chunk-size': { type: 'string' },
    'block-size': { type: 'string' },
    compression: { type: 'string' },
    'compression-level': { type: 'string' },
    'lock-wait': { type: 'string' },
    snapshot: { type: 'string' },
    'snapshot-dir': { type: 'string' },
    'snapshot-size': { type: 'string' },
    'snapshot-create': { type: 'string' },
    'snapshot-delete': { type: 'string' },
    'no-base-snapshot': { type: 'boolean' },
    'full-read-every': { type: 'string' },
    'from-snapshot': { type: 'string' },
    'snapshot-id': { type: 'string' },
    'snapshot-time': { type: 'string' },
  },
  async run(values, ctx) {
    const volume = str(values, 'volume');
    const fromSnapshot = str(values, 'from-snapshot');
    if (!volume && !fromSnapshot) throw invalid('--volume is required: the path of the disk image or block device to back up');
    if (volume && fromSnapshot) throw invalid('--from-snapshot takes the place of --volume: give one of them');
    const provider = str(values, 'snapshot');
    // The engine and the snapshot providers load here, not when the CLI starts (--help, list, …).
    const { createBackup } = await import('../../engine/backup');
    const snapshots = provider !== undefined || fromSnapshot ? await import('../../snapshot') : null;
    if (provider !== undefined && !snapshots!.ProviderChoice.safeParse(provider).success) throw invalid(`--snapshot must be one of ${snapshots!.ProviderChoice.options.join(', ')}`);
    if (fromSnapshot && (provider || !str(values, 'snapshot-id') || !str(values, 'snapshot-time') || !str(values, 'volume-id'))) {
      throw invalid('--from-snapshot PATH needs --volume-id ID, --snapshot-id ID and --snapshot-time ISO8601 (and no --snapshot)');
    }
    if (values.incremental && values.differential) throw invalid('choose one of --incremental and --differential');
    const mode = values.incremental ? 'incremental' : values.differential ? 'differential' : str(values, 'parent') ? 'incremental' : 'full';
    const level = str(values, 'compression-level');
    if (level !== undefined && !/^-?\d+$/.test(level)) throw invalid('--compression-level must be a whole number');
    const fullReadEvery = checkBaseOptions(values, !!provider && !fromSnapshot);
    const lockWait = str(values, 'lock-wait');
    if (lockWait !== undefined && !/^\d+(\.\d+)?$/.test(lockWait)) throw invalid('--lock-wait must be a number of seconds');
    // The worker threads start while the repository opens (an object store's probe takes ~0.1 s), not after.
    (await import('../../engine/hash-pool')).warmHashPool();
    const repo = await openRepo(values, ctx, true);
    const progress = progressReporter(values, ctx);
    try {
      const common = backupOptions(values, ctx, { mode, level, lockWait }, progress.listener);
      const log = { info: (m: string) => ctx.stderr.write(`${m}\n`), warn: (m: string) => ctx.stderr.write(`warning: ${m}\n`) };
      if (provider && !fromSnapshot) {
        // Leftovers of dead runs, and base snapshots whose backup is gone.
        const { baseInUse } = await import('../../engine/base-snapshot');
        await snapshots!.cleanupTemporarySnapshots({ host: repo.host, log, baseInUse: baseInUse(repo) });
      }
      const createSnapshotBackup = snapshots ? (await import('../../engine/snapshot-backup')).createSnapshotBackup : null;
      const record = fromSnapshot
        ? await createSnapshotBackup!(repo, {
            ...common,
            snapshot: { path: fromSnapshot, id: str(values, 'snapshot-id') as string, createdAt: str(values, 'snapshot-time') as string },
          })
        : provider
          ? await createSnapshotBackup!(repo, {
              ...common,
              volume,
              log,
              keepBase: !values['no-base-snapshot'],
              fullReadEvery,
              temporarySnapshot: temporarySnapshotOptions(values, provider as ProviderChoice),
            })
          : // Its warnings (a killed earlier backup cleaned up, leftovers it could not remove), not its info lines.
            await createBackup(repo, { ...common, volume: volume as string, log: { info: () => undefined, warn: log.warn } });
      progress.stop();
      if (values.json) printJson(ctx, record);
      else printCreated(ctx, record);
    } finally {
      progress.stop();
      await repo.close();
    }
  },
};

/** The engine's options common to every kind of backup, from the command line (already checked). */
function backupOptions(
  values: Values,
  ctx: CommandContext,
  checked: { mode: CreateBackupOptions['mode']; level: string | undefined; lockWait: string | undefined },
  onProgress: CreateBackupOptions['onProgress'],
): Omit<CreateBackupOptions, 'volume' | 'snapshot' | 'sourcePath'> {
  const { mode, level, lockWait } = checked;
  return {
    volumeId: str(values, 'volume-id'),
    name: str(values, 'name'),
    description: str(values, 'description'),
    mode,
    parentId: str(values, 'parent'),
    chunkSize: parseBytes('chunk-size', str(values, 'chunk-size')),
    blockSize: parseBytes('block-size', str(values, 'block-size')),
    compression: str(values, 'compression') as 'none' | 'zlib' | 'zstd' | undefined,
    compressionLevel: level === undefined ? undefined : Number(level),
    signal: ctx.signal,
    onProgress,
    lockWaitMs: lockWait === undefined ? undefined : Number(lockWait) * 1000,
    onLockWait: (h) =>
      ctx.stderr.write(`waiting for the volume: host ${h.host} (pid ${h.pid}) is running ${h.operation} since ${h.acquiredAt}\n`),
  };
}

/** The one-line summary of a new backup (without --json). */
function printCreated(ctx: CommandContext, record: BackupRecord): void {
  ctx.stdout.write(
    // Through a temporary, the next line says what was read (a changed-extent incremental reads little of the volume).
    `backup ${record.id} of volume ${record.volumeId} is ${record.status}: ${record.kind}, ${formatBytes(record.size)} ${record.readStats ? 'volume' : 'read'}, ` +
      `${formatBytes(record.storedBytes)} stored in ${record.objectCount} objects${record.parentId ? `, parent ${record.parentId}` : ''}\n`,
  );
  if (record.readStats) ctx.stdout.write(`${describeRead(record.readStats)}\n`);
  if (record.baseSnapshot) ctx.stdout.write(`kept ${record.baseSnapshot.removes} as the base snapshot of the next incremental\n`);
}

/** How the volume was read, for people: "read 21 MiB of 2 GiB (changed extents)" or why everything was read. */
function describeRead(stats: ReadStats): string {
  if (stats.method === 'changed-extents') return `read ${formatBytes(stats.bytesRead)} (changed extents since the base snapshot)`;
  return `read ${formatBytes(stats.bytesRead)} (full read${stats.reason ? `: ${stats.reason}` : ''})`;
}

/** --no-base-snapshot and --full-read-every (returned as a number): only with a temporary snapshot. */
function checkBaseOptions(values: Values, temporarySnapshot: boolean): number | undefined {
  const fullReadEvery = str(values, 'full-read-every');
  if (fullReadEvery !== undefined && !/^\d+$/.test(fullReadEvery)) throw invalid('--full-read-every must be a whole number of backups (0: never)');
  if ((values['no-base-snapshot'] || fullReadEvery !== undefined) && !temporarySnapshot) {
    throw invalid('--no-base-snapshot and --full-read-every apply to backups through a temporary snapshot (--snapshot PROVIDER)');
  }
  return fullReadEvery === undefined ? undefined : Number(fullReadEvery);
}

/** The temporary snapshot's settings from the command line. */
function temporarySnapshotOptions(values: Values, provider: ProviderChoice) {
  return {
    provider,
    snapshotDir: str(values, 'snapshot-dir'),
    lvmSize: str(values, 'snapshot-size'),
    createCommand: argvOption(values, 'snapshot-create'),
    deleteCommand: argvOption(values, 'snapshot-delete'),
  };
}

/** A command given as a JSON array of arguments (no shell, so no quoting rules to get wrong). */
function argvOption(values: Values, key: string): string[] | undefined {
  const text = str(values, key);
  if (text === undefined) return undefined;
  let argv: unknown;
  try {
    argv = JSON.parse(text);
  } catch {
    throw invalid(`--${key} must be a JSON array of strings, e.g. '["/usr/local/bin/snap","{volume}"]'`);
  }
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) throw invalid(`--${key} must be a JSON array of strings`);
  return argv;
}
