/**
 * The object-store drivers send every object's MD5 for the store to check (S3 Content-MD5, GCS md5Hash).
 * A backup computes it in its worker threads, beside the object's SHA-256, and hands it to the driver,
 * so the event loop does not hash every object again. Checked against the test servers, which refuse a
 * body whose declared MD5 does not match (as AWS and GCS do).
 */
import * as assert from 'assert';
import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { createBackup, restoreBackup } from '../lib';
import type { Driver, ObjectOptions } from '../lib/drivers/driver';
import { openRepositoryIn } from '../lib/repository/repository';
import { Backend, gcsBackend, recordingLog, s3Backend } from './servers/backends';
import { makeImage, sha256File, tempDir } from './helpers/volumes';

const MiB = 1024 * 1024;
const md5 = (data: Uint8Array) => createHash('md5').update(data).digest('base64');

for (const backend of [s3Backend(), gcsBackend()] as Backend[]) {
  describe(`${backend.name} driver: MD5 computed by the backup's workers`, function () {
    this.timeout(60_000);
    let dir: string;

    before(async () => {
      await backend.start();
      dir = await tempDir(`md5-${backend.name}`);
    });
    after(async () => {
      await backend.stop();
      await fs.rm(dir, { recursive: true, force: true });
    });

    it('every data object is written with the MD5 of its bytes, computed off the event loop; the backup restores exact', async () => {
      const driver: Driver = backend.driver({ prefix: 'md5-backup' });
      assert.strictEqual(driver.wantsMd5, true);
      const writes: { name: string; given?: string; actual: string }[] = [];
      const write = driver.writeObject.bind(driver);
      driver.writeObject = async (container: string, name: string, data: Buffer, options?: ObjectOptions) => {
        writes.push({ name, given: options?.md5, actual: md5(data) });
        return write(container, name, data, options);
      };
      const repo = await openRepositoryIn(driver, { create: true });
      try {
        const img = path.join(dir, 'disk.img');
        await makeImage(img, 5 * MiB + 777, 41, 256 * 1024);
        const record = await createBackup(repo, { volume: img, volumeId: 'disk', chunkSize: MiB, blockSize: 32 * 1024 });
        const dataObjects = writes.filter((w) => /-\d{5}$/.test(w.name));
        assert.ok(dataObjects.length >= 4, `data objects written: ${writes.map((w) => w.name).join(', ')}`);
        for (const w of dataObjects) assert.strictEqual(w.given, w.actual, `${w.name}: MD5 passed to the driver`);
        const target = path.join(dir, 'restored.img');
        await restoreBackup(repo, { backupId: record.id, target });
        assert.strictEqual(await sha256File(target), await sha256File(img));
      } finally {
        await repo.close();
      }
    });

    it('sends the MD5 it is given: a wrong one is refused by the store', async () => {
      const driver = backend.driver({ prefix: 'md5-wrong', log: recordingLog(), retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
      const data = randomBytes(100_000);
      await assert.rejects(driver.writeObject('', 'obj', data, { md5: md5(randomBytes(16)) }), /BadDigest|MD5|hash|400/i);
      await driver.writeObject('', 'obj', data, { md5: md5(data) });
      assert.ok((await driver.readObject('', 'obj')).data.equals(data));
      await driver.close?.();
    });
  });
}
