/**
 * lvm: a snapshot logical volume of the volume's LV (`lvcreate --snapshot`), removed with `lvremove -f`.
 * A classic snapshot needs room for the blocks that change while it exists (`size`: "10%ORIGIN" or "2G");
 * if that fills up, LVM invalidates the snapshot and reads fail, so the backup fails instead of being torn.
 * A thin LV gets a thin snapshot, which needs no size and must be told to activate.
 */
import { promises as fsp } from 'fs';
import { VolumeBackupError, invalid } from '../errors';
import { CreateRequest, ProviderContext, RemovalHandle, SnapshotProvider, TemporarySnapshot, isTemporaryName } from './provider';

export interface LvmOptions {
  /** Size of the snapshot's copy-on-write area: an LVM size ("512M", "2G") or a percentage ("10%ORIGIN"). */
  size?: string;
  timeoutMs: number;
}

export const DEFAULT_LVM_SIZE = '10%ORIGIN';
const ABSOLUTE_SIZE = /^[0-9]+(\.[0-9]+)?[bBsSkKmMgGtTpPeE]?$/;
const RELATIVE_SIZE = /^[0-9]+%(ORIGIN|VG|FREE|PVS)$/;

export function checkLvmSize(size: string): string {
  if (!ABSOLUTE_SIZE.test(size) && !RELATIVE_SIZE.test(size)) {
    throw invalid(`invalid LVM snapshot size ${JSON.stringify(size)}: use a size such as 2G or 512M, or a percentage such as 10%ORIGIN`);
  }
  return size;
}

interface LogicalVolume {
  vg: string;
  lv: string;
  thin: boolean;
}

export class LvmProvider implements SnapshotProvider {
  readonly name = 'lvm' as const;
  private readonly size: string;
  constructor(private readonly options: LvmOptions) {
    this.size = checkLvmSize(options.size ?? DEFAULT_LVM_SIZE);
  }

  async applies(volume: string, ctx: ProviderContext): Promise<string | null> {
    try {
      await this.logicalVolume(volume, ctx);
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  }

  /** Asks LVM which VG/LV the device is; fails for anything that is not a logical volume. */
  private async logicalVolume(volume: string, ctx: ProviderContext): Promise<LogicalVolume> {
    const st = await fsp.stat(volume).catch((err: Error) => {
      throw invalid(`volume ${volume} cannot be opened: ${err.message}`, { volume });
    });
    if (!st.isBlockDevice()) throw new VolumeBackupError('SNAPSHOT', `${volume} is not a block device, so not a logical volume`, { volume });
    const { stdout } = await ctx.runner('lvs', ['--noheadings', '--separator', '|', '-o', 'vg_name,lv_name,lv_attr', '--', volume], {
      timeoutMs: this.options.timeoutMs,
      signal: ctx.signal,
    });
    const fields = stdout.trim().split('|').map((f) => f.trim());
    if (fields.length !== 3 || !fields[0] || !fields[1]) {
      throw new VolumeBackupError('SNAPSHOT', `lvs did not describe ${volume} as a logical volume (it said ${JSON.stringify(stdout.trim())})`, { volume });
    }
    // lv_attr's first letter: "V" is a thin volume.
    return { vg: fields[0], lv: fields[1], thin: fields[2].startsWith('V') };
  }

  async create(request: CreateRequest, ctx: ProviderContext): Promise<TemporarySnapshot> {
    const origin = await this.logicalVolume(request.volume, ctx);
    const lv = `${origin.vg}/${request.name}`;
    await request.register({ provider: 'lvm', lv });
    const args = origin.thin
      ? ['--snapshot', '--setactivationskip', 'n', '--name', request.name, `${origin.vg}/${origin.lv}`]
      : ['--snapshot', RELATIVE_SIZE.test(this.size) ? '--extents' : '--size', this.size, '--name', request.name, `${origin.vg}/${origin.lv}`];
    const createdAt = new Date();
    await ctx.runner('lvcreate', args, { timeoutMs: this.options.timeoutMs, signal: ctx.signal });
    ctx.log.info(`lvm: snapshot ${lv} of ${origin.vg}/${origin.lv}`);
    return { provider: 'lvm', name: request.name, path: `/dev/${lv}`, id: lv, createdAt, handle: { provider: 'lvm', lv } };
  }
}

export async function removeLvmSnapshot(handle: Extract<RemovalHandle, { provider: 'lvm' }>, ctx: ProviderContext, timeoutMs: number): Promise<void> {
  const [vg, name, ...rest] = handle.lv.split('/');
  if (!vg || !name || rest.length || !isTemporaryName(name)) {
    throw new VolumeBackupError('SNAPSHOT', `refusing to remove LV ${handle.lv}: it is not a volume-backup temporary`, { lv: handle.lv });
  }
  try {
    await ctx.runner('lvremove', ['-f', handle.lv], { timeoutMs });
  } catch (err) {
    // Gone already: the process that made the owner file died before lvcreate, or someone removed it.
    if (/Failed to find logical volume/i.test((err as Error).message)) return;
    throw err;
  }
}
