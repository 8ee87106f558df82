/**
 * The three storage backends as the tests use them: posix in a temporary directory, s3 through the
 * precondition-enforcing layer in front of s3rver (or the S3 store S3_TEST_ENDPOINT names: s3-target.ts),
 * gcs on the GCS test server. Each can make drivers
 * (optionally through another endpoint, e.g. the fault proxy) on a fresh bucket or prefix.
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createDriver, DriverSpec } from '../../lib/drivers';
import { Driver } from '../../lib/drivers/driver';
import { GcsTestServer, startGcsServer } from './gcs-server';
import { S3TestServer, startS3Server } from './s3-server';
import { S3_CREDENTIALS, S3_TARGET, S3Target, resetTarget } from './s3-target';

export interface DriverOptions {
  prefix?: string;
  /** Talk to another endpoint (a proxy) instead of the server itself. */
  endpoint?: string;
  bucket?: string;
  retry?: { maxAttempts?: number; maxElapsedMs?: number; baseDelayMs?: number; maxDelayMs?: number; attemptTimeoutMs?: number };
  log?: { info(message: string): void; warn(message: string): void };
  extra?: Record<string, unknown>;
}

export interface Backend {
  readonly name: 'posix' | 's3' | 'gcs';
  /** The server's own endpoint (s3/gcs). */
  readonly endpoint: string;
  readonly bucket: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  spec(options?: DriverOptions): DriverSpec;
  driver(options?: DriverOptions): Driver;
}

/** The bucket (s3/gcs) or directory (posix) the tests use: the S3 target's bucket when one is given. */
export const BUCKET = S3_TARGET?.bucket ?? 'volume-backups';

export function posixBackend(): Backend {
  let dir = '';
  return {
    name: 'posix',
    endpoint: '',
    bucket: '',
    async start() {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vb-posix-'));
    },
    async stop() {
      await fs.rm(dir, { recursive: true, force: true });
    },
    spec: (o = {}) => ({ backend: 'posix', path: path.join(dir, o.bucket ?? BUCKET, o.prefix ?? '') }),
    driver(o = {}) {
      return createDriver(this.spec(o), { log: o.log });
    },
  };
}

/**
 * A backend on the test server of an object store; `settings` are the store's own driver settings.
 * Its bucket is made at start.
 */
function objectStoreBackend<S extends { endpoint: string; stop(): Promise<void> }>(
  name: 's3' | 'gcs',
  startServer: () => Promise<S>,
  settings: Record<string, unknown>,
): Backend & { server: S } {
  const backend = {
    name,
    server: null as unknown as S,
    get endpoint() {
      return backend.server.endpoint;
    },
    bucket: BUCKET,
    async start() {
      backend.server = await startServer();
      await backend.driver().putContainer('');
    },
    async stop() {
      await backend.server?.stop();
    },
    spec: (o: DriverOptions = {}): DriverSpec => ({
      backend: name,
      bucket: o.bucket ?? BUCKET,
      prefix: o.prefix ?? '',
      endpoint: o.endpoint ?? backend.server.endpoint,
      ...settings,
      retry: { baseDelayMs: 10, maxDelayMs: 100, attemptTimeoutMs: 10_000, ...o.retry },
      ...o.extra,
    } as DriverSpec),
    driver: (o: DriverOptions = {}) => createDriver(backend.spec(o), { log: o.log }),
  };
  return backend;
}

export function s3Backend(): Backend & { server: S3TestServer } {
  const start = S3_TARGET ? () => useTarget(S3_TARGET!) : startS3Server;
  return objectStoreBackend('s3', start, { region: S3_TARGET?.region ?? 'us-east-1', forcePathStyle: true, checksums: 'when_required', ...S3_CREDENTIALS });
}

/** An external S3 store in place of the test server: its bucket emptied, nothing to stop. */
async function useTarget(target: S3Target): Promise<S3TestServer> {
  await resetTarget(target);
  const port = Number(new URL(target.endpoint).port) || 80;
  const absent = () => {
    throw new Error(`the S3 store under test (${target.store}) is not the s3rver test server`);
  };
  return {
    endpoint: target.endpoint,
    port,
    get upstreamEndpoint() { return absent(); },
    get dir() { return absent(); },
    stop: async () => undefined,
  };
}

export function gcsBackend(): Backend & { server: GcsTestServer } {
  return objectStoreBackend('gcs', startGcsServer, { project: 'test-project' });
}

/** A log that keeps what it was told, for assertions on warnings. */
export function recordingLog() {
  const warnings: string[] = [];
  const infos: string[] = [];
  return { warnings, infos, warn: (m: string) => void warnings.push(m), info: (m: string) => void infos.push(m) };
}
