/**
 * Test volumes: deterministic images with zero, random and text-like regions (the mix the issues
 * describe), scattered overwrites, and hashing. A seeded PRNG keeps every run identical.
 */
import { createCipheriv, createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';

/** xorshift128+: fast, deterministic, good enough to be incompressible. */
export class Prng {
  private s0: bigint;
  private s1: bigint;
  constructor(seed: number) {
    this.s0 = BigInt(seed) * 0x9e3779b97f4a7c15n + 1n;
    this.s1 = (BigInt(seed) ^ 0xdeadbeefn) * 0xbf58476d1ce4e5b9n + 7n;
  }
  next(): bigint {
    let x = this.s0;
    const y = this.s1;
    this.s0 = y;
    x ^= (x << 23n) & 0xffffffffffffffffn;
    this.s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return (this.s1 + y) & 0xffffffffffffffffn;
  }
  int(max: number): number {
    return Number(this.next() % BigInt(max));
  }
  fill(buf: Buffer): Buffer {
    // An AES-CTR keystream seeded from the PRNG: fast, deterministic and incompressible.
    const key = createHash('sha256').update(this.next().toString(16)).digest().subarray(0, 16);
    const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
    cipher.update(buf.fill(0)).copy(buf);
    return buf;
  }
}

const WORDS = 'volume backup chunk block hash restore snapshot parent incremental node red flow inject debug zero sparse'.split(' ');

export function textRegion(prng: Prng, size: number): Buffer {
  const out = Buffer.alloc(size);
  let off = 0;
  while (off < size) {
    const line = `${Array.from({ length: 8 }, () => WORDS[prng.int(WORDS.length)]).join(' ')} ${prng.int(100000)}\n`;
    off += out.write(line, off);
  }
  return out;
}

/** An image of `size` bytes made of 1 MiB regions: ~25% zero, ~35% random, ~40% text-like. */
export async function makeImage(file: string, size: number, seed = 1, regionSize = 1024 * 1024): Promise<void> {
  const prng = new Prng(seed);
  const handle = await fs.open(file, 'w');
  try {
    for (let off = 0; off < size; off += regionSize) {
      const len = Math.min(regionSize, size - off);
      const r = prng.int(100);
      if (r < 25) continue; // leave a hole: zeros
      const buf = r < 60 ? prng.fill(Buffer.alloc(len)) : textRegion(prng, len);
      await handle.write(buf, 0, len, off);
    }
    await handle.truncate(size);
  } finally {
    await handle.close();
  }
}

/** Overwrite `fraction` of the image with random data in `writeSize` pieces at scattered offsets. */
export async function scatterWrites(file: string, fraction: number, seed = 2, writeSize = 64 * 1024): Promise<number> {
  const prng = new Prng(seed);
  const size = (await fs.stat(file)).size;
  const count = Math.max(1, Math.round((size * fraction) / writeSize));
  const handle = await fs.open(file, 'r+');
  try {
    for (let i = 0; i < count; i++) {
      const offset = prng.int(Math.max(1, size - writeSize));
      await handle.write(prng.fill(Buffer.alloc(writeSize)), 0, writeSize, offset);
    }
  } finally {
    await handle.close();
  }
  return count * writeSize;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  const handle = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(1024 * 1024);
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

export async function tempDir(label: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `vb-${label}-`));
}

/** Total bytes of all files under a directory. */
export async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await fs.stat(path.join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name))).size;
  }
  return total;
}

/** Every file under a directory (relative paths). */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(path.relative(dir, path.join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name)));
  }
  return out.sort();
}

/**
 * A sparse image of `size` bytes with 4 KiB of data at the start of every `chunkSize` bytes: as many data
 * objects as chunks, quick to write and to read (a "1 GiB backup" that takes no time of its own).
 */
export async function sparseChunkedImage(file: string, size: number, chunkSize = 8 * 1024 * 1024): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    await handle.truncate(size);
    for (let offset = 0, i = 1; offset < size; offset += chunkSize, i++) await handle.write(Buffer.alloc(4096, i % 251), 0, 4096, offset);
  } finally {
    await handle.close();
  }
}
