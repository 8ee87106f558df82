/**
 * btrfs: a read-only snapshot of the subvolume that holds the volume file (`btrfs subvolume snapshot -r`).
 * The snapshot is atomic for the whole subvolume; the backup reads the volume file inside it. It must be
 * made on the same btrfs file system (default: beside the volume).
 */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { VolumeBackupError } from '../errors';
import { btrfsSubvolumeRoot, checkTemporaryPath, exists, fileSystemType, resolveVolume, temporaryDirectory } from './files';
import { CreateRequest, ProviderContext, RemovalHandle, SnapshotProvider, TemporarySnapshot } from './provider';

export interface BtrfsOptions {
  snapshotDir?: string;
  timeoutMs: number;
}

export class BtrfsProvider implements SnapshotProvider {
  readonly name = 'btrfs' as const;
  constructor(private readonly options: BtrfsOptions) {}

  async applies(volume: string, ctx: ProviderContext): Promise<string | null> {
    const { real, blockDevice } = await resolveVolume(volume);
    if (blockDevice) return 'the volume is a block device, not a file on btrfs';
    if ((await fileSystemType(real)) !== 'btrfs') return 'the volume is not on btrfs';
    const dir = await temporaryDirectory(real, this.options.snapshotDir);
    if ((await fileSystemType(dir)) !== 'btrfs') return `the snapshot directory ${dir} is not on btrfs`;
    try {
      await ctx.runner('btrfs', ['--version'], { timeoutMs: this.options.timeoutMs, signal: ctx.signal });
    } catch (err) {
      return (err as Error).message;
    }
    return null;
  }

  async create(request: CreateRequest, ctx: ProviderContext): Promise<TemporarySnapshot> {
    const { real, blockDevice } = await resolveVolume(request.volume);
    if (blockDevice) throw new VolumeBackupError('SNAPSHOT', `btrfs snapshots need a file on btrfs; ${request.volume} is a block device`);
    if ((await fileSystemType(real)) !== 'btrfs') throw new VolumeBackupError('SNAPSHOT', `${request.volume} is not on a btrfs file system`);
    const source = await btrfsSubvolumeRoot(real);
    const subvolume = path.join(await temporaryDirectory(real, this.options.snapshotDir), request.name);
    await request.register({ provider: 'btrfs', subvolume });
    const createdAt = new Date();
    await ctx.runner('btrfs', ['subvolume', 'snapshot', '-r', source, subvolume], { timeoutMs: this.options.timeoutMs, signal: ctx.signal });
    const inside = path.join(subvolume, path.relative(source, real));
    await fsp.stat(inside);
    ctx.log.info(`btrfs: read-only snapshot of subvolume ${source} at ${subvolume}`);
    return { provider: 'btrfs', name: request.name, path: inside, id: null, createdAt, handle: { provider: 'btrfs', subvolume } };
  }
}

export async function removeBtrfsSnapshot(handle: Extract<RemovalHandle, { provider: 'btrfs' }>, ctx: ProviderContext, timeoutMs: number): Promise<void> {
  checkTemporaryPath(handle.subvolume);
  if (!(await exists(handle.subvolume))) return;
  await ctx.runner('btrfs', ['subvolume', 'delete', handle.subvolume], { timeoutMs });
}
