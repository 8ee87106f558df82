/**
 * A Cinder backup store, read-only: the posix/NFS layout (`cinder:PATH`, containers
 * <id[0:2]>/<id[2:4]>/<id> or a custom backup_container directory, objects named
 * volume_<v>_<ts>_backup_<id>-NNNNN) or the object-store layout (`cinder+s3://`, `cinder+gs://`: names
 * volume_<v>/<ts>/az_<az>_backup_<id>-NNNNN from the bucket's root). Backups are found from their
 * `_metadata` objects; nothing here writes.
 */
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import { DriverSpec, backends, createDriver, parseRepositoryUrl, requireBackend } from '../backends/registry';
import type { Driver, ObjectEntry } from '../drivers/driver';
import { ObjectNotFoundError, VolumeBackupError, invalid } from '../errors';
import { decompressCinder } from './decompress';
import { CinderMetadata, CinderObject, CinderSha256File, objectsOf, parseCinderTime, parseSidecar } from './metadata';

export type CinderLayout = 'posix' | 'object';

export interface CinderBackup {
  id: string;
  volumeId: string;
  name: string;
  description: string;
  createdAt: Date;
  parentId: string | null;
  /** Directory of the backup's objects relative to the store's root ("" in the object-store layout: names are keys). */
  base: string;
  /** Cinder's service_metadata: the object-name prefix. */
  prefix: string;
  objects: CinderObject[];
  /** Bytes the backup's data objects take in the store (as listed). */
  storedBytes: number;
  /** Names with the backup's prefix that its metadata does not list (Cinder's restore refuses these). */
  unlisted: string[];
  /** Listed objects that are not in the store. */
  missing: string[];
  metadata: CinderMetadata;
}

export const CINDER_URL_FORMS = 'cinder:PATH, or cinder+SCHEME://… with the URL of any object-store backend (cinder+s3://bucket[/prefix]?…, cinder+gs://bucket[/prefix]?…)';

/**
 * A Cinder store URL to a driver spec and the layout to read. `cinder:PATH` is a directory of the
 * backend plain paths belong to (posix); `cinder+SCHEME:…` is the URL that backend's registry entry
 * parses (s3, gs, or a third-party backend's scheme).
 */
export function parseCinderUrl(url: string, env: NodeJS.ProcessEnv = process.env): { spec: DriverSpec; layout: CinderLayout } {
  const m = /^cinder(?:\+([a-z][a-z0-9+.-]*))?:(.*)$/is.exec(url);
  if (!m) throw invalid(`not a Cinder store URL: use ${CINDER_URL_FORMS}`);
  if (!m[1]) {
    const p = m[2].startsWith('//') ? decodeURIComponent(new URL(`file:${m[2]}`).pathname) : m[2];
    if (!p) throw invalid('cinder: needs the path of the backup directory (backup_posix_path), e.g. cinder:/var/lib/cinder/backup');
    const paths = backends().find((b) => b.url.plainPath);
    if (!paths) throw invalid('cinder:PATH needs a backend for plain paths (posix), and none is registered');
    const spec = { backend: paths.name, ...paths.url.parse({ pathname: p, searchParams: new URLSearchParams() }, env) };
    return { spec, layout: layoutOf(spec) };
  }
  const scheme = m[1].toLowerCase();
  if (!backends().some((b) => b.url.schemes.includes(scheme))) {
    const schemes = backends().flatMap((b) => b.url.schemes.map((s) => `cinder+${s}:`));
    throw invalid(`unsupported Cinder store URL scheme "cinder+${scheme}:": use cinder:PATH or one of ${schemes.join(', ')}`);
  }
  const spec = parseRepositoryUrl(`${scheme}:${m[2]}`, env);
  return { spec, layout: layoutOf(spec) };
}

/**
 * Which of Cinder's layouts a backend holds: a local directory (posix, NFS) has the PosixBackupDriver's
 * (<id[0:2]>/<id[2:4]>/<id>/…), every object store the chunked object-store one (names from the root).
 */
function layoutOf(spec: DriverSpec): CinderLayout {
  return requireBackend(spec.backend).capabilities.localDirectory ? 'posix' : 'object';
}

export interface CinderScan {
  backups: CinderBackup[];
  damaged: { name: string; reason: string }[];
  /** Objects named as a backup's data or hash list whose backup has no _metadata object. */
  orphans: string[];
}

const METADATA_SUFFIX = '_metadata';
/** A Cinder data object or hash list: <prefix>-NNNNN or <prefix>_sha256file, the prefix naming a backup. */
const OBJECT_NAME = /^(.*_backup_[^/]+?)(?:-\d{5}|_sha256file)$/;
const SHA_SUFFIX = '_sha256file';

export class CinderStore {
  readonly readOnly = true;
  private scanned: Promise<CinderScan> | null = null;
  private byId: Promise<Map<string, CinderBackup[]>> | null = null;

  constructor(
    readonly driver: Driver,
    readonly layout: CinderLayout,
  ) {}

  get location(): string {
    return `cinder ${this.layout === 'posix' ? 'posix' : 'object-store'} layout at ${this.driver.location}`;
  }

  /** The local directory of a posix store: a restore never writes inside it. */
  localDirectory(): string | null {
    return this.driver.localDirectory?.('') ?? null;
  }

  /** Every backup whose `_metadata` parses, the metadata objects that do not, and objects of backups without one. */
  scan(): Promise<CinderScan> {
    this.scanned ??= this.doScan();
    return this.scanned;
  }

  async list(volumeId?: string): Promise<CinderBackup[]> {
    const { backups } = await this.scan();
    return backups.filter((b) => !volumeId || b.volumeId === volumeId).sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.id.localeCompare(b.id));
  }

  async get(id: string): Promise<CinderBackup> {
    // Indexed once: chains of thousands of backups are walked for every backup that list shows.
    this.byId ??= this.scan().then(({ backups }) => {
      const index = new Map<string, CinderBackup[]>();
      for (const b of backups) index.set(b.id, [...(index.get(b.id) ?? []), b]);
      return index;
    });
    const found = (await this.byId).get(id) ?? [];
    if (found.length === 0) throw new VolumeBackupError('NOT_FOUND', `backup ${id} is not in the ${this.location} (no ${METADATA_SUFFIX} object names it)`);
    if (found.length > 1) throw new VolumeBackupError('CORRUPT', `backup ${id} has ${found.length} ${METADATA_SUFFIX} objects in the ${this.location}: ${found.map((b) => this.key(b, b.prefix + METADATA_SUFFIX)).join(', ')}`);
    return found[0];
  }

  /** The chain of a backup, its full backup first, following parent_id. */
  async chain(id: string): Promise<CinderBackup[]> {
    const chain: CinderBackup[] = [];
    const seen = new Set<string>();
    let current: string | null = id;
    while (current) {
      if (seen.has(current)) throw new VolumeBackupError('CORRUPT', `the chain of backup ${id} loops at ${current}`);
      seen.add(current);
      let b: CinderBackup;
      try {
        b = await this.get(current);
      } catch (err) {
        if (err instanceof VolumeBackupError && err.code === 'NOT_FOUND' && current !== id) {
          throw new VolumeBackupError('OBJECT_MISSING', `backup ${chain[0].id} needs its parent ${current}, which is not in the ${this.location}`);
        }
        throw err;
      }
      chain.unshift(b);
      current = b.parentId;
    }
    return chain;
  }

  /** The backup's `_sha256file`, checked to be this backup's. */
  async readSha256(b: CinderBackup): Promise<CinderSha256File> {
    const name = this.key(b, b.prefix + SHA_SUFFIX);
    const data = await this.read(b, name, `${SHA_SUFFIX} object`);
    const sha = parseSidecar(CinderSha256File, data, `the ${SHA_SUFFIX} object ${name} of backup ${b.id}`);
    if (sha.backup_id !== b.id) throw new VolumeBackupError('CORRUPT', `the ${SHA_SUFFIX} object ${name} belongs to backup ${sha.backup_id}, not ${b.id}`);
    return sha;
  }

  /** A data object, decompressed; its length and MD5 (of the uncompressed data) checked against the metadata. */
  async readData(b: CinderBackup, obj: CinderObject): Promise<Buffer> {
    const name = this.key(b, obj.name);
    const stored = await this.read(b, name, 'object');
    let data: Buffer;
    try {
      data = await decompressCinder(obj.compression, stored);
    } catch (err) {
      throw new VolumeBackupError('CORRUPT', `object ${name} of backup ${b.id} does not decompress (${obj.compression}): ${(err as Error).message}`);
    }
    if (data.length !== obj.length) throw new VolumeBackupError('CORRUPT', `object ${name} of backup ${b.id} holds ${data.length} bytes, its metadata says ${obj.length}`);
    const md5 = createHash('md5').update(data).digest('hex');
    if (md5 !== obj.md5) throw new VolumeBackupError('CORRUPT', `object ${name} of backup ${b.id} does not match its MD5 (metadata ${obj.md5}, data ${md5})`);
    return data;
  }

  /** The name of an object of a backup relative to the store's root. */
  key(b: CinderBackup, name: string): string {
    return b.base ? `${b.base}/${name}` : name;
  }

  async close(): Promise<void> {
    await this.driver.close?.();
  }

  private async read(b: CinderBackup, name: string, what: string): Promise<Buffer> {
    try {
      return (await this.driver.readObject('', name)).data;
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new VolumeBackupError('OBJECT_MISSING', `${what} ${name} of backup ${b.id} is missing from the ${this.location}`);
      throw err;
    }
  }

  private async doScan(): Promise<CinderScan> {
    const root = this.localDirectory();
    // A mistyped path would otherwise look like an empty store.
    if (root && !(await fs.stat(root).then((st) => st.isDirectory(), () => false))) throw new VolumeBackupError('NOT_FOUND', `no Cinder store at ${root}: it is not a directory (give Cinder's backup_posix_path)`);
    const entries = await this.driver.listEntries('', '');
    // Grouped by directory (posix container; object stores: volume_<v>/<ts>): a backup's objects are beside its _metadata.
    const byDir = new Map<string, ObjectEntry[]>();
    for (const e of entries) {
      const dir = dirOf(e.name);
      const list = byDir.get(dir);
      if (list) list.push(e);
      else byDir.set(dir, [e]);
    }
    const backups: CinderBackup[] = [];
    const damaged: { name: string; reason: string }[] = [];
    for (const e of entries.filter((x) => x.name.endsWith(METADATA_SUFFIX))) {
      const base = this.layout === 'posix' ? dirOf(e.name) : '';
      const prefix = (base ? e.name.slice(base.length + 1) : e.name).slice(0, -METADATA_SUFFIX.length);
      try {
        const data = (await this.driver.readObject('', e.name)).data;
        const metadata = parseSidecar(CinderMetadata, data, `the ${METADATA_SUFFIX} object ${e.name}`);
        const objects = objectsOf(metadata);
        const siblings = (byDir.get(dirOf(e.name)) ?? []).filter((x) => (base ? x.name.slice(base.length + 1) : x.name).startsWith(prefix));
        const listed = new Set(objects.map((o) => o.name));
        const present = new Map(siblings.map((x) => [base ? x.name.slice(base.length + 1) : x.name, x.size]));
        backups.push({
          id: metadata.backup_id,
          volumeId: metadata.volume_id,
          name: metadata.backup_name ?? '',
          description: metadata.backup_description ?? '',
          createdAt: parseCinderTime(metadata.created_at),
          parentId: metadata.parent_id ?? null,
          base,
          prefix,
          objects,
          storedBytes: objects.reduce((n, o) => n + (present.get(o.name) ?? 0), 0),
          unlisted: [...present.keys()].filter((n) => !listed.has(n) && n !== prefix + METADATA_SUFFIX && n !== prefix + SHA_SUFFIX).sort(),
          missing: objects.map((o) => o.name).filter((n) => !present.has(n)),
          metadata,
        });
      } catch (err) {
        damaged.push({ name: e.name, reason: (err as Error).message });
      }
    }
    // Data objects and hash lists whose backup has no (readable) _metadata: that backup cannot be restored.
    const owned = new Set([...backups.map((b) => this.key(b, b.prefix)), ...damaged.map((d) => d.name.slice(0, -METADATA_SUFFIX.length))]);
    const orphans = entries.map((e) => e.name).filter((n) => {
      const m = OBJECT_NAME.exec(n);
      return m !== null && !owned.has(m[1]);
    });
    return { backups, damaged, orphans };
  }
}

function dirOf(name: string): string {
  const slash = name.lastIndexOf('/');
  return slash < 0 ? '' : name.slice(0, slash);
}

/**
 * Open a Cinder store (read-only) from its URL, or from a driver spec (a driver-config set to hold a
 * Cinder store: a local directory in Cinder's posix layout, any object store in its object-store layout).
 */
export function openCinderStore(where: string | DriverSpec, options: { log?: { info(m: string): void; warn(m: string): void } } = {}): CinderStore {
  const { spec, layout } = typeof where === 'string' ? parseCinderUrl(where) : { spec: where, layout: layoutOf(where) };
  return new CinderStore(createDriver(spec, { log: options.log }), layout);
}

/** What a write to a Cinder store gets: a clear refusal. */
export function refuseWrite(): VolumeBackupError {
  return invalid('a Cinder store (cinder:…, cinder+s3://…, cinder+gs://…, …) is read-only: list, show, restore, verify and import --from read it, nothing writes to it. Import its backups into a repository (volume-backup import --repo R --from cinder:…) and work there');
}
