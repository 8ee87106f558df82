/**
 * The gcs driver: Google Cloud Storage through @google-cloud/storage. One bucket + key prefix. The
 * etag it hands out is the object's generation, so records are replaced with ifGenerationMatch (and
 * created with ifGenerationMatch: 0). Uploads declare their MD5 so the store verifies them, downloads
 * are checked against x-goog-hash and the stored length; large objects go up as resumable uploads.
 * The client's own retries are off: the retry layer around every driver (retrying-driver.ts) decides,
 * with transientReason below.
 */
import { Bucket, Storage } from '@google-cloud/storage';
import { z } from 'zod';
import { ObjectNotFoundError, PreconditionFailedError, VolumeBackupError, invalid } from '../errors';
import { CinderNaming, Driver, ObjectEntry, StoredObject } from './driver';
import type { DriverContext, GcsSpec } from './index';
import { BucketNotFoundError, accessDenied, bucketLocation, bucketWhere, credentialsRejected, listPrefix, md5, normalizePrefix, objectKey, storageFailure } from './object-store-helpers';
import { TransientError, transientReason } from './retry';

const MiB = 1024 * 1024;

type GcsError = Error & { code?: number | string; errors?: Array<{ reason?: string }> };
const statusOf = (err: unknown) => (typeof (err as GcsError)?.code === 'number' ? ((err as GcsError).code as number) : undefined);

export function createGcsDriver(spec: z.infer<typeof GcsSpec>, context: DriverContext): Driver {
  return new GcsDriver(spec, context);
}

export class GcsDriver extends CinderNaming implements Driver {
  readonly kind = 'gcs';
  readonly wantsMd5 = true;
  readonly location: string;
  readonly conditionalWrites = true;
  private readonly storage: Storage;
  private readonly bucket: Bucket;
  private readonly prefix: string;
  private readonly resumableThreshold: number;

  constructor(private readonly spec: z.infer<typeof GcsSpec>, _context: DriverContext) {
    super();
    this.prefix = normalizePrefix(spec.prefix);
    this.location = bucketLocation('gs', spec, this.prefix);
    this.resumableThreshold = spec.resumableThreshold ?? 16 * MiB;
    let credentials: Record<string, string> | undefined;
    if (spec.credentials) {
      try {
        credentials = JSON.parse(spec.credentials) as Record<string, string>;
      } catch {
        throw invalid(`the credentials for ${this.location} are not valid JSON: paste the service account's key file`);
      }
    }
    // Without credentials the client uses GOOGLE_APPLICATION_CREDENTIALS or the metadata server.
    this.storage = new Storage({
      projectId: spec.project ?? credentials?.project_id,
      credentials,
      apiEndpoint: spec.endpoint?.replace(/\/+$/, ''),
      // A custom endpoint gets no auth by default (emulators); explicit credentials mean a real one.
      useAuthWithCustomEndpoint: credentials !== undefined,
      retryOptions: { autoRetry: false, maxRetries: 0 },
    });
    this.bucket = this.storage.bucket(spec.bucket);
  }

  private where(key?: string): string {
    return bucketWhere('gs', this.spec, key);
  }

  /** Why an error of this driver (its own, or the client's it carries) is worth another attempt: see withRetries. */
  transientReason(err: unknown): string | null {
    return classifyGcs(err instanceof VolumeBackupError && err.cause !== undefined ? err.cause : err);
  }

  /**
   * One GCS call (retries are the layer around the driver: retrying-driver.ts; the client's calls take
   * no signal, so a timed-out attempt is abandoned and its socket left to close). `expected` maps the
   * errors an operation expects (404, 412).
   */
  private async call<T>(action: string, key: string, fn: () => Promise<T>, options: { signal?: AbortSignal; bytes?: number; expected?: (err: unknown) => Error | undefined } = {}): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const mapped = options.expected?.(err);
      if (mapped) throw mapped;
      const status = statusOf(err);
      if (status === 404 && isBucketMissing(err)) throw storageFailure(`${action} ${this.where(key)}`, new Error(`bucket ${this.where()} does not exist: create it, or check its name, the project and the endpoint`));
      if (status === 401 || /could not load the default credentials|invalid_grant|invalid_client/i.test(String((err as Error)?.message))) {
        throw credentialsRejected(this.where(), 'GOOGLE_APPLICATION_CREDENTIALS or the config node\'s service-account key', err);
      }
      if (status === 403) throw accessDenied(this.where(), err);
      throw storageFailure(`${action} ${this.where(key)}`, err);
    }
  }

  async putContainer(): Promise<void> {
    // Containers are key prefixes; only the bucket must exist. Make it when it does not.
    const [exists] = await this.call('check bucket', '', () => this.bucket.exists());
    if (exists) return;
    const ours = new Error('the bucket exists and is ours');
    await this.call('create bucket', '', () => this.storage.createBucket(this.spec.bucket), {
      expected: (err) => (statusOf(err) === 409 ? ours : undefined),
    }).catch((err) => {
      if (err !== ours) throw err;
    });
  }

  async listEntries(container: string, prefix: string): Promise<ObjectEntry[]> {
    const base = objectKey(this.prefix, container);
    const keyPrefix = listPrefix(this.prefix, container, prefix);
    const out: ObjectEntry[] = [];
    let pageToken: string | undefined;
    do {
      const [files, next] = await this.call('list', keyPrefix, async () => {
        const page = await this.bucket.getFiles({ prefix: keyPrefix, autoPaginate: false, maxResults: 1000, pageToken });
        // An unparseable reply comes back as text and would read as an empty page: never accept that.
        if ((page[2] as { kind?: string } | undefined)?.kind !== 'storage#objects') throw new TransientError('unreadable listing reply');
        return page;
      });
      for (const f of files) out.push({ name: base ? f.name.slice(base.length + 1) : f.name, size: Number(f.metadata.size ?? 0) });
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken);
    return out;
  }

  async readObject(container: string, name: string, options: { signal?: AbortSignal } = {}): Promise<StoredObject> {
    const key = objectKey(this.prefix, container, name);
    return this.call('read', key, () => this.download(key), {
      signal: options.signal,
      expected: (err) => {
        if (statusOf(err) !== 404) return undefined;
        return isBucketMissing(err) ? new BucketNotFoundError(container, name, `bucket ${this.where()}`) : new ObjectNotFoundError(container, name);
      },
    });
  }

  /** Download with the client's MD5 check, and our own length check against the stored size. */
  private download(key: string): Promise<StoredObject> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let headers: Record<string, string | string[] | undefined> = {};
      this.bucket.file(key).createReadStream({ validation: 'md5' })
        .on('response', (res: { headers: typeof headers }) => (headers = res.headers))
        .on('data', (c: Buffer) => chunks.push(c))
        .on('error', reject)
        .on('end', () => {
          const data = Buffer.concat(chunks);
          const stored = Number(headers['x-goog-stored-content-length'] ?? data.length);
          if (data.length !== stored) return reject(new TransientError(`body ended after ${data.length} of ${stored} bytes`));
          resolve({ data, etag: String(headers['x-goog-generation'] ?? '') });
        });
    });
  }

  async writeObject(container: string, name: string, data: Buffer, options: { signal?: AbortSignal; md5?: string } = {}): Promise<string> {
    const key = objectKey(this.prefix, container, name);
    return this.call('write', key, () => this.upload(key, data, undefined, options.md5), { signal: options.signal, bytes: data.length });
  }

  /**
   * save() with the MD5 declared up front, so the store rejects other bytes (400). The client's own
   * upload validation is off: on a mismatch it deletes the object unconditionally, which for a
   * record could remove another writer's version. We check the reply ourselves instead.
   */
  private async upload(key: string, data: Buffer, ifGenerationMatch: number | undefined, knownMd5?: string): Promise<string> {
    const file = this.bucket.file(key);
    const digest = knownMd5 ?? md5(data).toString('base64');
    await file.save(data, {
      resumable: data.length > this.resumableThreshold,
      validation: false,
      metadata: { contentType: 'application/octet-stream', md5Hash: digest },
      preconditionOpts: ifGenerationMatch === undefined ? undefined : { ifGenerationMatch },
    });
    const stored = file.metadata as { generation?: unknown; md5Hash?: unknown };
    if (!/^\d+$/.test(String(stored?.generation)) || stored.md5Hash !== digest) {
      throw new TransientError(`the reply to the upload of ${key} was unreadable or described other bytes`);
    }
    return String(stored.generation);
  }

  async deleteObject(container: string, name: string): Promise<void> {
    const key = objectKey(this.prefix, container, name);
    await this.call('delete', key, () => this.bucket.file(key).delete({ ignoreNotFound: true }));
  }

  async putIfAbsent(container: string, name: string, data: Buffer): Promise<string> {
    return this.conditionalUpload(container, name, data, 0);
  }

  async replaceIfMatch(container: string, name: string, data: Buffer, etag: string): Promise<string> {
    if (!/^\d+$/.test(etag) || etag === '0') throw new PreconditionFailedError(name, `object ${name}: "${etag}" is not a generation this driver handed out`);
    return this.conditionalUpload(container, name, data, Number(etag));
  }

  private async conditionalUpload(container: string, name: string, data: Buffer, generation: number): Promise<string> {
    const key = objectKey(this.prefix, container, name);
    // A retry after a lost reply that is refused only because the first attempt succeeded: the retry layer looks.
    return this.call('write', key, () => this.upload(key, data, generation), {
      bytes: data.length,
      expected: (err) => (statusOf(err) === 412 ? new PreconditionFailedError(name, generation === 0 ? `object ${name} already exists` : undefined) : undefined),
    });
  }

}

/** Why a GCS error is worth another attempt, or null. */
function classifyGcs(err: unknown): string | null {
  const code = (err as GcsError)?.code;
  if (code === 'CONTENT_DOWNLOAD_MISMATCH') return 'the download did not match its hash';
  // The store computed another MD5/CRC32C than the one declared: the bytes were corrupted on the way.
  if (statusOf(err) === 400 && /doesn't match calculated/i.test(String((err as Error)?.message))) return 'the store received other bytes than were sent';
  // A reply cut short cannot be parsed; the request itself may be sent again.
  if (err instanceof SyntaxError || /Unexpected end of JSON|invalid json response/i.test(String((err as Error)?.message))) return 'unreadable reply';
  return transientReason(err, statusOf(err));
}

function isBucketMissing(err: unknown): boolean {
  return /bucket does not exist/i.test(String((err as Error)?.message));
}
