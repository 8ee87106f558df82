/**
 * Per-object compression: none, zlib, or zstd (@mongodb-js/zstd: native, runs off the main thread,
 * ships prebuilt binaries so it installs offline without install scripts). Compression runs on the
 * libuv thread pool, so several chunks compress in parallel while the event loop stays free.
 */
import { promisify } from 'util';
import * as zlib from 'zlib';
import { VolumeBackupError, errorMessage } from '../errors';
import type { Compression } from '../repository/records';

const deflate = promisify(zlib.deflate);
const inflate = promisify(zlib.inflate);

type Zstd = { compress(buf: Buffer, level?: number): Promise<Buffer>; decompress(buf: Buffer): Promise<Buffer> };
let zstd: Zstd | null = null;
function loadZstd(): Zstd {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  zstd ??= require('@mongodb-js/zstd') as Zstd;
  return zstd;
}

export const DEFAULT_LEVELS: Record<Compression, number> = { none: 0, zlib: 1, zstd: 1 };

export interface Compressed {
  data: Buffer;
  /** What was actually applied: "none" when compression did not shrink the data. */
  compression: Compression;
}

export async function compress(raw: Buffer, algorithm: Compression, level?: number): Promise<Compressed> {
  if (algorithm === 'none' || raw.length === 0) return { data: raw, compression: 'none' };
  const lvl = level ?? DEFAULT_LEVELS[algorithm];
  const out = algorithm === 'zstd' ? await loadZstd().compress(raw, lvl) : await deflate(raw, { level: lvl });
  // Store raw when compression does not pay (random data): restores then skip decompression too.
  return out.length < raw.length ? { data: out, compression: algorithm } : { data: raw, compression: 'none' };
}

export async function decompress(stored: Buffer, algorithm: Compression, rawLength: number, what: string): Promise<Buffer> {
  let out: Buffer;
  try {
    if (algorithm === 'none') out = stored;
    else if (algorithm === 'zstd') out = await loadZstd().decompress(stored);
    else out = await inflate(stored, { maxOutputLength: Math.max(rawLength, 1) });
  } catch (err) {
    throw new VolumeBackupError('CORRUPT', `${what} cannot be decompressed (${algorithm}): ${errorMessage(err)}`);
  }
  if (out.length !== rawLength) {
    throw new VolumeBackupError('CORRUPT', `${what} decompressed to ${out.length} bytes instead of ${rawLength}`);
  }
  return out;
}
