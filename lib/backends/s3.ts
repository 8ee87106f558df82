/**
 * The s3 backend: AWS S3 and S3-compatible stores (lib/drivers/s3.ts, whose SDK loads only when used).
 * URL: s3://bucket[/prefix]?endpoint=URL&region=R&forcePathStyle=true&checksums=when_required&…
 */
import { z } from 'zod';
import type { Driver } from '../drivers/driver';
import type { BackendModule } from './backend';
import { S3_DEFAULTS } from '../drivers/s3-settings';
import { BUCKET_FIELDS, RetrySettings, bucketUrl, describeBucket, queryFlag, urlPrefix } from './object-store';

const CHECKSUMS = ['when_supported', 'when_required'] as const;
const SSE = ['AES256', 'aws:kms', 'aws:kms:dsse'] as const;

const settings = z.object({
  bucket: z.string().min(3).max(63),
  prefix: z.string().default(S3_DEFAULTS.prefix),
  endpoint: z.string().url().optional(),
  region: z.string().default(S3_DEFAULTS.region),
  forcePathStyle: z.boolean().default(S3_DEFAULTS.forcePathStyle),
  checksums: z.enum(CHECKSUMS).default(S3_DEFAULTS.checksums),
  accessKeyId: z.string().optional(),
  secretAccessKey: z.string().optional(),
  sessionToken: z.string().optional(),
  storageClass: z.string().optional(),
  serverSideEncryption: z.enum(SSE).optional(),
  kmsKeyId: z.string().optional(),
  /** Use If-None-Match/If-Match for records; turn off for stores that do not enforce them (single writer only). */
  conditionalWrites: z.boolean().default(S3_DEFAULTS.conditionalWrites),
  /** Objects larger than this go up as multipart uploads with parts in parallel. */
  multipartThreshold: z.number().int().positive().optional(),
  partSize: z.number().int().positive().optional(),
  retry: RetrySettings.optional(),
});

export const s3Backend: BackendModule<typeof settings> = {
  name: 's3',
  label: 'Amazon S3 or S3-compatible',
  settings,
  fields: [
    ...BUCKET_FIELDS,
    { name: 'region', label: 'Region', input: 'text', icon: 'map-marker', placeholder: S3_DEFAULTS.region },
    { name: 'forcePathStyle', label: 'Force path-style URLs', input: 'checkbox', initial: false },
    {
      name: 'checksums', label: 'Checksums', input: 'select', icon: 'check-square-o', initial: 'when_supported',
      options: [{ value: 'when_supported', label: 'When supported (AWS default)' }, { value: 'when_required', label: 'Only when required (MinIO, Ceph, R2)' }],
    },
    { name: 'conditionalWrites', label: 'Conditional writes (off: one writer only)', input: 'checkbox', initial: true },
    { name: 'storageClass', label: 'Storage class', input: 'text', icon: 'snowflake-o', placeholder: 'STANDARD' },
    { name: 'serverSideEncryption', label: 'Server-side enc.', input: 'select', icon: 'shield', options: [{ value: '', label: 'none' }, ...SSE.map((v) => ({ value: v, label: v }))] },
    { name: 'kmsKeyId', label: 'KMS key id', input: 'text', icon: 'key' },
    { name: 'accessKeyId', label: 'Access key id', input: 'text', secret: true, icon: 'user', placeholder: 'from the environment when empty' },
    { name: 'secretAccessKey', label: 'Secret key', input: 'password', secret: true, icon: 'lock' },
    { name: 'sessionToken', label: 'Session token', input: 'password', secret: true, icon: 'lock' },
  ],
  url: {
    schemes: ['s3'],
    parse(url, env) {
      const q = url.searchParams;
      return {
        bucket: (url as URL).hostname,
        prefix: urlPrefix(url),
        endpoint: q.get('endpoint') ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL ?? undefined,
        region: q.get('region') ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? undefined,
        forcePathStyle: queryFlag(q.get('forcePathStyle')),
        checksums: q.get('checksums')?.toLowerCase() ?? undefined,
        storageClass: q.get('storageClass') ?? undefined,
        serverSideEncryption: q.get('sse') ?? undefined,
        kmsKeyId: q.get('kmsKeyId') ?? undefined,
        conditionalWrites: queryFlag(q.get('conditionalWrites')),
      };
    },
    format: (s) =>
      bucketUrl('s3', s.bucket, s.prefix, {
        endpoint: s.endpoint,
        region: s.region === S3_DEFAULTS.region ? undefined : s.region,
        forcePathStyle: s.forcePathStyle ? 'true' : undefined,
        checksums: s.checksums === 'when_supported' ? undefined : s.checksums,
        storageClass: s.storageClass,
        sse: s.serverSideEncryption,
        kmsKeyId: s.kmsKeyId,
        conditionalWrites: s.conditionalWrites ? undefined : 'false',
      }),
  },
  capabilities: { conditionalWrites: 'store', multipart: true, localDirectory: false, md5: true },
  describe: (s) => describeBucket('s3', s),
  create(s, context): Driver {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the AWS SDK loads only for an s3 repository
    return (require('../drivers/s3') as typeof import('../drivers/s3')).createS3Driver(s, context);
  },
};
