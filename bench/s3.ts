/**
 * The S3 part: this project's CLI backing up to and restoring from s3://, beside plain GetObject/PutObject
 * calls moving the same objects with the same concurrency — what the bytes cost on that store without any
 * of our work. Two stores, one after the other: s3rver (the test server of test/servers, on 127.0.0.1, in
 * this process) and Ceph RGW (a one-host cluster that scripts/ceph-rgw.sh stands up, when this machine has
 * Ceph's packages; when it cannot start, the report says why and the bench goes on).
 * Each measurement runs `repeat` times, taking turns; the rows give the medians and the ratio to the plain SDK.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { spawnSync } from 'child_process';
import { existsSync, promises as fs } from 'fs';
import * as path from 'path';
import { MIB, fileSha256, generateImage } from './image';
import { measure } from './measure';
import type { S3Row } from './report';

/** Objects in flight for the plain SDK: what the engine has in flight for an object store. */
const IN_FLIGHT = 6;

interface Store {
  name: string;
  endpoint: string;
  region: string;
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const seconds = (since: bigint): number => Number(process.hrtime.bigint() - since) / 1e9;

export async function runS3Bench(root: string, work: string, size: number, log: (line: string) => void, repeat = 1): Promise<{ rows: S3Row[]; note?: string }> {
  const dir = path.join(work, 's3');
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  const image = path.join(dir, 'vol.img');
  const sha = await generateImage(image, size, 3);
  const rows: S3Row[] = [];
  const notes: string[] = [];
  try {
    const bench = (store: Store) => benchStore(root, store, dir, image, sha, repeat, log);
    for (const part of [await withS3rver(root, dir, bench), await withRgw(root, dir, log, bench)]) {
      if (typeof part === 'string') notes.push(part);
      else {
        rows.push(...part.rows);
        if (part.note) notes.push(part.note);
      }
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  return { rows, note: notes.length ? notes.join('; ') : undefined };
}

/** Run `fn` against s3rver; a string says why it could not. */
async function withS3rver<T>(root: string, dir: string, fn: (store: Store) => Promise<T>): Promise<T | string> {
  const local = path.join(__dirname, '..', 'test', 'servers', 's3-server.js');
  const modulePath = existsSync(local) ? local : path.join(root, 'dist', 'test', 'servers', 's3-server.js');
  if (!existsSync(modulePath)) return 'the S3 test server (test/servers/s3-server.ts) is not built: s3rver part skipped';
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a path known only at run time (the built S3 test server, if any)
  const { startS3Server, S3_TEST_CREDENTIALS } = require(modulePath) as typeof import('../test/servers/s3-server');
  const server = await startS3Server({ dir: path.join(dir, 'store') });
  try {
    return await fn({ name: 's3rver', endpoint: server.endpoint, region: 'us-east-1', bucket: 'bench', credentials: S3_TEST_CREDENTIALS });
  } finally {
    await server.stop();
  }
}

/** Stand up a one-host Ceph RGW (scripts/ceph-rgw.sh), run `fn` against it, stop it; a string says why it could not. */
async function withRgw<T>(root: string, dir: string, log: (line: string) => void, fn: (store: Store) => Promise<T>): Promise<T | string> {
  // One already running (the test suites' environment, scripts/ceph-rgw.sh env): use it as it is.
  if (process.env.S3_TEST_STORE === 'rgw' && process.env.S3_TEST_ENDPOINT) return fn(storeFromEnv(process.env as Record<string, string>));
  const script = path.join(root, 'scripts', 'ceph-rgw.sh');
  if (!existsSync(script)) return 'scripts/ceph-rgw.sh not found: RGW part skipped';
  const cluster = path.join(dir, 'rgw');
  log('s3: starting a one-host Ceph RGW (scripts/ceph-rgw.sh)');
  const started = spawnSync('bash', [script, 'start', cluster], { encoding: 'utf8' });
  try {
    if (started.status !== 0) return `Ceph RGW could not start (scripts/ceph-rgw.sh exit ${started.status}: ${lastLine(started.stderr)}): RGW part skipped`;
    return await fn(storeFromEnv(parseEnv(await fs.readFile(path.join(cluster, 'env'), 'utf8'))));
  } finally {
    spawnSync('bash', [script, 'stop', cluster], { stdio: 'ignore' });
  }
}

function storeFromEnv(env: Record<string, string>): Store {
  return {
    name: 'Ceph RGW',
    endpoint: env.S3_TEST_ENDPOINT,
    region: env.S3_TEST_REGION ?? 'us-east-1',
    bucket: env.S3_TEST_BUCKET,
    credentials: { accessKeyId: env.S3_TEST_ACCESS_KEY_ID, secretAccessKey: env.S3_TEST_SECRET_ACCESS_KEY },
  };
}

const lastLine = (text: string): string => text.trim().split('\n').filter(Boolean).pop()?.slice(0, 300) ?? '';

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/^export (\w+)=(.*)$/gm)) out[m[1]] = m[2].replace(/^['"]|['"]$/g, '');
  return out;
}

async function benchStore(root: string, store: Store, dir: string, image: string, sha: string, repeat: number, log: (line: string) => void): Promise<{ rows: S3Row[]; note?: string }> {
  const env = { AWS_ACCESS_KEY_ID: store.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: store.credentials.secretAccessKey };
  const cli = path.join(root, 'bin', 'volume-backup.js'); // as installed: the bin script itself
  const client = new S3Client({
    endpoint: store.endpoint, region: store.region, forcePathStyle: true, credentials: store.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const times = { create: [] as number[], put: [] as number[], restore: [] as number[], get: [] as number[], putProcess: [] as number[], getProcess: [] as number[] };
  const plainProcess = path.join(__dirname, 'plain-s3-process.js');
  const bodiesDir = path.join(dir, 'plain-bodies');
  let stored = { bytes: 0, objects: 0, rss: 0 };
  let restoreRss = 0;
  let total = 0;
  let ok = true;
  try {
    for (let round = 0; round < repeat; round++) {
      const prefix = `bench-${Date.now()}-${round}`;
      const repo = `s3://${store.bucket}/${prefix}?endpoint=${store.endpoint}&region=${store.region}&forcePathStyle=true&checksums=when_required`;
      log(`s3 (${store.name}) round ${round + 1}/${repeat}: backup, plain GetObject/PutObject of the same objects, restore`);
      const created = await measure(cli, ['create', '--repo', repo, '--volume', image, '--volume-id', 's3bench', '--progress', 'none', '--json'], { env });
      const record = JSON.parse(created.stdout) as { id: string; storedBytes: number; objectCount: number };
      stored = { bytes: record.storedBytes, objects: record.objectCount, rss: Math.max(stored.rss, created.peakRssBytes ?? 0) };
      times.create.push(created.wallSeconds);

      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: store.bucket, Prefix: `${prefix}/volume_`, ContinuationToken: token }));
        for (const o of page.Contents ?? []) keys.push(o.Key!);
        token = page.NextContinuationToken;
      } while (token);

      const bodies = new Map<string, Uint8Array>();
      let started = process.hrtime.bigint();
      await eachLimited(keys, IN_FLIGHT, async (key) => {
        const got = await client.send(new GetObjectCommand({ Bucket: store.bucket, Key: key }));
        bodies.set(key, await got.Body!.transformToByteArray());
      });
      times.get.push(seconds(started));
      total = [...bodies.values()].reduce((n, b) => n + b.length, 0);
      started = process.hrtime.bigint();
      await eachLimited(keys, IN_FLIGHT, async (key) => {
        await client.send(new PutObjectCommand({ Bucket: store.bucket, Key: `${prefix}-plain/${key}`, Body: bodies.get(key) }));
      });
      times.put.push(seconds(started));
      // The same PUTs and GETs from a process of its own (node and the SDK starting, as our CLI does).
      await fs.mkdir(bodiesDir, { recursive: true });
      const objects = await Promise.all(keys.map(async (key, k) => {
        const file = path.join(bodiesDir, String(k));
        await fs.writeFile(file, bodies.get(key)!);
        return { key: `${prefix}-process/${key}`, file };
      }));
      bodies.clear();
      const specFile = path.join(dir, 'plain-spec.json');
      const spec = { endpoint: store.endpoint, region: store.region, bucket: store.bucket, credentials: store.credentials, inFlight: IN_FLIGHT };
      await fs.writeFile(specFile, JSON.stringify({ ...spec, objects }));
      times.putProcess.push((await measure(process.execPath, [plainProcess, 'put', specFile])).wallSeconds);
      await fs.writeFile(specFile, JSON.stringify({ ...spec, objects: keys.map((key) => ({ key })) }));
      times.getProcess.push((await measure(process.execPath, [plainProcess, 'get', specFile])).wallSeconds);
      await fs.rm(bodiesDir, { recursive: true, force: true });

      const target = path.join(dir, 'restored.img');
      await fs.rm(target, { force: true });
      const restored = await measure(cli, ['restore', '--repo', repo, '--backup', record.id, '--target', target, '--progress', 'none'], { env });
      times.restore.push(restored.wallSeconds);
      restoreRss = Math.max(restoreRss, restored.peakRssBytes ?? 0);
      ok &&= (await fileSha256(target)) === sha;
      await fs.rm(target, { force: true });
    }
  } catch (err) {
    return { rows: [], note: `S3 part on ${store.name} failed: ${(err as Error).message}` };
  } finally {
    client.destroy();
  }
  const size = (await fs.stat(image)).size;
  const put = median(times.put);
  const get = median(times.get);
  const runs = repeat > 1 ? `, median of ${repeat}` : '';
  const rows: S3Row[] = [
    { store: store.name, label: 'volume-backup create → s3://', bytes: stored.bytes, wallSeconds: median(times.create), plainSeconds: put, processSeconds: median(times.putProcess), note: `${(size / MIB).toFixed(0)} MiB image, ${stored.objects} objects, peak RSS ${(stored.rss / MIB).toFixed(0)} MiB${runs}` },
    { store: store.name, label: 'plain PutObject, same objects', bytes: total, wallSeconds: put, note: `${IN_FLIGHT} in flight, no Content-MD5${runs}` },
    { store: store.name, label: 'plain PutObject, same objects, own process', bytes: total, wallSeconds: median(times.putProcess), note: `as above, from a new node process (SDK loaded, objects read from files)${runs}` },
    { store: store.name, label: 'volume-backup restore ← s3://', bytes: total, wallSeconds: median(times.restore), plainSeconds: get, processSeconds: median(times.getProcess), note: `every block verified; restored image ${ok ? 'hash equal' : 'DIFFERS'}, peak RSS ${(restoreRss / MIB).toFixed(0)} MiB${runs}` },
    { store: store.name, label: 'plain GetObject, same objects', bytes: total, wallSeconds: get, note: `${IN_FLIGHT} in flight${runs}` },
    { store: store.name, label: 'plain GetObject, same objects, own process', bytes: total, wallSeconds: median(times.getProcess), note: `as above, from a new node process${runs}` },
  ];
  return { rows, note: ok ? undefined : `the S3 restore on ${store.name} did NOT match its source` };
}
