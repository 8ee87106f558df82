/**
 * Retries as a layer (restic's retry backend): withRetries(driver) is a Driver that runs every call of
 * the one it wraps under the retry policy of retry.ts. It is applied once, where a driver is made
 * (createDriver, openRepositoryIn), so every backend, a third party's too, gets the same retries
 * without writing any: a backend only says which of its errors are worth another attempt
 * (Driver.transientReason; by default connection errors and TransientError).
 */
import { ObjectNotFoundError, PreconditionFailedError, VolumeBackupError } from '../errors';
import type { Driver, ObjectEntry, ObjectOptions, PrefixParts, StoredObject } from './driver';
import { RetryPolicy, transientReason, withRetry } from './retry';

export interface RetryingOptions {
  policy?: Partial<RetryPolicy>;
  log?: { warn(message: string): void };
}

const WRAPPED = Symbol('volume-backup.retrying');

/** `driver` with retries; a driver that already has them is returned as it is (wrapping twice would multiply the attempts). */
export function withRetries(driver: Driver, options: RetryingOptions = {}): Driver {
  if ((driver as { [WRAPPED]?: true })[WRAPPED]) return driver;
  return new RetryingDriver(driver, options);
}

/** Why `err` is worth another attempt by `driver`'s account, or null: answers the store gave on purpose never are. */
export function retryReason(driver: Driver, err: unknown): string | null {
  if (err instanceof ObjectNotFoundError || err instanceof PreconditionFailedError) return null;
  // Our own errors carry their verdict: only a storage failure not yet retried may be tried again.
  if (err instanceof VolumeBackupError && (err.code !== 'STORAGE' || err.details?.attempts !== undefined)) return null;
  return driver.transientReason ? driver.transientReason(err) : transientReason(err, undefined);
}

class RetryingDriver implements Driver {
  readonly [WRAPPED] = true;
  readonly readObjectInto?: Driver['readObjectInto'];
  readonly localDirectory?: Driver['localDirectory'];
  readonly removeStaleTemporaries?: Driver['removeStaleTemporaries'];

  constructor(private readonly inner: Driver, private readonly options: RetryingOptions) {
    const readInto = inner.readObjectInto;
    if (readInto) {
      this.readObjectInto = (container, name, target, o) =>
        this.run('read', name, (signal) => readInto.call(inner, container, name, target, { ...o, signal }), o);
    }
    if (inner.localDirectory) this.localDirectory = inner.localDirectory.bind(inner);
    if (inner.removeStaleTemporaries) this.removeStaleTemporaries = inner.removeStaleTemporaries.bind(inner);
  }

  get kind(): string {
    return this.inner.kind;
  }
  get location(): string {
    return this.inner.location;
  }
  get conditionalWrites(): boolean {
    return this.inner.conditionalWrites;
  }
  get wantsMd5(): boolean | undefined {
    return this.inner.wantsMd5;
  }
  get objectsInFlight(): number | undefined {
    return this.inner.objectsInFlight;
  }

  transientReason(err: unknown): string | null {
    return retryReason(this.inner, err);
  }

  private run<T>(action: string, name: string, op: (signal: AbortSignal, attempt: number) => Promise<T>, o: { signal?: AbortSignal; bytes?: number } = {}): Promise<T> {
    return withRetry(op, {
      what: `${action} ${name ? `${name} in ` : ''}${this.inner.location}`,
      classify: (err) => retryReason(this.inner, err),
      policy: this.options.policy,
      log: this.options.log,
      signal: o.signal,
      bytes: o.bytes,
    });
  }

  /**
   * A conditional write whose reply was lost is sent again, and then refused because the first one
   * succeeded: when the object now holds exactly these bytes, that refusal is our own success.
   */
  private async conditional(action: string, container: string, name: string, data: Buffer, write: () => Promise<string>): Promise<string> {
    let attempts = 0;
    try {
      return await this.run(action, name, () => (attempts++, write()), { bytes: data.length });
    } catch (err) {
      if (err instanceof PreconditionFailedError && attempts > 1) {
        const current = await this.inner.readObject(container, name).catch(() => null);
        if (current && current.data.equals(data)) return current.etag;
      }
      throw err;
    }
  }

  putContainer(container: string): Promise<void> {
    return this.run('create container', container, () => this.inner.putContainer(container));
  }

  listEntries(container: string, prefix: string): Promise<ObjectEntry[]> {
    return this.run('list', prefix, () => this.inner.listEntries(container, prefix));
  }

  readObject(container: string, name: string, o?: ObjectOptions): Promise<StoredObject> {
    return this.run('read', name, (signal) => this.inner.readObject(container, name, { ...o, signal }), o);
  }

  writeObject(container: string, name: string, data: Buffer, o?: ObjectOptions): Promise<string> {
    return this.run('write', name, (signal) => this.inner.writeObject(container, name, data, { ...o, signal }), { signal: o?.signal, bytes: data.length });
  }

  deleteObject(container: string, name: string): Promise<void> {
    return this.run('delete', name, () => this.inner.deleteObject(container, name));
  }

  putIfAbsent(container: string, name: string, data: Buffer): Promise<string> {
    return this.conditional('create', container, name, data, () => this.inner.putIfAbsent(container, name, data));
  }

  replaceIfMatch(container: string, name: string, data: Buffer, etag: string): Promise<string> {
    return this.conditional('replace', container, name, data, () => this.inner.replaceIfMatch(container, name, data, etag));
  }

  generateObjectNamePrefix(parts: PrefixParts): string {
    return this.inner.generateObjectNamePrefix(parts);
  }

  updateContainerName(container: string | undefined): string | undefined {
    return this.inner.updateContainerName(container);
  }

  getExtraMetadata(): Record<string, string> | null {
    return this.inner.getExtraMetadata();
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}
