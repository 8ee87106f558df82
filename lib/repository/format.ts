/**
 * The per-backup objects (docs/format.md):
 * - data objects `<prefix>-00001`…: the bytes of one chunk's stored extents, concatenated, compressed;
 * - version 2 (written): `<prefix>_segment-NNNNNN`, the state (zero map, hashes of non-zero blocks, data
 *   object) of each chunk of one segment that the backup touched; `<prefix>_metadata`, the header and the
 *   list of touched segments;
 * - version 1 (read only): `<prefix>_sha256file`, the SHA-256 of every block of the volume, and a
 *   `<prefix>_metadata` naming every object and zero extent.
 * An extent is [volumeOffset, length]; extents never cross a chunk boundary.
 */
import { createHash } from 'crypto';
import { z } from 'zod';
import { VolumeBackupError, errorMessage } from '../errors';
import { BackupKind, Compression } from './records';

/** The version written. */
export const METADATA_FORMAT_VERSION = 2;
export const HASH_BYTES = 32;
/** Chunks per segment: 1 GiB at the default 8 MiB chunks; ≤ 1 MiB of block hashes per window. */
export const DEFAULT_SEGMENT_CHUNKS = 128;

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

const headerFields = {
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
  extraMetadata: z.record(z.string(), z.string()).nullable(),
};

export const SegmentRefSchema = z.object({ index: safeInt, name: z.string().min(1), length: safeInt, sha256: sha256Hex });
export type SegmentRef = z.infer<typeof SegmentRefSchema>;

/** Version 2: the header and the segments this backup touched (sorted by index). */
export const MetadataV2Schema = z.object({
  formatVersion: z.literal(2),
  ...headerFields,
  segmentChunks: z.number().int().positive(),
  segments: z.array(SegmentRefSchema),
});
export type MetadataV2 = z.infer<typeof MetadataV2Schema>;

/** One chunk's state in a segment object (its hashes follow the JSON, see docs/format.md). */
export const ChunkEntrySchema = z.object({
  chunk: safeInt,
  zeroExtents: z.array(ExtentSchema),
  object: DataObjectSchema.omit({ chunk: true }).nullable(),
});
export type ChunkEntry = z.infer<typeof ChunkEntrySchema>;

const SegmentHeaderSchema = z.object({
  formatVersion: z.literal(2),
  backupId: z.string().uuid(),
  index: safeInt,
  chunks: z.array(ChunkEntrySchema),
});

/** A decoded segment object: its entries, and per entry the hashes of its non-zero blocks. */
export interface Segment {
  index: number;
  entries: ChunkEntry[];
  hashes: Buffer[];
}

export const BackupMetadataV1Schema = z.object({
  formatVersion: z.literal(1),
  ...headerFields,
  objects: z.array(DataObjectSchema),
  /** Ranges this backup records as all zeros (full: every zero block; incremental: changed blocks now zero). */
  zeroExtents: z.array(ExtentSchema),
  hashList: z.object({ name: z.string().min(1), length: safeInt, sha256: sha256Hex }),
});
export type BackupMetadataV1 = z.infer<typeof BackupMetadataV1Schema>;

export const BackupMetadataSchema = z.discriminatedUnion('formatVersion', [BackupMetadataV1Schema, MetadataV2Schema]);
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
export function segmentObjectName(prefix: string, index: number): string {
  return `${prefix}_segment-${String(index).padStart(6, '0')}`;
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

/** Count of blocks of `length` bytes (a chunk's, the volume's). */
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

/** A segment object's plain bytes: 4-byte JSON length, the JSON, the hashes (docs/format.md). */
export function encodeSegment(backupId: string, segment: Segment): Buffer {
  const json = Buffer.from(JSON.stringify({ formatVersion: 2, backupId, index: segment.index, chunks: segment.entries }), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(json.length);
  return Buffer.concat([head, json, ...segment.hashes]);
}

/**
 * Decode and check a segment object: right backup and index, chunks of this segment, extents inside
 * their chunk, one hash per non-zero block (the names of its data objects: layout.ts checkSegmentLayout).
 */
export function decodeSegment(plain: Buffer, metadata: MetadataV2, index: number, what: string): Segment {
  const corrupt = (why: string) => new VolumeBackupError('CORRUPT', `${what} is malformed: ${why}`, { backupId: metadata.backupId });
  if (plain.length < 4 || plain.readUInt32BE(0) > plain.length - 4) throw corrupt('its header is cut off');
  const jsonEnd = 4 + plain.readUInt32BE(0);
  let header: z.infer<typeof SegmentHeaderSchema>;
  try {
    header = SegmentHeaderSchema.parse(JSON.parse(plain.subarray(4, jsonEnd).toString('utf8')));
  } catch (err) {
    throw corrupt(errorMessage(err));
  }
  if (header.backupId !== metadata.backupId || header.index !== index) throw corrupt(`it describes segment ${header.index} of backup ${header.backupId}`);
  const { chunkSize, blockSize, size, segmentChunks } = metadata;
  const hashes: Buffer[] = [];
  let at = jsonEnd;
  let previous = -1;
  for (const entry of header.chunks) {
    const c = entry.chunk;
    if (c <= previous || Math.floor(c / segmentChunks) !== index || c * chunkSize >= size) throw corrupt(`chunk ${c} does not belong in it`);
    previous = c;
    const start = c * chunkSize;
    const end = Math.min(start + chunkSize, size);
    for (const [offset, length] of [...entry.zeroExtents, ...(entry.object?.extents ?? [])]) {
      if (offset < start || offset + length > end || (offset - start) % blockSize !== 0) throw corrupt(`an extent of chunk ${c} lies outside it`);
    }
    const count = (blockCount(end - start, blockSize) - zeroBlockCount(entry.zeroExtents, blockSize)) * HASH_BYTES;
    if (at + count > plain.length) throw corrupt(`the hashes of chunk ${c} are cut off`);
    hashes.push(plain.subarray(at, at + count));
    at += count;
  }
  if (at !== plain.length) throw corrupt(`${plain.length - at} bytes follow its last hash`);
  return { index, entries: header.chunks, hashes };
}

function zeroBlockCount(extents: Extent[], blockSize: number): number {
  return extents.reduce((n, [, length]) => n + Math.ceil(length / blockSize), 0);
}
