/**
 * The MD5 an object-store driver checks GET bodies against is computed off the event loop: on the
 * engine's hashing threads while they run (a restore's), else on a thread of its own. One thread fewer
 * in a restore from S3 is one V8 isolate fewer (about 6 MiB of its peak, measured by the bench).
 */
import * as assert from 'assert';
import { execFile } from 'child_process';
import { createHash, randomBytes } from 'crypto';
import * as path from 'path';
import { promisify } from 'util';
import { md5Hex, offloadMd5To } from '../lib/drivers/md5-thread';
import { closeHashPool, md5OnPool, warmHashPool } from '../lib/engine/hash-pool';

const MiB = 1024 * 1024;
const hex = (data: Uint8Array) => createHash('md5').update(data).digest('hex');

describe('MD5 of object bodies off the event loop', () => {
  afterEach(async () => {
    offloadMd5To(md5OnPool); // as the engine registers it
    await closeHashPool();
  });

  it("runs on the engine's threads while they run, for shared and ordinary memory alike", async () => {
    await closeHashPool(); // an earlier test's may still run
    assert.strictEqual(await md5OnPool(randomBytes(MiB)), null, 'no pool running: nothing done there');
    warmHashPool();
    const shared = new Uint8Array(new SharedArrayBuffer(3 * MiB));
    shared.set(randomBytes(3 * MiB));
    assert.strictEqual(await md5OnPool(shared), hex(shared));
    const ordinary = randomBytes(2 * MiB);
    assert.strictEqual(await md5OnPool(ordinary), hex(ordinary));
    assert.strictEqual(await md5Hex(shared.subarray(MiB)), hex(shared.subarray(MiB)), 'through md5Hex, as the S3 driver calls it');
  });

  it('starts no thread of its own once the engine has loaded (a fresh process counts its threads)', async () => {
    // In a process of its own: an earlier test here may have started the MD5 thread already.
    const dist = path.join(__dirname, '..', 'lib');
    const script = `
      const threads = () => require('fs').readdirSync('/proc/self/task').length;
      const { md5Hex, offloadMd5To } = require(${JSON.stringify(path.join(dist, 'drivers', 'md5-thread'))});
      const { md5OnPool, closeHashPool, warmHashPool } = require(${JSON.stringify(path.join(dist, 'engine', 'hash-pool'))});
      (async () => {
        const body = new Uint8Array(new SharedArrayBuffer(1 << 20));
        warmHashPool(); // as a backup or restore does first
        const up = await Promise.all([md5OnPool(new Uint8Array(1)), md5OnPool(new Uint8Array(1))]);
        if (up.includes(null)) throw new Error('the engine threads did not start');
        const before = threads();
        await md5Hex(body);
        const afterEngine = threads();
        offloadMd5To(null); // as a driver used alone
        await md5Hex(body);
        console.log(JSON.stringify({ before, afterEngine, afterOwn: threads() }));
        await closeHashPool();
        process.exit(0);
      })();`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script]);
    const { before, afterEngine, afterOwn } = JSON.parse(stdout) as Record<string, number>;
    assert.strictEqual(afterEngine, before, 'an MD5 while the engine runs starts no thread');
    assert.strictEqual(afterOwn, before + 1, 'without the engine, the MD5 thread starts (so the count sees threads)');
  });

  it('sends large bodies to the registered pool (a view cut out of its buffer), and uses its own thread when the pool is not running', async () => {
    const seen: Uint8Array[] = [];
    let running = true;
    offloadMd5To(async (data) => {
      seen.push(data);
      return running ? hex(data) : null;
    });
    const big = randomBytes(4 * MiB);
    const view = big.subarray(MiB, 3 * MiB);
    assert.strictEqual(await md5Hex(view), hex(view));
    assert.strictEqual(seen.length, 1);
    assert.strictEqual(seen[0].byteLength, 2 * MiB);
    assert.strictEqual(seen[0].buffer.byteLength, 2 * MiB, 'only the view is copied, not the buffer around it');
    running = false;
    assert.strictEqual(await md5Hex(view), hex(view), 'its own thread');
    assert.strictEqual(seen.length, 2);
    assert.strictEqual(await md5Hex(randomBytes(1000)).then((h) => h.length), 32, 'a small body is hashed in place');
    assert.strictEqual(seen.length, 2);
  });
});
