/**
 * The storage driver contract, after Cinder's ChunkedBackupDriver: eight small operations, plus the
 * conditional create/replace the catalog needs for compare-and-swap records. A driver knows nothing
 * about backups, chunks or formats; the repository layer does. All names are relative to a container
 * (a directory for posix, a bucket for s3/gcs) and use "/" as separator.
 */

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
  /** Backend kind: "posix", "s3", "gcs". */
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
   * How many objects a backup or restore should keep in flight. Default: as many as the CPU keeps busy
   * for a store with a local directory, more for any other (its requests wait for the network).
   */
  readonly objectsInFlight?: number;

  /** Create the container if it does not exist (idempotent). */
  putContainer(container: string): Promise<void>;
  /** Every object whose name starts with prefix, with its size; pages through any number of objects. */
  listEntries(container: string, prefix: string): Promise<ObjectEntry[]>;
  /** Read a whole object. Throws ObjectNotFoundError when it does not exist. */
  readObject(container: string, name: string, options?: ObjectOptions): Promise<StoredObject>;
  /**
   * Optional: read a whole object into `target` (memory the caller reuses: no allocation per object).
   * Returns its length, or -1 when it is larger than `target` (use readObject). Throws like readObject.
   */
  readObjectInto?(container: string, name: string, target: Uint8Array, options?: ObjectOptions): Promise<number>;
  /** Write (or overwrite) a whole object; durable when the promise resolves. Returns the new etag. */
  writeObject(container: string, name: string, data: Buffer, options?: ObjectOptions): Promise<string>;
  /** Delete an object; deleting one that does not exist is not an error. */
  deleteObject(container: string, name: string): Promise<void>;
  /** Cinder's object-name prefix for a backup's objects. */
  generateObjectNamePrefix(parts: PrefixParts): string;
  /** A truthy return replaces the requested container name (Cinder's update_container_name). */
  updateContainerName(container: string | undefined): string | undefined;
  /** Extra metadata stored with every object (Cinder's get_extra_metadata); null when none. */
  getExtraMetadata(): Record<string, string> | null;

  /** Create an object only if it does not exist yet. Throws PreconditionFailedError if it does. */
  putIfAbsent(container: string, name: string, data: Buffer): Promise<string>;
  /** Replace an object only if its etag is still `etag`. Throws PreconditionFailedError otherwise. */
  replaceIfMatch(container: string, name: string, data: Buffer, etag: string): Promise<string>;

  /** The directory a container is on this machine (posix); a restore never writes inside it. */
  localDirectory?(container: string): string;

  /** Remove temporary files that killed writers of this machine left (stores with atomic uploads need none). */
  removeStaleTemporaries?(container: string): Promise<number>;

  /** Release sockets, timers and clients. */
  close?(): Promise<void>;
}

/** Cinder's object-name prefix for object stores: volume_<id>/<YYYYmmddHHMMSS>/backup_<id>. */
export function cinderObjectNamePrefix(parts: PrefixParts): string {
  const ts = parts.createdAt.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `volume_${parts.volumeId}/${ts}/backup_${parts.backupId}`;
}

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
