/**
 * A bzip2 decompressor in plain TypeScript, for Cinder's "bz2" objects: Node has no bzip2, and one
 * decoder (~200 lines) is less to carry than a native dependency or a child process per object.
 * Follows the format as bzip2 1.0 writes it (Python's bz2 module uses libbz2): streams of blocks, each
 * Huffman + MTF/RLE2 coded, Burrows-Wheeler transformed and RLE1 coded; every block's CRC and the
 * stream's combined CRC are checked, so damage is an error, never wrong bytes.
 */

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c >>> 0;
  }
  return t;
})();

class BitReader {
  private pos = 0;
  private bitBuf = 0;
  private bitCount = 0;
  constructor(private readonly data: Uint8Array) {}

  /** The next n bits (n <= 24), most significant first. */
  bits(n: number): number {
    while (this.bitCount < n) {
      if (this.pos >= this.data.length) throw new Error('bzip2 data ends too early');
      this.bitBuf = (this.bitBuf << 8) | this.data[this.pos++];
      this.bitCount += 8;
    }
    this.bitCount -= n;
    const out = (this.bitBuf >>> this.bitCount) & ((1 << n) - 1);
    this.bitBuf &= (1 << this.bitCount) - 1;
    return out;
  }

  bit(): number {
    return this.bits(1);
  }

  bits32(): number {
    return (this.bits(16) * 65536 + this.bits(16)) >>> 0;
  }

  /** Skip to the next byte boundary (between concatenated streams). */
  align(): void {
    this.bitCount -= this.bitCount % 8;
    this.bitBuf &= (1 << this.bitCount) - 1;
  }

  atEnd(): boolean {
    return this.pos >= this.data.length && this.bitCount < 8;
  }
}

const MAX_GROUPS = 6;
const MAX_CODE_LEN = 20;

/** Decompress a bzip2 stream (or several, concatenated). Throws on any damage. */
export function bunzip2(input: Uint8Array): Buffer {
  const r = new BitReader(input);
  const out: Buffer[] = [];
  let streams = 0;
  while (!r.atEnd()) {
    if (r.bits(8) !== 0x42 || r.bits(8) !== 0x5a || r.bits(8) !== 0x68) {
      if (streams > 0) break; // trailing garbage after a complete stream: as bzip2 itself, ignore it
      throw new Error('not bzip2 data (no BZh header)');
    }
    const level = r.bits(8) - 0x30;
    if (level < 1 || level > 9) throw new Error('bad bzip2 block size');
    decodeStream(r, level * 100000, out);
    r.align();
    streams++;
  }
  if (streams === 0) throw new Error('not bzip2 data (empty)');
  return Buffer.concat(out);
}

function decodeStream(r: BitReader, maxBlock: number, out: Buffer[]): void {
  let combined = 0;
  const tt = new Uint32Array(maxBlock);
  for (;;) {
    const m1 = r.bits(24);
    const m2 = r.bits(24);
    const crc = r.bits32();
    if (m1 === 0x314159 && m2 === 0x265359) {
      const block = decodeBlock(r, tt, maxBlock);
      if (blockCrc(block) !== crc) throw new Error('bzip2 block CRC mismatch');
      combined = (((combined << 1) | (combined >>> 31)) ^ crc) >>> 0;
      out.push(block);
    } else if (m1 === 0x177245 && m2 === 0x385090) {
      if (crc !== combined) throw new Error('bzip2 stream CRC mismatch');
      return;
    } else throw new Error('bad bzip2 block header');
  }
}

function blockCrc(data: Buffer): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = ((c << 8) ^ CRC_TABLE[((c >>> 24) ^ data[i]) & 0xff]) >>> 0;
  return ~c >>> 0;
}

/** A block's header: the symbols it uses, the Huffman table of each group of 50 symbols. */
interface BlockHeader {
  origPtr: number;
  seqToUnseq: number[];
  selectors: Uint8Array;
  tables: Huffman[];
}

function readBlockHeader(r: BitReader): BlockHeader {
  if (r.bit()) throw new Error('randomised bzip2 blocks are not supported');
  const origPtr = r.bits(24);
  // The symbols used: 16 ranges of 16 bytes.
  const used = r.bits(16);
  const seqToUnseq: number[] = [];
  for (let i = 0; i < 16; i++) {
    if (used & (0x8000 >> i)) {
      const bits = r.bits(16);
      for (let j = 0; j < 16; j++) if (bits & (0x8000 >> j)) seqToUnseq.push(i * 16 + j);
    }
  }
  if (seqToUnseq.length === 0) throw new Error('bzip2 block uses no symbols');
  const alphaSize = seqToUnseq.length + 2;
  const nGroups = r.bits(3);
  if (nGroups < 2 || nGroups > MAX_GROUPS) throw new Error('bad bzip2 Huffman group count');
  const nSelectors = r.bits(15);
  if (nSelectors < 1) throw new Error('bad bzip2 selector count');
  // Selectors, MTF coded.
  const mtfGroups = Array.from({ length: nGroups }, (_, i) => i);
  const selectors = new Uint8Array(nSelectors);
  for (let i = 0; i < nSelectors; i++) {
    let j = 0;
    while (r.bit()) if (++j >= nGroups) throw new Error('bad bzip2 selector');
    const v = mtfGroups[j];
    mtfGroups.splice(j, 1);
    mtfGroups.unshift(v);
    selectors[i] = v;
  }
  // Code lengths, delta coded, and the canonical decoding tables.
  const tables: Huffman[] = [];
  for (let g = 0; g < nGroups; g++) {
    const lengths = new Uint8Array(alphaSize);
    let len = r.bits(5);
    for (let s = 0; s < alphaSize; s++) {
      for (;;) {
        if (len < 1 || len > MAX_CODE_LEN) throw new Error('bad bzip2 code length');
        if (!r.bit()) break;
        len += r.bit() ? -1 : 1;
      }
      lengths[s] = len;
    }
    tables.push(huffmanTable(lengths));
  }
  return { origPtr, seqToUnseq, selectors, tables };
}

function decodeBlock(r: BitReader, tt: Uint32Array, maxBlock: number): Buffer {
  const { origPtr, seqToUnseq, selectors, tables } = readBlockHeader(r);
  const nSelectors = selectors.length;
  const alphaSize = seqToUnseq.length + 2;
  // The MTF/RLE2 coded symbols, 50 per selector.
  const mtf = Uint8Array.from(seqToUnseq);
  const counts = new Uint32Array(256);
  const EOB = alphaSize - 1;
  let n = 0;
  let selector = 0;
  let left = 0;
  let table = tables[0];
  let runLength = 0;
  let runWeight = 1;
  for (;;) {
    if (left === 0) {
      if (selector >= nSelectors) throw new Error('bzip2 selectors run out');
      table = tables[selectors[selector++]];
      left = 50;
    }
    left--;
    const sym = decodeSymbol(r, table);
    if (sym <= 1) {
      runLength += (sym + 1) * runWeight; // RUNA adds 1x, RUNB 2x the weight
      runWeight *= 2;
      if (runLength > maxBlock) throw new Error('bzip2 run too long');
      continue;
    }
    if (runLength > 0) {
      if (n + runLength > maxBlock) throw new Error('bzip2 block too long');
      const b = mtf[0];
      counts[b] += runLength;
      for (; runLength > 0; runLength--) tt[n++] = b;
      runWeight = 1;
    }
    if (sym === EOB) break;
    if (n >= maxBlock) throw new Error('bzip2 block too long');
    const idx = sym - 1;
    if (idx >= seqToUnseq.length) throw new Error('bad bzip2 symbol');
    const b = mtf[idx];
    mtf.copyWithin(1, 0, idx);
    mtf[0] = b;
    counts[b]++;
    tt[n++] = b;
  }
  if (origPtr >= n) throw new Error('bad bzip2 origin pointer');
  return inverseBwtAndRle1(tt, n, counts, origPtr);
}

interface Huffman {
  limit: Int32Array;
  base: Int32Array;
  perm: Int32Array;
  minLen: number;
  maxLen: number;
}

function huffmanTable(lengths: Uint8Array): Huffman {
  let minLen = MAX_CODE_LEN;
  let maxLen = 0;
  for (const l of lengths) {
    minLen = Math.min(minLen, l);
    maxLen = Math.max(maxLen, l);
  }
  const perm = new Int32Array(lengths.length);
  let p = 0;
  for (let l = minLen; l <= maxLen; l++) for (let s = 0; s < lengths.length; s++) if (lengths[s] === l) perm[p++] = s;
  const limit = new Int32Array(MAX_CODE_LEN + 2).fill(-1);
  const base = new Int32Array(MAX_CODE_LEN + 2);
  let code = 0;
  let index = 0;
  for (let l = minLen; l <= maxLen; l++) {
    let count = 0;
    for (const x of lengths) if (x === l) count++;
    base[l] = index - code; // symbol index of a code of this length = code + base
    code += count;
    index += count;
    limit[l] = code - 1;
    code <<= 1;
  }
  return { limit, base, perm, minLen, maxLen };
}

function decodeSymbol(r: BitReader, h: Huffman): number {
  let len = h.minLen;
  let code = r.bits(len);
  for (;;) {
    if (code <= h.limit[len]) return h.perm[code + h.base[len]];
    if (++len > h.maxLen) throw new Error('bad bzip2 Huffman code');
    code = (code << 1) | r.bit();
  }
}

function inverseBwtAndRle1(tt: Uint32Array, n: number, counts: Uint32Array, origPtr: number): Buffer {
  // tt[i] low byte: the symbol; high bits: the link to the next position (the classic bzip2 layout).
  const start = new Uint32Array(256);
  for (let i = 0, sum = 0; i < 256; i++) {
    start[i] = sum;
    sum += counts[i];
  }
  for (let i = 0; i < n; i++) {
    const b = tt[i] & 0xff;
    tt[start[b]++] |= i << 8;
  }
  let out = Buffer.allocUnsafe(Math.max(1024, n * 2));
  let len = 0;
  const put = (b: number, count: number): void => {
    if (len + count > out.length) {
      const bigger = Buffer.allocUnsafe(Math.max(out.length * 2, len + count));
      out.copy(bigger, 0, 0, len);
      out = bigger;
    }
    out.fill(b, len, len + count);
    len += count;
  };
  let pos = tt[origPtr] >>> 8; // the row that starts at the text's second byte: its last column holds the first
  let last = -1;
  let run = 0;
  for (let i = 0; i < n; i++) {
    const entry = tt[pos];
    const b = entry & 0xff;
    pos = entry >>> 8;
    if (run === 4) {
      // After four equal bytes, this byte is how many more of them follow.
      if (b > 0) put(last, b);
      run = 0;
      last = -1;
    } else {
      put(b, 1);
      if (b === last) run++;
      else {
        last = b;
        run = 1;
      }
    }
  }
  return out.subarray(0, len);
}
