/**
 * Records and metadata against the object layout (issue 14, item 1), through the real CLI on a posix
 * repository and on S3: a record whose objectPrefix is not exactly the layout's for its volume, id and
 * time ("volume_", "r": every volume's data, or the whole repository) is refused by import, reported by
 * verify, and never acted on by delete or prune; deleting a backup removes the objects that are its own
 * by the layout and nothing else.
 */
import { strict as assert } from 'assert';
import { createHash, randomUUID } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { BackupRecord } from '../lib';
import type { Driver } from '../lib/drivers/driver';
import { parseObjectName, recordIndexName } from '../lib/repository/layout';
import { cliEnv, cliJson, runCli } from './helpers/cli';
import { decodeSegmentFile, encodeSegmentFile } from './helpers/damage';
import { makeImage, tempDir } from './helpers/volumes';
import { Backend, BUCKET, posixBackend, s3Backend } from './servers/backends';

const KiB = 1024;
const BLOCK = 4 * KiB;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** A backup's objects and record as someone crafting them would write them, under any prefix. */
function craftBackup(objectPrefix: string, volumeId: string) {
  const id = randomUUID();
  const createdAt = '2020-01-01T00:00:00.000Z';
  const hashList = createHash('sha256').update(Buffer.alloc(BLOCK)).digest();
  const hashName = `${objectPrefix}_sha256file`;
  const metadata = Buffer.from(JSON.stringify({
    formatVersion: 1, backupId: id, volumeId, parentId: null, kind: 'full', size: BLOCK, chunkSize: 16 * BLOCK, blockSize: BLOCK,
    createdAt, dataTimestamp: createdAt, compression: 'none', objects: [], zeroExtents: [[0, BLOCK]],
    hashList: { name: hashName, length: hashList.length, sha256: sha256(hashList) }, extraMetadata: null,
  }));
  const record = {
    formatVersion: 1, id, volumeId, name: 'crafted', description: '', status: 'available', failReason: null, parentId: null, kind: 'full',
    dataTimestamp: createdAt, createdAt, updatedAt: createdAt, size: BLOCK, storedBytes: metadata.length + hashList.length, objectCount: 2,
    chunkSize: 16 * BLOCK, blockSize: BLOCK, compression: 'none', snapshotId: null, snapshotProvider: null, host: 'elsewhere',
    objectPrefix, metadataSha256: sha256(metadata), leaseExpiresAt: null, sourcePath: null, encrypted: false,
  };
  const exported = Buffer.from(JSON.stringify({ kind: 'node-red-contrib-volume-backup/record', record })).toString('base64');
  const recordOf = (s: 'available' | 'error') => Buffer.from(JSON.stringify({ ...record, status: s, failReason: s === 'error' ? 'it failed' : null }, null, 2) + '\n');
  return {
    id,
    recordOf,
    exported,
    recordName: `records/${volumeId}/${id}.json`,
    record: recordOf('available'),
    objects: [[`${objectPrefix}_metadata`, metadata], [hashName, hashList]] as [string, Buffer][],
  };
}

describe('object layout: names', () => {
  const prefix = 'volume_v/20260101000000/backup_0b5c7f1e-8a5e-4a57-9d43-201234567890';
  it('parses a backup\'s own object names back to its prefix and kind, and nothing else', () => {
    assert.deepEqual(parseObjectName(`${prefix}-00001`), { prefix, object: { kind: 'data', index: 1 } });
    assert.deepEqual(parseObjectName(`${prefix}-123456`), { prefix, object: { kind: 'data', index: 123456 } });
    assert.deepEqual(parseObjectName(`${prefix}_metadata`), { prefix, object: { kind: 'metadata' } });
    assert.deepEqual(parseObjectName(`${prefix}_sha256file`), { prefix, object: { kind: 'hash-list' } });
    assert.deepEqual(parseObjectName(`${prefix}_segment-000000`), { prefix, object: { kind: 'segment', index: 0 } });
    assert.deepEqual(parseObjectName(`${prefix}_segment-1234567`), { prefix, object: { kind: 'segment', index: 1234567 } });
    for (const other of [
      prefix, `${prefix}-00000`, `${prefix}-000001`, `${prefix}-0001`, `${prefix}-00001.copy`, `${prefix}_metadata.bak`, '_metadata', 'repository.json',
      `${prefix}_segment-00001`, `${prefix}_segment-0000001`, `${prefix}_segment-000001.bak`, `${prefix}_segment-`,
    ]) {
      // The bare prefix ends in digits after a "-": it may parse, but never as an object of this prefix.
      assert.notEqual(parseObjectName(other)?.prefix, prefix, other);
    }
  });
});

const s3Env = cliEnv({ AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' });

for (const backend of [posixBackend(), s3Backend()] as Backend[]) {
  describe(`object layout: records and metadata are checked against it (${backend.name})`, function () {
    this.timeout(120_000);
    let dir: string;
    let img: string;
    let n = 0;
    const env = backend.name === 's3' ? s3Env : cliEnv();

    before(async () => {
      dir = await tempDir('layout');
      img = path.join(dir, 'disk.img');
      await makeImage(img, 256 * KiB, 7, 64 * KiB);
      await backend.start();
    });
    after(async () => {
      await backend.stop();
      await fs.rm(dir, { recursive: true, force: true });
    });

    /** A fresh repository with one backup of volume a and one of volume b. */
    async function repository(): Promise<{ url: string; driver: Driver; a: BackupRecord; b: BackupRecord; names: () => Promise<string[]> }> {
      const prefix = `t${++n}`;
      const driver = backend.driver({ prefix });
      const url = backend.name === 's3'
        ? `s3://${BUCKET}/${prefix}?endpoint=${backend.endpoint}&forcePathStyle=true&checksums=when_required`
        : String(backend.spec({ prefix }).path);
      const create = (volumeId: string) => cliJson<BackupRecord>(['create', '--repo', url, '--volume', img, '--volume-id', volumeId, '--chunk-size', '64K', '--block-size', '4K'], { env });
      const a = await create('a');
      const b = await create('b');
      const names = async () => (await driver.listEntries('', '')).map((e) => e.name).sort();
      return { url, driver, a, b, names };
    }

    const missing = (before: string[], after: string[]) => before.filter((name) => !after.includes(name));

    for (const foreign of ['volume_', 'r']) {
      it(`import refuses a record whose objectPrefix is "${foreign}", before writing anything`, async () => {
        const { url, driver, names } = await repository();
        const crafted = craftBackup(foreign, 'evil');
        for (const [name, data] of crafted.objects) await driver.writeObject('', name, data);
        const before = await names();
        const imported = await runCli(['import', '--repo', url], { env, input: crafted.exported });
        assert.notEqual(imported.code, 0, `import was accepted: ${imported.stdout}`);
        assert.match(imported.stderr, /objectPrefix|object prefix/i);
        assert.match(imported.stderr, new RegExp(`volume_evil/20200101000000/backup_${crafted.id}`), 'says which prefix the layout gives');
        assert.deepEqual(await names(), before, 'nothing written or removed');
      });

      it(`a record in the repository with objectPrefix "${foreign}" is reported by verify and never acted on by delete or prune`, async () => {
        const { url, driver, a, b, names } = await repository();
        const crafted = craftBackup(foreign, 'evil');
        for (const [name, data] of crafted.objects) await driver.writeObject('', name, data);
        await driver.writeObject('', crafted.recordName, crafted.record);
        const before = await names();

        const verify = await runCli(['verify', '--repo', url, '--read-data', '--json'], { env });
        assert.equal(verify.code, 1, `verify passed: ${verify.stdout}`);
        const problems = (JSON.parse(verify.stdout) as { problems: { kind: string; message: string }[] }).problems;
        assert.ok(problems.some((p) => p.kind === 'malformed-record' && p.message.includes(crafted.recordName) && p.message.includes('objectPrefix')), JSON.stringify(problems));

        const deleted = await runCli(['delete', '--repo', url, '--backup', crafted.id], { env });
        assert.equal(deleted.code, 1, `delete succeeded: ${deleted.stdout}`);
        assert.match(deleted.stderr, /objectPrefix/);
        // As a failed backup, prune would delete it (failed backups are not kept by default).
        await driver.writeObject('', crafted.recordName, crafted.recordOf('error'));
        const pruned = await runCli(['prune', '--repo', url, '--keep-last', '1', '--orphan-grace', '0h', '--json'], { env });
        assert.equal(pruned.code, 0, pruned.stderr);
        assert.match(pruned.stderr, new RegExp(crafted.recordName), 'prune says it left the record alone');

        const after = await names();
        assert.deepEqual(missing(before, after), [], 'every object, record and repository.json survives');
        for (const r of [a, b]) assert.ok(after.some((name) => name.startsWith(`${r.objectPrefix}-`)), `the data of volume ${r.volumeId} is there`);
        assert.ok(after.includes('repository.json'));
        // The other volumes still restore.
        for (const r of [a, b]) await cliJson(['restore', '--repo', url, '--backup', r.id, '--verify-only'], { env });
      });
    }

    it('deleting a backup removes all of its objects and no other volume\'s', async () => {
      const { url, a, b, names } = await repository();
      const incremental = await cliJson<BackupRecord>(['create', '--repo', url, '--volume', img, '--volume-id', 'b', '--incremental'], { env });
      const before = await names();
      const own = (r: BackupRecord) => before.filter((name) => name.includes(`backup_${r.id}`));
      assert.equal(own(b).length, b.objectCount, 'the backup has the objects its record counts');
      await cliJson(['delete', '--repo', url, '--backup', b.id, '--cascade'], { env });
      const after = await names();
      assert.deepEqual(after.filter((name) => name.includes(`backup_${b.id}`) || name.includes(`backup_${incremental.id}`) || name.includes(`/${b.id}.json`)), []);
      assert.deepEqual(missing(before, after).sort(), [...own(b), ...own(incremental), `records/b/${b.id}.json`, `records/b/${incremental.id}.json`, recordIndexName(b.id), recordIndexName(incremental.id)].sort());
      await cliJson(['restore', '--repo', url, '--backup', a.id, '--verify-only'], { env });
    });

    it('deleting a failed backup without metadata removes its own objects, not every name that starts with its prefix', async () => {
      const { url, driver, b, names } = await repository();
      await driver.deleteObject('', `${b.objectPrefix}_metadata`);
      const reset = await runCli(['reset-status', '--repo', url, '--backup', b.id, '--status', 'error'], { env });
      assert.equal(reset.code, 0, reset.stderr);
      // Not this backup's by the layout: names that merely start with its prefix.
      const strangers = [`${b.objectPrefix}-00001.copy`, `${b.objectPrefix}_metadata.bak`, `${b.objectPrefix}0`];
      for (const name of strangers) await driver.writeObject('', name, Buffer.from('not a backup object'));
      const before = await names();
      await cliJson(['delete', '--repo', url, '--backup', b.id], { env });
      const after = await names();
      assert.deepEqual(after.filter((name) => name.startsWith(b.objectPrefix)).sort(), [...strangers].sort());
      assert.deepEqual(missing(before, after).filter((name) => !name.startsWith(`${b.objectPrefix}-0`) && !name.startsWith(`${b.objectPrefix}_segment-`)).sort(), [`records/b/${b.id}.json`, recordIndexName(b.id)].sort());
      assert.ok(missing(before, after).some((name) => name.startsWith(`${b.objectPrefix}_segment-`)), 'its segment objects were deleted');
    });

    for (const what of ['metadata listing another backup\'s segment', 'a segment naming another backup\'s data object'] as const) {
      it(`verify reports ${what}, and deleting the backup leaves that object alone`, async () => {
        const { url, driver, a, b } = await repository();
        const metaName = `${b.objectPrefix}_metadata`;
        const metadata = JSON.parse((await driver.readObject('', metaName)).data.toString('utf8'));
        assert.equal(metadata.formatVersion, 2);
        let foreign: string;
        if (what.startsWith('metadata')) {
          foreign = `${a.objectPrefix}_segment-000000`;
          metadata.segments[0].name = foreign;
        } else {
          foreign = `${a.objectPrefix}-00001`;
          const segName = metadata.segments[0].name as string;
          const segment = decodeSegmentFile((await driver.readObject('', segName)).data, metadata);
          segment.json.chunks.find((c: { object: unknown }) => c.object).object.name = foreign;
          // As a crafted repository would: the segment's digest fixed up in the metadata, the metadata's in the record.
          const bytes = encodeSegmentFile(segment);
          await driver.writeObject('', segName, bytes);
          Object.assign(metadata.segments[0], { sha256: sha256(bytes), length: bytes.length });
        }
        assert.equal((await driver.listEntries('', foreign)).length, 1, 'the other backup has that object');
        const edited = Buffer.from(JSON.stringify(metadata));
        await driver.writeObject('', metaName, edited);
        const record = JSON.parse((await driver.readObject('', `records/b/${b.id}.json`)).data.toString('utf8'));
        await driver.writeObject('', `records/b/${b.id}.json`, Buffer.from(JSON.stringify({ ...record, metadataSha256: sha256(edited) })));
        const verify = await runCli(['verify', '--repo', url, '--json'], { env });
        assert.equal(verify.code, 1);
        const problems = (JSON.parse(verify.stdout) as { problems: { kind: string; message: string; backupIds: string[] }[] }).problems;
        assert.ok(problems.some((p) => p.kind === 'corrupt' && p.backupIds.includes(b.id) && p.message.includes(foreign)), JSON.stringify(problems));
        await cliJson(['delete', '--repo', url, '--backup', b.id], { env }).catch(() => undefined);
        assert.ok((await driver.listEntries('', foreign)).length === 1, 'the other backup\'s object is still there');
        await cliJson(['restore', '--repo', url, '--backup', a.id, '--verify-only'], { env });
      });
    }
  });
}
