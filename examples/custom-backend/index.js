/**
 * "sharded": a volume-backup storage backend in one file (docs/backends.md of node-red-contrib-volume-backup).
 * Every object is a file <path>/_<container>/<h0h1>/<h2h3>/<name, URI-encoded>, where h is the SHA-256 of
 * its name: no directory holds more than a few hundred files however large the repository grows.
 * Exported as a function of the toolkit the host passes in (its zod and error classes): no dependencies.
 */
'use strict';
const crypto = require('crypto');
const fs = require('fs/promises');
const path = require('path');

/** How long a replaceIfMatch waits for another writer's lock on the same object before giving up. */
const LOCK_WAIT_MS = 5000;

module.exports = function sharded({ z, ObjectNotFoundError, PreconditionFailedError, invalid, cinderObjectNamePrefix }) {
  class ShardedDriver {
    constructor(base) {
      this.kind = 'sharded';
      this.base = path.resolve(base);
      this.location = `sharded:${this.base}`;
      this.conditionalWrites = true;
    }

    dir(container) {
      checkName('container', container, true);
      return path.join(this.base, `_${encodeURIComponent(container)}`);
    }

    file(container, name) {
      checkName('object name', name, false);
      const h = crypto.createHash('sha256').update(name).digest('hex');
      return path.join(this.dir(container), h.slice(0, 2), h.slice(2, 4), encodeURIComponent(name));
    }

    async putContainer(container) {
      await fs.mkdir(this.dir(container), { recursive: true });
    }

    async listEntries(container, prefix) {
      const out = [];
      const top = this.dir(container);
      for (const a of await dirs(top)) {
        for (const b of await dirs(path.join(top, a))) {
          for (const entry of await fs.readdir(path.join(top, a, b), { withFileTypes: true })) {
            if (!entry.isFile() || entry.name.includes('.tmp-') || entry.name.endsWith('.lock')) continue;
            const name = decodeURIComponent(entry.name);
            if (name.startsWith(prefix)) out.push({ name, size: (await fs.stat(path.join(top, a, b, entry.name))).size });
          }
        }
      }
      return out.sort((x, y) => (x.name < y.name ? -1 : 1));
    }

    async readObject(container, name) {
      const file = this.file(container, name);
      const handle = await fs.open(file, 'r').catch((err) => {
        throw err.code === 'ENOENT' ? new ObjectNotFoundError(container, name) : err;
      });
      try {
        const [data, stat] = [await handle.readFile(), await handle.stat({ bigint: true })];
        return { data, etag: etagOf(stat) };
      } finally {
        await handle.close();
      }
    }

    async writeObject(container, name, data) {
      const file = this.file(container, name);
      const temp = await writeTemp(file, data);
      await fs.rename(temp, file);
      return etagOf(await fs.stat(file, { bigint: true }));
    }

    async deleteObject(container, name) {
      await fs.rm(this.file(container, name), { force: true });
    }

    async putIfAbsent(container, name, data) {
      const file = this.file(container, name);
      const temp = await writeTemp(file, data);
      try {
        await fs.link(temp, file); // atomic: fails when the name exists
      } catch (err) {
        throw err.code === 'EEXIST' ? new PreconditionFailedError(name) : err;
      } finally {
        await fs.rm(temp, { force: true });
      }
      return etagOf(await fs.stat(file, { bigint: true }));
    }

    async replaceIfMatch(container, name, data, etag) {
      const file = this.file(container, name);
      if (!(await fs.stat(file).catch(() => null))) throw new PreconditionFailedError(name);
      const lock = await takeLock(`${file}.lock`);
      try {
        const current = await fs.stat(file, { bigint: true }).catch(() => null);
        if (!current || etagOf(current) !== etag) throw new PreconditionFailedError(name);
        return await this.writeObject(container, name, data);
      } finally {
        await lock.close();
        await fs.rm(`${file}.lock`, { force: true });
      }
    }

    localDirectory(container) {
      return this.dir(container);
    }

    generateObjectNamePrefix(parts) {
      return cinderObjectNamePrefix(parts);
    }

    updateContainerName(container) {
      return container;
    }

    getExtraMetadata() {
      return null;
    }
  }

  function checkName(label, value, emptyOk) {
    if (typeof value !== 'string' || (!emptyOk && !value) || value.includes('\0') || value.startsWith('/') || value.split('/').some((s) => s === '..' || s === '.')) {
      throw invalid(`invalid ${label} ${JSON.stringify(value)}`);
    }
  }

  /** A version tag that changes with every write: inode, size and modification time in nanoseconds. */
  const etagOf = (stat) => `${stat.ino}-${stat.size}-${stat.mtimeNs}`;

  const dirs = async (dir) => (await fs.readdir(dir).catch(() => [])).filter((n) => /^[0-9a-f]{2}$/.test(n));

  /** The data in a fsynced temporary file beside `file` (made with its directories). */
  async function writeTemp(file, data) {
    await fs.mkdir(path.dirname(file), { recursive: true });
    const temp = `${file}.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
    const handle = await fs.open(temp, 'wx', 0o660);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return temp;
  }

  async function takeLock(lockFile) {
    for (const deadline = Date.now() + LOCK_WAIT_MS; ; ) {
      try {
        return await fs.open(lockFile, 'wx');
      } catch (err) {
        if (err.code !== 'EEXIST' || Date.now() > deadline) throw err.code === 'EEXIST' ? invalid(`${lockFile} is held: remove it if no writer is running`) : err;
        await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 5));
      }
    }
  }

  const settings = z.object({ path: z.string().min(1) });
  return {
    name: 'sharded',
    label: 'Directory, sharded by hash',
    settings,
    fields: [{ name: 'path', label: 'Path', input: 'text', icon: 'folder', placeholder: '/var/backups/volumes' }],
    url: { schemes: ['sharded'], parse: (url) => ({ path: decodeURIComponent(url.pathname) }), format: (s) => `sharded:${s.path}` },
    capabilities: { conditionalWrites: 'local', multipart: false, localDirectory: true, md5: false },
    describe: (s) => `sharded:${s.path || '?'}`,
    testSettings: (scratchDir) => ({ path: scratchDir }),
    create: (s) => new ShardedDriver(s.path),
  };
};
