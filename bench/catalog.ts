/**
 * A big catalog without running thousands of backups: hourly backups of many volumes, made by cloning
 * two real backups of a tiny volume (a full one and an incremental one) under new ids, volumes and
 * times. Every clone keeps to the object layout (its prefix is the layout's for its volume, id and
 * createdAt), has its own copies of the template's objects, a metadata object that names them and its
 * parent, and a record whose metadataSha256 is that metadata's: list, prune, verify and parent choice
 * see it as a real backup. Used by test/catalog.test.ts (small sizes) and by `npm run bench` (10,000).
 *
 * The shape of each volume's history (as Cinder users run it): a full backup every 24 hours, a
 * differential (based on that full) every 6 hours, incrementals (based on the previous hour) between.
 */
import { randomUUID } from 'crypto';
import { spawn } from 'child_process';
import * as os from 'os';
import { promises as fs } from 'fs';
import * as path from 'path';
import { backupPrefix, parseObjectName } from '../lib/repository/layout';
import { listBackupObjects } from '../lib/repository/backup-objects';
import { metadataObjectName, sha256 } from '../lib/repository/format';
import type { BackupKind, BackupRecord } from '../lib/repository/records';
import { Repository, mapLimit } from '../lib/repository/repository';

export const HOUR_MS = 3600_000;
/** 2024-01-01T00:00Z, a Monday: day d is hours 24d…24d+23, ISO week w is hours 168w…168w+167. */
export const CATALOG_START = Date.UTC(2024, 0, 1);

export interface CatalogSpec {
  volumes: number;
  /** Backups per volume, one an hour from CATALOG_START. */
  perVolume: number;
  /** Volume ids are `${volumePrefix}${index, 3 digits}` (default "vol"). */
  volumePrefix?: string;
  /** Objects written at the same time (default 32). */
  concurrency?: number;
}

/** The kind of backup number `hour` of a volume, and the hour of its parent (null: none). */
export function catalogShape(hour: number): { kind: BackupKind; parentHour: number | null } {
  if (hour % 24 === 0) return { kind: 'full', parentHour: null };
  if (hour % 6 === 0) return { kind: 'differential', parentHour: hour - (hour % 24) };
  return { kind: 'incremental', parentHour: hour - 1 };
}

export function catalogVolumeId(spec: CatalogSpec, index: number): string {
  return `${spec.volumePrefix ?? 'vol'}${String(index).padStart(3, '0')}`;
}

export interface GeneratedCatalog {
  /** ids[volume][hour] */
  ids: string[][];
  volumeIds: string[];
  records: number;
  objects: number;
}

interface Template {
  record: BackupRecord;
  /** The template's objects by name (relative to its prefix: "-00001", "_metadata"…) and bytes. */
  objects: { suffix: string; data: Buffer }[];
}

async function readTemplate(repo: Repository, record: BackupRecord): Promise<Template> {
  const entries = await listBackupObjects(repo, record);
  const objects = await mapLimit(entries, 8, async (e) => ({ suffix: e.name.slice(record.objectPrefix.length), data: await repo.readObject(e.name) }));
  return { record, objects };
}

/** Every string in `value` with the template's ids and prefix replaced (the metadata names its own objects). */
function rewrite(value: unknown, swap: (s: string) => string): unknown {
  if (typeof value === 'string') return swap(value);
  if (Array.isArray(value)) return value.map((v) => rewrite(v, swap));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewrite(v, swap)]));
  return value;
}

/**
 * Write spec.volumes × spec.perVolume backups into `repo`, cloned from `full` and `incremental` (two
 * available, unencrypted backups of one tiny volume; the incremental's metadata serves for
 * differentials too). Volumes are written one after another, each volume's backups in parallel.
 */
export async function generateCatalog(
  repo: Repository,
  /** `repo` (default: the target) holds the two template backups. */
  templates: { repo?: Repository; full: BackupRecord; incremental: BackupRecord },
  spec: CatalogSpec,
  onVolume?: (done: number) => void,
): Promise<GeneratedCatalog> {
  if (repo.encrypted) throw new Error('generateCatalog clones unencrypted backups only');
  const source = templates.repo ?? repo;
  const full = await readTemplate(source, templates.full);
  const incremental = await readTemplate(source, templates.incremental);
  const concurrency = spec.concurrency ?? 32;
  const ids: string[][] = [];
  const volumeIds: string[] = [];
  let objects = 0;
  for (let v = 0; v < spec.volumes; v++) {
    const volumeId = catalogVolumeId(spec, v);
    volumeIds.push(volumeId);
    const volumeIdsByHour = Array.from({ length: spec.perVolume }, () => randomUUID());
    ids.push(volumeIdsByHour);
    await mapLimit(volumeIdsByHour, concurrency, async (id, hour) => {
      const { kind, parentHour } = catalogShape(hour);
      const template = kind === 'full' ? full : incremental;
      const t = template.record;
      const parentId = parentHour === null ? null : volumeIdsByHour[parentHour];
      const at = new Date(CATALOG_START + hour * HOUR_MS);
      const iso = at.toISOString();
      const prefix = backupPrefix(repo.driver, { volumeId, backupId: id, createdAt: at });
      const swap = (s: string): string => {
        if (s === t.id) return id;
        if (t.parentId !== null && s === t.parentId) return parentId ?? s;
        if (s === t.volumeId) return volumeId;
        if (s === t.createdAt || s === t.dataTimestamp) return iso;
        return s.startsWith(t.objectPrefix) ? prefix + s.slice(t.objectPrefix.length) : s;
      };
      let metadataSha256: string | null = null;
      // What the clone stores, as a backup's record counts it (verify compares it with the metadata).
      let storedBytes = 0;
      // Segment objects before the metadata that records their digests (format 2, docs/format.md).
      const segments = new Map<string, { length: number; sha256: string }>();
      const isMetadata = (o: { suffix: string }) => o.suffix === metadataObjectName('');
      for (const o of [...template.objects.filter((x) => !isMetadata(x)), ...template.objects.filter(isMetadata)]) {
        let data = o.data;
        if (parseObjectName(prefix + o.suffix)?.object.kind === 'segment') {
          // Its JSON names the backup and its data objects; the block hashes after it stay.
          const end = 4 + data.readUInt32BE(0);
          const json = Buffer.from(JSON.stringify(rewrite(JSON.parse(data.subarray(4, end).toString('utf8')), swap)), 'utf8');
          const head = Buffer.alloc(4);
          head.writeUInt32BE(json.length);
          data = Buffer.concat([head, json, data.subarray(end)]);
          segments.set(prefix + o.suffix, { length: data.length, sha256: sha256(data) });
        }
        if (isMetadata(o)) {
          const json = rewrite(JSON.parse(data.toString('utf8')), swap) as Record<string, unknown>;
          json.kind = kind;
          json.parentId = parentId;
          for (const ref of (json.segments ?? []) as { name: string; length: number; sha256: string }[]) Object.assign(ref, segments.get(ref.name));
          data = Buffer.from(JSON.stringify(json), 'utf8');
          metadataSha256 = sha256(data);
        }
        await repo.writeObject(prefix + o.suffix, data);
        storedBytes += data.length;
        objects++;
      }
      await repo.createRecord({
        ...t,
        id,
        volumeId,
        name: `hourly ${iso}`,
        kind,
        parentId,
        dataTimestamp: iso,
        createdAt: iso,
        updatedAt: iso,
        objectPrefix: prefix,
        metadataSha256,
        storedBytes,
        objectCount: template.objects.length,
        leaseExpiresAt: null,
        sourcePath: `/dev/${volumeId}`,
      });
    });
    onVolume?.(v + 1);
  }
  return { ids, volumeIds, records: spec.volumes * spec.perVolume, objects };
}

// ---- the bench: the catalog commands as whole CLI processes, on posix and on the S3 test server ----

export interface CatalogRow {
  backend: 'posix' | 's3';
  label: string;
  wallSeconds: number;
  note: string;
}

/** The realistic policy of the prune figures (hourly backups kept a day, dailies a week…). */
export const CATALOG_POLICY = ['--keep-hourly', '24', '--keep-daily', '7', '--keep-weekly', '4', '--keep-monthly', '12'];
const TINY_VOLUME_BYTES = 64 * 1024;

/** The templates' volume: 64 KiB of text, one small data object per backup. */
export async function writeTinyVolume(file: string): Promise<string> {
  const bytes = Buffer.alloc(TINY_VOLUME_BYTES);
  for (let i = 0; i < bytes.length; i += 512) bytes.write(`block ${i}\n`, i);
  await fs.writeFile(file, bytes);
  return file;
}

interface Backend {
  name: 'posix' | 's3';
  url: string;
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/**
 * Generate a `spec` catalog on each backend and time list, list --volume-id, prune --dry-run, verify
 * (no --read-data), create --incremental (parent choice) and the sidebar's listing of one page.
 */
export async function runCatalogBench(
  work: string,
  spec: CatalogSpec,
  log: (line: string) => void,
  backends: ('posix' | 's3')[] = ['posix', 's3'],
): Promise<CatalogRow[]> {
  const { openRepository } = await import('../lib/open');
  const cli = path.join(__dirname, 'cli-entry.js');
  const dir = path.join(work, 'catalog');
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  const image = await writeTinyVolume(path.join(dir, 'tiny.img'));
  const rows: CatalogRow[] = [];
  const total = spec.volumes * spec.perVolume;
  for (const name of backends) {
    const backend = await startBackend(name, dir);
    try {
      const run = (args: string[], okCodes = [0]) => timed([cli, ...args, '--repo', backend.url], backend.env, okCodes);
      // The templates: a tiny full backup and an incremental one, in a repository of their own.
      const templateUrl = backend.url.replace(/catalog(?=[?]|$)/, 'templates');
      const make = async (extra: string[]) =>
        JSON.parse((await timed([cli, 'create', '--repo', templateUrl, '--volume', image, '--volume-id', 'template', '--progress', 'none', '--json', ...extra], backend.env)).stdout) as BackupRecord;
      const full = await make([]);
      const incremental = await make(['--incremental']);
      const withEnv = <T>(fn: () => Promise<T>) => withProcessEnv(backend.env, fn);
      const started = Date.now();
      await withEnv(async () => {
        const templates = await openRepository(templateUrl);
        const repo = await openRepository(backend.url, { create: true });
        try {
          await generateCatalog(repo, { repo: templates, full, incremental }, spec, (done) => {
            if (done % 10 === 0 || done === spec.volumes) log(`${name}: ${done}/${spec.volumes} volumes generated`);
          });
        } finally {
          await repo.close();
          await templates.close();
        }
      });
      log(`${name}: ${total} records generated in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      const row = (label: string, m: { wallSeconds: number }, note: string) => {
        rows.push({ backend: name, label, wallSeconds: m.wallSeconds, note });
        log(`${name}: ${label}: ${m.wallSeconds.toFixed(2)} s (${note})`);
      };
      const middle = catalogVolumeId(spec, Math.floor(spec.volumes / 2));
      let m = await run(['list', '--json']);
      row('list', m, `${(JSON.parse(m.stdout) as unknown[]).length} records`);
      m = await run(['list', '--json', '--volume-id', middle]);
      row('list --volume-id', m, `${(JSON.parse(m.stdout) as unknown[]).length} records`);
      m = await run(['prune', '--dry-run', '--json', ...CATALOG_POLICY]);
      row('prune --dry-run', m, `would delete ${(JSON.parse(m.stdout) as { backupsDeleted: number }).backupsDeleted}`);
      m = await run(['verify', '--json'], [0, 1]);
      const verified = JSON.parse(m.stdout) as { ok: boolean; backupsVerified: number };
      row('verify', m, `${verified.backupsVerified} backups, ${verified.ok ? 'ok' : 'PROBLEMS'}`);
      m = await run(['create', '--volume', image, '--volume-id', middle, '--incremental', '--progress', 'none', '--json']);
      const created = JSON.parse(m.stdout) as BackupRecord;
      row('create --incremental', m, `parent ${created.parentId === null ? 'none' : 'chosen'}`);
      m = await run(['show', '--backup', created.id, '--json']);
      row('show', m, 'one backup by id');
      await withEnv(async () => {
        const { sidebarPage } = await import('../plugins/backups-sidebar/view');
        const repo = await openRepository(backend.url);
        try {
          const t = process.hrtime.bigint();
          const page = sidebarPage(await repo.listRecords(), new Date(), { page: 0, size: 50 });
          const wallSeconds = Number(process.hrtime.bigint() - t) / 1e9;
          row('sidebar listing (route work, page 1)', { wallSeconds }, `${page.page.total} backups, ${page.page.pages} pages of ${page.page.size}`);
        } finally {
          await repo.close();
        }
      });
    } finally {
      await backend.stop();
    }
  }
  await fs.rm(dir, { recursive: true, force: true });
  return rows;
}

/** A CLI process to its end, with all of its output (a 10,000-record listing is megabytes) and its wall time. */
function timed(args: string[], env: NodeJS.ProcessEnv, okCodes = [0]): Promise<{ wallSeconds: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => { if (stderr.length < 65536) stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code === null || !okCodes.includes(code)) reject(new Error(`${args.slice(1).join(' ')} exited ${code}: ${stderr}`));
      else resolve({ wallSeconds, stdout: Buffer.concat(out).toString('utf8') });
    });
  });
}

async function withProcessEnv<T>(env: NodeJS.ProcessEnv, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

async function startBackend(name: 'posix' | 's3', dir: string): Promise<Backend> {
  if (name === 'posix') {
    const root = path.join(dir, 'posix');
    await fs.mkdir(root, { recursive: true });
    return { name, url: path.join(root, 'catalog'), env: {}, stop: async () => undefined };
  }
  const { startS3Server, S3_TEST_CREDENTIALS } = await import('../test/servers/s3-server');
  const server = await startS3Server({ dir: path.join(dir, 's3') });
  return {
    name,
    url: `s3://catalog/catalog?endpoint=${server.endpoint}&forcePathStyle=true&checksums=when_required`,
    env: { AWS_ACCESS_KEY_ID: S3_TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_TEST_CREDENTIALS.secretAccessKey },
    stop: server.stop,
  };
}

export function catalogMarkdown(rows: CatalogRow[], spec: CatalogSpec): string {
  const lines = [
    `### The ${(spec.volumes * spec.perVolume).toLocaleString('en')}-record catalog (${spec.volumes} volumes × ${spec.perVolume} hourly backups)`,
    '',
    '| backend | command | seconds | |',
    '|---|---|---:|---|',
    ...rows.map((r) => `| ${r.backend} | ${r.label} | ${r.wallSeconds.toFixed(2)} | ${r.note} |`),
  ];
  return lines.join('\n') + '\n';
}

/** `npm run bench`'s catalog figures: the 10,000-record catalog (100 volumes × 100), to results/catalog.md. */
export async function writeCatalogResults(work: string, resultsDir: string, s3: boolean, log: (line: string) => void): Promise<void> {
  const spec = { volumes: 100, perVolume: 100 };
  const rows = await runCatalogBench(work, spec, log, s3 ? ['posix', 's3'] : ['posix']);
  await fs.writeFile(path.join(resultsDir, 'catalog.md'), catalogMarkdown(rows, spec));
}

if (require.main === module) {
  const [volumes = '100', perVolume = '100', which = 'posix,s3'] = process.argv.slice(2);
  const spec = { volumes: Number(volumes), perVolume: Number(perVolume) };
  const work = process.env.BENCH_WORK ?? path.join(os.tmpdir(), `catalog-bench-${process.pid}`);
  runCatalogBench(work, spec, (l) => process.stderr.write(l + '\n'), which.split(',') as ('posix' | 's3')[]).then(
    (rows) => process.stdout.write(catalogMarkdown(rows, spec)),
    (err) => {
      process.stderr.write(`catalog bench failed: ${(err as Error).stack}\n`);
      process.exitCode = 1;
    },
  );
}
