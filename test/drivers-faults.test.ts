/**
 * Faults between the drivers and the stores: the fault proxy answers 503/500/429, drops connections
 * and cuts bodies short on a schedule. Work still completes, byte-exact, with every retry logged
 * and its reason; faults that never stop fail with a message that names the bucket.
 */
import * as assert from 'assert';
import { createHash, randomBytes } from 'crypto';
import { ObjectNotFoundError, PreconditionFailedError, VolumeBackupError } from '../lib/errors';
import { Backend, gcsBackend, recordingLog, s3Backend } from './servers/backends';
import { Fault, FaultProxy, plans, startFaultProxy } from './servers/fault-proxy';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const backend of [s3Backend(), gcsBackend()] as Array<Backend & { name: 's3' | 'gcs' }>) {
  describe(`${backend.name} driver through a faulty network`, function () {
    this.timeout(60_000);
    let proxy: FaultProxy;

    before(async () => {
      await backend.start();
      proxy = await startFaultProxy(backend.endpoint, backend.name);
    });
    after(async () => {
      await proxy.stop();
      await backend.stop();
    });

    const cases: Array<[string, Fault[]]> = [
      ['503 and 500 answers', ['status-503', 'status-500']],
      ['429 throttling', ['status-429']],
      ['dropped connections', ['reset']],
      ['bodies cut mid-stream', ['truncate']],
      ['bodies that end early and cleanly', ['short']],
    ];
    for (const [label, faults] of cases) {
      it(`completes writes, reads, lists and records despite ${label}`, async () => {
        const log = recordingLog();
        const prefix = `faults-${label.replace(/\W+/g, '-')}`;
        // A reply cut short can leave the GCS client waiting forever: a short attempt timeout keeps the test quick.
        const driver = backend.driver({ endpoint: proxy.endpoint, prefix, log, retry: { attemptTimeoutMs: 800 } });
        proxy.setPlan(plans.everyNth(3, faults));
        const before = proxy.injected.length;
        const objects = Array.from({ length: 6 }, (_, i) => randomBytes(200_000 + i));
        for (const [i, data] of objects.entries()) await driver.writeObject('', `volume_v/1/backup_b-${i}`, data);
        for (const [i, data] of objects.entries()) assert.strictEqual(sha((await driver.readObject('', `volume_v/1/backup_b-${i}`)).data), sha(data));
        assert.strictEqual((await driver.listEntries('', 'volume_v/')).length, objects.length);
        const etag = await driver.putIfAbsent('', 'rec.json', Buffer.from('{"status":"creating"}'));
        const next = await driver.replaceIfMatch('', 'rec.json', Buffer.from('{"status":"available"}'), etag);
        await assert.rejects(driver.replaceIfMatch('', 'rec.json', Buffer.from('{}'), etag), PreconditionFailedError);
        const record = await driver.readObject('', 'rec.json');
        assert.strictEqual(record.data.toString(), '{"status":"available"}');
        assert.strictEqual(record.etag, next);
        await driver.deleteObject('', 'volume_v/1/backup_b-0');
        await assert.rejects(driver.readObject('', 'volume_v/1/backup_b-0'), ObjectNotFoundError);
        proxy.setPlan(() => null);
        assert.ok(proxy.injected.length - before >= 5, `faults injected: ${proxy.injected.length - before}`);
        // Every retry was logged with its reason.
        assert.ok(log.warnings.length > 0);
        for (const w of log.warnings) assert.match(w, /retry \d+\/\d+ in \d+ ms/);
        await driver.close?.();
      });
    }

    it('uploads a large object while connections drop and the server answers 503', async () => {
      const log = recordingLog();
      const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'faults-large', log, retry: { attemptTimeoutMs: 5000 } });
      proxy.setPlan(plans.everyNth(3, ['reset', 'status-503']));
      const data = randomBytes(34 * MiB);
      await driver.writeObject('', 'big', data);
      assert.strictEqual(sha((await driver.readObject('', 'big')).data), sha(data));
      proxy.setPlan(() => null);
      assert.ok(log.warnings.some((w) => /503|connection/.test(w)), log.warnings.join('\n'));
      await driver.close?.();
    });

    it('gives up after the bounded attempts with a message that names the bucket', async () => {
      const log = recordingLog();
      const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'faults-forever', log, retry: { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 20 } });
      proxy.setPlan(plans.always('status-503'));
      await assert.rejects(driver.writeObject('', 'x', Buffer.from('x')), (err: VolumeBackupError) => {
        assert.strictEqual(err.code, 'STORAGE');
        assert.ok(err.message.includes(`${backend.name === 's3' ? 's3' : 'gs'}://volume-backups/faults-forever/x`), err.message);
        assert.match(err.message, /after 4 attempts/);
        assert.match(err.message, /503/);
        return true;
      });
      assert.strictEqual(log.warnings.length, 3);
      proxy.setPlan(plans.always('reset'));
      await assert.rejects(driver.readObject('', 'x'), /after 4 attempts.*connection/);
      proxy.setPlan(() => null);
      await driver.close?.();
    });

    it('stops retrying when the time budget is spent', async () => {
      const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'faults-time', retry: { maxAttempts: 100, baseDelayMs: 50, maxDelayMs: 50, maxElapsedMs: 300 } });
      proxy.setPlan(plans.always('status-500'));
      await assert.rejects(driver.listEntries('', ''), (err: VolumeBackupError) => {
        const attempts = Number(err.details?.attempts);
        assert.ok(attempts > 1 && attempts < 100, `attempts: ${attempts}`);
        return true;
      });
      proxy.setPlan(() => null);
      await driver.close?.();
    });
  });
}
