/**
 * Real btrfs and XFS file systems for the snapshot tests: a sparse image file on a loop device, made and
 * mounted by the test, unmounted and detached afterwards. Needs root, losetup and mkfs.btrfs/mkfs.xfs;
 * `loopFsSkipReason` says plainly why not when they are missing.
 */
import { execFile } from 'child_process';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { makeImage, tempDir } from './helpers/volumes';

const exec = promisify(execFile);

export type LoopFsKind = 'btrfs' | 'xfs';

export interface LoopFs {
  kind: LoopFsKind;
  mountPoint: string;
  device: string;
  unmount(): Promise<void>;
}

const TOOLS: Record<LoopFsKind, [string, string][]> = {
  btrfs: [['losetup', 'mount'], ['mkfs.btrfs', 'btrfs-progs'], ['btrfs', 'btrfs-progs']],
  xfs: [['losetup', 'mount'], ['mkfs.xfs', 'xfsprogs']],
};

async function onPath(tool: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    try {
      await fsp.access(path.join(dir, tool), 1);
      return true;
    } catch {
      // try the next directory
    }
  }
  return false;
}

/** Why a loop-mounted file system of this kind cannot be made here, or null when it can. */
export async function loopFsSkipReason(kind: LoopFsKind): Promise<string | null> {
  if (process.platform !== 'linux') return `${kind} on a loop device needs Linux`;
  if (process.getuid?.() !== 0) return `${kind} on a loop device needs root (loop devices and mounts), and this runs as uid ${process.getuid?.()}`;
  for (const [tool, pkg] of TOOLS[kind]) {
    if (!(await onPath(tool))) return `${tool} is not installed (apt-get install ${pkg})`;
  }
  return null;
}

/** Says why in the test output and skips the suite. */
export function skipSuite(ctx: Mocha.Context, why: string): never {
  console.log(`      SKIPPED: ${why}`);
  ctx.skip();
}

export async function run(file: string, args: string[]): Promise<string> {
  const { stdout } = await exec(file, args, { timeout: 60_000 });
  return stdout;
}

export async function mountLoopFs(kind: LoopFsKind, sizeMiB = 512): Promise<LoopFs> {
  const dir = await tempDir(`loop${kind}`);
  const image = path.join(dir, `${kind}.img`);
  const mountPoint = path.join(dir, 'mnt');
  await fsp.mkdir(mountPoint);
  await fsp.writeFile(image, '');
  await fsp.truncate(image, sizeMiB * 1024 * 1024);
  const device = (await run('losetup', ['-f', '--show', image])).trim();
  let mounted = false;
  const unmount = async () => {
    if (mounted) {
      // A just-deleted btrfs subvolume or a lazy close can keep the mount busy for a moment.
      for (let attempt = 0; ; attempt++) {
        try {
          await run('umount', [mountPoint]);
          break;
        } catch (err) {
          if (attempt >= 20) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      mounted = false;
    }
    await run('losetup', ['-d', device]).catch(() => undefined);
    await fsp.rm(dir, { recursive: true, force: true });
  };
  try {
    if (kind === 'btrfs') await run('mkfs.btrfs', ['-q', '-f', device]);
    else await run('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', device]);
    await run('mount', [device, mountPoint]);
    mounted = true;
  } catch (err) {
    await unmount();
    throw err;
  }
  return { kind, mountPoint, device, unmount };
}

/** A test volume on a loop-mounted file system, and a work directory beside it (off the loop device). */
export interface LoopFsVolume {
  loop: LoopFs;
  /** The directory holding the volume: the mount point, or a btrfs subvolume in it. */
  volumeDir: string;
  /** The volume image, `disk.img` in volumeDir. */
  volume: string;
  /** For the repository, restored images and the like; removed with the rest. */
  work: string;
  /** The state directory (temporary-snapshot owner records) for the backups of the test. */
  stateDir: string;
  /** Unmounts and detaches the file system and removes the work directory. */
  remove(): Promise<void>;
}

/**
 * For a suite's `before` hook: skips the suite (saying why) when this kind of file system cannot be made
 * here; otherwise mounts one, optionally creates a btrfs subvolume in it, and writes the volume image.
 */
export async function setUpLoopFsVolume(
  ctx: Mocha.Context,
  kind: LoopFsKind,
  opts: { size: number; seed: number; subvolume?: string },
): Promise<LoopFsVolume> {
  const why = await loopFsSkipReason(kind);
  if (why) skipSuite(ctx, why);
  const loop = await mountLoopFs(kind, 512);
  let work: string | undefined;
  const remove = async () => {
    await loop.unmount();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  };
  try {
    const volumeDir = opts.subvolume ? path.join(loop.mountPoint, opts.subvolume) : loop.mountPoint;
    if (opts.subvolume) await run('btrfs', ['subvolume', 'create', volumeDir]);
    const volume = path.join(volumeDir, 'disk.img');
    await makeImage(volume, opts.size, opts.seed);
    work = await tempDir(`snap${kind}`);
    return { loop, volumeDir, volume, work, stateDir: path.join(work, 'state'), remove };
  } catch (err) {
    await remove();
    throw err;
  }
}
