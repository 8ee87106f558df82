/**
 * The object layout, in one place: which names a backup's objects have, and whether a record or a
 * metadata object read from outside (import) or from the repository keeps to it. A backup's prefix is
 * the driver's generateObjectNamePrefix (Cinder's `volume_<volumeId>/<YYYYmmddHHMMSS>/backup_<id>`) of
 * its volume, id and record.createdAt (backup.ts makes both from one Date); its objects are
 * `<prefix>-00001`…, `<prefix>_metadata`, `<prefix>_segment-000000`… (format 2) and `<prefix>_sha256file`
 * (format 1). A record whose objectPrefix is
 * anything else ("volume_", "r") would make every prefix-based step act on other backups' objects or
 * the whole repository, so it is refused, and deleting only ever removes names that are a backup's own.
 */
import type { Driver, ObjectEntry, PrefixParts } from '../drivers/driver';
import { VolumeBackupError } from '../errors';
import type { BackupMetadata, MetadataV2, Segment } from './format';
import { chunkCount, dataObjectName, hashListObjectName, metadataObjectName, segmentObjectName } from './format';
import { isVolumeId } from './names';
import type { BackupRecord } from './records';

/** Where every backup object lives: volume_<volumeId>/… (Cinder's naming). */
export const DATA_ROOT = 'volume_';
/** One record per backup: records/<volumeId>/<backupId>.json. */
export const RECORDS_PREFIX = 'records/';
/**
 * Which volume a backup's record is filed under, by backup id: record-index/<backupId>.json, so finding a
 * record by id costs two reads instead of listing every record. A hint only (see Repository.readRecord).
 */
export const RECORD_INDEX_PREFIX = 'record-index/';
/** One lease per volume: locks/<volumeId>.json. */
export const LOCKS_PREFIX = 'locks/';
/** Where prune remembers when it first saw each orphaned object: prune/orphans/<volumeId>.json. */
export const ORPHAN_STATE_PREFIX = 'prune/orphans/';
/** Where the conditional-write probe puts its objects (lib/drivers/conditional-probe.ts), apart from all others. */
export const PROBES_PREFIX = 'probes/';

/** Cinder's object-name prefix for a backup: volume_<id>/<YYYYmmddHHMMSS>/backup_<id> (what drivers' generateObjectNamePrefix give). */
export function cinderObjectNamePrefix(parts: PrefixParts): string {
  const ts = parts.createdAt.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `${DATA_ROOT}${parts.volumeId}/${ts}/backup_${parts.backupId}`;
}

/** The record of a volume's backup: records/<volumeId>/<backupId>.json (ids checked by the caller). */
export function recordObjectName(volumeId: string, backupId: string): string {
  return `${RECORDS_PREFIX}${volumeId}/${backupId}.json`;
}

/** The index entry of a backup's record (id checked by the caller): see RECORD_INDEX_PREFIX. */
export function recordIndexName(backupId: string): string {
  return `${RECORD_INDEX_PREFIX}${backupId}.json`;
}

/** The volume and backup of a record name (records/<volumeId>/<backupId>.json); null for any other name. */
export function parseRecordName(name: string): { volumeId: string; backupId: string } | null {
  const volumeId = volumeOfRecordName(name);
  if (volumeId === null) return null;
  const backupId = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.json$/.exec(name.slice(RECORDS_PREFIX.length + volumeId.length + 1))?.[1];
  return backupId ? { volumeId, backupId } : null;
}

/** The volume a record name is filed under (records/<volumeId>/…); null for any other name. */
export function volumeOfRecordName(name: string): string | null {
  if (!name.startsWith(RECORDS_PREFIX)) return null;
  const slash = name.indexOf('/', RECORDS_PREFIX.length);
  const volumeId = slash > 0 ? name.slice(RECORDS_PREFIX.length, slash) : '';
  return isVolumeId(volumeId) ? volumeId : null;
}

/** The lease of a volume: locks/<volumeId>.json (id checked by the caller). */
export function leaseObjectName(volumeId: string): string {
  return `${LOCKS_PREFIX}${volumeId}.json`;
}

/** The volume a lease name is for; null for any other name. */
export function volumeOfLeaseName(name: string): string | null {
  if (!name.startsWith(LOCKS_PREFIX) || !name.endsWith('.json')) return null;
  const volumeId = name.slice(LOCKS_PREFIX.length, -'.json'.length);
  return isVolumeId(volumeId) ? volumeId : null;
}

/** Prune's orphan bookkeeping of a volume (id checked by the caller). */
export function orphanStateName(volumeId: string): string {
  return `${ORPHAN_STATE_PREFIX}${volumeId}.json`;
}

/** The names under which one volume's backup objects live. */
export function volumeObjectsPrefix(volumeId: string): string {
  return `${DATA_ROOT}${volumeId}/`;
}

/**
 * The volume under whose objects-prefix `name` lies; null for a name outside every volume's (including
 * a directory whose name is no volume id: the layout never makes one).
 */
export function volumeOfObject(name: string): string | null {
  if (!name.startsWith(DATA_ROOT)) return null;
  const slash = name.indexOf('/', DATA_ROOT.length);
  const volumeId = slash > 0 ? name.slice(DATA_ROOT.length, slash) : '';
  return isVolumeId(volumeId) ? volumeId : null;
}

/** The prefix the layout gives the objects of a backup. */
export function backupPrefix(driver: Driver, parts: { volumeId: string; backupId: string; createdAt: Date | string }): string {
  return driver.generateObjectNamePrefix({ volumeId: parts.volumeId, backupId: parts.backupId, createdAt: new Date(parts.createdAt) });
}

export type ObjectKind =
  | { kind: 'data'; index: number }
  | { kind: 'segment'; index: number }
  | { kind: 'metadata' }
  | { kind: 'hash-list' };

const SUFFIX = /(?:-(\d{5,})|_segment-(\d{6,})|_metadata|_sha256file)$/;

/** A backup object's name split into its backup's prefix and its kind; null for any other name. */
export function parseObjectName(name: string): { prefix: string; object: ObjectKind } | null {
  const m = SUFFIX.exec(name);
  if (!m || m.index === 0) return null;
  const prefix = name.slice(0, m.index);
  if (m[2] !== undefined) {
    // Only the one spelling segmentObjectName gives (no "_segment-0000001" for 1).
    const index = Number(m[2]);
    return segmentObjectName(prefix, index) === name ? { prefix, object: { kind: 'segment', index } } : null;
  }
  if (m[1] === undefined) return { prefix, object: name.endsWith('_metadata') ? { kind: 'metadata' } : { kind: 'hash-list' } };
  const index = Number(m[1]);
  // Only the one spelling dataObjectName gives (no "-000001" for 1, no "-00000").
  if (index < 1 || dataObjectName(prefix, index) !== name) return null;
  return { prefix, object: { kind: 'data', index } };
}

/** True when `name` is one of the objects of the backup with this (validated) prefix. */
export function isObjectOf(prefix: string, name: string): boolean {
  return parseObjectName(name)?.prefix === prefix;
}

/** Why a record's objectPrefix is not the layout's for its volume, id and time; null when it is. */
export function recordLayoutProblem(driver: Driver, record: BackupRecord): string | null {
  const expected = backupPrefix(driver, { volumeId: record.volumeId, backupId: record.id, createdAt: record.createdAt });
  if (record.objectPrefix === expected) return null;
  return `its objectPrefix ${JSON.stringify(record.objectPrefix.slice(0, 200))} is not ${JSON.stringify(expected)}, the prefix the object layout gives backup ${record.id} of volume ${record.volumeId} created at ${record.createdAt}`;
}

/** Throw CORRUPT when a record's objectPrefix is not exactly the layout's. */
export function checkRecordLayout(driver: Driver, record: BackupRecord): void {
  const problem = recordLayoutProblem(driver, record);
  if (problem) throw new VolumeBackupError('CORRUPT', `the record of backup ${record.id} does not keep to the object layout: ${problem}`, { backupId: record.id });
}

/**
 * Throw CORRUPT unless every object a metadata names is this backup's own. Version 1: data object N is
 * chunk N-1 of the volume (in range, each chunk once) and the hash list is `<prefix>_sha256file`.
 * Version 2: segment N is `<prefix>_segment-N`, each once, in order, within the volume (the data objects
 * are named by the segments: checkSegmentLayout).
 */
export function checkMetadataLayout(record: BackupRecord, metadata: BackupMetadata): void {
  const prefix = record.objectPrefix;
  const refuse = (what: string) =>
    new VolumeBackupError('CORRUPT', `the metadata of backup ${record.id} (${metadataObjectName(prefix)}) names ${what}: not an object of this backup`, { backupId: record.id });
  if (metadata.formatVersion === 2) {
    const segments = Math.ceil(chunkCount(metadata.size, metadata.chunkSize) / metadata.segmentChunks);
    let previous = -1;
    for (const ref of metadata.segments) {
      if (ref.index <= previous || ref.index >= segments || ref.name !== segmentObjectName(prefix, ref.index)) throw refuse(`segment ${ref.index} as ${ref.name} (its own, in order)`);
      previous = ref.index;
    }
    return;
  }
  const chunks = chunkCount(metadata.size, metadata.chunkSize);
  const seen = new Set<number>();
  for (const o of metadata.objects) {
    if (o.chunk >= chunks || seen.has(o.chunk) || o.name !== dataObjectName(prefix, o.chunk + 1)) throw refuse(`object ${o.name} for chunk ${o.chunk}`);
    seen.add(o.chunk);
  }
  if (metadata.hashList.name !== hashListObjectName(prefix)) throw refuse(`hash list ${metadata.hashList.name}`);
}

/** Throw CORRUPT unless every data object a (decoded) segment names is this backup's own object of its chunk. */
export function checkSegmentLayout(record: BackupRecord, metadata: MetadataV2, segment: Segment, what: string): void {
  for (const entry of segment.entries) {
    if (entry.object && entry.object.name !== dataObjectName(record.objectPrefix, entry.chunk + 1)) {
      throw new VolumeBackupError('CORRUPT', `${what} names object ${entry.object.name} for chunk ${entry.chunk}: not an object of this backup`, { backupId: metadata.backupId });
    }
  }
}

/** An object in a volume's directory that no record owns. */
export interface OrphanedObject extends ObjectEntry {
  volumeId: string;
  /** The backup prefix its name has by the layout; a name that is no backup object's stands for itself. */
  prefix: string;
}

export interface ObjectClassification {
  /** Backup id → the listed objects that are that backup's own by the layout. */
  owned: Map<string, ObjectEntry[]>;
  /** Objects in a volume's directory that no record owns: left by a crash, or by a record removed by hand. */
  orphans: OrphanedObject[];
  /** Names under volume_ but outside every volume's directory: the layout never makes them, so nothing acts on them. */
  foreign: ObjectEntry[];
}

/**
 * The one orphan classifier (prune deletes what it calls orphans, verify reports them: both ask here).
 * An object is a backup's own when its name parses as one of that backup's objects (records' prefixes
 * are the layout's; listRecords refuses others); any other object in a volume's directory is an orphan.
 */
export function classifyObjects(objects: readonly ObjectEntry[], records: readonly BackupRecord[]): ObjectClassification {
  const byPrefix = new Map(records.map((r) => [r.objectPrefix, r.id]));
  const result: ObjectClassification = { owned: new Map(), orphans: [], foreign: [] };
  for (const entry of objects) {
    const volumeId = volumeOfObject(entry.name);
    if (volumeId === null) {
      result.foreign.push(entry);
      continue;
    }
    const prefix = parseObjectName(entry.name)?.prefix;
    const owner = prefix === undefined ? undefined : byPrefix.get(prefix);
    if (owner === undefined) {
      result.orphans.push({ ...entry, volumeId, prefix: prefix ?? entry.name });
      continue;
    }
    let list = result.owned.get(owner);
    if (!list) result.owned.set(owner, (list = []));
    list.push(entry);
  }
  return result;
}
