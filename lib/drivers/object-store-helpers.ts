/**
 * What the s3 and gcs drivers share: object keys under a bucket prefix, how messages name a bucket,
 * the messages for errors that retrying cannot fix, a bounded parallel runner that stops on the first failure, and digests.
 */
import { createHash } from 'crypto';
import { ObjectNotFoundError, VolumeBackupError, errorMessage, invalid } from '../errors';
import { displayEndpoint } from './driver';

/** Join the driver's prefix, the container and an object name into one key; refuse names that escape. */
export function objectKey(prefix: string, container: string, name = ''): string {
  for (const [label, value] of [['container', container], ['object name', name]] as const) {
    if (typeof value !== 'string' || value.includes('\0') || value.startsWith('/') || value.split('/').some((s) => s === '..' || s === '.')) {
      throw invalid(`invalid ${label} ${JSON.stringify(value)}`);
    }
  }
  return [prefix, container, name].map((p) => p.replace(/^\/+|\/+$/g, '')).filter(Boolean).join('/');
}

/** The key prefix a listing of `container` + `prefix` starts from ("a/b/" + "vol" → "a/b/vol"). */
export function listPrefix(prefix: string, container: string, namePrefix: string): string {
  const base = objectKey(prefix, container);
  return base ? `${base}/${namePrefix}` : namePrefix;
}

export function normalizePrefix(prefix: string): string {
  return prefix.replace(/^\/+|\/+$/g, '');
}

/** What a driver's settings say about its bucket: its name, and a custom endpoint if any. */
interface BucketSpec {
  bucket: string;
  endpoint?: string;
}

function bucketUrl(scheme: string, bucket: string, key?: string): string {
  return `${scheme}://${bucket}${key ? `/${key}` : ''}`;
}

/** A repository's location: "s3://bucket/prefix", with " at <endpoint>" for a custom endpoint. */
export function bucketLocation(scheme: string, spec: BucketSpec, prefix: string): string {
  return `${bucketUrl(scheme, spec.bucket, prefix)}${spec.endpoint ? ` at ${displayEndpoint(spec.endpoint)}` : ''}`;
}

/** The bucket, or an object in it, as errors name it: "s3://bucket/key (endpoint <endpoint>)". */
export function bucketWhere(scheme: string, spec: BucketSpec, key?: string): string {
  return `${bucketUrl(scheme, spec.bucket, key)}${spec.endpoint ? ` (endpoint ${displayEndpoint(spec.endpoint)})` : ''}`;
}

/** A bucket that does not exist holds no object either; the message says what to check. */
export class BucketNotFoundError extends ObjectNotFoundError {
  constructor(container: string, objectName: string, where: string) {
    super(container, objectName);
    this.message = `${where} does not exist: create the bucket, or check its name, region or project, and the endpoint`;
  }
}

/** Errors no retry can fix, each with what to check. */
export function accessDenied(where: string, cause: unknown): VolumeBackupError {
  return new VolumeBackupError('AUTH', `access to ${where} was denied: check that the credentials may read, write, list and delete objects in that bucket (${errorMessage(cause)})`, undefined, { cause });
}

export function credentialsRejected(where: string, what: string, cause: unknown): VolumeBackupError {
  return new VolumeBackupError('AUTH', `the credentials for ${where} were rejected or are missing: check ${what} (${errorMessage(cause)})`, undefined, { cause });
}

export function storageFailure(action: string, cause: unknown): VolumeBackupError {
  if (cause instanceof VolumeBackupError) return cause;
  return new VolumeBackupError('STORAGE', `${action} failed: ${errorMessage(cause)}`, undefined, { cause });
}

// The bounded runner lives with the other concurrency helpers; re-exported for the drivers.
export { runBounded } from '../util/concurrency';

export function md5(data: Uint8Array): Buffer {
  return createHash('md5').update(data).digest();
}
