/**
 * The benchmark's volume image, generated deterministically from a seed (same seed, same bytes):
 * MiB regions that are 25% zero, 35% random and 40% text-like, shuffled; and the "1% changed" step:
 * scattered, non-overlapping 64 KiB writes of random bytes at 4 KiB-aligned offsets (where a
 * filesystem would write), covering 1% of the image.
 */
import { createCipheriv, createHash } from 'crypto';
import { promises as fs } from 'fs';

export const MIB = 1024 * 1024;
export const CHANGE_WRITE = 64 * 1024;
const CHANGE_ALIGN = 4096;

/** mulberry32: a small, fast, seedable PRNG (not for secrets; only to make the image reproducible). */
export function prng(seed: number): () => number {
  let s = (seed * 0x9e3779b1) | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seeded byte stream that looks random to every compressor: AES-256-CTR keystream (fast, AES-NI). */
export class RandomBytes {
  private readonly cipher;
  private readonly zeros = Buffer.alloc(MIB);
  constructor(seed: string) {
    const key = createHash('sha256').update(`bench-random:${seed}`).digest();
    this.cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  }
  next(length: number): Buffer {
    const out = this.cipher.update(length <= this.zeros.length ? this.zeros.subarray(0, length) : Buffer.alloc(length));
    return out;
  }
}

/** Text-like bytes: words of a seeded vocabulary (Zipf-like frequencies), numbers, commas, lines. */
class TextBytes {
  private readonly vocab: Uint8Array;
  private readonly starts: Uint32Array;
  private readonly ends: Uint32Array;
  constructor(private readonly rand: () => number) {
    const letters = 'etaoinshrdlcumwfgypbvkjxqz';
    const words = Array.from({ length: 4096 }, () => {
      const len = 2 + Math.floor(rand() * rand() * 11);
      let w = '';
      for (let i = 0; i < len; i++) w += letters[Math.floor(rand() * rand() * letters.length)];
      return w;
    });
    this.vocab = Buffer.from(words.join(''));
    this.starts = new Uint32Array(words.length);
    this.ends = new Uint32Array(words.length);
    let at = 0;
    words.forEach((w, i) => {
      this.starts[i] = at;
      at += w.length;
      this.ends[i] = at;
    });
  }
  fill(out: Buffer): void {
    const r = this.rand;
    const { vocab, starts, ends } = this;
    const logN = Math.log(starts.length + 1);
    const end = out.length;
    let at = 0;
    let lineStart = 0;
    while (at < end) {
      if (r() < 0.04) {
        // A number of 1-5 digits.
        let v = Math.floor(r() * 100000);
        do {
          out[at++] = 48 + (v % 10);
          v = Math.floor(v / 10);
        } while (v > 0 && at < end);
      } else {
        const w = Math.floor(Math.exp(r() * logN)) - 1; // Zipf-like (rank ∝ 1/frequency), as in natural text
        for (let k = starts[w]; k < ends[w] && at < end; k++) out[at++] = vocab[k];
      }
      if (at >= end) break;
      if (at - lineStart > 60 + r() * 20) {
        out[at++] = 10;
        lineStart = at;
        // Real text repeats itself (log lines, config, boilerplate): a fifth of the lines copy an earlier one.
        if (at > 32768 && r() < 0.2) {
          const from = at - 1024 - Math.floor(r() * 31744);
          const len = Math.min(40 + Math.floor(r() * 40), end - at);
          out.copyWithin(at, from, from + len);
          at += len;
        }
      } else out[at++] = r() < 0.08 ? 44 : 32;
    }
  }
}

export type RegionKind = 'zero' | 'random' | 'text';

/** The kind of every MiB of the image: exact proportions, seeded shuffle. */
export function regionPlan(sizeMiB: number, seed: number): RegionKind[] {
  const zero = Math.round(sizeMiB * 0.25);
  const random = Math.round(sizeMiB * 0.35);
  const plan: RegionKind[] = [];
  for (let i = 0; i < sizeMiB; i++) plan.push(i < zero ? 'zero' : i < zero + random ? 'random' : 'text');
  const r = prng(seed);
  for (let i = plan.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [plan[i], plan[j]] = [plan[j], plan[i]];
  }
  return plan;
}

/** Write the image (the file is replaced); returns its SHA-256. */
export async function generateImage(file: string, size: number, seed: number): Promise<string> {
  const sizeMiB = Math.ceil(size / MIB);
  const plan = regionPlan(sizeMiB, seed);
  const random = new RandomBytes(`image:${seed}`);
  const text = new TextBytes(prng(seed + 1));
  const hash = createHash('sha256');
  const handle = await fs.open(file, 'w');
  try {
    const batch = 16;
    const buf = Buffer.alloc(batch * MIB);
    for (let first = 0; first < sizeMiB; first += batch) {
      const count = Math.min(batch, sizeMiB - first);
      for (let k = 0; k < count; k++) {
        const region = buf.subarray(k * MIB, (k + 1) * MIB);
        const kind = plan[first + k];
        if (kind === 'zero') region.fill(0);
        else if (kind === 'random') random.next(MIB).copy(region);
        else text.fill(region);
      }
      const length = Math.min(count * MIB, size - first * MIB);
      const piece = buf.subarray(0, length);
      hash.update(piece);
      await handle.write(piece, 0, length, first * MIB);
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/** The offsets of the scattered writes that change `fraction` of the image. */
export function changeOffsets(size: number, seed: number, fraction = 0.01): number[] {
  const writes = Math.round((size * fraction) / CHANGE_WRITE);
  const slots = Math.floor((size - CHANGE_WRITE) / CHANGE_ALIGN);
  const r = prng(seed + 7);
  const chosen: number[] = [];
  const taken = new Set<number>();
  while (chosen.length < writes) {
    const slot = Math.floor(r() * slots);
    // Non-overlapping: a write spans 16 slots of 4 KiB.
    let free = true;
    for (let s = slot - 15; s <= slot + 15 && free; s++) if (taken.has(s)) free = false;
    if (!free) continue;
    taken.add(slot);
    chosen.push(slot * CHANGE_ALIGN);
  }
  return chosen.sort((a, b) => a - b);
}

/** Overwrite the scattered regions in place; returns the number of bytes changed. */
export async function applyChange(file: string, size: number, seed: number): Promise<number> {
  const offsets = changeOffsets(size, seed);
  const random = new RandomBytes(`change:${seed}`);
  const handle = await fs.open(file, 'r+');
  try {
    for (const offset of offsets) await handle.write(random.next(CHANGE_WRITE), 0, CHANGE_WRITE, offset);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return offsets.length * CHANGE_WRITE;
}

/** SHA-256 of a file, streamed. */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  const handle = await fs.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(8 * MIB);
    for (let pos = 0; ; ) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}
