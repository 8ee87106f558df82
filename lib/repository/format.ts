/**
 * The per-backup objects (Cinder's _metadata and _sha256file, extended):
 * - data objects `<prefix>-00001`…: the bytes of one chunk's stored extents, concatenated, compressed;
 * - `<prefix>_sha256file`: the SHA-256 of every block of the volume as of this backup, 32 raw bytes each;
 * - `<prefix>_metadata`: JSON naming every object with its extents, compression and the digest of its
 *   stored bytes, the zero extents (the sparse map), and the hash list's digest.
 * An extent is [volumeOffset, length]; extents never cross a chunk boundary.
 */
import { createHash } from 'crypto';
import { z } from 'zod';
import { VolumeBackupError, errorMessage } from '../errors';
import { BackupKind, Compression } from './records';

export const METADATA_FORMAT_VERSION = 1;
export const HASH_BYTES = 32;

export type Extent = [offset: number, length: number];

const safeInt = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const ExtentSchema = z.tuple([safeInt, z.number().int().positive()]);
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

export const DataObjectSchema = z.object({
  name: z.string().min(1),
  chunk: safeInt,
  extents: z.array(ExtentSchema).min(1),
  compression: Compression,
  /** Bytes before compression: the sum of the extents' lengths. */
  rawLength: safeInt,
  /** Bytes stored. */
  length: safeInt,
  /** SHA-256 of the stored bytes. */
  sha256: sha256Hex,
});
export type DataObject = z.infer<typeof DataObjectSchema>;

export const BackupMetadataSchema = z.object({
  formatVersion: z.literal(METADATA_FORMAT_VERSION),
  backupId: z.string().uuid(),
  volumeId: z.string(),
  parentId: z.string().uuid().nullable(),
  kind: BackupKind,
  size: safeInt,
  chunkSize: z.number().int().positive(),
  blockSize: z.number().int().positive(),
  createdAt: z.string(),
  dataTimestamp: z.string(),
  compression: Compression,
  objects: z.array(DataObjectSchema),
  /** Ranges this backup records as all zeros (full: every zero block; incremental: changed blocks now zero). */
  zeroExtents: z.array(ExtentSchema),
  hashList: z.object({ name: z.string().min(1), length: safeInt, sha256: sha256Hex }),
  extraMetadata: z.record(z.string(), z.string()).nullable(),
});
export type BackupMetadata = z.infer<typeof BackupMetadataSchema>;

export function dataObjectName(prefix: string, index: number): string {
  return `${prefix}-${String(index).padStart(5, '0')}`;
}
export function metadataObjectName(prefix: string): string {
  return `${prefix}_metadata`;
}
export function hashListObjectName(prefix: string): string {
  return `${prefix}_sha256file`;
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function encodeMetadata(metadata: BackupMetadata): Buffer {
  return Buffer.from(JSON.stringify(metadata), 'utf8');
}

export function decodeMetadata(plain: Buffer, backupId: string): BackupMetadata {
  let metadata: BackupMetadata;
  try {
    metadata = BackupMetadataSchema.parse(JSON.parse(plain.toString('utf8')));
  } catch (err) {
    throw new VolumeBackupError('CORRUPT', `the metadata of backup ${backupId} is malformed: ${errorMessage(err)}`, { backupId });
  }
  if (metadata.backupId !== backupId) {
    throw new VolumeBackupError('CORRUPT', `the metadata object of backup ${backupId} describes backup ${metadata.backupId}: the record points at the wrong objects`, { backupId });
  }
  return metadata;
}

export function blockCount(size: number, blockSize: number): number {
  return Math.ceil(size / blockSize);
}

export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

/** Merge adjacent block indexes into extents: runs of `true` in `flags`, offset by `base`. */
export function runsToExtents(flags: ArrayLike<number | boolean>, base: number, blockSize: number, limit: number): Extent[] {
  const out: Extent[] = [];
  let start = -1;
  for (let i = 0; i <= flags.length; i++) {
    const on = i < flags.length && !!flags[i];
    if (on && start < 0) start = i;
    if (!on && start >= 0) {
      const offset = base + start * blockSize;
      const end = Math.min(base + i * blockSize, limit);
      out.push([offset, end - offset]);
      start = -1;
    }
  }
  return out;
}
