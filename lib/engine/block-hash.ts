/**
 * SHA-256 of a block, as the segment objects hold it, and the constant hash of an all-zero block (never
 * recomputed: a quarter of a typical volume is zeros). Shared by the worker threads and the restore.
 */
import * as crypto from 'crypto';

// crypto.hash (Node 20.12+) hashes in one call, without a Hash object per block.
const oneShot = (crypto as unknown as { hash?: (alg: string, data: Uint8Array, enc: 'buffer') => Buffer }).hash;

export const sha256Of = (data: Uint8Array): Buffer => (oneShot ? oneShot('sha256', data, 'buffer') : crypto.createHash('sha256').update(data).digest());

const zeroHashes = new Map<number, Buffer>();

/** The SHA-256 of `length` zero bytes. */
export function zeroBlockHash(length: number): Buffer {
  let h = zeroHashes.get(length);
  if (!h) {
    h = sha256Of(Buffer.alloc(length));
    zeroHashes.set(length, h);
  }
  return h;
}
