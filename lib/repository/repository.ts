/**
 * A repository: one container of one driver, holding its own catalog. Layout inside the container:
 *   repository.json                           what this repository is (format, id, encryption parameters)
 *   records/<volumeId>/<backupId>.json        one record per backup (compare-and-swap)
 *   record-index/<backupId>.json              the volume of a backup's record (a hint: finding it by id without a listing)
 *   locks/<volumeId>.json                     leases that keep two writers off one volume
 *   volume_<volumeId>/<YYYYmmddHHMMSS>/backup_<backupId>-00001 …   data objects (Cinder's naming)
 *   …_metadata, …_segment-NNNNNN              per-backup metadata and segments (format 1: …_sha256file)
 * Everything a restore, verify or prune needs is here; nothing lives outside it.
 */
import * as os from 'os';
import { Driver, ObjectEntry, ObjectOptions, StoredObject } from '../drivers/driver';
import { ObjectNotFoundError, PreconditionFailedError, VolumeBackupError, errorMessage, invalid } from '../errors';
import { checkBackupId, checkHost, checkVolumeId, isVolumeId } from './names';
import { BackupRecord, BackupStatus, canTransition, isTransient, parseRecord } from './records';
import { IDENTITY_CODEC, ObjectCodec } from '../codec/object-codec';
import { RepositoryConfig, parseRepositoryConfig } from './config';
import { LOCKS_PREFIX, RECORDS_PREFIX, backupPrefix, leaseObjectName, orphanStateName, recordIndexName, recordLayoutProblem, recordObjectName, volumeOfLeaseName } from './layout';
export { RECORDS_PREFIX } from './layout';
import { missingConfigError, repositoryContentAt } from './missing-config';
import { mapLimit, sleep } from '../util/concurrency';
import { withRetries } from '../drivers/retrying-driver';

export const REPOSITORY_CONFIG_NAME = 'repository.json';
const CAS_ATTEMPTS = 20;
/** Records read at the same time when listing (each is a small JSON object). */
const RECORD_READS_IN_FLIGHT = 64;

export interface RepositoryOptions {
  container: string;
  host?: string;
  codec?: ObjectCodec;
  config: RepositoryConfig;
}

export interface VersionedRecord {
  record: BackupRecord;
  etag: string;
}

export class Repository {
  /**
   * The store, for lib/repository only (the layout's prefix, opening): the engine, the nodes and the CLI
   * go through the methods below, which hold the names, the codec and the status machine.
   */
  readonly driver: Driver;
  readonly container: string;
  readonly host: string;
  readonly codec: ObjectCodec;
  readonly config: RepositoryConfig;

  constructor(driver: Driver, options: RepositoryOptions) {
    this.driver = driver;
    this.container = options.container;
    this.host = checkHost(options.host ?? os.hostname());
    this.codec = options.codec ?? IDENTITY_CODEC;
    this.config = options.config;
  }

  /** Where this repository is, for messages. */
  get location(): string {
    return this.container ? `${this.driver.location} (container ${this.container})` : this.driver.location;
  }

  /** The repository's directory when it is on this machine (posix), else null. */
  get localDirectory(): string | null {
    return this.driver.localDirectory?.(this.container) ?? null;
  }

  get encrypted(): boolean {
    return this.config.encryption !== null;
  }

  recordName(volumeId: string, backupId: string): string {
    return recordObjectName(checkVolumeId(volumeId), checkBackupId(backupId));
  }

  // ---- records ---------------------------------------------------------------------------------

  /**
   * Every record, or one volume's; malformed records, and records whose objectPrefix is not the
   * layout's, are reported through `onInvalid`, not thrown (and never acted on).
   */
  async listRecords(volumeId?: string, onInvalid?: (name: string, reason: string) => void): Promise<BackupRecord[]> {
    return this.readRecordEntries(await this.listRecordEntries(volumeId), onInvalid);
  }

  /**
   * The records there are now, re-listed, reading only those not in `known` (a record's id, volume,
   * createdAt and objectPrefix never change, so a known one still owns the same objects; its status may
   * have moved on). For a second look at a big catalog without reading every record again.
   */
  async listRecordsSince(known: readonly BackupRecord[]): Promise<BackupRecord[]> {
    const byName = new Map(known.map((r) => [this.recordName(r.volumeId, r.id), r]));
    const entries = await this.listRecordEntries();
    const fresh = await this.readRecordEntries(entries.filter((e) => !byName.has(e.name)));
    return [...entries.flatMap((e) => byName.get(e.name) ?? []), ...fresh];
  }

  /** Read listed records; small objects, so many at a time (a catalog of 10,000 is read in seconds). */
  private async readRecordEntries(entries: readonly ObjectEntry[], onInvalid?: (name: string, reason: string) => void): Promise<BackupRecord[]> {
    const records: BackupRecord[] = [];
    await mapLimit(entries, RECORD_READS_IN_FLIGHT, async (entry) => {
      try {
        const { data } = await this.driver.readObject(this.container, entry.name);
        const record = parseRecord(JSON.parse(data.toString('utf8')));
        if (this.recordName(record.volumeId, record.id) !== entry.name) throw new Error('its id or volume id does not match its name');
        const layout = recordLayoutProblem(this.driver, record);
        if (layout) throw new Error(layout);
        records.push(record);
      } catch (err) {
        if (err instanceof ObjectNotFoundError) return; // deleted while listing
        onInvalid?.(entry.name, errorMessage(err));
      }
    });
    return records.sort((a, b) => a.dataTimestamp.localeCompare(b.dataTimestamp) || a.createdAt.localeCompare(b.createdAt));
  }

  /** The record names under records/ (or one volume's), without reading them. */
  async listRecordEntries(volumeId?: string): Promise<ObjectEntry[]> {
    const prefix = volumeId ? `${RECORDS_PREFIX}${checkVolumeId(volumeId)}/` : RECORDS_PREFIX;
    return (await this.driver.listEntries(this.container, prefix)).filter((e) => e.name.endsWith('.json'));
  }

  /**
   * The record of a backup found by id alone: through its index entry (two reads), else by listing
   * every record (records of older versions have no entry; an entry whose record is not there is stale).
   * The index only says where to look: readRecord checks that the record found is this backup's.
   */
  private async readRecordById(backupId: string): Promise<VersionedRecord> {
    checkBackupId(backupId);
    const volumeId = await this.indexedVolume(backupId);
    if (volumeId !== null) {
      try {
        return await this.readRecord(backupId, volumeId);
      } catch (err) {
        if (!(err instanceof VolumeBackupError && err.code === 'NOT_FOUND')) throw err;
      }
    }
    return this.readRecord(backupId, undefined, await this.findRecordName(backupId));
  }

  /** The volume the index names for a backup, or null (no entry, or one that is not a volume id). */
  private async indexedVolume(backupId: string): Promise<string | null> {
    try {
      const { data } = await this.driver.readObject(this.container, recordIndexName(backupId));
      const volumeId = (JSON.parse(data.toString('utf8')) as { volumeId?: unknown } | null)?.volumeId;
      return isVolumeId(volumeId) ? volumeId : null;
    } catch (err) {
      if (err instanceof ObjectNotFoundError || err instanceof SyntaxError) return null;
      throw err;
    }
  }

  private async findRecordName(backupId: string): Promise<string> {
    checkBackupId(backupId);
    const suffix = `/${backupId}.json`;
    const match = (await this.listRecordEntries()).find((e) => e.name.endsWith(suffix));
    if (!match) throw new VolumeBackupError('NOT_FOUND', `backup ${backupId} not found in ${this.location}`, { backupId });
    return match.name;
  }

  async readRecord(backupId: string, volumeId?: string, listedName?: string): Promise<VersionedRecord> {
    if (!volumeId && !listedName) return this.readRecordById(backupId);
    const name = listedName ?? this.recordName(volumeId!, backupId);
    let stored;
    try {
      stored = await this.driver.readObject(this.container, name);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) {
        throw new VolumeBackupError('NOT_FOUND', `backup ${backupId} not found in ${this.location}`, { backupId });
      }
      throw err;
    }
    let record: BackupRecord;
    try {
      record = parseRecord(JSON.parse(stored.data.toString('utf8')));
    } catch (err) {
      throw new VolumeBackupError('CORRUPT', `the record of backup ${backupId} (${name}) is malformed: ${errorMessage(err)}`, { backupId });
    }
    if (record.id !== backupId || this.recordName(record.volumeId, record.id) !== name) {
      throw new VolumeBackupError('CORRUPT', `the record ${name} does not describe backup ${backupId}: it was edited or moved`, { backupId });
    }
    const layout = recordLayoutProblem(this.driver, record);
    if (layout) {
      throw new VolumeBackupError('CORRUPT', `the record ${name} is not acted on: ${layout} (a crafted or damaged record; remove it by hand once you know where it came from)`, { backupId });
    }
    return { record, etag: stored.etag };
  }

  async getRecord(backupId: string): Promise<BackupRecord> {
    return (await this.readRecord(backupId)).record;
  }

  async createRecord(record: BackupRecord): Promise<VersionedRecord> {
    let checked: BackupRecord;
    try {
      checked = parseRecord(record);
    } catch (err) {
      throw invalid(`invalid backup record for ${String(record?.id).slice(0, 40)}: ${errorMessage(err)}`);
    }
    const layout = recordLayoutProblem(this.driver, checked);
    if (layout) throw invalid(`invalid backup record for ${checked.id}: ${layout}`);
    const etag = await this.driver.putIfAbsent(this.container, this.recordName(checked.volumeId, checked.id), encodeRecord(checked));
    // After the record: an entry never names a record that was not made. Failing to write it costs only speed.
    await this.driver.writeObject(this.container, recordIndexName(checked.id), Buffer.from(JSON.stringify({ volumeId: checked.volumeId }))).catch(() => undefined);
    return { record: checked, etag };
  }

  /**
   * Compare-and-swap update: read, apply `change`, write only if nobody changed the record meanwhile;
   * retried when it lost a race. `change` may throw to refuse (e.g. the status no longer allows it).
   */
  async updateRecord(
    backupId: string,
    change: (current: BackupRecord) => Partial<BackupRecord>,
    volumeId?: string,
  ): Promise<BackupRecord> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await this.readRecord(backupId, volumeId);
      const patch = change(current.record);
      try {
        return await this.replaceRecord(current, patch);
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
        await sleep(5 + Math.random() * 20 * (attempt + 1));
      }
    }
    throw new VolumeBackupError('CONFLICT', `backup ${backupId} kept changing under us; try again`, { backupId });
  }

  /**
   * One compare-and-swap of a record read earlier: `patch` applied to the version `current` names.
   * The status machine (records.ts) is checked here, for every caller; throws PreconditionFailedError
   * when the record changed since it was read.
   */
  async replaceRecord(current: VersionedRecord, patch: Partial<BackupRecord>): Promise<BackupRecord> {
    const { record, etag } = current;
    if (patch.status && patch.status !== record.status && !canTransition(record.status, patch.status)) {
      throw new VolumeBackupError(
        'CONFLICT',
        `backup ${record.id} is ${record.status} and cannot become ${patch.status}`,
        { backupId: record.id, status: record.status },
      );
    }
    const next = parseRecord({ ...record, ...patch, updatedAt: new Date().toISOString() });
    // An owner and a lease belong to a running operation: a record that leaves it keeps neither.
    if (!isTransient(next.status)) Object.assign(next, { owner: null, leaseExpiresAt: null });
    await this.driver.replaceIfMatch(this.container, this.recordName(next.volumeId, next.id), encodeRecord(next), etag);
    return next;
  }

  /** Move a record from one status to another, refusing if it is not in one of `from`. */
  async transition(backupId: string, from: BackupStatus[], to: BackupStatus, extra: Partial<BackupRecord> = {}): Promise<BackupRecord> {
    return this.updateRecord(backupId, (current) => {
      if (!from.includes(current.status)) {
        throw new VolumeBackupError(
          'CONFLICT',
          `backup ${backupId} is ${current.status}; expected ${from.join(' or ')}`,
          { backupId, status: current.status },
        );
      }
      return { ...extra, status: to };
    });
  }

  async deleteRecord(record: BackupRecord): Promise<void> {
    // The entry first: a record left without one (a crash between the two) is found by listing. An entry
    // left stale anyway (an older version deleted the record) leads to no record: readRecordById lists then.
    await this.driver.deleteObject(this.container, recordIndexName(record.id)).catch(() => undefined);
    await this.driver.deleteObject(this.container, this.recordName(record.volumeId, record.id));
  }

  // ---- volume leases: locks/<volumeId>.json, plain JSON (lib/repository/locks.ts gives them meaning) ----

  /** Create a volume's lease object; PreconditionFailedError when there is one. */
  async createLease(volumeId: string, data: Buffer): Promise<string> {
    return this.driver.putIfAbsent(this.container, leaseObjectName(checkVolumeId(volumeId)), data);
  }

  /** A volume's lease object; ObjectNotFoundError when there is none. */
  async readLease(volumeId: string): Promise<StoredObject> {
    return this.driver.readObject(this.container, leaseObjectName(checkVolumeId(volumeId)));
  }

  /** Replace a volume's lease object if it is still the version `etag` names. */
  async replaceLease(volumeId: string, data: Buffer, etag: string): Promise<string> {
    return this.driver.replaceIfMatch(this.container, leaseObjectName(checkVolumeId(volumeId)), data, etag);
  }

  async deleteLease(volumeId: string): Promise<void> {
    await this.driver.deleteObject(this.container, leaseObjectName(checkVolumeId(volumeId)));
  }

  /** The volumes that have a lease object (whatever its state). */
  async listLeaseVolumes(): Promise<string[]> {
    return (await this.driver.listEntries(this.container, LOCKS_PREFIX)).flatMap((e) => volumeOfLeaseName(e.name) ?? []);
  }

  // ---- prune state: prune/orphans/<volumeId>.json, sealed with the codec like every backup object ----

  /** Prune's orphan bookkeeping of a volume; null when there is none or it cannot be read (it only delays deletions). */
  async readPruneState(volumeId: string): Promise<unknown> {
    const name = orphanStateName(checkVolumeId(volumeId));
    try {
      const { data } = await this.driver.readObject(this.container, name);
      return JSON.parse(this.codec.open(data, name).toString('utf8'));
    } catch (err) {
      if (err instanceof ObjectNotFoundError || err instanceof SyntaxError || (err instanceof VolumeBackupError && (err.code === 'CORRUPT' || err.code === 'ENCRYPTION'))) return null;
      throw err;
    }
  }

  async writePruneState(volumeId: string, state: unknown): Promise<void> {
    const name = orphanStateName(checkVolumeId(volumeId));
    await this.driver.writeObject(this.container, name, this.codec.seal(Buffer.from(JSON.stringify(state) + '\n'), name));
  }

  async deletePruneState(volumeId: string): Promise<void> {
    await this.driver.deleteObject(this.container, orphanStateName(checkVolumeId(volumeId)));
  }

  // ---- objects ---------------------------------------------------------------------------------

  /** Write a data, metadata or hash-list object; `stored` is exactly what lands in the store. */
  /** `sha256`: the stored bytes' hex digest when the caller has it (drivers may skip hashing them again). */
  /** Write an object; `known` passes what the caller knows of the data (its digests, its alignment) to the driver. */
  async writeObject(name: string, stored: Buffer, signal?: AbortSignal, known: Pick<ObjectOptions, 'sha256' | 'md5' | 'directIo'> = {}): Promise<void> {
    await this.driver.writeObject(this.container, name, stored, { signal, extraMetadata: this.driver.getExtraMetadata(), ...known });
  }

  async readObject(name: string, signal?: AbortSignal): Promise<Buffer> {
    return (await this.driver.readObject(this.container, name, { signal, extraMetadata: this.driver.getExtraMetadata() })).data;
  }

  /**
   * Read an object into `target` when the driver can (no allocation); -1 when it cannot or it does not fit.
   * `directIo`: `target` is page-aligned and read once (ObjectOptions.directIo).
   */
  async readObjectInto(name: string, target: Uint8Array, signal?: AbortSignal, directIo = false): Promise<number> {
    if (!this.driver.readObjectInto) return -1;
    return this.driver.readObjectInto(this.container, name, target, { signal, extraMetadata: this.driver.getExtraMetadata(), directIo });
  }

  async deleteObject(name: string): Promise<void> {
    await this.driver.deleteObject(this.container, name);
  }

  async listObjects(prefix: string): Promise<ObjectEntry[]> {
    return this.driver.listEntries(this.container, prefix);
  }

  /** Remove what killed writers of this machine left (temporary files); 0 for stores that leave none. */
  async removeStaleTemporaries(under?: string): Promise<number> {
    return this.driver.removeStaleTemporaries ? this.driver.removeStaleTemporaries(this.container, under) : 0;
  }

  /** The object-name prefix the layout gives a new backup. */
  backupPrefix(parts: { volumeId: string; backupId: string; createdAt: Date | string }): string {
    return backupPrefix(this.driver, parts);
  }

  /** True when the store wants each written object's MD5 (ObjectOptions.md5): computed off the event loop. */
  get wantsMd5(): boolean {
    return !!this.driver.wantsMd5;
  }

  /** What every reader and writer of this store is given (Cinder's get_extra_metadata). */
  get extraMetadata(): Record<string, string> | null {
    return this.driver.getExtraMetadata();
  }

  async close(): Promise<void> {
    await this.driver.close?.();
  }
}

export function encodeRecord(record: BackupRecord): Buffer {
  return Buffer.from(JSON.stringify(record, null, 2) + '\n', 'utf8');
}

/** The container's repository.json, or null when it has none. */
export async function readConfigIfAny(driver: Driver, container: string): Promise<RepositoryConfig | null> {
  try {
    return parseRepositoryConfig((await driver.readObject(container, REPOSITORY_CONFIG_NAME)).data);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return null;
    throw err;
  }
}

/** Open the repository in a container; with `create`, make it if it does not exist yet. */
export async function openRepositoryIn(
  driver: Driver,
  options: {
    container?: string;
    host?: string;
    create?: boolean;
    /** The description of a repository made by `create` (default: unencrypted). */
    newConfig?: () => Promise<RepositoryConfig>;
    makeCodec?: (config: RepositoryConfig) => Promise<ObjectCodec>;
  },
): Promise<Repository> {
  // Whatever made the driver, it is used with retries (once: createDriver's are returned as they are).
  driver = withRetries(driver);
  const container = driver.updateContainerName(options.container) ?? options.container ?? '';
  let config = await readConfigIfAny(driver, container);
  if (!config && !options.create) {
    // Backups without their description: say so, rather than "no repository" (a listing that fails, a missing bucket, is just that).
    const found = await repositoryContentAt(driver, container).catch(() => null);
    if (found) throw missingConfigError(driver, container, found);
    throw new VolumeBackupError(
      'NOT_FOUND',
      `no volume-backup repository at ${driver.location}${container ? ` (container ${container})` : ''}: check the path, or make a backup there first`,
    );
  }
  if (!config) {
    await driver.putContainer(container);
    // Never a fresh repository.json over a repository's content: a new id and key would orphan its backups.
    const found = await repositoryContentAt(driver, container);
    if (found) {
      // Another process may have just made this repository and started using it.
      config = await readConfigIfAny(driver, container);
      if (!config) throw missingConfigError(driver, container, found);
    }
  }
  if (!config) {
    const fresh = options.newConfig ? await options.newConfig() : (await import('./config')).newRepositoryConfig(null);
    try {
      await driver.putIfAbsent(container, REPOSITORY_CONFIG_NAME, Buffer.from(JSON.stringify(fresh, null, 2) + '\n'));
      config = fresh;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      config = parseRepositoryConfig((await driver.readObject(container, REPOSITORY_CONFIG_NAME)).data);
    }
  }
  const codec = options.makeCodec ? await options.makeCodec(config) : IDENTITY_CODEC;
  if (config.encryption && codec === IDENTITY_CODEC) {
    throw new VolumeBackupError('ENCRYPTION', `the repository at ${driver.location} is encrypted: give its passphrase (VOLUME_BACKUP_PASSPHRASE or --passphrase-file)`);
  }
  return new Repository(driver, { container, host: options.host, codec, config });
}

// The concurrency helpers moved to lib/util/concurrency.ts; re-exported for the modules that import them from here.
export { forEachChunk, mapLimit, sleep } from '../util/concurrency';

export { invalid };
