/**
 * The s3 driver: AWS S3 and S3-compatible stores through @aws-sdk/client-s3. One bucket + key prefix;
 * every PutObject/UploadPart carries Content-MD5 so the store verifies it, every GetObject is checked
 * (length, and the MD5 when the ETag is one). Objects above multipartThreshold go up as multipart
 * uploads with parts in parallel; a failed one is aborted. The SDK's retries are off: the retry layer
 * around every driver (retrying-driver.ts) decides, with transientReason below; multipart parts retry on their own.
 */
import {
  CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, GetObjectCommandOutput, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command,
  PutObjectCommand, PutObjectCommandInput, S3Client,
} from '@aws-sdk/client-s3';
import type { Readable } from 'stream';
import { z } from 'zod';
import { ObjectNotFoundError, PreconditionFailedError, VolumeBackupError, invalid } from '../errors';
import { CinderNaming, Driver, ObjectEntry, StoredObject } from './driver';
import type { DriverContext, S3Spec } from './index';
import { BucketNotFoundError, accessDenied, bucketLocation, bucketWhere, credentialsRejected, listPrefix, md5, normalizePrefix, objectKey, storageFailure } from './object-store-helpers';
import { md5Hex } from './md5-thread';
import { uploadMultipart } from './s3-multipart';
import { TransientError, transientReason, withRetry } from './retry';
import { retryReason } from './retrying-driver';
import { S3_DEFAULTS, S3_MIN_PART_SIZE } from './s3-settings';

const PART_CONCURRENCY = 4;

// This package supports Node 20 (package.json engines); the SDK's eight-line notice about its own
// future Node 22 requirement would otherwise print on every CLI run. Its documented switch turns it off.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

type S3Error = Error & { $metadata?: { httpStatusCode?: number }; Code?: string };
const statusOf = (err: unknown) => (err as S3Error)?.$metadata?.httpStatusCode;
const nameOf = (err: unknown) => (err as S3Error)?.name;

/**
 * Replies saying the body arrived other than it was sent: a Content-MD5 mismatch (BadDigest), RGW's
 * and AWS's signed-payload hash mismatch, a body shorter than its Content-Length, a flexible-checksum
 * mismatch. Each is worth sending again.
 */
const CORRUPTION_REPLIES = new Set(['BadDigest', 'XAmzContentSHA256Mismatch', 'IncompleteBody', 'InvalidChecksum']);

/** A Content-MD5 value as S3 wants it: the base64 of 16 bytes. */
const CONTENT_MD5 = /^[A-Za-z0-9+/]{22}==$/;

/** An ETag without quotes (or weak marker): how RGW stores it and compares If-Match. */
export const bareEtag = (etag: string) => etag.trim().replace(/^W\//, '').replace(/"/g, '');

/** Why an S3 error is worth another attempt, or null. */
function classifyS3(err: unknown): string | null {
  if (nameOf(err) === 'SlowDown') return `throttled (${statusOf(err) ?? 503} SlowDown)`;
  // A reply cut short or garbled on the way cannot be parsed; the request itself may be sent again.
  if (/Deserialization error|XML parse error/i.test(String((err as Error)?.message))) return 'unreadable reply';
  // The bytes the store received differ from what was sent: corrupted on the way, so send again.
  if (CORRUPTION_REPLIES.has(nameOf(err) ?? '')) return `the store received other bytes than were sent (${nameOf(err)})`;
  return transientReason(err, statusOf(err));
}

/**
 * Copy a body into `target` as its pieces arrive ('data' events: far less overhead per piece than async
 * iteration); its length, or -1 when it does not fit.
 */
function readInto(body: Readable, target: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    let at = 0;
    body.on('data', (piece: Uint8Array) => {
      if (at + piece.length > target.length) {
        body.destroy();
        resolve(-1);
        return;
      }
      target.set(piece, at);
      at += piece.length;
    });
    body.once('end', () => resolve(at));
    body.once('error', reject);
    // Destroyed without an error (a cancel): settle anyway; after 'end' this changes nothing.
    body.once('close', () => reject(new TransientError(`body closed after ${at} bytes`)));
  });
}

/** A GET body cut short, or changed on the way (its MD5 ETag), is worth another attempt. */
async function checkBody(res: GetObjectCommandOutput, data: Uint8Array): Promise<void> {
  if (res.ContentLength !== undefined && data.length !== res.ContentLength) throw new TransientError(`body ended after ${data.length} of ${res.ContentLength} bytes`);
  // With SSE-KMS (or customer keys) the ETag is not the MD5 of the data; otherwise a plain one is.
  const kms = String(res.ServerSideEncryption ?? '').startsWith('aws:kms') || !!res.SSECustomerAlgorithm;
  const plainMd5 = kms ? undefined : /^"?([0-9a-f]{32})"?$/.exec(res.ETag ?? '')?.[1];
  if (plainMd5 && (await md5Hex(data)) !== plainMd5) throw new TransientError(`body of ${data.length} bytes does not match its MD5 ETag`);
}

/**
 * Sign a PutObject with the SHA-256 the backup's worker already computed: the signer takes a given
 * x-amz-content-sha256 instead of hashing the whole body again on the event loop (0.3 s of main-thread
 * time for 133 MB here), and the store still checks the body against it.
 */
function withPayloadSha256(command: PutObjectCommand, sha256: string | undefined): PutObjectCommand {
  if (!sha256 || !/^[0-9a-f]{64}$/.test(sha256)) return command;
  command.middlewareStack.add((next) => (args) => {
    const request = args.request as { headers?: Record<string, string> };
    if (request.headers) request.headers['x-amz-content-sha256'] = sha256;
    return next(args);
  }, { step: 'build', name: 'knownPayloadSha256' });
  return command;
}

export function createS3Driver(spec: z.infer<typeof S3Spec>, context: DriverContext): Driver {
  return new S3Driver(spec, context);
}

export class S3Driver extends CinderNaming implements Driver {
  readonly kind = 's3';
  readonly wantsMd5 = true;
  readonly location: string;
  readonly conditionalWrites: boolean;
  private readonly client: S3Client;
  private readonly prefix: string;
  private readonly threshold: number;
  private readonly partSize: number;
  /**
   * How If-Match carries the ETag: bare first (RGW accepts only that; AWS S3 and MinIO compare without
   * quotes), quoted when the store refuses the bare form for an object that still has that ETag.
   */
  private ifMatchForm: 'bare' | 'quoted' = 'bare';
  private ifMatchFormKnown = false;

  constructor(private readonly spec: z.infer<typeof S3Spec>, private readonly context: DriverContext) {
    super();
    this.prefix = normalizePrefix(spec.prefix);
    this.location = bucketLocation('s3', spec, this.prefix);
    this.conditionalWrites = spec.conditionalWrites;
    this.threshold = spec.multipartThreshold ?? S3_DEFAULTS.multipartThreshold;
    this.partSize = Math.max(spec.partSize ?? S3_DEFAULTS.partSize, S3_MIN_PART_SIZE);
    const checksums = spec.checksums === 'when_required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
    this.client = new S3Client({
      endpoint: spec.endpoint,
      region: spec.region,
      forcePathStyle: spec.forcePathStyle,
      requestChecksumCalculation: checksums,
      responseChecksumValidation: checksums,
      credentials: spec.accessKeyId && spec.secretAccessKey
        ? { accessKeyId: spec.accessKeyId, secretAccessKey: spec.secretAccessKey, sessionToken: spec.sessionToken }
        : undefined, // the standard AWS chain: environment, profile, SSO, instance role
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
    });
    if (!spec.conditionalWrites) {
      context.log?.warn(`conditional writes are off for ${this.location}: only one writer may use this repository at a time`);
    }
  }

  private where(key?: string): string {
    return bucketWhere('s3', this.spec, key);
  }

  /** Why an error of this driver (its own, or the SDK's it carries) is worth another attempt: see withRetries. */
  transientReason(err: unknown): string | null {
    return classifyS3(err instanceof VolumeBackupError && err.cause !== undefined ? err.cause : err);
  }

  /**
   * A part of a multipart upload, with retries of its own: the retry layer around this driver sees only
   * the whole object, and one failed part must not send all the others again.
   */
  private retrying<T>(action: string, key: string, fn: (signal: AbortSignal) => Promise<T>, options: { signal?: AbortSignal; bytes?: number } = {}): Promise<T> {
    return withRetry((signal) => this.call(action, key, fn, { ...options, signal }), {
      bytes: options.bytes,
      what: `${action} ${this.where(key)}`,
      classify: (err) => retryReason(this, err),
      policy: this.spec.retry,
      signal: options.signal,
      log: this.context.log,
    });
  }

  /**
   * One S3 call (retries are the layer around the driver: retrying-driver.ts). `expected` turns the
   * errors an operation expects (404, 412) into its own; other permanent errors come out with the
   * bucket and what to check.
   */
  private async call<T>(action: string, key: string, fn: (signal: AbortSignal) => Promise<T>, options: { signal?: AbortSignal; bytes?: number; expected?: (err: unknown) => Error | undefined } = {}): Promise<T> {
    try {
      return await fn(options.signal ?? new AbortController().signal);
    } catch (err) {
      const mapped = options.expected?.(err);
      if (mapped) throw mapped;
      const status = statusOf(err);
      const name = nameOf(err);
      if (name === 'NoSuchBucket') throw storageFailure(`${action} ${this.where(key)}`, new Error(`bucket ${this.where()} does not exist: create it, or check its name, the region and the endpoint`));
      if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'CredentialsProviderError' || name === 'ExpiredToken' || status === 401) {
        throw credentialsRejected(this.where(), 'AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or the config node\'s credentials) and the region', err);
      }
      if (status === 403) throw accessDenied(this.where(), err);
      if (status === 404) throw err; // callers that expect a 404 (HEAD) test for it
      throw storageFailure(`${action} ${this.where(key)}`, err);
    }
  }

  private putParams(key: string, data: Buffer, knownMd5?: string): PutObjectCommandInput {
    // A malformed Content-MD5 is refused as 400 InvalidDigest by AWS but 403 AccessDenied by RGW, which
    // would read as a permissions problem: a caller's bad value is refused here, saying what it is.
    if (knownMd5 !== undefined && !CONTENT_MD5.test(knownMd5)) {
      throw invalid(`the MD5 given for ${this.where(key)} is not the base64 of 16 bytes (${JSON.stringify(knownMd5.slice(0, 40))})`);
    }
    return { ...this.uploadParams(key), Body: data, ContentMD5: knownMd5 ?? md5(data).toString('base64') };
  }

  /** What every new object gets: its key, storage class and server-side encryption. */
  private uploadParams(key: string) {
    return {
      Bucket: this.spec.bucket,
      Key: key,
      StorageClass: this.spec.storageClass as PutObjectCommandInput['StorageClass'],
      ServerSideEncryption: this.spec.serverSideEncryption,
      SSEKMSKeyId: this.spec.kmsKeyId,
    } as const;
  }

  async putContainer(): Promise<void> {
    // Containers are key prefixes; only the bucket must exist. Make it when it does not (as Cinder does).
    const Bucket = this.spec.bucket;
    const exists = await this.call('check bucket', '', (s) => this.client.send(new HeadBucketCommand({ Bucket }), { abortSignal: s })).then(
      () => true,
      (err) => (statusOf(err) === 404 ? false : Promise.reject(err)),
    );
    if (exists) return;
    const location = this.spec.region === S3_DEFAULTS.region ? undefined : { LocationConstraint: this.spec.region as never };
    const ours = new Error('the bucket exists and is ours');
    await this.call('create bucket', '', (s) => this.client.send(new CreateBucketCommand({ Bucket, CreateBucketConfiguration: location }), { abortSignal: s }), {
      expected: (err) => (nameOf(err) === 'BucketAlreadyOwnedByYou' ? ours : undefined),
    }).catch((err) => {
      if (err !== ours) throw err;
    });
  }

  async listEntries(container: string, prefix: string): Promise<ObjectEntry[]> {
    const base = objectKey(this.prefix, container);
    const out: ObjectEntry[] = [];
    let token: string | undefined;
    do {
      const page = await this.call('list', listPrefix(this.prefix, container, prefix), (s) =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.spec.bucket, Prefix: listPrefix(this.prefix, container, prefix), ContinuationToken: token }), { abortSignal: s }),
      );
      for (const o of page.Contents ?? []) out.push({ name: base ? o.Key!.slice(base.length + 1) : o.Key!, size: o.Size ?? 0 });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async readObject(container: string, name: string, options: { signal?: AbortSignal } = {}): Promise<StoredObject> {
    const key = objectKey(this.prefix, container, name);
    return this.call('read', key, async (abortSignal) => {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.spec.bucket, Key: key }), { abortSignal });
      const bytes = await res.Body!.transformToByteArray();
      // A view, not a copy: the array is this call's own.
      const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      await checkBody(res, data);
      return { data, etag: res.ETag ?? '' };
    }, { signal: options.signal, expected: (err) => this.readError(err, container, name) });
  }

  /**
   * A restore's read: the body goes straight from the socket into the caller's (shared) buffer, with no
   * whole-object array in between, and its MD5 is checked in the MD5 thread, which sees that memory.
   */
  async readObjectInto(container: string, name: string, target: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<number> {
    const key = objectKey(this.prefix, container, name);
    return this.call('read', key, async (abortSignal) => {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.spec.bucket, Key: key }), { abortSignal });
      if ((res.ContentLength ?? 0) > target.length) {
        (res.Body as unknown as Readable).destroy();
        return -1; // does not fit: the caller reads it with readObject
      }
      const at = await readInto(res.Body as unknown as Readable, target);
      if (at < 0) return -1;
      await checkBody(res, target.subarray(0, at));
      return at;
    }, { signal: options.signal, expected: (err) => this.readError(err, container, name) });
  }

  /** The errors a read expects: a missing bucket or object. */
  private readError(err: unknown, container: string, name: string): Error | undefined {
    if (nameOf(err) === 'NoSuchBucket') return new BucketNotFoundError(container, name, `bucket ${this.where()}`);
    if (statusOf(err) === 404) return new ObjectNotFoundError(container, name);
    return undefined;
  }

  async writeObject(container: string, name: string, data: Buffer, options: { signal?: AbortSignal; md5?: string; sha256?: string } = {}): Promise<string> {
    const key = objectKey(this.prefix, container, name);
    if (data.length > this.threshold) {
      return uploadMultipart({
        client: this.client,
        params: this.uploadParams(key),
        partSize: this.partSize,
        concurrency: PART_CONCURRENCY,
        call: (action, fn, o) => this.retrying(action, key, fn, o),
        warn: (m) => this.context.log?.warn(m),
        where: this.where(key),
      }, data, options.signal);
    }
    const res = await this.call('write', key, (s) => this.client.send(withPayloadSha256(new PutObjectCommand(this.putParams(key, data, options.md5)), options.sha256), { abortSignal: s }), { signal: options.signal, bytes: data.length });
    return res.ETag ?? '';
  }

  async deleteObject(container: string, name: string): Promise<void> {
    const key = objectKey(this.prefix, container, name);
    await this.call('delete', key, (s) => this.client.send(new DeleteObjectCommand({ Bucket: this.spec.bucket, Key: key }), { abortSignal: s }));
  }

  async putIfAbsent(container: string, name: string, data: Buffer): Promise<string> {
    if (!this.conditionalWrites) {
      if (await this.currentEtag(container, name)) throw new PreconditionFailedError(name, `object ${name} already exists`);
      return this.writeObject(container, name, data);
    }
    return this.conditionalPut(container, name, data, { IfNoneMatch: '*' });
  }

  async replaceIfMatch(container: string, name: string, data: Buffer, etag: string): Promise<string> {
    if (!this.conditionalWrites) {
      // Read-compare-write: safe only with a single writer, which the constructor's warning says.
      if ((await this.currentEtag(container, name)) !== etag) throw new PreconditionFailedError(name);
      return this.writeObject(container, name, data);
    }
    const form = this.ifMatchForm;
    try {
      const written = await this.conditionalPut(container, name, data, { IfMatch: form === 'quoted' ? `"${bareEtag(etag)}"` : bareEtag(etag) });
      this.ifMatchFormKnown = true;
      return written;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError) || this.ifMatchFormKnown) throw err;
      // Refused although the object still has this ETag: the store wants the other form of it. Remember
      // the one that works (RGW compares If-Match literally with its unquoted ETag).
      const current = await this.currentEtag(container, name);
      if (current === null || bareEtag(current) !== bareEtag(etag)) throw err;
      if (this.ifMatchForm === form) this.ifMatchForm = form === 'quoted' ? 'bare' : 'quoted';
      this.ifMatchFormKnown = true;
      return this.replaceIfMatch(container, name, data, etag);
    }
  }

  private async conditionalPut(container: string, name: string, data: Buffer, condition: { IfNoneMatch?: string; IfMatch?: string }): Promise<string> {
    const key = objectKey(this.prefix, container, name);
    // A retry after a lost reply that is refused only because the first attempt succeeded: the retry layer looks.
    const res = await this.call('write', key, (s) => this.client.send(new PutObjectCommand({ ...this.putParams(key, data), ...condition }), { abortSignal: s }), {
      bytes: data.length,
      // 412: the condition failed; 409: a concurrent conditional write won; 404 on If-Match: it is gone.
      expected: (err) => {
        const status = statusOf(err);
        if (status === 412 || status === 409 || (condition.IfMatch && status === 404)) {
          return new PreconditionFailedError(name, condition.IfMatch ? undefined : `object ${name} already exists`);
        }
        return undefined;
      },
    });
    return res.ETag ?? '';
  }

  private async currentEtag(container: string, name: string): Promise<string | null> {
    const key = objectKey(this.prefix, container, name);
    return this.call('check', key, (s) => this.client.send(new HeadObjectCommand({ Bucket: this.spec.bucket, Key: key }), { abortSignal: s })).then(
      (res) => res.ETag ?? '',
      (err) => (statusOf(err) === 404 ? null : Promise.reject(err)),
    );
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
