/**
 * The plain SDK as a process of its own: `node dist/bench/plain-s3-process.js put|get SPEC.json`. It
 * loads @aws-sdk/client-s3, then PUTs the files of a directory (or GETs the keys) with the same
 * concurrency as the in-process plain calls, and exits. Timed as a whole process, it is the floor for
 * a CLI that moves the same objects: node's and the SDK's start-up included, none of our work (reading,
 * hashing and compressing the volume; records, leases, the conditional-write probe).
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { promises as fs } from 'fs';
import * as path from 'path';

export interface PlainProcessSpec {
  endpoint: string;
  region: string;
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  inFlight: number;
  /** put: object keys and the local files holding their bodies; get: the keys. */
  objects: { key: string; file?: string }[];
}

async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

async function main(op: string, specFile: string): Promise<void> {
  const spec = JSON.parse(await fs.readFile(specFile, 'utf8')) as PlainProcessSpec;
  const client = new S3Client({
    endpoint: spec.endpoint, region: spec.region, forcePathStyle: true, credentials: spec.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    await eachLimited(spec.objects, spec.inFlight, async ({ key, file }) => {
      if (op === 'put') await client.send(new PutObjectCommand({ Bucket: spec.bucket, Key: key, Body: await fs.readFile(path.resolve(file!)) }));
      else await (await client.send(new GetObjectCommand({ Bucket: spec.bucket, Key: key }))).Body!.transformToByteArray();
    });
  } finally {
    client.destroy();
  }
}

if (require.main === module) {
  const [op, specFile] = process.argv.slice(2);
  if ((op !== 'put' && op !== 'get') || !specFile) {
    process.stderr.write('usage: plain-s3-process put|get SPEC.json\n');
    process.exit(2);
  }
  main(op, specFile).catch((err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
}
