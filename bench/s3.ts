/**
 * The S3 part: this project's CLI backing up to and restoring from s3:// on s3rver (the test server of
 * test/servers, on 127.0.0.1), beside plain GetObject/PutObject calls moving the same objects with the
 * same concurrency — what the bytes cost on this store without any of our work.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { existsSync, promises as fs } from 'fs';
import * as path from 'path';
import { MIB, fileSha256, generateImage } from './image';
import { measure } from './measure';
import type { S3Row } from './report';

const BUCKET = 'bench';
const IN_FLIGHT = 4;

async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

export async function runS3Bench(root: string, work: string, size: number, log: (line: string) => void): Promise<{ rows: S3Row[]; note?: string }> {
  const serverModule = path.join(root, 'dist', 'test', 'servers', 's3-server.js');
  const local = path.join(__dirname, '..', 'test', 'servers', 's3-server.js');
  const modulePath = existsSync(local) ? local : serverModule;
  if (!existsSync(modulePath)) return { rows: [], note: 'the S3 test server (test/servers/s3-server.ts) is not built: S3 part skipped' };
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a path known only at run time (the built S3 test server, if any)
  const { startS3Server, S3_TEST_CREDENTIALS } = require(modulePath) as typeof import('../test/servers/s3-server');
  const dir = path.join(work, 's3');
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  const image = path.join(dir, 'vol.img');
  const sha = await generateImage(image, size, 3);
  const server = await startS3Server({ dir: path.join(dir, 'store') });
  const env = { AWS_ACCESS_KEY_ID: S3_TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_TEST_CREDENTIALS.secretAccessKey };
  const repo = `s3://${BUCKET}/repo?endpoint=${server.endpoint}&forcePathStyle=true&checksums=when_required`;
  const cli = path.join(root, 'bin', 'volume-backup.js'); // as installed: the bin script itself
  const client = new S3Client({
    endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3_TEST_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const rows: S3Row[] = [];
  try {
    log(`s3: backup of a ${(size / MIB).toFixed(0)} MiB image to s3rver`);
    const created = await measure(cli, ['create', '--repo', repo, '--volume', image, '--volume-id', 's3bench', '--progress', 'none', '--json'], { env });
    const record = JSON.parse(created.stdout) as { id: string; storedBytes: number; objectCount: number };
    rows.push({ label: 'volume-backup create → s3://', bytes: record.storedBytes, wallSeconds: created.wallSeconds, note: `${(size / MIB).toFixed(0)} MiB image, ${record.objectCount} objects, peak RSS ${((created.peakRssBytes ?? 0) / MIB).toFixed(0)} MiB` });

    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'repo/volume_', ContinuationToken: token }));
      for (const o of page.Contents ?? []) keys.push(o.Key!);
      token = page.NextContinuationToken;
    } while (token);

    log('s3: plain GetObject of the same objects');
    const bodies = new Map<string, Uint8Array>();
    let started = process.hrtime.bigint();
    await eachLimited(keys, IN_FLIGHT, async (key) => {
      const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      bodies.set(key, await got.Body!.transformToByteArray());
    });
    const getSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const total = [...bodies.values()].reduce((n, b) => n + b.length, 0);

    log('s3: plain PutObject of the same bytes');
    started = process.hrtime.bigint();
    await eachLimited(keys, IN_FLIGHT, async (key) => {
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `plain/${key}`, Body: bodies.get(key) }));
    });
    const putSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    bodies.clear();
    rows.push({ label: 'plain PutObject, same objects', bytes: total, wallSeconds: putSeconds, note: `${keys.length} objects, ${IN_FLIGHT} in flight, no Content-MD5` });

    log('s3: restore from s3rver');
    const target = path.join(dir, 'restored.img');
    const restored = await measure(cli, ['restore', '--repo', repo, '--backup', record.id, '--target', target, '--progress', 'none'], { env });
    const ok = (await fileSha256(target)) === sha;
    rows.push({ label: 'volume-backup restore ← s3://', bytes: total, wallSeconds: restored.wallSeconds, note: `every block verified; restored image ${ok ? 'hash equal' : 'DIFFERS'}` });
    rows.push({ label: 'plain GetObject, same objects', bytes: total, wallSeconds: getSeconds, note: `${IN_FLIGHT} in flight` });
    return { rows, note: ok ? undefined : 'the S3 restore did NOT match its source' };
  } catch (err) {
    return { rows, note: `S3 part failed: ${(err as Error).message}` };
  } finally {
    client.destroy();
    await server.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}
