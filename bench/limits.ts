/**
 * The machine's own limits on the same image, measured in the same run: zstd level 1 on both cores,
 * SHA-256 on one core (OpenSSL, as Node's crypto uses), and writing a copy of the image (fdatasync).
 * After the comparison, two limits of a restore: its I/O alone (restore-io.ts) and what starting our CLI
 * and opening the repository cost (`volume-backup list`).
 */
import { spawnSync } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import { commandExists, measure } from './measure';

export interface Limits {
  zstdSeconds: number | null;
  sha256Seconds: number | null;
  copySeconds: number | null;
  /** The last round's restore, its reads and writes alone (restore-io.ts, no process start). */
  restoreIo?: { seconds: number; bytesRead: number; bytesWritten: number };
  /** `volume-backup list` on the same repository: node, our modules, the repository opened and listed. */
  cliListSeconds?: number;
  notes: string[];
}

export async function measureLimits(image: string, workDir: string): Promise<Limits> {
  const notes: string[] = [];
  let zstdSeconds: number | null = null;
  if (commandExists('zstd')) {
    zstdSeconds = (await measure('sh', ['-c', `zstd -q -1 -T2 -c "${image}" > /dev/null`])).wallSeconds;
  } else notes.push('zstd is not installed (Debian package zstd): no compression limit');
  let sha256Seconds: number | null = null;
  if (commandExists('openssl')) {
    sha256Seconds = (await measure('openssl', ['dgst', '-sha256', image])).wallSeconds;
  } else notes.push('openssl is not installed: no SHA-256 limit');
  const copy = path.join(workDir, 'limit-copy.img');
  let copySeconds: number | null = null;
  if (commandExists('dd')) {
    copySeconds = (await measure('dd', [`if=${image}`, `of=${copy}`, 'bs=8M', 'conv=fdatasync', 'status=none'])).wallSeconds;
    await fs.rm(copy, { force: true });
  } else notes.push('dd is missing: no copy limit');
  return { zstdSeconds, sha256Seconds, copySeconds, notes };
}

/**
 * After the comparison, on what its last round left in `runDir` (our repository, our restored image):
 * the restore's I/O alone, and the start of a CLI process that opens the repository. Page cache as it is.
 */
export async function measureRestoreLimits(bin: string, runDir: string, log: (m: string) => void): Promise<Pick<Limits, 'restoreIo' | 'cliListSeconds'>> {
  const repo = path.join(runDir, 'repo-volume-backup');
  const restored = path.join(runDir, 'out-volume-backup', 'vol.img');
  log('restore limits: its I/O alone, and a CLI process opening the repository');
  spawnSync('sync');
  const io = await measure(process.execPath, [path.join(__dirname, 'restore-io.js'), repo, restored, path.join(runDir, 'restore-io.img')]);
  const list = await measure(bin, ['list', '--repo', repo, '--json']);
  return { restoreIo: JSON.parse(io.stdout) as Limits['restoreIo'], cliListSeconds: list.wallSeconds };
}
