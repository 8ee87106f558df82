/**
 * Runs in a worker thread: the CPU work of a chunk, off the event loop and on every core.
 * - pack:   the backup step: hash and zero-detect every block, pick the blocks to store (non-zero and,
 *           with a parent, changed), pack them, compress into the slot's output buffer and digest it;
 * - unpack: the restore step: check an object's digest, decompress it and copy its blocks into place,
 *           then (for the chunk's last object) verify the chunk's blocks against its recorded hashes;
 * - verify: the same verification alone (a chunk rebuilt on the main thread).
 * Chunks and outputs live in SharedArrayBuffers that both sides see, so no chunk is ever copied between
 * threads; only flags, hashes and digests travel. A zero block's hash is a constant: it is not recomputed.
 */
import * as crypto from 'crypto';
import { compressInto, decompressInto, syncZstd } from '../codec/compression';
import { sha256Of, zeroBlockHash } from './block-hash';
import type { Compression } from '../repository/records';

export interface HashResult {
  /** 32 bytes per block. */
  hashes: Uint8Array;
  /** 1 where the block is all zeros. */
  zeros: Uint8Array;
}

export interface PackTask {
  kind: 'pack';
  input: SharedArrayBuffer;
  length: number;
  blockSize: number;
  /** The parent's hashes of this chunk's blocks (fewer when the parent was shorter), or null: store all. */
  parentHashes: Uint8Array | null;
  /** Where the stored form goes: `outputLength` bytes of `output` from `outputOffset`. */
  output: SharedArrayBuffer;
  outputOffset: number;
  outputLength: number;
  compression: Compression;
  level?: number;
  /** Also return the SHA-256 of the output (when the stored bytes are the output: no encryption). */
  digest: boolean;
  /** With `digest`, also its MD5 (for drivers that send one with every write). */
  md5: boolean;
  /**
   * 1 where the block was not read because it is known unchanged since the parent (changed-extent
   * incrementals): it keeps the parent's hash and is neither hashed nor stored.
   */
  skip?: Uint8Array;
}

export interface PackResult extends HashResult {
  /** 1 where the block goes into the object. */
  store: Uint8Array;
  /** 1 where a changed block is now all zeros (recorded in the zero map, not stored). */
  zeroed: Uint8Array;
  /** Bytes of the packed blocks before compression (0: nothing to store). */
  rawLength: number;
  /** Bytes at the start of `output`: compressed, or the raw packed blocks when `compression` is null. */
  length: number;
  /** What was applied; null when this thread cannot compress it (the caller compresses the raw output). */
  compression: Compression | null;
  sha256: string | null;
  /** Base64 MD5 of the output, when asked for with the digest. */
  md5: string | null;
}

export interface UnpackTask {
  kind: 'unpack';
  /** The stored (decrypted) object: the first `storedLength` bytes of this buffer. */
  stored: SharedArrayBuffer;
  storedLength: number;
  /** Its expected SHA-256 to check (verify-only, unencrypted: `stored` is what the repository holds), or null: a restore checks the blocks. */
  sha256: string | null;
  compression: Compression;
  rawLength: number;
  /** Where the blocks go (the chunk starts at `chunkOffset`), and [from, to, length] triples: raw offset → chunk offset. */
  chunk: SharedArrayBuffer;
  chunkOffset: number;
  chunkSize: number;
  copies: number[];
  what: string;
  /** Once the object is in place, verify the chunk (its last object): saves a second thread hop. */
  verify?: BlockCheck;
}

/** The restore's check of a rebuilt chunk: the SHA-256 of every data block against its recorded hash. */
export interface BlockCheck {
  length: number;
  blockSize: number;
  /** The chunk's 32-byte block hashes (its state, lib/repository/chain-view.ts). */
  expected: Uint8Array;
  /** 1 where the block is zeros by the metadata: not in the buffer (a sparse target), checked by the caller. */
  zero: Uint8Array;
}

export interface VerifyTask extends BlockCheck {
  kind: 'verify';
  chunk: SharedArrayBuffer;
  chunkOffset: number;
}

export interface VerifyResult {
  /** The first data block whose SHA-256 is not the expected one, or -1. */
  badBlock: number;
}

export interface UnpackResult {
  /** False when the digest did not match (the caller reports which object). */
  digestOk: boolean;
  /** False when this thread cannot decompress it (zstd without zstd-napi): the caller does it. */
  done: boolean;
  /** Why it does not decompress to its recorded length (errors lose their class between threads). */
  corrupt?: string;
  /** The verification's result, when the task asked for one and the object was unpacked. */
  badBlock?: number;
}

let zeroBlock = Buffer.alloc(0);
let scratch = Buffer.alloc(0);

function hashBlocks(data: Buffer, blockSize: number, skip?: Uint8Array, parent?: Buffer | null): { hashes: Buffer; zeros: Uint8Array } {
  const count = Math.ceil(data.length / blockSize);
  const hashes = Buffer.alloc(count * 32);
  const zeros = new Uint8Array(count);
  if (zeroBlock.length !== blockSize) zeroBlock = Buffer.alloc(blockSize);
  for (let i = 0; i < count; i++) {
    const start = i * blockSize;
    const length = Math.min(blockSize, data.length - start);
    if (skip?.[i] && parent && (i + 1) * 32 <= parent.length) {
      // Not read: the parent's hash stands (a zero block's hash is the constant, so zeros follow).
      parent.copy(hashes, i * 32, i * 32, i * 32 + 32);
      zeros[i] = zeroBlockHash(length).equals(hashes.subarray(i * 32, i * 32 + 32)) ? 1 : 0;
      continue;
    }
    const block = data.subarray(start, start + length);
    if (block.equals(block.length === blockSize ? zeroBlock : zeroBlock.subarray(0, block.length))) {
      zeros[i] = 1;
      zeroBlockHash(block.length).copy(hashes, i * 32);
    } else {
      sha256Of(block).copy(hashes, i * 32);
    }
  }
  return { hashes, zeros };
}

function parentView(parentHashes: Uint8Array | null): Buffer | null {
  return parentHashes ? Buffer.from(parentHashes.buffer, parentHashes.byteOffset, parentHashes.byteLength) : null;
}

/** Whether block `b` differs from the parent's (no parent, or a parent that was shorter: it does). */
function changedBlock(hashes: Buffer, parent: Buffer | null, b: number): boolean {
  return !parent || b >= parent.length / 32 || hashes.compare(parent, b * 32, b * 32 + 32, b * 32, b * 32 + 32) !== 0;
}

/** A hole chunk's hashes, zero map and empty store map, by chunk length: read only, shared by every hole chunk. */
let holeOf: { length: number; blockSize: number; hashes: Buffer; zeros: Uint8Array; none: Uint8Array } | null = null;

/**
 * What `pack` gives for a chunk of a sparse file that is all hole, without reading or hashing it:
 * every block is a zero block, and a changed one goes to the zero map. Cheap: runs on the main thread,
 * and allocates nothing for a hole that was one in the parent too (a 16 TiB image has 2 million). The
 * arrays returned are shared: read only.
 */
export function packHole(length: number, blockSize: number, parentHashes: Uint8Array | null): PackResult & { hashes: Buffer } {
  const count = Math.ceil(length / blockSize);
  if (holeOf?.length !== length || holeOf.blockSize !== blockSize) {
    const hashes = Buffer.alloc(count * 32);
    const full = zeroBlockHash(blockSize);
    for (let b = 0; b < count; b++) (b * blockSize + blockSize <= length ? full : zeroBlockHash(length - b * blockSize)).copy(hashes, b * 32);
    holeOf = { length, blockSize, hashes, zeros: new Uint8Array(count).fill(1), none: new Uint8Array(count) };
  }
  const { hashes, zeros, none } = holeOf;
  const parent = parentView(parentHashes);
  // A hole that was a hole in the parent (most chunks of a sparse volume): one compare, not one per block.
  const unchanged = parent !== null && parent.length >= hashes.length && hashes.equals(parent.subarray(0, hashes.length));
  let zeroed = none;
  if (!unchanged) {
    zeroed = new Uint8Array(count);
    for (let b = 0; b < count; b++) zeroed[b] = changedBlock(hashes, parent, b) ? 1 : 0;
  }
  return {
    hashes, zeros, store: none, zeroed,
    rawLength: 0, length: 0, compression: 'none', sha256: null, md5: null,
  };
}

function pack(task: PackTask): PackResult {
  const data = Buffer.from(task.input, 0, task.length);
  const parent = parentView(task.parentHashes);
  const { hashes, zeros } = hashBlocks(data, task.blockSize, task.skip, parent);
  const count = zeros.length;
  const store = new Uint8Array(count);
  const zeroed = new Uint8Array(count);
  let rawLength = 0;
  let storedBlocks = 0;
  for (let b = 0; b < count; b++) {
    if (!changedBlock(hashes, parent, b)) continue;
    if (zeros[b]) zeroed[b] = 1;
    else {
      store[b] = 1;
      storedBlocks++;
      rawLength += Math.min(task.blockSize, task.length - b * task.blockSize);
    }
  }
  const base = { hashes, zeros, store, zeroed, rawLength };
  if (rawLength === 0) return { ...base, length: 0, compression: 'none', sha256: null, md5: null };
  // Every block stored: compress the chunk in place; else pack the stored runs first.
  let raw: Buffer;
  if (storedBlocks === count) raw = data;
  else {
    if (scratch.length < rawLength) scratch = Buffer.allocUnsafe(task.input.byteLength);
    let at = 0;
    for (let b = 0; b < count; b++) {
      if (!store[b]) continue;
      const start = b * task.blockSize;
      at += data.copy(scratch, at, start, Math.min(start + task.blockSize, task.length));
    }
    raw = scratch.subarray(0, rawLength);
  }
  const out = Buffer.from(task.output, task.outputOffset, task.outputLength);
  const packed = compressInto(raw, out, task.compression, task.level);
  if (!packed) {
    raw.copy(out);
    return { ...base, length: rawLength, compression: null, sha256: null, md5: null };
  }
  const stored = out.subarray(0, packed.length);
  return {
    ...base, length: packed.length, compression: packed.compression,
    sha256: task.digest ? sha256Of(stored).toString('hex') : null,
    md5: task.digest && task.md5 ? crypto.createHash('md5').update(stored).digest('base64') : null,
  };
}

function unpack(task: UnpackTask): UnpackResult {
  try {
    return unpackOrThrow(task);
  } catch (err) {
    return { digestOk: true, done: true, corrupt: (err as Error).message };
  }
}

function unpackOrThrow(task: UnpackTask): UnpackResult {
  const stored = Buffer.from(task.stored, 0, task.storedLength);
  if (task.sha256 !== null && sha256Of(stored).toString('hex') !== task.sha256) return { digestOk: false, done: true };
  const chunk = Buffer.from(task.chunk, task.chunkOffset);
  const { copies } = task;
  // One extent covering the copies exactly (a full backup's usual object): decompress straight into place.
  if (copies.length === 3 && copies[0] === 0 && copies[2] === task.rawLength) {
    const dst = chunk.subarray(copies[1], copies[1] + task.rawLength);
    if (!decompressInto(stored, task.compression, dst, task.what)) return { digestOk: true, done: false };
  } else {
    // Grown to a whole chunk at once (a chain's objects vary in size): one allocation per thread.
    if (scratch.length < task.rawLength) scratch = Buffer.allocUnsafe(Math.max(task.rawLength, task.chunkSize));
    const raw = scratch.subarray(0, task.rawLength);
    if (!decompressInto(stored, task.compression, raw, task.what)) return { digestOk: true, done: false };
    for (let i = 0; i < copies.length; i += 3) raw.copy(chunk, copies[i + 1], copies[i], copies[i] + copies[i + 2]);
  }
  return { digestOk: true, done: true, badBlock: task.verify ? checkBlocks(chunk, task.verify) : undefined };
}

function checkBlocks(chunk: Buffer, check: BlockCheck): number {
  const expected = Buffer.from(check.expected.buffer, check.expected.byteOffset, check.expected.byteLength);
  for (let b = 0; b * check.blockSize < check.length; b++) {
    if (check.zero[b]) continue;
    const start = b * check.blockSize;
    const hash = sha256Of(chunk.subarray(start, Math.min(start + check.blockSize, check.length)));
    if (hash.compare(expected, b * 32, b * 32 + 32) !== 0) return b;
  }
  return -1;
}

/** The hex MD5 of a body an object store returned (a restore's slot, shared: read in place). */
export interface Md5Task {
  kind: 'md5';
  data: Uint8Array;
}

export default function run(task: PackTask | UnpackTask | VerifyTask | Md5Task | { kind: 'warm' }): PackResult | UnpackResult | VerifyResult | string | null {
  if (task.kind === 'warm') {
    syncZstd(); // load the codec now, not with the first chunk
    return null;
  }
  if (task.kind === 'md5') return crypto.createHash('md5').update(task.data).digest('hex');
  if (task.kind === 'pack') return pack(task);
  if (task.kind === 'unpack') return unpack(task);
  return { badBlock: checkBlocks(Buffer.from(task.chunk, task.chunkOffset), task) };
}
