/**
 * The machine's own limits on the same image, measured in the same run: zstd level 1 on both cores,
 * SHA-256 on one core (OpenSSL, as Node's crypto uses), and writing a copy of the image (fdatasync).
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { commandExists, measure } from './measure';

export interface Limits {
  zstdSeconds: number | null;
  sha256Seconds: number | null;
  copySeconds: number | null;
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
