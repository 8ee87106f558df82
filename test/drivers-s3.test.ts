/**
 * What only the s3 driver does: multipart uploads (parts in parallel, Content-MD5 on each, aborted
 * when they fail or are cancelled), the single-writer fallback without conditional writes, and the
 * errors that retrying cannot fix. Runs against s3rver behind the enforcing layer, or the store
 * S3_TEST_ENDPOINT names (s3-target.ts); the fault proxy records the requests the SDK sends.
 */
import * as assert from 'assert';
import { createHash, randomBytes } from 'crypto';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { ObjectNotFoundError, PreconditionFailedError, VolumeBackupError } from '../lib/errors';
import { createBackup, listBackups } from '../lib';
import { md5Hex } from '../lib/drivers/md5-thread';
import { openRepositoryIn } from '../lib/repository/repository';
import { FaultProxy, ProxiedRequest, startFaultProxy } from './servers/fault-proxy';
import { makeImage, tempDir } from './helpers/volumes';
import { promises as fs } from 'fs';
import * as http from 'http';
import * as path from 'path';
import { BUCKET, recordingLog, s3Backend } from './servers/backends';
import { S3_CREDENTIALS, S3_STORE, S3_TARGET } from './servers/s3-target';

const MiB = 1024 * 1024;

describe(`s3 driver on ${S3_STORE}`, function () {
  const backend = s3Backend();
  let proxy: FaultProxy;
  let seen: ProxiedRequest[];
  let client: S3Client;

  before(async () => {
    await backend.start();
    proxy = await startFaultProxy(backend.endpoint, 's3');
    client = new S3Client({ endpoint: backend.endpoint, region: S3_TARGET?.region ?? 'us-east-1', forcePathStyle: true, credentials: S3_CREDENTIALS });
  });
  after(async () => {
    client.destroy();
    await proxy.stop();
    await backend.stop();
  });
  beforeEach(() => {
    seen = [];
    proxy.setPlan((r) => {
      seen.push(r);
      return null;
    });
  });

  const openUploads = async (prefix: string) =>
    ((await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }))).Uploads ?? []).map((u) => u.Key);

  it('lists an unfinished multipart upload (so the checks below can fail)', async () => {
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'probe/left-open' }));
    assert.ok(UploadId);
    assert.deepStrictEqual(await openUploads('probe/'), ['probe/left-open']);
  });

  it('uploads a large object as parallel multipart parts, each with Content-MD5, and leaves no upload open', async () => {
    const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'mp1' });
    const data = randomBytes(36 * MiB);
    await driver.writeObject('', 'big', data);
    const parts = seen.filter((r) => r.method === 'PUT' && /[?&]partNumber=/.test(r.url));
    assert.strictEqual(parts.length, 5, '36 MiB in 8 MiB parts');
    for (const p of parts) assert.ok(p.headers['content-md5'], `part without Content-MD5: ${p.url}`);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.strictEqual(sha((await driver.readObject('', 'big')).data), sha(data));
    assert.deepStrictEqual(await openUploads('mp1/'), []);
    await driver.close?.();
  });

  it('sends small objects in one PutObject with Content-MD5', async () => {
    const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'single' });
    await driver.writeObject('', 'small', randomBytes(1000));
    await driver.putIfAbsent('', 'rec', Buffer.from('{}'));
    const puts = seen.filter((r) => r.method === 'PUT');
    assert.strictEqual(puts.length, 2);
    for (const p of puts) assert.ok(p.headers['content-md5']);
    assert.strictEqual(puts[1].headers['if-none-match'], '*');
    await driver.close?.();
  });

  it('signs a write with the SHA-256 the caller already computed instead of hashing the body again', async () => {
    const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'known-sha' });
    const data = randomBytes(1000);
    const digest = createHash('sha256').update(data).digest('hex');
    await driver.writeObject('', 'obj', data, { sha256: digest });
    assert.strictEqual(seen.find((r) => r.method === 'PUT')?.headers['x-amz-content-sha256'], digest);
    assert.ok((await driver.readObject('', 'obj')).data.equals(data));
    // A digest that is not the body's is what goes out (so nothing hashed the body again); a store that checks it (RGW) refuses the write.
    seen = [];
    const other = createHash('sha256').update('other bytes').digest('hex');
    const write = driver.writeObject('', 'obj2', data, { sha256: other });
    if (S3_TARGET) await assert.rejects(write);
    else await write;
    assert.strictEqual(seen.find((r) => r.method === 'PUT')?.headers['x-amz-content-sha256'], other);
    await driver.close?.();
  });

  it('aborts a multipart upload whose part keeps failing, and names the bucket', async () => {
    proxy.setPlan((r) => (/[?&]partNumber=3/.test(r.url) ? 'status-500' : null));
    const log = recordingLog();
    const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'mp2', log, retry: { maxAttempts: 3 } });
    await assert.rejects(driver.writeObject('', 'doomed', randomBytes(30 * MiB)), (err: Error) => {
      assert.match(err.message, new RegExp(`s3://${BUCKET}/mp2/doomed`));
      assert.match(err.message, /part 3\/4/);
      assert.match(err.message, /3 attempts/);
      return true;
    });
    // Part 3 is retried twice (3 attempts). Count only its warnings: s3rver itself may answer the abort with a 500
    // while the other parts are still being written, and the abort is then retried (seen once in CI).
    assert.strictEqual(log.warnings.filter((w) => /upload part 3\/4 .*server error \(500\)/.test(w)).length, 2, log.warnings.join('\n'));
    assert.deepStrictEqual(await openUploads('mp2/'), []);
    assert.deepStrictEqual(await driver.listEntries('', ''), []);
    await driver.close?.();
  });

  it('aborts a multipart upload that is cancelled midway', async () => {
    const controller = new AbortController();
    proxy.setPlan((r) => {
      if (/[?&]partNumber=2/.test(r.url)) controller.abort(new Error('stop requested'));
      return null;
    });
    const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'mp3' });
    await assert.rejects(driver.writeObject('', 'cancelled', randomBytes(40 * MiB), { signal: controller.signal }), (err: VolumeBackupError) => err.code === 'CANCELLED' || /abort/i.test(err.message));
    assert.deepStrictEqual(await openUploads('mp3/'), []);
    assert.deepStrictEqual(await driver.listEntries('', ''), []);
    await driver.close?.();
  });

  it('without conditional writes warns that only one writer is safe, and still refuses stale replaces', async () => {
    const log = recordingLog();
    const driver = backend.driver({ prefix: 'single-writer', log, extra: { conditionalWrites: false } });
    assert.strictEqual(driver.conditionalWrites, false);
    assert.ok(log.warnings.some((w) => /only one writer/.test(w) && w.includes(BUCKET)), log.warnings.join('\n'));
    const etag = await driver.putIfAbsent('', 'rec', Buffer.from('1'));
    await assert.rejects(driver.putIfAbsent('', 'rec', Buffer.from('2')), PreconditionFailedError);
    const next = await driver.replaceIfMatch('', 'rec', Buffer.from('3'), etag);
    await assert.rejects(driver.replaceIfMatch('', 'rec', Buffer.from('4'), etag), PreconditionFailedError);
    assert.strictEqual((await driver.readObject('', 'rec')).etag, next);
    await driver.close?.();
  });

  // Only on the test server: what its enforcing layer is for.
  if (!S3_TARGET) it('needs the enforcing layer: s3rver alone lets a second create overwrite', async () => {
    const bare = backend.driver({ endpoint: backend.server.upstreamEndpoint, prefix: 'bare' });
    await bare.putIfAbsent('', 'rec', Buffer.from('1'));
    await bare.putIfAbsent('', 'rec', Buffer.from('2')); // no 412 from s3rver itself
    assert.strictEqual((await bare.readObject('', 'rec')).data.toString(), '2');
    await bare.close?.();
  });

  it('fails at once with the bucket and what to check when the credentials are wrong', async () => {
    const log = recordingLog();
    // An unknown key is refused with 403 (s3rver checks the access key id, not SigV4 signatures).
    const driver = backend.driver({ log, extra: { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'wrong-secret' } });
    await assert.rejects(driver.readObject('', 'anything'), (err: VolumeBackupError) => {
      assert.strictEqual(err.code, 'AUTH');
      assert.match(err.message, new RegExp(`s3://${BUCKET}`));
      assert.match(err.message, /AWS_SECRET_ACCESS_KEY/);
      return true;
    });
    assert.deepStrictEqual(log.warnings, [], 'no retries for bad credentials');
    await driver.close?.();
  });

  it('fails at once with the bucket name when the bucket does not exist', async () => {
    const log = recordingLog();
    const driver = backend.driver({ bucket: 'no-such-bucket', log });
    await assert.rejects(driver.writeObject('', 'x', Buffer.from('x')), /s3:\/\/no-such-bucket .*does not exist: create it/);
    await assert.rejects(driver.listEntries('', ''), /no-such-bucket/);
    assert.deepStrictEqual(log.warnings, []);
    await driver.putContainer('');
    await driver.writeObject('', 'x', Buffer.from('now it exists'));
    await driver.close?.();
  });

  it('keeps a create that succeeded although its reply was lost', async () => {
    let dropped = 0;
    proxy.setPlan((r) => (r.method === 'PUT' && r.url.includes('lost/rec') && dropped++ === 0 ? 'drop-reply' : null));
    const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'lost', log: recordingLog() });
    const etag = await driver.putIfAbsent('', 'rec', Buffer.from('mine'));
    assert.strictEqual(dropped, 2, 'the first reply was dropped, the retry got 412');
    assert.strictEqual((await driver.readObject('', 'rec')).etag, etag);
    await assert.rejects(driver.putIfAbsent('', 'rec', Buffer.from('other')), PreconditionFailedError);
    await driver.close?.();
  });

  it('resends an object the store received corrupted (BadDigest)', async () => {
    let corrupted = 0;
    proxy.setPlan((r) => (r.method === 'PUT' && corrupted++ === 0 ? 'corrupt-request' : null));
    const log = recordingLog();
    const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'digest', log });
    const data = randomBytes(100_000);
    await driver.writeObject('', 'obj', data);
    // s3rver's layer checks Content-MD5 (BadDigest); RGW checks the signed payload hash first.
    assert.ok(log.warnings.some((w) => /BadDigest|XAmzContentSHA256Mismatch/.test(w)), log.warnings.join('\n'));
    assert.ok((await driver.readObject('', 'obj')).data.equals(data));
    await driver.close?.();
  });

  const bare = (etag: string) => etag.replace(/"/g, '');
  const ifMatchSent = () => seen.filter((r) => r.headers['if-match']).map((r) => String(r.headers['if-match']));

  it('sends If-Match with the bare ETag, as RGW needs', async () => {
    const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'if-match' });
    const first = await driver.putIfAbsent('', 'rec', Buffer.from('1'));
    const second = await driver.replaceIfMatch('', 'rec', Buffer.from('2'), first);
    await assert.rejects(driver.replaceIfMatch('', 'rec', Buffer.from('3'), first), PreconditionFailedError);
    assert.deepStrictEqual(ifMatchSent(), [bare(first), bare(first)]);
    assert.strictEqual((await driver.readObject('', 'rec')).etag, second);
    await driver.close?.();
  });

  // The test layer accepts either form: here the proxy plays a store that compares only the quoted one.
  if (!S3_TARGET) {
    it('switches to the quoted If-Match for good when a store refuses the bare form for an unchanged object', async () => {
      const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'if-match-quoted' });
      const first = await driver.putIfAbsent('', 'rec', Buffer.from('1'));
      proxy.setPlan((r) => {
        seen.push(r);
        const header = r.headers['if-match'];
        return typeof header === 'string' && !header.startsWith('"') ? 'status-412' : null;
      });
      const second = await driver.replaceIfMatch('', 'rec', Buffer.from('2'), first);
      await driver.replaceIfMatch('', 'rec', Buffer.from('3'), second);
      assert.deepStrictEqual(ifMatchSent(), [bare(first), `"${bare(first)}"`, `"${bare(second)}"`], 'refused once, then the quoted form, remembered');
      // A stale ETag is still refused.
      await assert.rejects(driver.replaceIfMatch('', 'rec', Buffer.from('4'), second), PreconditionFailedError);
      assert.strictEqual((await driver.readObject('', 'rec')).data.toString(), '3');
      await driver.close?.();
    });
  }

  it('checks large GET bodies against their MD5 ETag (hashed in a worker thread), and reads again one altered on the way', async () => {
    const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'md5-get', log: recordingLog() });
    const data = randomBytes(3 * MiB);
    await driver.writeObject('', 'obj', data);
    let altered = 0;
    proxy.setPlan((r) => (r.method === 'GET' && r.url.includes('md5-get/obj') && altered++ === 0 ? 'corrupt-reply' : null));
    const log = recordingLog();
    const reader = backend.driver({ endpoint: proxy.endpoint, prefix: 'md5-get', log });
    assert.ok((await reader.readObject('', 'obj')).data.equals(data));
    assert.strictEqual(altered, 2, 'the altered body was read again');
    assert.ok(log.warnings.some((w) => /does not match its MD5 ETag/.test(w)), log.warnings.join('\n'));
    await driver.close?.();
    await reader.close?.();
  });

  it('reads an object straight into a shared buffer, checks its MD5 there, reads again one altered on the way, and gives -1 when it does not fit', async () => {
    const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'md5-into', log: recordingLog() });
    const data = randomBytes(3 * MiB + 5);
    await driver.writeObject('', 'obj', data);
    let altered = 0;
    proxy.setPlan((r) => (r.method === 'GET' && r.url.includes('md5-into/obj') && altered++ === 0 ? 'corrupt-reply' : null));
    const target = new Uint8Array(new SharedArrayBuffer(4 * MiB));
    assert.strictEqual(await driver.readObjectInto!('', 'obj', target), data.length);
    assert.ok(Buffer.from(target.buffer, 0, data.length).equals(data), 'the bytes in the shared buffer are the object');
    assert.strictEqual(altered, 2, 'the altered body was read again');
    assert.strictEqual(await driver.readObjectInto!('', 'obj', new Uint8Array(new SharedArrayBuffer(MiB))), -1);
    await assert.rejects(driver.readObjectInto!('', 'missing', target), ObjectNotFoundError);
    await driver.close?.();
  });

  it('hashes in the worker thread exactly as in place: sizes around the threshold, and views into a larger buffer', async () => {
    const big = randomBytes(5 * MiB + 3);
    const shared = new Uint8Array(new SharedArrayBuffer(big.length));
    shared.set(big);
    const cases = [Buffer.alloc(0), big.subarray(0, 256 * 1024 - 1), big.subarray(0, 256 * 1024), big.subarray(7, 4 * MiB), big, shared.subarray(5, 4 * MiB)];
    const hex = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
    assert.deepStrictEqual(await Promise.all(cases.map((c) => md5Hex(c))), cases.map(hex));
  });

  it('returns the ETag of a multipart upload, from HeadObject when the Complete reply has none (RGW)', async () => {
    const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'mp-etag' });
    const data = randomBytes(20 * MiB);
    const etag = await driver.writeObject('', 'big', data);
    const parts = [data.subarray(0, 8 * MiB), data.subarray(8 * MiB, 16 * MiB), data.subarray(16 * MiB)];
    const md5 = (b: Buffer) => createHash('md5').update(b).digest();
    const expected = `${md5(Buffer.concat(parts.map(md5))).toString('hex')}-3`;
    // AWS and RGW give the md5-of-md5s form; s3rver gives the MD5 of the whole object.
    assert.strictEqual(etag.replace(/"/g, ''), S3_TARGET ? expected : createHash('md5').update(data).digest('hex'));
    assert.strictEqual((await driver.readObject('', 'big')).etag, etag);
    await driver.close?.();
  });

  it('refuses a malformed MD5 before sending anything, saying what is wrong (RGW would answer 403 AccessDenied)', async () => {
    const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'bad-md5', log: recordingLog() });
    await assert.rejects(driver.writeObject('', 'obj', Buffer.from('data'), { md5: 'not-an-md5' }), (err: VolumeBackupError) => {
      assert.strictEqual(err.code, 'INVALID_ARGUMENT');
      assert.match(err.message, /MD5 given for s3:\/\/.*bad-md5\/obj.* is not the base64 of 16 bytes/);
      return true;
    });
    assert.deepStrictEqual(seen.filter((r) => r.method === 'PUT'), []);
    assert.deepStrictEqual(await driver.listEntries('', ''), []);
    await driver.close?.();
  });

  it('keeps more objects in flight on an object store than on a disk: a backup has 5 uploads waiting at once', async function () {
    // A gate in front of the store holds data-object uploads until 5 wait at once. With the 3 a local
    // disk gets, the backup would wait at the gate for good (this test's timeout).
    // Held uploads by object: one given up on and sent again by the driver counts once.
    const held = new Map<string, () => void>();
    let open = false;
    const release = () => {
      const waiting = [...held.values()];
      held.clear();
      waiting.forEach((go) => go());
    };
    const target = new URL(backend.endpoint);
    const gate = http.createServer((req, res) => {
      const forward = () => {
        const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (reply) => {
          res.writeHead(reply.statusCode!, reply.headers);
          reply.pipe(res);
        });
        req.pipe(up);
      };
      if (open || req.method !== 'PUT' || !/-\d{5}(\?|$)/.test(req.url ?? '')) return forward();
      const key = req.url!.split('?')[0];
      held.set(key, forward);
      req.once('close', () => {
        if (held.get(key) === forward && !res.headersSent) held.delete(key);
      });
      if (held.size >= 5) {
        open = true;
        release();
      }
    });
    await new Promise<void>((resolve) => gate.listen(0, '127.0.0.1', resolve));
    const dir = await tempDir('s3-in-flight');
    try {
      const img = path.join(dir, 'disk.img');
      await makeImage(img, 2 * MiB, 9);
      const driver = backend.driver({ endpoint: `http://127.0.0.1:${(gate.address() as { port: number }).port}`, prefix: 'in-flight', log: recordingLog() });
      const repo = await openRepositoryIn(driver, { create: true });
      try {
        const record = await createBackup(repo, { volume: img, volumeId: 'v', chunkSize: 128 * 1024, blockSize: 4096 });
        assert.ok(open, 'five uploads waited at the gate at once');
        assert.strictEqual(record.status, 'available');
      } finally {
        await repo.close();
      }
    } finally {
      release();
      gate.closeAllConnections();
      gate.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('marks a backup that fails on the store as error, not left creating', async () => {
    const dir = await tempDir('s3-failed-backup');
    const img = path.join(dir, 'disk.img');
    await makeImage(img, 3 * MiB, 5);
    const driver = backend.driver({ endpoint: proxy.endpoint, prefix: 'failed-backup', retry: { maxAttempts: 2 }, log: recordingLog() });
    const repo = await openRepositoryIn(driver, { create: true });
    try {
      // Every data object is refused: the backup fails after its record was made.
      proxy.setPlan((r) => (r.method === 'PUT' && /backup_[^/]*-\d{5}(\?|$)/.test(r.url) ? 'status-500' : null));
      await assert.rejects(createBackup(repo, { volume: img, volumeId: 'disk', chunkSize: MiB }), /server error \(500\)/);
      const records = await listBackups(repo);
      assert.deepStrictEqual(records.map((r) => r.status), ['error']);
    } finally {
      await repo.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
