/**
 * reflink: a copy-on-write clone of the volume file (FICLONE, as `cp --reflink=always`) on XFS (made with
 * reflink=1) or btrfs. The clone shares every extent with the volume, takes moments, and is point-in-time
 * for the file: the kernel locks and flushes the source while it clones.
 */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { fileSystemType, resolveVolume, temporaryDirectory } from './files';
import { CreateRequest, ProviderContext, SnapshotProvider, TemporarySnapshot, newTemporaryName } from './provider';

export interface ReflinkOptions {
  snapshotDir?: string;
  timeoutMs: number;
}

export class ReflinkProvider implements SnapshotProvider {
  readonly name = 'reflink' as const;
  constructor(private readonly options: ReflinkOptions) {}

  async applies(volume: string, ctx: ProviderContext): Promise<string | null> {
    const { real, blockDevice } = await resolveVolume(volume);
    if (blockDevice) return 'the volume is a block device; reflink clones files';
    const dir = await temporaryDirectory(real, this.options.snapshotDir);
    const [volumeStat, dirStat] = await Promise.all([fsp.stat(real), fsp.stat(dir)]);
    // On btrfs every subvolume has its own device number, yet clones across them work.
    const sameFs = volumeStat.dev === dirStat.dev || ((await fileSystemType(real)) === 'btrfs' && (await fileSystemType(dir)) === 'btrfs');
    if (!sameFs) return `the snapshot directory ${dir} is on another file system than the volume`;
    return this.probe(dir, ctx);
  }

  /** Clones a small file in `dir`: the only sure test that this file system supports FICLONE. */
  private async probe(dir: string, ctx: ProviderContext): Promise<string | null> {
    const from = path.join(dir, newTemporaryName());
    const to = path.join(dir, newTemporaryName());
    try {
      await fsp.writeFile(from, Buffer.alloc(4096, 1), { flag: 'wx' });
      await ctx.runner('cp', ['--reflink=always', '--', from, to], { timeoutMs: this.options.timeoutMs, signal: ctx.signal });
      return null;
    } catch (err) {
      return `cp --reflink=always does not work in ${dir}: ${(err as Error).message}`;
    } finally {
      await Promise.all([fsp.rm(from, { force: true }), fsp.rm(to, { force: true })]);
    }
  }

  async create(request: CreateRequest, ctx: ProviderContext): Promise<TemporarySnapshot> {
    const { real } = await resolveVolume(request.volume);
    const file = path.join(await temporaryDirectory(real, this.options.snapshotDir), request.name);
    await request.register({ provider: 'reflink', file });
    const createdAt = new Date();
    await ctx.runner('cp', ['--reflink=always', '--', real, file], { timeoutMs: this.options.timeoutMs, signal: ctx.signal });
    ctx.log.info(`reflink: clone of ${real} at ${file}`);
    return { provider: 'reflink', name: request.name, path: file, id: null, createdAt, handle: { provider: 'reflink', file } };
  }
}
