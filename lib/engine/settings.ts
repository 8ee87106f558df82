/**
 * Chunk and block sizes. A chunk is what is read, compressed and stored as one object; a block is the
 * unit of hashing, zero detection and incremental comparison.
 * - 32 KiB blocks (Cinder's): a scattered 64 KiB write dirties 2-3 blocks, so an incremental stores
 *   close to the bytes that changed; a block hash costs 32 bytes, stored for the non-zero blocks of the chunks a backup changed.
 * - 8 MiB chunks: ~128 objects per GiB (sane for S3/GCS request counts and listings), and with a fixed
 *   number of chunks in flight memory stays under ~100 MiB whatever the volume size.
 */
import { VolumeBackupError, invalid } from '../errors';
import { Compression } from '../repository/records';
import type { Driver } from '../drivers/driver';

export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;
export const DEFAULT_BLOCK_SIZE = 32 * 1024;
export const DEFAULT_COMPRESSION: Compression = 'zstd';
export const MIN_BLOCK_SIZE = 4096;
/**
 * Chunks being read, processed by the workers or written at once in a backup (a restore has one more).
 * Memory is bounded by this x twice the chunk size (the chunk and its stored form), not by the volume.
 * Two worker threads need two chunks, the third is being read or written.
 */
export const CHUNKS_IN_FLIGHT = 3;
/**
 * Stored forms a backup keeps in flight, two more than the chunks it reads: while a posix repository
 * writes one (O_DIRECT and fsync wait for the disk), both workers can still pack the next ones. Measured
 * on the 1 GiB bench image (2 cores): 2.05 s → 1.72 s for a full backup; about 11 MiB more resident.
 */
export const BACKUP_OUTPUTS_IN_FLIGHT = CHUNKS_IN_FLIGHT + 2;
export const MAX_CHUNK_SIZE = 256 * 1024 * 1024;
/**
 * Objects in flight on a store that is not a local directory (S3, GCS, …): its requests wait for the
 * network, not for this machine, so more of them hide the latency. Memory: one stored form (≤ a chunk)
 * more per object in a backup, a chunk and its stored form in a restore.
 */
export const REMOTE_OBJECTS_IN_FLIGHT = 6;

/** Objects a backup keeps in flight on this repository's store, beyond what the CPU needs (0: none). */
export function objectsInFlight(repo: { driver: Pick<Driver, 'objectsInFlight'>; localDirectory: string | null }): number {
  return repo.driver.objectsInFlight ?? (repo.localDirectory === null ? REMOTE_OBJECTS_IN_FLIGHT : 0);
}

export function checkSizes(chunkSize: number, blockSize: number): void {
  for (const [label, v] of [['chunk size', chunkSize], ['block size', blockSize]] as const) {
    if (!Number.isSafeInteger(v) || v <= 0) throw invalid(`${label} must be a positive whole number of bytes, not ${v}`);
  }
  if (blockSize < MIN_BLOCK_SIZE || blockSize % 512 !== 0) {
    throw invalid(`block size ${blockSize} is invalid: use a multiple of 512 bytes, at least ${MIN_BLOCK_SIZE}`);
  }
  if (chunkSize > MAX_CHUNK_SIZE) throw invalid(`chunk size ${chunkSize} is larger than the maximum ${MAX_CHUNK_SIZE}`);
  if (chunkSize % blockSize !== 0) {
    throw invalid(`chunk size ${chunkSize} must be a multiple of the block size ${blockSize} (e.g. ${Math.max(1, Math.round(chunkSize / blockSize)) * blockSize})`);
  }
}

/** The levels each algorithm takes (zstd's negative levels are its fast modes). */
const LEVELS: Record<Compression, [number, number]> = { none: [-Infinity, Infinity], zlib: [0, 9], zstd: [-7, 22] };

/** A compression setting (a backup's, or a repository's default): the algorithm checked, the level in its range. */
export function checkCompression(algorithm: unknown, level: unknown): { algorithm: Compression; level?: number } {
  const parsed = Compression.safeParse(algorithm);
  if (!parsed.success) throw new VolumeBackupError('INVALID_ARGUMENT', `unknown compression ${JSON.stringify(algorithm)?.slice(0, 40)}: use none, zlib or zstd`);
  if (level === undefined) return { algorithm: parsed.data };
  const [min, max] = LEVELS[parsed.data];
  if (typeof level !== 'number' || !Number.isInteger(level) || level < min || level > max) {
    throw new VolumeBackupError('INVALID_ARGUMENT', `compression level ${JSON.stringify(level)?.slice(0, 40)} is invalid for ${parsed.data}: use a whole number from ${min} to ${max}`);
  }
  return { algorithm: parsed.data, level };
}
