/**
 * From a driver spec (driver-config node) or a repository URL (CLI) to a Driver. URL forms:
 *   /abs/path, ./rel/path, file:///abs/path                     posix
 *   s3://bucket[/prefix]?endpoint=URL&region=R&forcePathStyle=true&checksums=when_required
 *   gs://bucket[/prefix]?endpoint=URL&project=P
 * Secrets never come from URLs: the environment or the node's credentials supply them.
 */
import { z } from 'zod';
import { invalid } from '../errors';
import { Driver } from './driver';
import { PosixDriver } from './posix';

export const PosixSpec = z.object({
  backend: z.literal('posix'),
  /** Base directory of the repository. */
  path: z.string().min(1),
});

/** Optional tuning of the object stores' retries (lib/drivers/retry.ts); the defaults suit most links. */
export const RetrySpec = z
  .object({
    maxAttempts: z.number().int().min(1).max(100),
    maxElapsedMs: z.number().int().positive(),
    baseDelayMs: z.number().int().min(0),
    maxDelayMs: z.number().int().min(0),
    attemptTimeoutMs: z.number().int().positive(),
  })
  .partial();

export const S3Spec = z.object({
  backend: z.literal('s3'),
  bucket: z.string().min(3).max(63),
  prefix: z.string().default(''),
  endpoint: z.string().url().optional(),
  region: z.string().default('us-east-1'),
  forcePathStyle: z.boolean().default(false),
  /** 'when_supported' is the SDK default (CRC32, aws-chunked); most S3-compatible stores need 'when_required'. */
  checksums: z.enum(['when_supported', 'when_required']).default('when_supported'),
  accessKeyId: z.string().optional(),
  secretAccessKey: z.string().optional(),
  sessionToken: z.string().optional(),
  storageClass: z.string().optional(),
  serverSideEncryption: z.enum(['AES256', 'aws:kms', 'aws:kms:dsse']).optional(),
  kmsKeyId: z.string().optional(),
  /** Use If-None-Match/If-Match for records; turn off for stores that do not enforce them (single writer only). */
  conditionalWrites: z.boolean().default(true),
  /** Objects larger than this go up as multipart uploads with parts in parallel. */
  multipartThreshold: z.number().int().positive().optional(),
  partSize: z.number().int().positive().optional(),
  retry: RetrySpec.optional(),
});

export const GcsSpec = z.object({
  backend: z.literal('gcs'),
  bucket: z.string().min(3).max(222),
  prefix: z.string().default(''),
  project: z.string().optional(),
  endpoint: z.string().url().optional(),
  /** Service-account key JSON (from the node's credentials or a file named by GOOGLE_APPLICATION_CREDENTIALS). */
  credentials: z.string().optional(),
  resumableThreshold: z.number().int().positive().optional(),
  retry: RetrySpec.optional(),
});

export const DriverSpec = z.discriminatedUnion('backend', [PosixSpec, S3Spec, GcsSpec]);
export type DriverSpec = z.input<typeof DriverSpec>;

export interface DriverContext {
  log?: { info(message: string): void; warn(message: string): void };
}

export type DriverFactory = (spec: z.infer<typeof DriverSpec>, context: DriverContext) => Driver;

const factories: Record<string, DriverFactory> = {
  posix: (spec) => new PosixDriver({ path: (spec as z.infer<typeof PosixSpec>).path }),
};

/** Backends register here; s3 and gcs load their SDKs only when used. */
export function registerDriver(backend: string, factory: DriverFactory): void {
  factories[backend] = factory;
}

export function createDriver(spec: DriverSpec, context: DriverContext = {}): Driver {
  const parsed = DriverSpec.safeParse(spec);
  if (!parsed.success) {
    throw invalid(`invalid storage settings: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'backend'}: ${i.message}`).join('; ')}`);
  }
  const factory = factories[parsed.data.backend] ?? lazyFactory(parsed.data.backend);
  return factory(parsed.data, context);
}

function lazyFactory(backend: string): DriverFactory {
  // Loaded on demand so that a posix-only user never pays for the cloud SDKs.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the AWS SDK loads only for a repository that uses it
  if (backend === 's3') return require('./s3').createS3Driver as DriverFactory;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the Google Cloud SDK loads only for a repository that uses it
  if (backend === 'gcs') return require('./gcs').createGcsDriver as DriverFactory;
  throw invalid(`unknown storage backend ${JSON.stringify(backend)}: use posix, s3 or gcs`);
}

/** Parse a --repo value into a driver spec. */
export function parseRepositoryUrl(repo: string, env: NodeJS.ProcessEnv = process.env): DriverSpec {
  if (typeof repo !== 'string' || repo.length === 0 || repo.includes('\0')) throw invalid('--repo needs a path or a URL');
  if (repo.startsWith('file://')) {
    const url = new URL(repo);
    return { backend: 'posix', path: decodeURIComponent(url.pathname) };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(repo)?.[1]?.toLowerCase();
  if (!scheme) return { backend: 'posix', path: repo };
  const url = new URL(repo);
  const q = url.searchParams;
  const prefix = decodeURIComponent(url.pathname.replace(/^\/+/, ''));
  const flag = (v: string | null) => (v === null ? undefined : /^(1|true|yes|on)$/i.test(v));
  if (scheme === 's3') {
    return {
      backend: 's3',
      bucket: url.hostname,
      prefix,
      endpoint: q.get('endpoint') ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL ?? undefined,
      region: q.get('region') ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
      forcePathStyle: flag(q.get('forcePathStyle')) ?? false,
      checksums: (q.get('checksums')?.toLowerCase() as 'when_required' | 'when_supported' | undefined) ?? 'when_supported',
      storageClass: q.get('storageClass') ?? undefined,
      serverSideEncryption: (q.get('sse') as 'AES256' | 'aws:kms' | undefined) ?? undefined,
      kmsKeyId: q.get('kmsKeyId') ?? undefined,
      conditionalWrites: flag(q.get('conditionalWrites')) ?? true,
    };
  }
  if (scheme === 'gs' || scheme === 'gcs') {
    return {
      backend: 'gcs',
      bucket: url.hostname,
      prefix,
      endpoint: q.get('endpoint') ?? undefined,
      project: q.get('project') ?? env.GOOGLE_CLOUD_PROJECT ?? undefined,
    };
  }
  throw invalid(`unsupported repository URL scheme "${scheme}://": use a path, file://, s3:// or gs://`);
}
