/**
 * The posix driver: a directory per container under a base directory. Files 0660, directories 0770
 * (as Cinder's posix driver). Writes go to a temporary file that is fsynced and renamed into place, so
 * a reader never sees half an object. Compare-and-swap: create = link(2) of a complete temporary file
 * (fails atomically when the name exists); replace = a short-lived lock file plus rename.
 */
import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ObjectNotFoundError, PreconditionFailedError, invalid } from '../errors';
import { readFileDirect, writeNewFileDirect } from '../io/direct-io';
import { writeFailure } from '../io/write-errors';
import { CinderNaming, Driver, ObjectEntry, ObjectOptions, StoredObject } from './driver';
import { sleep } from '../util/concurrency';

const FILE_MODE = 0o660;
const DIR_MODE = 0o770;
/** A replace lock older than this was left by a process that died; nothing holds one for long. */
const STALE_LOCK_MS = 30_000;
const TMP_MARK = '.tmp-';
/** Temporary files name their writer (pid and a tag of this machine's name), so leftovers of killed ones can be found. */
const HOST_TAG = createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8);
const TMP_OWNER = /\.tmp-(\d+)@([0-9a-f]{8})-[0-9a-f]{12}$/;

export interface PosixDriverOptions {
  /** Base directory; containers are directories below it ("" is the base itself). */
  path: string;
}

export class PosixDriver extends CinderNaming implements Driver {
  readonly kind = 'posix';
  readonly location: string;
  readonly conditionalWrites = true;
  private readonly base: string;

  constructor(options: PosixDriverOptions) {
    super();
    if (typeof options.path !== 'string' || options.path.length === 0 || options.path.includes('\0')) {
      throw invalid('the posix repository needs a directory path');
    }
    this.base = path.resolve(options.path);
    this.location = this.base;
  }

  /** Resolve container + object name to a path that is guaranteed to stay under the base directory. */
  private resolve(container: string, name = ''): string {
    for (const [label, value] of [['container', container], ['object name', name]] as const) {
      if (typeof value !== 'string' || value.includes('\0') || value.startsWith('/') || value.includes('\\')) {
        throw invalid(`invalid ${label} ${JSON.stringify(value)}`);
      }
      if (value.split('/').some((seg) => seg === '..' || seg === '.')) {
        throw invalid(`invalid ${label} ${JSON.stringify(value)}: "." and ".." are not allowed`);
      }
    }
    const full = path.resolve(this.base, container, name);
    if (full !== this.base && !full.startsWith(this.base + path.sep)) {
      throw invalid(`${JSON.stringify(path.join(container, name))} is outside the repository`);
    }
    return full;
  }

  localDirectory(container: string): string {
    return this.resolve(container);
  }

  async putContainer(container: string): Promise<void> {
    await this.writing(container, '', () => makeDirs(this.resolve(container)));
  }

  /** Run a write; a system error (a full disk, no permission…) becomes a message naming the object and what to do. */
  private async writing<T>(container: string, name: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      throw writeFailure(err, { kind: 'repository', what: name ? `object ${name}` : 'its directory', location: this.resolve(container) });
    }
  }

  async listEntries(container: string, prefix: string): Promise<ObjectEntry[]> {
    const root = this.resolve(container);
    // Only walk the directory the prefix names, not the whole container.
    const slash = prefix.lastIndexOf('/');
    const startDir = slash >= 0 ? prefix.slice(0, slash) : '';
    const out: ObjectEntry[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(path.join(root, rel), { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw err;
      }
      for (const entry of entries) {
        const name = rel ? `${rel}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
          if (prefix.startsWith(name + '/') || name.startsWith(prefix) || (name + '/').startsWith(prefix)) await walk(name);
        } else if (entry.isFile() && name.startsWith(prefix) && !entry.name.includes(TMP_MARK) && !entry.name.endsWith('.lock')) {
          const st = await fs.stat(path.join(root, name)).catch(() => null);
          if (st) out.push({ name, size: st.size });
        }
      }
    };
    if (startDir) this.resolve(container, startDir);
    await walk(startDir);
    out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return out;
  }

  async readObject(container: string, name: string): Promise<StoredObject> {
    const file = this.resolve(container, name);
    let data: Buffer;
    try {
      data = await fs.readFile(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFoundError(container, name);
      throw err;
    }
    // The etag is a digest of the whole object: computed only when asked for (records and locks ask;
    // a restore reading hundreds of MiB of data objects does not, and checks its own digests).
    let etag: string | undefined;
    return { data, get etag() { return (etag ??= etagOf(data)); } };
  }

  async readObjectInto(container: string, name: string, target: Uint8Array, options?: ObjectOptions): Promise<number> {
    const file = this.resolve(container, name);
    let handle: fs.FileHandle;
    try {
      // A restore reads each data object once: around the page cache, which it would only fill (filling it
      // cost this VM about 1 CPU-second per GiB, and made a restore's reads wait on the allocation).
      if (options?.directIo) {
        const read = await readFileDirect(file, target);
        if (read !== null) return read;
      }
      handle = await fs.open(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFoundError(container, name);
      throw err;
    }
    try {
      const { size } = await handle.stat();
      if (size > target.length) return -1;
      let done = 0;
      while (done < size) {
        const { bytesRead } = await handle.read(target, done, size - done, done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done;
    } finally {
      await handle.close();
    }
  }

  /**
   * Write to a fsynced temporary file beside the target; the caller decides how it is published. Data
   * that allows it is written with O_DIRECT (a backup's data objects: hundreds of MiB nobody reads
   * back soon), so it neither fills the page cache nor waits in it for the fsync.
   */
  private async writeTemp(file: string, data: Buffer, directIo = false): Promise<string> {
    const tmp = `${file}${TMP_MARK}${process.pid}@${HOST_TAG}-${randomBytes(6).toString('hex')}`;
    const direct = directIo ? await createInDirectory(tmp, () => writeNewFileDirect(tmp, data, FILE_MODE)) : null;
    const handle = direct ?? (await createInDirectory(tmp, () => fs.open(tmp, 'wx', FILE_MODE)));
    try {
      if (!direct) await handle.writeFile(data);
      await handle.sync();
    } catch (err) {
      await handle.close().catch(() => undefined);
      await fs.rm(tmp, { force: true });
      throw err;
    }
    await handle.close();
    return tmp;
  }

  private async syncDir(dir: string): Promise<void> {
    const handle = await fs.open(dir, 'r').catch(() => null);
    if (!handle) return;
    await handle.sync().catch(() => undefined);
    await handle.close();
  }

  async writeObject(container: string, name: string, data: Buffer, options?: ObjectOptions): Promise<string> {
    const file = this.resolve(container, name);
    await this.writing(container, name, async () => {
      const tmp = await this.writeTemp(file, data, options?.directIo);
      try {
        await fs.rename(tmp, file);
      } catch (err) {
        await fs.rm(tmp, { force: true });
        throw err;
      }
    });
    await this.syncDir(path.dirname(file));
    // The etag is the digest's prefix: reuse the caller's digest of these bytes (a backup has one).
    return options?.sha256 ? options.sha256.slice(0, 32) : etagOf(data);
  }

  async deleteObject(container: string, name: string): Promise<void> {
    const file = this.resolve(container, name);
    await fs.rm(file, { force: true });
    // Remove directories this left empty (a backup's timestamp directory), up to the container.
    const stop = this.resolve(container);
    let dir = path.dirname(file);
    while (dir !== stop && dir.startsWith(stop + path.sep)) {
      try {
        await fs.rmdir(dir);
      } catch {
        break;
      }
      dir = path.dirname(dir);
    }
  }

  async putIfAbsent(container: string, name: string, data: Buffer): Promise<string> {
    const file = this.resolve(container, name);
    const tmp = await this.writing(container, name, () => this.writeTemp(file, data));
    try {
      await fs.link(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new PreconditionFailedError(name, `object ${name} already exists`);
      throw writeFailure(err, { kind: 'repository', what: `object ${name}`, location: this.resolve(container) });
    } finally {
      await fs.rm(tmp, { force: true });
    }
    await this.syncDir(path.dirname(file));
    return etagOf(data);
  }

  async replaceIfMatch(container: string, name: string, data: Buffer, etag: string): Promise<string> {
    const file = this.resolve(container, name);
    const lock = `${file}.lock`;
    await this.writing(container, name, () => this.acquireLock(lock));
    try {
      let current: Buffer;
      try {
        current = await fs.readFile(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new PreconditionFailedError(name, `object ${name} no longer exists`);
        throw err;
      }
      if (etagOf(current) !== etag) throw new PreconditionFailedError(name);
      await this.writing(container, name, async () => fs.rename(await this.writeTemp(file, data), file));
      await this.syncDir(path.dirname(file));
      return etagOf(data);
    } finally {
      await fs.rm(lock, { force: true });
    }
  }

  private async acquireLock(lock: string): Promise<void> {
    const owner = `${os.hostname()} ${process.pid} ${Date.now()}`;
    for (let attempt = 0; ; attempt++) {
      let handle: fs.FileHandle | null = null;
      try {
        handle = await fs.open(lock, 'wx', FILE_MODE);
      } catch (err) {
        // The directory is gone, so is the object (a concurrent delete removed both): nothing to replace.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new PreconditionFailedError(path.basename(lock, '.lock'), `object ${path.basename(lock, '.lock')} no longer exists`);
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      if (handle) {
        // Ours now: on a full disk the owner line may not fit, and an empty lock left behind would hold up every later replace for STALE_LOCK_MS.
        try {
          await handle.writeFile(owner);
        } catch (err) {
          await handle.close().catch(() => undefined);
          await fs.rm(lock, { force: true });
          throw err;
        }
        await handle.close();
        return;
      }
      const st = await fs.stat(lock).catch(() => null);
      const deadOwner = st ? await deadHolderHere(lock) : null;
      if (deadOwner !== null) {
        // Its holder was killed (issue 6: prune crash tests): break it now.
        await breakDeadLock(lock, deadOwner);
        continue;
      }
      if (st && Date.now() - st.mtimeMs > STALE_LOCK_MS) {
        // Break a lock whose holder died: rename first, so only one breaker wins.
        const broken = `${lock}.broken-${randomBytes(4).toString('hex')}`;
        await fs.rename(lock, broken).then(() => fs.rm(broken, { force: true }), () => undefined);
        continue;
      }
      if (attempt > 2000) throw new PreconditionFailedError(path.basename(lock), `timed out waiting for lock ${lock}`);
      await sleep(5 + Math.random() * 20);
    }
  }

  /** Remove the temporary files and replace locks that killed processes of this machine left behind (start-up cleanup). */
  async removeStaleTemporaries(container: string, under = ''): Promise<number> {
    let removed = 0;
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        const owner = entry.isFile() ? TMP_OWNER.exec(entry.name) : null;
        if (owner && owner[2] === HOST_TAG && processGone(Number(owner[1]))) {
          await fs.rm(full, { force: true });
          removed++;
        }
        const deadOwner = entry.isFile() && entry.name.endsWith('.lock') ? await deadHolderHere(full) : null;
        if (deadOwner !== null) {
          await breakDeadLock(full, deadOwner);
          removed++;
        }
      }
    };
    await walk(this.resolve(container, under));
    return removed;
  }
}

/**
 * Create `file` with `create`, making its directory when it is missing. The create is tried first: the
 * directory is there for all but a backup's first object, and a mkdir per object was a tenth of a
 * changed-extent incremental's file system calls. Another process's deleteObject removes the directories
 * it leaves empty (a lease's `locks/`, a backup's directory), and may do so between our mkdir and our
 * create: then the create fails with ENOENT again and the directory is made again (seen with three
 * Node-RED workers sharing a repository).
 */
async function createInDirectory<T>(file: string, create: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await create();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 20) throw err;
    }
    await makeDirs(path.dirname(file));
  }
}

/**
 * mkdir -p. Node's recursive mkdir reports ENOENT for any failure to create a missing directory (a full
 * disk, no permission): retry step by step, so the user sees the real cause (ENOSPC, EACCES…).
 */
async function makeDirs(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true, mode: DIR_MODE });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || path.dirname(dir) === dir) throw err;
    await makeDirs(path.dirname(dir));
    await fs.mkdir(dir, { mode: DIR_MODE }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }
}

export function etagOf(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex').slice(0, 32);
}

/**
 * The owner line of a replace lock whose holder was a process of this host that no longer exists
 * (killed mid-replace), so it can be broken at once instead of after STALE_LOCK_MS; else null.
 */
async function deadHolderHere(lock: string): Promise<string | null> {
  const owner = await fs.readFile(lock, 'utf8').catch(() => '');
  const [host, pid] = owner.split(' ');
  if (host !== os.hostname() || !/^\d+$/.test(pid ?? '')) return null;
  return processGone(Number(pid)) ? owner : null;
}

/** Remove a lock whose holder is gone; if what was moved away turns out to be a newer lock, put it back (link fails if the name is taken again). */
async function breakDeadLock(lock: string, deadOwner: string): Promise<void> {
  const broken = `${lock}.broken-${randomBytes(4).toString('hex')}`;
  if (await fs.rename(lock, broken).then(() => true, () => false)) {
    if ((await fs.readFile(broken, 'utf8').catch(() => '')) !== deadOwner) await fs.link(broken, lock).catch(() => undefined);
    await fs.rm(broken, { force: true });
  }
}

/** True when no process of this machine has this pid (and it is not us). */
function processGone(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
