/** What the file-based providers (btrfs, reflink, copy) share: file-system facts and where temporaries go. */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { VolumeBackupError, invalid } from '../errors';
import { isTemporaryName } from './provider';

// statfs(2) f_type values.
export const BTRFS_MAGIC = 0x9123683e;
export const XFS_MAGIC = 0x58465342;

/** btrfs gives the root directory of every subvolume this inode number. */
export const BTRFS_SUBVOLUME_ROOT_INO = 256;

export async function fileSystemType(p: string): Promise<'btrfs' | 'xfs' | 'other'> {
  const { type } = await fsp.statfs(p);
  return type === BTRFS_MAGIC ? 'btrfs' : type === XFS_MAGIC ? 'xfs' : 'other';
}

/** The volume's real path (symlinks resolved), checked to be a regular file or a block device. */
export async function resolveVolume(volume: string): Promise<{ real: string; blockDevice: boolean }> {
  let real: string;
  try {
    real = await fsp.realpath(volume);
  } catch (err) {
    throw invalid(`volume ${volume} cannot be opened: ${(err as Error).message}`, { volume });
  }
  const st = await fsp.stat(real);
  if (!st.isFile() && !st.isBlockDevice()) throw invalid(`volume ${volume} is neither a regular file nor a block device`, { volume });
  return { real, blockDevice: st.isBlockDevice() };
}

/**
 * The directory a temporary goes to: the user's, else the volume's own directory. A block device's
 * directory (/dev) is no place for a copy, so there the user must say.
 */
export async function temporaryDirectory(volume: string, snapshotDir: string | undefined): Promise<string> {
  const { real, blockDevice } = await resolveVolume(volume);
  if (!snapshotDir && blockDevice) {
    throw invalid(`volume ${volume} is a block device: give a snapshot directory (--snapshot-dir) for the temporary copy`, { volume });
  }
  const dir = snapshotDir ?? path.dirname(real);
  let st;
  try {
    st = await fsp.stat(dir);
  } catch (err) {
    throw invalid(`snapshot directory ${dir} cannot be used: ${(err as Error).message}`, { snapshotDir: dir });
  }
  if (!st.isDirectory()) throw invalid(`snapshot directory ${dir} is not a directory`, { snapshotDir: dir });
  return fsp.realpath(dir);
}

/**
 * The innermost btrfs subvolume holding `file`: the nearest ancestor directory with inode 256. Every
 * subvolume has its own device number, so leaving it before finding its root (a bind mount of a
 * sub-directory) means we cannot tell which subvolume to snapshot.
 */
export async function btrfsSubvolumeRoot(file: string): Promise<string> {
  let dir = path.dirname(file);
  const { dev } = await fsp.stat(dir);
  for (;;) {
    const st = await fsp.stat(dir);
    if (st.dev !== dev) break;
    if (st.ino === BTRFS_SUBVOLUME_ROOT_INO) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new VolumeBackupError('SNAPSHOT', `cannot find the btrfs subvolume that holds ${file} (is its directory a bind mount?)`, { volume: file });
}

/** Refuses to touch anything that is not one of our temporaries, whatever an owner file says. */
export function checkTemporaryPath(p: string): void {
  if (!path.isAbsolute(p) || !isTemporaryName(path.basename(p))) {
    throw new VolumeBackupError('SNAPSHOT', `refusing to remove ${p}: it is not a volume-backup temporary`, { path: p });
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Removes a temporary file; one that is already gone is fine. */
export async function removeTemporaryFile(file: string): Promise<void> {
  checkTemporaryPath(file);
  await fsp.rm(file, { force: true });
}
