/**
 * Reading a backup's metadata and hash list back, with every check that proves they are the ones the
 * record describes: digest of the stored bytes, decryption, schema, ids, sizes, the object layout.
 * Listing and deleting a backup's objects: only the names that are its own by the layout.
 */
import { ObjectNotFoundError, VolumeBackupError, errorMessage } from '../errors';
import { BackupMetadata, BackupMetadataV1, HASH_BYTES, MetadataV2, Segment, SegmentRef, blockCount, decodeMetadata, decodeSegment, metadataObjectName, sha256 } from './format';
import type { ObjectEntry } from '../drivers/driver';
import { checkMetadataLayout, checkRecordLayout, checkSegmentLayout, isObjectOf } from './layout';
import type { BackupRecord } from './records';
import { Repository } from './repository';
import { mapLimit } from '../util/concurrency';

async function readChecked(repo: Repository, name: string, expectedSha: string | null, what: string, signal?: AbortSignal, storedLength?: (n: number) => void): Promise<Buffer> {
  let stored: Buffer;
  try {
    stored = await repo.readObject(name, signal);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new VolumeBackupError('OBJECT_MISSING', `${what} (${name}) is missing from the repository`, { objectName: name });
    throw err;
  }
  storedLength?.(stored.length);
  if (expectedSha && sha256(stored) !== expectedSha) {
    throw new VolumeBackupError('CORRUPT', `${what} (${name}) is corrupt: its SHA-256 does not match the one recorded`, { objectName: name });
  }
  try {
    return repo.codec.open(stored, name);
  } catch (err) {
    // `intact`: the bytes are the ones recorded (their SHA-256 was checked), so the key is another's.
    throw new VolumeBackupError('CORRUPT', `${what} (${name}) cannot be decrypted: ${errorMessage(err)}`, { objectName: name, intact: expectedSha !== null });
  }
}

export async function loadMetadata(repo: Repository, record: BackupRecord, signal?: AbortSignal): Promise<BackupMetadata> {
  return (await readMetadata(repo, record, signal)).metadata;
}

/** The metadata, and the length of its stored object (part of what the record's storedBytes counts). */
export async function readMetadata(repo: Repository, record: BackupRecord, signal?: AbortSignal): Promise<{ metadata: BackupMetadata; storedLength: number }> {
  checkRecordLayout(repo.driver, record);
  const name = metadataObjectName(record.objectPrefix);
  let storedLength = 0;
  const plain = await readChecked(repo, name, record.metadataSha256, `the metadata of backup ${record.id}`, signal, (n) => (storedLength = n));
  const metadata = decodeMetadata(plain, record.id);
  const mismatch =
    metadata.volumeId !== record.volumeId ? 'volume id' :
    metadata.size !== record.size ? 'size' :
    metadata.blockSize !== record.blockSize ? 'block size' :
    metadata.chunkSize !== record.chunkSize ? 'chunk size' :
    metadata.parentId !== record.parentId ? 'parent' : null;
  if (mismatch) throw new VolumeBackupError('CORRUPT', `the metadata of backup ${record.id} does not match its record (${mismatch} differs)`, { backupId: record.id });
  checkMetadataLayout(record, metadata);
  return { metadata, storedLength };
}

/** What a backup's metadata lists: its objects (the metadata itself included) and their stored bytes. */
export interface ListedTotals {
  objects: number;
  bytes: number;
}

/**
 * The record's objectCount and storedBytes, written when the backup was made, against what its metadata
 * lists now. A segment dropped together with its entry in the metadata (digests fixed up, or the record's
 * digest removed) would otherwise read as a range of zeros: every other check passes.
 */
export function checkRecordTotals(record: BackupRecord, listed: ListedTotals): void {
  if (listed.objects === record.objectCount && listed.bytes === record.storedBytes) return;
  throw new VolumeBackupError(
    'CORRUPT',
    `the metadata of backup ${record.id} lists ${listed.objects} objects (${listed.bytes} bytes) but the backup stored ${record.objectCount} (${record.storedBytes} bytes): the metadata no longer describes what was stored (objects and their entries removed or changed)`,
    { backupId: record.id },
  );
}

/** A version-1 backup's hash list (version 2 has none: its hashes are in its segment objects). */
export async function loadHashList(repo: Repository, record: BackupRecord, metadata: BackupMetadataV1, signal?: AbortSignal): Promise<Buffer> {
  const plain = await readChecked(repo, metadata.hashList.name, metadata.hashList.sha256, `the hash list of backup ${record.id}`, signal);
  if (plain.length !== blockCount(metadata.size, metadata.blockSize) * HASH_BYTES) {
    throw new VolumeBackupError('CORRUPT', `the hash list of backup ${record.id} has ${plain.length / HASH_BYTES} hashes for ${blockCount(metadata.size, metadata.blockSize)} blocks`, { backupId: record.id });
  }
  return plain;
}

/**
 * One segment object of a version-2 backup, read, digest-checked, decoded and checked to name only this
 * backup's own data objects.
 */
export async function loadSegment(repo: Repository, record: BackupRecord, metadata: MetadataV2, ref: SegmentRef, signal?: AbortSignal): Promise<Segment> {
  const what = `segment ${ref.index} of backup ${record.id}`;
  const segment = decodeSegment(await readChecked(repo, ref.name, ref.sha256, what, signal), metadata, ref.index, `${what} (${ref.name})`);
  checkSegmentLayout(record, metadata, segment, `${what} (${ref.name})`);
  return segment;
}

/** An object a backup owns, with the length its metadata records. */
export interface OwnedObject {
  name: string;
  length: number;
}

/**
 * The objects a backup owns besides its metadata, as its metadata names them (docs/format.md):
 * version 1, its data objects and hash list; version 2, each segment object (read, digest-checked and
 * decoded, one at a time) and the data objects it names. A damaged segment throws (CORRUPT/OBJECT_MISSING).
 */
export async function* ownedObjects(repo: Repository, record: BackupRecord, metadata: BackupMetadata, signal?: AbortSignal): AsyncGenerator<OwnedObject> {
  if (metadata.formatVersion === 1) {
    yield* metadata.objects.map((o) => ({ name: o.name, length: o.length }));
    yield { name: metadata.hashList.name, length: metadata.hashList.length };
    return;
  }
  for (const ref of metadata.segments) {
    const segment = await loadSegment(repo, record, metadata, ref, signal);
    yield { name: ref.name, length: ref.length };
    for (const entry of segment.entries) if (entry.object) yield { name: entry.object.name, length: entry.object.length };
  }
}

/**
 * The backup's objects that are there: listed under its prefix, keeping only the names that are its own
 * by the layout (`<prefix>-00001`, `<prefix>_metadata`, `<prefix>_segment-000000`, `<prefix>_sha256file`), not every name that
 * merely starts with the prefix. The record's prefix is checked against the layout first.
 */
export async function listBackupObjects(repo: Repository, record: BackupRecord): Promise<ObjectEntry[]> {
  checkRecordLayout(repo.driver, record);
  return (await repo.listObjects(record.objectPrefix)).filter((e) => isObjectOf(record.objectPrefix, e.name));
}

/**
 * Delete a backup's own objects (listBackupObjects). That covers every object its metadata can name
 * (loadMetadata refuses any other name) and also what a failed backup, whose metadata was never
 * written, left. Returns the bytes freed.
 */
export async function deleteBackupObjects(repo: Repository, record: BackupRecord): Promise<number> {
  const entries = await listBackupObjects(repo, record);
  await mapLimit(entries, 8, (e) => repo.deleteObject(e.name));
  return entries.reduce((sum, e) => sum + e.size, 0);
}

/**
 * Before a backup becomes available: every object it wrote is still there with the bytes written (one
 * listing). An object removed meanwhile (by hand, a lifecycle rule, a misconfigured prune) would
 * otherwise leave an available backup that cannot be restored.
 */
export async function checkAllStored(repo: Repository, record: BackupRecord, objectCount: number, storedBytes: number): Promise<void> {
  const entries = await listBackupObjects(repo, record);
  const bytes = entries.reduce((sum, e) => sum + e.size, 0);
  if (entries.length !== objectCount || bytes !== storedBytes) {
    throw new VolumeBackupError(
      'OBJECT_MISSING',
      `backup ${record.id}: ${objectCount} objects (${storedBytes} bytes) were written under ${record.objectPrefix} but ${entries.length} (${bytes} bytes) are there now: objects vanished or changed while the backup ran, so it is not made available`,
      { backupId: record.id },
    );
  }
}
