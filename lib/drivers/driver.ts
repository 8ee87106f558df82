/**
 * The storage driver contract, after Cinder's ChunkedBackupDriver: eight small operations, plus the
 * conditional create/replace the catalog needs for compare-and-swap records. A driver knows nothing
 * about backups, chunks or formats; the repository layer does. All names are relative to a container
 * (a directory for posix, a bucket for s3/gcs) and use "/" as separator. C1…C15 are the rules the
 * contract suite checks (docs/backends.md; test/contract/driver-contract.ts); a backend module
 * (lib/backends/backend.ts) makes drivers.
 */

import { cinderObjectNamePrefix } from '../repository/layout';

export interface ObjectEntry {
  name: string;
  size: number;
}

export interface StoredObject {
  data: Buffer;
  /** Opaque version tag of what was read; pass it to replaceIfMatch. */
  etag: string;
}

export interface ObjectOptions {
  signal?: AbortSignal;
  /** The driver's getExtraMetadata() value, passed to every reader and writer as in Cinder. */
  extraMetadata?: Record<string, string> | null;
  /** writeObject: the hex SHA-256 of the data when the caller already computed it (a driver may use it instead of hashing again). */
  sha256?: string;
  /**
   * writeObject: the data starts on a DIRECT_ALIGNMENT boundary in memory and its buffer may be read up
   * to the next boundary past its end, so a driver writing files may use O_DIRECT (lib/io/direct-io).
   * readObjectInto: the target starts on such a boundary, and the caller reads the object once (a
   * restore): a driver reading files may read it with O_DIRECT, around the page cache.
   */
  directIo?: boolean;
  /** writeObject: the base64 MD5 of the data when the caller already computed it (drivers that set `wantsMd5`). */
  md5?: string;
}

export interface PrefixParts {
  volumeId: string;
  backupId: string;
  createdAt: Date;
}

export interface Driver {
  /** The name of the backend module that made it (lib/backends): "posix", "s3", "gcs", or a package's. */
  readonly kind: string;
  /** Where the data lives, for messages; never contains a secret. */
  readonly location: string;
  /** True when putIfAbsent/replaceIfMatch are enforced by the store (false: only one writer is safe). */
  readonly conditionalWrites: boolean;
  /**
   * True when every write sends the data's MD5 (Content-MD5, md5Hash) for the store to check: a backup
   * then computes it in its worker threads and passes it as ObjectOptions.md5, off the event loop.
   */
  readonly wantsMd5?: boolean;
  /**
   * How many objects a backup should keep in flight. Default: as many as the CPU keeps busy for a store
   * with a local directory, more for any other (its requests wait for the network). A restore keeps
   * three or four, whatever the store: each holds a chunk and its object in memory.
   */
  readonly objectsInFlight?: number;

  /** Create the container if it does not exist (idempotent). */
  putContainer(container: string): Promise<void>;
  /** Every object whose name starts with the plain string prefix, with its size, sorted by name (C5); pages through any number of objects (C6). */
  listEntries(container: string, prefix: string): Promise<ObjectEntry[]>;
  /** Read a whole object and the etag of that version (C1). Throws ObjectNotFoundError when it does not exist (C3). */
  readObject(container: string, name: string, options?: ObjectOptions): Promise<StoredObject>;
  /**
   * Optional: read a whole object into `target` (memory the caller reuses: no allocation per object).
   * Returns its length, or -1 when it is larger than `target` (use readObject). Throws like readObject.
   */
  readObjectInto?(container: string, name: string, target: Uint8Array, options?: ObjectOptions): Promise<number>;
  /** Write (or overwrite: C2) a whole object; durable when the promise resolves. Returns the new etag (C1, C2). */
  writeObject(container: string, name: string, data: Buffer, options?: ObjectOptions): Promise<string>;
  /** Delete an object; deleting one that does not exist is not an error (C4). */
  deleteObject(container: string, name: string): Promise<void>;
  /** Cinder's object-name prefix for a backup's objects (C12). Names with "." or ".." segments or a leading "/" are refused by every operation (C13). */
  generateObjectNamePrefix(parts: PrefixParts): string;
  /** A truthy return replaces the requested container name (Cinder's update_container_name). */
  updateContainerName(container: string | undefined): string | undefined;
  /** Extra metadata stored with every object (Cinder's get_extra_metadata); null when none. */
  getExtraMetadata(): Record<string, string> | null;

  /** Create an object only if it does not exist yet. Throws PreconditionFailedError if it does (C7); of concurrent calls exactly one creates (C10). */
  putIfAbsent(container: string, name: string, data: Buffer): Promise<string>;
  /** Replace an object only if its etag is still `etag`. Throws PreconditionFailedError otherwise, or when it is missing (C8); of concurrent calls from one etag exactly one wins (C9). */
  replaceIfMatch(container: string, name: string, data: Buffer, etag: string): Promise<string>;

  /** The directory a container is on this machine (posix); a restore never writes inside it. */
  localDirectory?(container: string): string;

  /** Remove temporary files that killed writers of this machine left (stores with atomic uploads need none); only under the folder `under` when given. */
  removeStaleTemporaries?(container: string, under?: string): Promise<number>;

  /** Release sockets, timers and clients. */
  close?(): Promise<void>;

  /**
   * Why an error of this backend is worth another attempt (a short reason for the log), or null when
   * retrying cannot help. Retries are not the driver's: withRetries (retrying-driver.ts) wraps every
   * driver once and asks here; without this method, connection errors and TransientError are retried.
   */
  transientReason?(err: unknown): string | null;
}

// Cinder's object-name prefix (volume_<id>/<YYYYmmddHHMMSS>/backup_<id>) is the object layout's: it lives there.
export { cinderObjectNamePrefix };

/** The parts of the contract every driver here answers alike: Cinder's names, no renames, no metadata. */
export abstract class CinderNaming {
  generateObjectNamePrefix(parts: PrefixParts): string {
    return cinderObjectNamePrefix(parts);
  }

  updateContainerName(container: string | undefined): string | undefined {
    return container;
  }

  getExtraMetadata(): Record<string, string> | null {
    return null;
  }
}

/** An endpoint URL fit for messages: any user:password in it replaced by "***". */
export function displayEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    if (url.username || url.password) {
      url.username = '***';
      url.password = '';
    }
    return url.toString().replace(/\/$/, '');
  } catch {
    return endpoint.replace(/\/\/[^/@]*@/, '//***@');
  }
}
