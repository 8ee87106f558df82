import { createBackup } from '../../engine/backup';
import { invalid } from '../../errors';
import type { Command } from '../command';
import { PROGRESS_OPTIONS, REPO_OPTIONS, REPO_USAGE, formatBytes, openRepo, parseBytes, printJson, progressReporter, str } from '../common';

export const create: Command = {
  name: 'create',
  summary: 'back up a volume (full, incremental or differential)',
  usage: `volume-backup create --repo R --volume PATH [--volume-id ID] [--name N] [--description D]
                     [--incremental | --differential] [--parent ID]
                     [--chunk-size BYTES] [--block-size BYTES] [--compression none|zlib|zstd] [--json]
  --volume PATH          disk image or block device to back up
  --volume-id ID         default: derived from the volume path (stable)
  --incremental          store only blocks changed since the newest available backup (or --parent)
  --differential         store only blocks changed since the newest full backup
  --chunk-size BYTES     object size, e.g. 8M (default 8 MiB); a multiple of the block size
  --block-size BYTES     hash block, e.g. 32K (default 32 KiB)
  --compression C        none, zlib or zstd (default zstd)
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
  },
  async run(values, ctx) {
    const volume = str(values, 'volume');
    if (!volume) throw invalid('--volume is required: the path of the disk image or block device to back up');
    if (values.incremental && values.differential) throw invalid('choose one of --incremental and --differential');
    const mode = values.incremental ? 'incremental' : values.differential ? 'differential' : str(values, 'parent') ? 'incremental' : 'full';
    const level = str(values, 'compression-level');
    if (level !== undefined && !/^-?\d+$/.test(level)) throw invalid('--compression-level must be a whole number');
    const lockWait = str(values, 'lock-wait');
    if (lockWait !== undefined && !/^\d+(\.\d+)?$/.test(lockWait)) throw invalid('--lock-wait must be a number of seconds');
    const repo = await openRepo(values, ctx, true);
    const progress = progressReporter(values, ctx);
    try {
      const record = await createBackup(repo, {
        volume,
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
        onProgress: progress.listener,
        lockWaitMs: lockWait === undefined ? undefined : Number(lockWait) * 1000,
        onLockWait: (h) => ctx.stderr.write(`waiting for the volume: host ${h.host} (pid ${h.pid}) is running ${h.operation} since ${h.acquiredAt}\n`),
      });
      progress.stop();
      if (values.json) printJson(ctx, record);
      else {
        ctx.stdout.write(
          `backup ${record.id} of volume ${record.volumeId} is ${record.status}: ${record.kind}, ${formatBytes(record.size)} read, ` +
            `${formatBytes(record.storedBytes)} stored in ${record.objectCount} objects${record.parentId ? `, parent ${record.parentId}` : ''}\n`,
        );
      }
    } finally {
      progress.stop();
      await repo.close();
    }
  },
};
