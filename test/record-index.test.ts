/**
 * Finding a record by backup id (show, delete, restore --backup) reads its index entry
 * (record-index/<id>.json, lib/repository/layout.ts) instead of listing every record: on S3, no LIST
 * request, whatever the catalog's size. Records of older versions (no entry) and stale entries still
 * lead to the right record, or to "not found": never to another one.
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { BackupRecord, Repository, VolumeBackupError, createBackup, openRepository } from '../lib';
import { backupPrefix, recordIndexName } from '../lib/repository/layout';
import { newBackupId } from '../lib/repository/names';
import { runCli } from './helpers/cli';
import { makeImage, tempDir } from './helpers/volumes';
import { startFaultProxy } from './servers/fault-proxy';
import { s3Backend } from './servers/backends';
import { S3_STORE } from './servers/s3-target';

/** A record of a backup with no objects: enough to be found, shown and deleted. */
function recordOf(repo: Repository, volumeId: string): BackupRecord {
  const id = newBackupId();
  const now = new Date().toISOString();
  return {
    formatVersion: 1, id, volumeId, name: '', description: '', status: 'available', failReason: null, parentId: null, kind: 'full',
    dataTimestamp: now, createdAt: now, updatedAt: now, size: 4096, storedBytes: 0, objectCount: 0, chunkSize: 4096, blockSize: 4096,
    compression: 'none', snapshotId: null, snapshotProvider: null, host: 'index-host',
    objectPrefix: backupPrefix(repo.driver, { volumeId, backupId: id, createdAt: now }),
    metadataSha256: null, leaseExpiresAt: null, sourcePath: null, encrypted: false,
  };
}

describe(`finding a record by backup id (s3: ${S3_STORE})`, function () {
  this.timeout(120_000);
  const backend = s3Backend();

  before(() => backend.start());
  after(() => backend.stop());

  it('costs no listing; an entry missing (older versions) or stale still finds the right record or none', async () => {
    const requests: string[] = [];
    const proxy = await startFaultProxy(backend.endpoint, 's3', (r) => {
      requests.push(`${r.method} ${r.url}`);
      return null;
    });
    const spec = backend.spec({ endpoint: proxy.endpoint, prefix: 'by-id' });
    const repo = await openRepository(spec, { create: true, host: 'index-host' });
    const store = backend.driver({ prefix: 'by-id' });
    try {
      const records: BackupRecord[] = [];
      for (let v = 0; v < 4; v++) for (let n = 0; n < 10; n++) records.push((await repo.createRecord(recordOf(repo, `vol-${v}`))).record);
      const target = records[25];

      requests.length = 0;
      assert.strictEqual((await repo.getRecord(target.id)).volumeId, target.volumeId);
      const lists = requests.filter((r) => r.startsWith('GET') && /[?&](list-type|prefix)=/.test(r));
      assert.deepStrictEqual(lists, [], `no listing to find one record: ${requests.join(', ')}`);
      assert.ok(requests.length <= 2, `two reads (index entry, record): ${requests.join(', ')}`);

      // A record written by an older version has no entry: found by listing.
      const old = records[7];
      await store.deleteObject('', recordIndexName(old.id));
      assert.strictEqual((await repo.getRecord(old.id)).id, old.id);

      // An entry naming another volume (stale, edited): the record is found where it is.
      await store.writeObject('', recordIndexName(target.id), Buffer.from(JSON.stringify({ volumeId: 'vol-0' })));
      const found = await repo.getRecord(target.id);
      assert.deepStrictEqual([found.id, found.volumeId], [target.id, target.volumeId]);
      // Garbage in an entry: the same.
      for (const garbage of ['{"volumeId": "../records', 'null', '{"volumeId": "../../records/vol-0"}']) {
        await store.writeObject('', recordIndexName(target.id), Buffer.from(garbage));
        assert.strictEqual((await repo.getRecord(target.id)).id, target.id, garbage);
      }

      // Deleting a record removes its entry; an entry left behind (an older version deleted the record) finds nothing.
      const gone = records[31];
      await repo.deleteRecord(gone);
      assert.deepStrictEqual((await store.listEntries('', recordIndexName(gone.id))).map((e) => e.name), []);
      await store.writeObject('', recordIndexName(gone.id), Buffer.from(JSON.stringify({ volumeId: gone.volumeId })));
      await assert.rejects(repo.getRecord(gone.id), (err: VolumeBackupError) => err.code === 'NOT_FOUND');
      // An update by id goes through the entry too, and changes the right record.
      const updated = await repo.updateRecord(records[12].id, () => ({ name: 'renamed' }));
      assert.deepStrictEqual([updated.id, updated.name], [records[12].id, 'renamed']);
      assert.strictEqual((await repo.readRecord(records[12].id, records[12].volumeId)).record.name, 'renamed');
    } finally {
      await repo.close();
      await proxy.stop();
    }
  });
});

describe('finding a record by backup id (posix, CLI)', function () {
  this.timeout(60_000);

  it('show and delete find a backup whose record has no index entry (made by an older version)', async () => {
    const dir = await tempDir('record-index');
    try {
      const repoDir = path.join(dir, 'repo');
      const image = path.join(dir, 'vol.img');
      await makeImage(image, 256 * 1024, 5);
      const repo = await openRepository(repoDir, { create: true });
      let record: BackupRecord;
      try {
        record = await createBackup(repo, { volume: image, volumeId: 'v', chunkSize: 64 * 1024, blockSize: 4096 });
      } finally {
        await repo.close();
      }
      const entry = path.join(repoDir, recordIndexName(record.id));
      assert.deepStrictEqual(JSON.parse(await fs.readFile(entry, 'utf8')), { volumeId: 'v' }, 'a new record gets its entry');
      await fs.rm(entry);
      const shown = await runCli(['show', '--repo', repoDir, '--backup', record.id]);
      assert.strictEqual(shown.code, 0, shown.stderr);
      assert.ok(shown.stdout.includes(record.id), shown.stdout);
      const deleted = await runCli(['delete', '--repo', repoDir, '--backup', record.id]);
      assert.strictEqual(deleted.code, 0, deleted.stderr);
      await assert.rejects(fs.stat(path.join(repoDir, 'records', 'v', `${record.id}.json`)));
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
