/**
 * A restore must never write into a posix repository: restoring onto one of its objects (by its path,
 * a symlink or a hard link to it) would overwrite a backup with another and report success. Refused:
 * a target whose real path is the repository directory or inside it (also a file that does not exist
 * yet), inside any directory that holds a repository.json, a file with the same device and inode as a
 * file of the repository, and the block device the repository is stored on (or its whole disk, or a
 * loop device whose backing file is in the repository).
 */
import { BigIntStats, promises as fs } from 'fs';
import * as path from 'path';
import { VolumeBackupError } from '../errors';
import { shortPath, sysfsBlockDir } from './volume';

const CONFIG_NAME = 'repository.json';

/** Throw when writing `targetPath` would write into the repository at `repositoryDir` (null: not on this machine) or any other posix repository. */
export async function refuseTargetInRepository(targetPath: string, repositoryDir: string | null): Promise<void> {
  // Not a path at all: openTarget says so.
  if (typeof targetPath !== 'string' || targetPath.length === 0 || targetPath.includes('\0')) return;
  const target = await realPathOf(path.resolve(targetPath));
  const root = repositoryDir ? await fs.realpath(repositoryDir).catch(() => path.resolve(repositoryDir)) : null;
  const refuse = (why: string) =>
    new VolumeBackupError('INVALID_ARGUMENT', `restore target ${shortPath(targetPath)} ${why}: a restore there would overwrite backups; choose a target outside the repository`);
  if (root && isInside(target, root)) throw refuse(`is ${target === root ? 'the repository directory' : `inside the repository ${root}`}`);
  const other = await enclosingRepository(target);
  if (other) throw refuse(`is inside the volume-backup repository ${other}`);

  const st = await fs.stat(target, { bigint: true }).catch(() => null);
  if (!st || !root) return;
  const rootStat = await fs.stat(root, { bigint: true }).catch(() => null);
  if (!rootStat) return;
  // A hard link to an object: only a file with more than one name can be one, and only on the repository's filesystem.
  if (st.isFile() && st.nlink > 1n && st.dev === rootStat.dev) {
    const twin = await findInode(root, st);
    if (twin) throw refuse(`is a hard link to ${twin}, a file of the repository`);
  }
  if (st.isBlockDevice()) {
    const why = await deviceHoldsRepository(st.rdev, rootStat.dev, root);
    if (why) throw refuse(why);
  }
}

function isInside(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
}

/**
 * The real path of `p`, through symlinks, also when it does not exist yet: its directory's real path
 * plus its name, after following a dangling symlink to where it points.
 */
async function realPathOf(p: string, hops = 0): Promise<string> {
  try {
    return await fs.realpath(p);
  } catch {
    const link = await fs.readlink(p).catch(() => null);
    if (link !== null && hops < 40) return realPathOf(path.resolve(path.dirname(p), link), hops + 1);
    const dir = path.dirname(p);
    return dir === p ? p : path.join(await realPathOf(dir, hops + 1), path.basename(p));
  }
}

/** The nearest directory at or above `p`'s directory that holds a repository.json, or null. */
async function enclosingRepository(p: string): Promise<string | null> {
  for (let dir = p; ; ) {
    const st = await fs.stat(path.join(dir, CONFIG_NAME)).catch(() => null);
    if (st?.isFile()) return dir;
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** The path of a file under `dir` with the device and inode of `st`, or null. */
async function findInode(dir: string, st: BigIntStats): Promise<string | null> {
  for (const entry of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      const found = await findInode(full, st);
      if (found) return found;
    } else if (entry.isFile()) {
      const other = await fs.lstat(full, { bigint: true }).catch(() => null);
      if (other && other.ino === st.ino && other.dev === st.dev) return full;
    }
  }
  return null;
}

/** Why block device `rdev` holds the repository (its filesystem's device `repoDev`, that device's disk, a loop device on a repository file), or null. */
async function deviceHoldsRepository(rdev: bigint, repoDev: bigint, root: string): Promise<string | null> {
  // btrfs reports its own device number in st_dev: the mount's source names the real device.
  const source = await mountSourceOf(root);
  const sourceDev = source ? (await fs.stat(source, { bigint: true }).catch(() => null))?.rdev : undefined;
  if (rdev === repoDev || rdev === sourceDev) return 'is the device the repository is stored on';
  // A partition's sysfs directory sits in its disk's: the disk of the repository's partition.
  const partition = await fs.realpath(sysfsBlockDir(sourceDev ?? repoDev)).catch(() => null);
  const disk = partition && (await fs.readFile(path.join(path.dirname(partition), 'dev'), 'utf8').catch(() => null));
  const target = await fs.realpath(sysfsBlockDir(rdev)).catch(() => null);
  if (disk && target === path.dirname(partition!)) return 'is the disk the repository is stored on';
  const backing = await fs.readFile(`${sysfsBlockDir(rdev)}/loop/backing_file`, 'utf8').catch(() => null);
  if (backing && isInside(await realPathOf(backing.trim()), root)) return `is a loop device on ${backing.trim()}, a file of the repository`;
  return null;
}

/** The source device of the mount `dir` is on (from /proc/self/mountinfo), or null. */
async function mountSourceOf(dir: string): Promise<string | null> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  let best: { at: string; source: string } | null = null;
  for (const line of info.split('\n')) {
    // id parent major:minor root mount-point options [optional fields] - type source super-options
    const [left, right] = line.split(' - ');
    if (!right) continue;
    const at = left.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const source = right.split(' ')[1];
    if (at && source?.startsWith('/dev/') && isInside(dir, at === '/' ? '/' : at) && (!best || at.length > best.at.length)) best = { at, source };
  }
  return best?.source ?? null;
}
