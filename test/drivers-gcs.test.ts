/**
 * What only the gcs driver does, and what the GCS test server must get right for the real client:
 * resumable uploads above the threshold (single-shot and chunked with 308 + Range), declared MD5s
 * the server checks, generations as etags, clear errors for a missing bucket or bad credentials.
 */
import * as assert from 'assert';
import { createHash, randomBytes } from 'crypto';
import { Storage } from '@google-cloud/storage';
import { createDriver } from '../lib/drivers';
import { PreconditionFailedError, VolumeBackupError } from '../lib/errors';
import { BUCKET, gcsBackend, recordingLog } from './servers/backends';
import { FaultProxy, startFaultProxy } from './servers/fault-proxy';
import { crc32cBase64 } from './servers/gcs-server';

const MiB = 1024 * 1024;

describe('gcs driver on the GCS test server', function () {
  this.timeout(60_000);
  const backend = gcsBackend();
  let proxy: FaultProxy;
  let storage: Storage;

  before(async () => {
    await backend.start();
    proxy = await startFaultProxy(backend.endpoint, 'gcs');
    storage = new Storage({ apiEndpoint: backend.endpoint, projectId: 'p', retryOptions: { autoRetry: false } });
  });
  after(async () => {
    await proxy.stop();
    await backend.stop();
  });

  it('computes CRC32C as GCS publishes it', () => {
    // The check value of CRC-32C over "123456789" is 0xe3069283.
    assert.strictEqual(Buffer.from(crc32cBase64(Buffer.from('123456789')), 'base64').toString('hex'), 'e3069283');
  });

  it('uploads small objects in one multipart request and large ones as resumable uploads', async () => {
    const driver = backend.driver({ prefix: 'paths' });
    const { multipartUploads, resumableUploads } = { ...backend.server.stats };
    await driver.writeObject('', 'small', randomBytes(1000));
    assert.strictEqual(backend.server.stats.multipartUploads, multipartUploads + 1);
    assert.strictEqual(backend.server.stats.resumableUploads, resumableUploads);
    const big = randomBytes(20 * MiB);
    const etag = await driver.writeObject('', 'big', big);
    assert.strictEqual(backend.server.stats.resumableUploads, resumableUploads + 1);
    const read = await driver.readObject('', 'big');
    assert.ok(read.data.equals(big));
    assert.strictEqual(read.etag, etag);
    const [meta] = await storage.bucket(BUCKET).file('paths/big').getMetadata();
    assert.strictEqual(String(meta.generation), etag, 'the etag is the generation');
    assert.strictEqual(meta.md5Hash, createHash('md5').update(big).digest('base64'));
  });

  it('serves the real client chunked resumable uploads (308 + Range) and ranged reads', async () => {
    const data = randomBytes(3 * MiB + 777);
    const file = storage.bucket(BUCKET).file('direct/chunked');
    const chunks = backend.server.stats.resumableChunks;
    await file.save(data, { resumable: true, chunkSize: 1024 * 1024, validation: 'crc32c' });
    assert.strictEqual(backend.server.stats.resumableChunks - chunks, 4);
    const [whole] = await file.download({ validation: 'crc32c' });
    assert.ok(whole.equals(data));
    const [part] = await file.download({ start: 1000, end: 1999 });
    assert.ok(part.equals(data.subarray(1000, 2000)));
  });

  it('resends an upload the server received corrupted (declared MD5 mismatch → 400)', async () => {
    let corrupted = 0;
    proxy.setPlan((r) => (r.method === 'POST' && r.url.includes('/upload/') && corrupted++ === 0 ? 'corrupt-request' : null));
    const log = recordingLog();
    const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'digest', log });
    const data = randomBytes(50_000);
    await driver.putIfAbsent('', 'rec', data);
    proxy.setPlan(() => null);
    assert.ok(log.warnings.some((w) => /other bytes than were sent/.test(w)), log.warnings.join('\n'));
    assert.ok((await driver.readObject('', 'rec')).data.equals(data));
  });

  it('keeps a create that succeeded although its reply was lost', async () => {
    let dropped = 0;
    proxy.setPlan((r) => (r.method === 'POST' && r.url.includes('name=lost%2Frec') && dropped++ === 0 ? 'drop-reply' : null));
    const driver = backend.driver({ endpoint: proxy.endpoint, log: recordingLog(), retry: { attemptTimeoutMs: 800 } });
    const etag = await driver.putIfAbsent('', 'lost/rec', Buffer.from('mine'));
    proxy.setPlan(() => null);
    assert.strictEqual(dropped, 2, 'the first reply was dropped, the retry got 412');
    assert.strictEqual((await driver.readObject('', 'lost/rec')).etag, etag);
    await assert.rejects(driver.putIfAbsent('', 'lost/rec', Buffer.from('other')), PreconditionFailedError);
  });

  it('refuses an etag that is not a generation', async () => {
    const driver = backend.driver();
    await driver.putIfAbsent('', 'gen', Buffer.from('x'));
    await assert.rejects(driver.replaceIfMatch('', 'gen', Buffer.from('y'), '"abc"'), PreconditionFailedError);
  });

  it('fails at once, naming the bucket, when the bucket does not exist', async () => {
    const log = recordingLog();
    const driver = backend.driver({ bucket: 'absent-bucket', log });
    await assert.rejects(driver.writeObject('', 'x', Buffer.from('x')), /gs:\/\/absent-bucket .*does not exist: create it/);
    await assert.rejects(driver.listEntries('', ''), /absent-bucket/);
    assert.deepStrictEqual(log.warnings, []);
  });

  it('says what is wrong with credentials that are not JSON', () => {
    assert.throws(
      () => createDriver({ backend: 'gcs', bucket: BUCKET, credentials: '{not json', endpoint: backend.endpoint }),
      (err: VolumeBackupError) => err.code === 'INVALID_ARGUMENT' && /gs:\/\/volume-backups/.test(err.message) && /not valid JSON/.test(err.message),
    );
  });
});
