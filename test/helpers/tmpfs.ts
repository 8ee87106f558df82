/** A small tmpfs for a test (root only): a full or read-only file system that is real, made and removed here. */
import { execFile } from 'child_process';
import { promises as fs } from 'fs';
import { promisify } from 'util';

const exec = promisify(execFile);

/** Run `fn` with a tmpfs of `size` (e.g. "16m") mounted at `mountPoint` (made if missing); unmounted afterwards, whatever happens. */
export async function withTmpfs<T>(mountPoint: string, size: string, fn: () => Promise<T>, options: { readOnly?: boolean } = {}): Promise<T> {
  await fs.mkdir(mountPoint, { recursive: true });
  await exec('mount', ['-t', 'tmpfs', '-o', `size=${size}${options.readOnly ? ',ro' : ''}`, 'tmpfs', mountPoint]);
  try {
    return await fn();
  } finally {
    await exec('umount', [mountPoint]).catch(() => exec('umount', ['-l', mountPoint]));
  }
}
