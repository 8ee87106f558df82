/**
 * Per-object compression: none, zlib, or zstd. Two zstd implementations, one frame format:
 * - zstd-napi (optional dependency, built from its bundled zstd source at install): synchronous, at
 *   the requested level, into a caller's buffer. The backup/restore worker threads use it
 *   (compressInto/decompressInto), so hashing, compression and verification of a chunk happen in one
 *   thread hop with no copies.
 * - @mongodb-js/zstd (prebuilt, always installed): asynchronous on the libuv thread pool, but it
 *   ignores the level (always 3, about half the speed of level 1 on text). The fallback when
 *   zstd-napi could not be built.
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
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a native module, loaded with the first zstd use rather than with every import of the codec
  zstd ??= require('@mongodb-js/zstd') as Zstd;
  return zstd;
}

/** zstd-napi's low-level binding, if it was built: contexts that (de)compress into a given buffer. */
interface ZstdBinding {
  CCtx: new () => { compress(dst: Uint8Array, src: Uint8Array, level: number): number };
  DCtx: new () => { decompress(dst: Uint8Array, src: Uint8Array): number };
  compressBound(size: number): number;
}
let binding: ZstdBinding | null | undefined;
let cctx: InstanceType<ZstdBinding['CCtx']> | null = null;
let dctx: InstanceType<ZstdBinding['DCtx']> | null = null;

export function syncZstd(): ZstdBinding | null {
  if (binding === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- an optional native dependency that may be absent or unbuilt: loaded inside a try
      binding = require('zstd-napi/binding') as ZstdBinding;
    } catch {
      binding = null;
    }
  }
  return binding;
}

/** The output buffer compressInto needs for `size` input bytes (any algorithm). */
export function compressBound(size: number): number {
  const z = syncZstd();
  return Math.max(size, z ? z.compressBound(size) : size + (size >> 7) + 1024);
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

/**
 * Synchronous compression of `src` into `dst` (sized by compressBound), for worker threads. Returns the
 * bytes written and what was applied ("none" when it did not shrink: then `dst` holds `src`), or null
 * when this algorithm has no synchronous implementation here (zstd without zstd-napi).
 */
export function compressInto(src: Uint8Array, dst: Uint8Array, algorithm: Compression, level?: number): { length: number; compression: Compression } | null {
  const lvl = level ?? DEFAULT_LEVELS[algorithm];
  let length = -1;
  if (algorithm === 'zstd') {
    const z = syncZstd();
    if (!z) return null;
    cctx ??= new z.CCtx();
    length = cctx.compress(dst, src, lvl);
  } else if (algorithm === 'zlib') {
    const out = zlib.deflateSync(src, { level: lvl });
    if (out.length < src.length) {
      dst.set(out);
      length = out.length;
    }
  }
  if (length >= 0 && length < src.length) return { length, compression: algorithm };
  dst.set(src);
  return { length: src.length, compression: 'none' };
}

/**
 * Synchronous decompression into `dst`, which must be exactly the recorded raw length; throws CORRUPT
 * when the data does not decompress to exactly that. Returns false when there is no synchronous
 * implementation here (zstd without zstd-napi): use decompress().
 */
export function decompressInto(src: Uint8Array, algorithm: Compression, dst: Uint8Array, what: string): boolean {
  let length: number;
  try {
    if (algorithm === 'none') {
      length = src.length;
      if (length === dst.length) dst.set(src);
    } else if (algorithm === 'zstd') {
      const z = syncZstd();
      if (!z) return false;
      dctx ??= new z.DCtx();
      length = dctx.decompress(dst, src);
    } else {
      const out = zlib.inflateSync(src, { maxOutputLength: Math.max(dst.length, 1) });
      length = out.length;
      if (length === dst.length) dst.set(out);
    }
  } catch (err) {
    throw new VolumeBackupError('CORRUPT', `${what} cannot be decompressed (${algorithm}): ${errorMessage(err)}`);
  }
  if (length !== dst.length) throw new VolumeBackupError('CORRUPT', `${what} decompressed to ${length} bytes instead of ${dst.length}`);
  return true;
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
