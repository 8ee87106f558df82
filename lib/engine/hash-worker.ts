/**
 * Runs in a worker thread: SHA-256 of every block of a chunk and which blocks are all zeros.
 * Hashing is synchronous CPU work; doing it here keeps the event loop free and uses every core.
 * The chunk sits in a SharedArrayBuffer, so neither side copies it; only the small results travel.
 */
import { createHash } from 'crypto';

export interface HashTask {
  buffer: SharedArrayBuffer;
  length: number;
  blockSize: number;
}

export interface HashResult {
  /** 32 bytes per block. */
  hashes: Uint8Array;
  /** 1 where the block is all zeros. */
  zeros: Uint8Array;
}

let zeroBlock = Buffer.alloc(0);

export default function hashBlocks(task: HashTask): HashResult {
  const data = Buffer.from(task.buffer, 0, task.length);
  const count = Math.ceil(task.length / task.blockSize);
  const hashes = Buffer.alloc(count * 32);
  const zeros = new Uint8Array(count);
  if (zeroBlock.length !== task.blockSize) zeroBlock = Buffer.alloc(task.blockSize);
  for (let i = 0; i < count; i++) {
    const start = i * task.blockSize;
    const block = data.subarray(start, Math.min(start + task.blockSize, task.length));
    createHash('sha256').update(block).digest().copy(hashes, i * 32);
    if (block.equals(block.length === zeroBlock.length ? zeroBlock : zeroBlock.subarray(0, block.length))) zeros[i] = 1;
  }
  return { hashes, zeros };
}
