/**
 * Reading a Cinder chain as Cinder's restore does (oldest backup first, each object at its offset), but
 * checked as Cinder never does: every object's MD5, every block against the SHA-256 its own backup's
 * `_sha256file` lists, and at the end every block of the image against the requested backup's list.
 */
import { createHash } from 'crypto';
import { VolumeBackupError, throwIfAborted } from '../errors';
import type { CinderObject, CinderSha256File } from './metadata';
import type { CinderBackup, CinderStore } from './store';

export interface ChainRead {
  chain: CinderBackup[];
  size: number;
  blockSize: number;
  blocksVerified: number;
  bytesRead: number;
}

/**
 * The image's length, as Cinder's restore into a new file leaves it: the end of the chain's last-reaching
 * object (the record's size is whole GiB; a volume that grew inside its last block grows the incremental).
 */
export function imageSize(chain: CinderBackup[]): number {
  return chain.reduce((end, b) => b.objects.reduce((e, o) => Math.max(e, o.offset + o.length), end), 0);
}

/** What a chain needs before any data is read: present, one block size, the full backup covering the volume. */
export function checkChainShape(chain: CinderBackup[]): void {
  const full = chain[0];
  if (full.parentId) throw new VolumeBackupError('CORRUPT', `backup ${full.id} names parent ${full.parentId}, which is not in the chain`);
  for (const b of chain) {
    if (b.missing.length > 0) throw new VolumeBackupError('OBJECT_MISSING', `backup ${b.id} is missing ${b.missing.length} object(s): ${b.missing.slice(0, 5).join(', ')}`);
  }
}

export interface WalkOptions {
  signal?: AbortSignal;
  onObject?: (bytes: number) => void;
  /** Called once each backup of the chain is applied and every block checked against its list. */
  afterBackup?: (b: CinderBackup, index: number) => Promise<void>;
}

/**
 * Read the chain of `backupId`, oldest first; `sink` gets each object's checked data at its offset (in
 * order: later objects overwrite earlier ones, as in Cinder). Throws naming the backup and object on
 * any missing or wrong object or block.
 */
export async function readChain(
  store: CinderStore,
  backupId: string,
  sink: ((offset: number, data: Buffer) => Promise<void>) | null,
  options: WalkOptions = {},
): Promise<ChainRead> {
  return walkChain(store, await store.chain(backupId), sink, options);
}

/** readChain over a chain already found; after each backup, the image so far is checked block by block against its list. */
export async function walkChain(
  store: CinderStore,
  chain: CinderBackup[],
  sink: ((offset: number, data: Buffer) => Promise<void>) | null,
  options: WalkOptions = {},
): Promise<ChainRead> {
  checkChainShape(chain);
  const size = imageSize(chain);
  let blockSize = 0;
  let blocks = 0;
  // The hash of each block of the image as the objects applied so far give it.
  let current: (string | undefined)[] = [];
  let blocksVerified = 0;
  let bytesRead = 0;
  for (const [index, b] of chain.entries()) {
    const sha = await store.readSha256(b);
    if (index === 0) {
      blockSize = sha.chunk_size;
      blocks = Math.ceil(size / blockSize);
      current = new Array(blocks);
    }
    checkShaFile(b, sha.chunk_size, sha.sha256s.length, blockSize, blocks);
    for (const obj of b.objects) {
      throwIfAborted(options.signal);
      checkPlacement(store, b, obj, blockSize, size);
      const data = await store.readData(b, obj);
      blocksVerified += checkBlocks(store, b, obj, data, sha, (i, h) => (current[i] = h));
      bytesRead += data.length;
      if (sink) await sink(obj.offset, data);
      options.onObject?.(data.length);
    }
    for (let i = 0; i < blocks; i++) {
      if (current[i] === undefined) throw new VolumeBackupError('CORRUPT', `block ${i} of backup ${b.id} is in no object of its chain (${chain.slice(0, index + 1).map((x) => x.id).join(' <- ')})`);
      if (current[i] !== sha.sha256s[i]) throw new VolumeBackupError('CORRUPT', `block ${i} of backup ${b.id} as its chain gives it does not match the SHA-256 the backup's _sha256file lists`);
    }
    await options.afterBackup?.(b, index);
  }
  return { chain, size, blockSize, blocksVerified, bytesRead };
}

/** Each block of an object's data against the SHA-256 its own backup's list gives; returns the blocks checked. */
export function checkBlocks(store: CinderStore, b: CinderBackup, obj: CinderObject, data: Buffer, sha: CinderSha256File, onBlock?: (index: number, hash: string) => void): number {
  const blockSize = sha.chunk_size;
  let n = 0;
  for (let off = 0; off < data.length; off += blockSize, n++) {
    const i = (obj.offset + off) / blockSize;
    const h = createHash('sha256').update(data.subarray(off, off + blockSize)).digest('hex');
    if (h !== sha.sha256s[i]) {
      throw new VolumeBackupError('CORRUPT', `block ${i} (offset ${obj.offset + off}) in object ${store.key(b, obj.name)} of backup ${b.id} does not match the SHA-256 its _sha256file lists`);
    }
    onBlock?.(i, h);
  }
  return n;
}

function checkShaFile(b: CinderBackup, chunkSize: number, count: number, blockSize: number, blocks: number): void {
  if (chunkSize !== blockSize) throw new VolumeBackupError('CORRUPT', `backup ${b.id} hashes ${chunkSize}-byte blocks, the rest of its chain ${blockSize}-byte blocks`);
  if (count !== blocks) throw new VolumeBackupError('CORRUPT', `the _sha256file of backup ${b.id} lists ${count} blocks; the volume has ${blocks}`);
}

function checkPlacement(store: CinderStore, b: CinderBackup, obj: CinderObject, blockSize: number, size: number): void {
  if (obj.offset % blockSize !== 0 || obj.offset + obj.length > size) {
    throw new VolumeBackupError('CORRUPT', `object ${store.key(b, obj.name)} of backup ${b.id} lies at ${obj.offset}+${obj.length}, not on a block of the ${size}-byte volume`);
  }
}
