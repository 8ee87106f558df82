/**
 * The driver contract (docs/backends.md, "The driver contract": C1…C15 there are the tests here), as a
 * suite any backend can run: test/drivers-contract.test.ts runs it against posix, s3, gcs and the
 * example "sharded" backend; `npm run test-backend -- <module>` against any backend module.
 */
import * as assert from 'assert';
import { createHash, randomBytes } from 'crypto';
import { ObjectNotFoundError, PreconditionFailedError } from '../../lib/errors';
import { Driver, cinderObjectNamePrefix } from '../../lib/drivers/driver';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A backend as the suite drives it. */
export interface ContractBackend {
  readonly name: string;
  /** Whether its settings have a key prefix (C14). */
  readonly hasPrefix: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A driver on the backend's scratch repository, under `prefix` when given. */
  driver(options?: { prefix?: string }): Driver;
}

async function inParallel<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  }));
  return out;
}

export function driverContract(backend: ContractBackend): void {
  describe(`driver contract: ${backend.name}`, function () {
    let driver: Driver;
    let run = 0;
    let container = '';

    before(() => backend.start());
    after(() => backend.stop());
    beforeEach(async () => {
      // Each test gets its own container so the tests stay independent.
      container = `t${++run}`;
      driver = backend.driver();
      await driver.putContainer(container);
    });
    afterEach(() => driver.close?.());

    it('C1 writeObject stores the bytes; readObject returns them and the etag the write returned; empty objects too', async () => {
      const data = randomBytes(100_000);
      const etag = await driver.writeObject(container, 'volume_v1/20260101000000/backup_b1-00001', data);
      const read = await driver.readObject(container, 'volume_v1/20260101000000/backup_b1-00001');
      assert.strictEqual(sha(read.data), sha(data));
      assert.strictEqual(read.etag, etag);
      const empty = await driver.writeObject(container, 'empty', Buffer.alloc(0));
      assert.strictEqual((await driver.readObject(container, 'empty')).data.length, 0);
      assert.ok(typeof empty === 'string');
    });

    it('C2 writeObject overwrites, and the new version has a new etag', async () => {
      const first = await driver.writeObject(container, 'obj', Buffer.from('one'));
      const second = await driver.writeObject(container, 'obj', Buffer.from('two'));
      assert.notStrictEqual(first, second);
      assert.strictEqual((await driver.readObject(container, 'obj')).data.toString(), 'two');
    });

    it('C3 readObject of a missing object throws ObjectNotFoundError', async () => {
      await assert.rejects(driver.readObject(container, 'volume_v1/nothing'), ObjectNotFoundError);
    });

    it('C4 deleteObject removes an object; deleting a missing one is not an error', async () => {
      await driver.writeObject(container, 'a/b', Buffer.from('x'));
      await driver.deleteObject(container, 'a/b');
      await driver.deleteObject(container, 'a/b');
      await driver.deleteObject(container, 'never/there');
      await assert.rejects(driver.readObject(container, 'a/b'), ObjectNotFoundError);
      assert.deepStrictEqual(await driver.listEntries(container, ''), []);
    });

    it('C5 listEntries lists by plain string prefix, names relative to the container, sorted, with sizes; containers are apart', async () => {
      await driver.putContainer('other');
      await driver.writeObject(container, 'volume_a/1/x', Buffer.alloc(3));
      await driver.writeObject(container, 'volume_a/2/y', Buffer.alloc(5));
      await driver.writeObject(container, 'volume_ab/1/z', Buffer.alloc(7));
      await driver.writeObject('other', 'volume_a/9/w', Buffer.alloc(1));
      assert.deepStrictEqual(await driver.listEntries(container, 'volume_a/'), [
        { name: 'volume_a/1/x', size: 3 },
        { name: 'volume_a/2/y', size: 5 },
      ]);
      assert.deepStrictEqual((await driver.listEntries(container, 'volume_a')).map((e) => e.name), ['volume_a/1/x', 'volume_a/2/y', 'volume_ab/1/z']);
      assert.deepStrictEqual(await driver.listEntries('other', ''), [{ name: 'volume_a/9/w', size: 1 }]);
      assert.deepStrictEqual(await driver.listEntries(container, 'volume_zz/'), []);
    });

    it('C6 listEntries returns every object, however many (more than 1000: paging)', async function () {
      this.timeout(120_000);
      const names = Array.from({ length: 1234 }, (_, i) => `volume_many/20260101000000/backup_x-${String(i).padStart(5, '0')}`);
      await inParallel(names.length, 16, (i) => driver.writeObject(container, names[i], Buffer.from(String(i))));
      const listed = await driver.listEntries(container, 'volume_many/');
      assert.deepStrictEqual(listed.map((e) => e.name).sort(), names);
      assert.strictEqual(listed.find((e) => e.name === names[1000])?.size, 4);
    });

    it('C7 putIfAbsent creates once; a second create throws PreconditionFailedError and changes nothing', async () => {
      const etag = await driver.putIfAbsent(container, 'records/r.json', Buffer.from('{"v":1}'));
      await assert.rejects(driver.putIfAbsent(container, 'records/r.json', Buffer.from('{"v":2}')), PreconditionFailedError);
      const read = await driver.readObject(container, 'records/r.json');
      assert.strictEqual(read.data.toString(), '{"v":1}');
      assert.strictEqual(read.etag, etag);
    });

    it('C8 replaceIfMatch replaces only from the current etag; a stale or missing one throws PreconditionFailedError', async () => {
      const first = await driver.putIfAbsent(container, 'rec', Buffer.from('1'));
      const second = await driver.replaceIfMatch(container, 'rec', Buffer.from('2'), first);
      await assert.rejects(driver.replaceIfMatch(container, 'rec', Buffer.from('stale'), first), PreconditionFailedError);
      await driver.replaceIfMatch(container, 'rec', Buffer.from('3'), second);
      assert.strictEqual((await driver.readObject(container, 'rec')).data.toString(), '3');
      await assert.rejects(driver.replaceIfMatch(container, 'gone', Buffer.from('x'), second), PreconditionFailedError);
    });

    it('C9 of concurrent replaceIfMatch from one etag exactly one wins', async () => {
      const etag = await driver.putIfAbsent(container, 'race', Buffer.from('start'));
      const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => driver.replaceIfMatch(container, 'race', Buffer.from(`writer-${i}`), etag)));
      const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      assert.strictEqual(winners.length, 1, `winners: ${winners}`);
      for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof PreconditionFailedError, String(r.reason));
      const read = await driver.readObject(container, 'race');
      assert.strictEqual(read.data.toString(), `writer-${winners[0]}`);
      assert.strictEqual(read.etag, (results[winners[0]] as PromiseFulfilledResult<string>).value);
    });

    it('C10 of concurrent putIfAbsent exactly one creates the object', async () => {
      const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => driver.putIfAbsent(container, 'lock', Buffer.from(`owner-${i}`))));
      const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      assert.strictEqual(winners.length, 1, `winners: ${winners}`);
      assert.strictEqual((await driver.readObject(container, 'lock')).data.toString(), `owner-${winners[0]}`);
    });

    it('C11 a large object (36 MiB) is stored and read back byte for byte', async function () {
      this.timeout(60_000);
      const big = randomBytes(36 * MiB + 12345);
      await driver.writeObject(container, 'volume_big/0/backup_big-00001', big);
      const read = await driver.readObject(container, 'volume_big/0/backup_big-00001');
      assert.strictEqual(read.data.length, big.length);
      assert.strictEqual(sha(read.data), sha(big));
      assert.deepStrictEqual(await driver.listEntries(container, 'volume_big/'), [{ name: 'volume_big/0/backup_big-00001', size: big.length }]);
    });

    it('C12 generateObjectNamePrefix names backups as Cinder does', () => {
      const parts = { volumeId: 'vol1', backupId: 'b1', createdAt: new Date('2026-03-04T05:06:07Z') };
      assert.strictEqual(driver.generateObjectNamePrefix(parts), 'volume_vol1/20260304050607/backup_b1');
      assert.strictEqual(driver.generateObjectNamePrefix(parts), cinderObjectNamePrefix(parts));
    });

    it('C13 object names with ".." or a leading "/" are refused', async () => {
      await assert.rejects(driver.writeObject(container, '../escape', Buffer.from('x')));
      await assert.rejects(driver.readObject(container, 'a/../../b'));
    });

    it('C15 a write whose prefix another writer is emptying still lands (a directory removed under it is made again)', async function () {
      this.timeout(120_000);
      // Many instances share a repository: one deletes the last lease of locks/ while another creates one there.
      // Each round: the prefix holds one object; it is deleted while others are created there, a few
      // microseconds apart each time, so that some creates fall between a delete's unlink and its rmdir.
      for (let round = 0; round < 40; round++) {
        const dir = `c15/${round}`;
        await driver.writeObject(container, `${dir}/old`, Buffer.from('old'));
        const names = Array.from({ length: 8 }, (_, i) => `${dir}/new-${i}`);
        await Promise.all([
          driver.deleteObject(container, `${dir}/old`),
          ...names.map((name, i) => (i % 2 ? driver.putIfAbsent(container, name, Buffer.from(name)) : driver.writeObject(container, name, Buffer.from(name)))),
        ]);
        assert.deepStrictEqual((await driver.listEntries(container, `${dir}/`)).map((e) => e.name), names.sort());
        for (const name of names) await driver.deleteObject(container, name);
      }
    });

    if (backend.hasPrefix) {
      it('C14 (backends with a prefix setting) drivers with different prefixes keep their objects apart', async () => {
        const a = backend.driver({ prefix: `tenant-a/${container}` });
        const b = backend.driver({ prefix: `tenant-b/${container}` });
        await a.writeObject('', 'volume_v/1/x', Buffer.from('a'));
        await b.writeObject('', 'volume_v/1/x', Buffer.from('b'));
        assert.deepStrictEqual(await a.listEntries('', ''), [{ name: 'volume_v/1/x', size: 1 }]);
        assert.strictEqual((await b.readObject('', 'volume_v/1/x')).data.toString(), 'b');
        // The whole bucket shows both, under their prefixes.
        const whole = await driver.listEntries('', 'tenant-');
        assert.deepStrictEqual(whole.map((e) => e.name).filter((n) => n.endsWith(`${container}/volume_v/1/x`)).length, 2);
        await a.close?.();
        await b.close?.();
      });
    }
  });
}
