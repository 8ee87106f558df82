/**
 * verify: what it finds in a real posix repository after real damage (objects removed, truncated,
 * altered in place; records broken or removed by hand; operations whose owner stopped), and the CLI's
 * exit code and output for each.
 */
import { strict as assert } from 'assert';
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { BackupRecord, Repository, createBackup, openRepository, verifyRepository } from '../lib';
import { newBackupId } from '../lib/repository/names';
import { DEFAULT_LEASE_TTL_MS } from '../lib/repository/locks';
import { runCli } from './helpers/cli';
import { backupPrefix } from '../lib/repository/layout';
import { makeImage, scatterWrites, tempDir } from './helpers/volumes';

const KiB = 1024;
const MiB = 1024 * KiB;
const SMALL = { chunkSize: 256 * KiB, blockSize: 4 * KiB };

describe('verify', function () {
  this.timeout(60_000);
  let dir: string;
  let repoDir: string;
  let repo: Repository;
  let full: BackupRecord;
  let incr: BackupRecord;
  let other: BackupRecord;

  beforeEach(async () => {
    dir = await tempDir('verify');
    repoDir = path.join(dir, 'repo');
    repo = await openRepository(repoDir, { create: true, host: 'verify-host' });
    const a = path.join(dir, 'a.img');
    const b = path.join(dir, 'b.img');
    await makeImage(a, 2 * MiB + 5000, 3);
    await makeImage(b, 1 * MiB, 4);
    full = await createBackup(repo, { volume: a, volumeId: 'vol-a', ...SMALL });
    await scatterWrites(a, 0.05, 9);
    incr = await createBackup(repo, { volume: a, volumeId: 'vol-a', mode: 'incremental' });
    other = await createBackup(repo, { volume: b, volumeId: 'vol-b', ...SMALL });
  });
  afterEach(async () => {
    await repo.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const objectFile = (record: BackupRecord, suffix: string) => path.join(repoDir, `${record.objectPrefix}${suffix}`);
  const verifyCli = (...args: string[]) => runCli(['verify', '--repo', repoDir, ...args]);

  /** A data object of `record` that holds data (a zero-only chunk has none). */
  async function someDataObject(record: BackupRecord): Promise<string> {
    const files = (await fs.readdir(path.dirname(objectFile(record, '')))).filter((f) => /-\d{5}$/.test(f) && f.includes(record.id)).sort();
    assert.ok(files.length > 0, `backup ${record.id} has no data objects`);
    return path.join(path.dirname(objectFile(record, '')), files[0]);
  }

  it('passes a sound repository, with and without --read-data, and exits 0', async () => {
    const quick = await verifyRepository(repo);
    assert.deepEqual(quick.problems, []);
    assert.equal(quick.ok, true);
    assert.equal(quick.recordsChecked, 3);
    assert.equal(quick.backupsVerified, 3);
    assert.equal(quick.bytesVerified, 0);
    const deep = await verifyRepository(repo, { readData: true });
    assert.deepEqual(deep.problems, []);
    assert.equal(deep.bytesVerified, full.size + incr.size + other.size);

    const cli = await verifyCli('--read-data');
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /3 record\(s\), 3 backup\(s\) .* no problems/);
  });

  it('reports a missing object against every backup that needs it, and exits 1', async () => {
    const victim = await someDataObject(full);
    await fs.rm(victim);
    const result = await verifyRepository(repo);
    assert.equal(result.ok, false);
    const missing = result.problems.filter((p) => p.kind === 'missing-object');
    assert.equal(missing.length, 1, JSON.stringify(result.problems));
    assert.equal(missing[0].objectName, path.relative(repoDir, victim));
    assert.deepEqual(missing[0].backupIds, [full.id]);
    // The incremental's own objects are fine; reading its data finds the hole through its chain.
    const deep = await verifyRepository(repo, { readData: true });
    const affected = deep.problems.flatMap((p) => p.backupIds).sort();
    assert.deepEqual(affected, [full.id, incr.id].sort(), JSON.stringify(deep.problems));

    const cli = await verifyCli();
    assert.equal(cli.code, 1);
    assert.match(cli.stdout, /^problem \(missing-object\): object \S+ of backup/m);
    assert.ok(cli.stdout.includes(path.basename(victim)), cli.stdout);
  });

  it('reports an object of the wrong size without reading data', async () => {
    const victim = await someDataObject(other);
    await fs.truncate(victim, (await fs.stat(victim)).size - 1);
    const result = await verifyRepository(repo);
    assert.deepEqual(result.problems.map((p) => [p.kind, p.backupIds]), [['wrong-size', [other.id]]]);
    assert.match(result.problems[0].message, /is \d+ bytes; its metadata says \d+/);
  });

  it('finds a byte changed in place only with --read-data (digest), and names the object', async () => {
    const victim = await someDataObject(other);
    const handle = await fs.open(victim, 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 100);
    byte[0] ^= 0xff;
    await handle.write(byte, 0, 1, 100);
    await handle.close();
    assert.equal((await verifyRepository(repo)).ok, true, 'sizes and metadata are intact: the quick check cannot see it');
    const deep = await verifyRepository(repo, { readData: true });
    assert.deepEqual(deep.problems.map((p) => [p.kind, p.backupIds, p.objectName]), [['corrupt', [other.id], path.relative(repoDir, victim)]]);

    const cli = await verifyCli('--read-data', '--json');
    assert.equal(cli.code, 1);
    const json = JSON.parse(cli.stdout);
    assert.equal(json.ok, false);
    assert.equal(json.problems[0].kind, 'corrupt');
  });

  it('reports a malformed record, a broken chain and the orphans a record removed by hand leaves', async () => {
    await fs.writeFile(path.join(repoDir, 'records', 'vol-b', `${other.id}.json`), '{"formatVersion": 1, "id": "nope"');
    await fs.rm(path.join(repoDir, 'records', 'vol-a', `${full.id}.json`));
    const result = await verifyRepository(repo);
    const kinds = result.problems.map((p) => p.kind).sort();
    assert.deepEqual(kinds, ['broken-chain', 'malformed-record', 'orphaned-objects', 'orphaned-objects'], JSON.stringify(result.problems, null, 1));
    const chain = result.problems.find((p) => p.kind === 'broken-chain')!;
    assert.deepEqual(chain.backupIds, [incr.id]);
    assert.match(chain.message, new RegExp(`needs its parent ${full.id}, which is missing`));
    const orphans = result.problems.filter((p) => p.kind === 'orphaned-objects').map((p) => p.objectName ?? '(none)').sort();
    assert.deepEqual(orphans, [full.objectPrefix, other.objectPrefix].sort());
  });

  it('reports operations whose owner stopped (expired lease) and leaves live ones as notes', async () => {
    const past = new Date(Date.now() - 3600_000).toISOString();
    const future = new Date(Date.now() + DEFAULT_LEASE_TTL_MS).toISOString();
    const stuck = await plantRecord(repo, other, { status: 'creating', host: 'gone-host', leaseExpiresAt: past, metadataSha256: null });
    const live = await plantRecord(repo, other, { status: 'creating', host: 'busy-host', leaseExpiresAt: future, metadataSha256: null });
    const deleting = await plantRecord(repo, other, { status: 'deleting', host: 'gone-host', leaseExpiresAt: null, updatedAt: past });
    await fs.mkdir(path.dirname(objectFile(stuck, '')), { recursive: true });
    await fs.writeFile(objectFile(stuck, '-00001'), 'partial');

    const result = await verifyRepository(repo);
    const stuckIds = result.problems.filter((p) => p.kind === 'stuck-record').map((p) => p.backupIds[0]).sort();
    assert.deepEqual(stuckIds, [stuck.id, deleting.id].sort(), JSON.stringify(result.problems, null, 1));
    const creating = result.problems.find((p) => p.backupIds[0] === stuck.id)!;
    assert.equal(creating.host, 'gone-host');
    assert.match(creating.message, /volume-backup cleanup --host gone-host.*reset-status/);
    assert.ok(result.notes.some((n) => n.backupId === live.id && /being created by host busy-host/.test(n.message)));
    assert.ok(!result.problems.some((p) => p.kind === 'orphaned-objects'), 'the stuck backup\'s objects have a record');

    // The stuck backup's volume lease, expired long ago, is only a note.
    const lease = { host: 'gone-host', pid: 999999, operation: 'backup', backupId: null, token: 't', acquiredAt: past, expiresAt: past };
    await fs.mkdir(path.join(repoDir, 'locks'), { recursive: true });
    await fs.writeFile(path.join(repoDir, 'locks', `${other.volumeId}.json`), JSON.stringify(lease));
    const again = await verifyRepository(repo);
    assert.equal(again.problems.length, result.problems.length);
    assert.ok(again.notes.some((n) => /the lease of volume vol-b \(host gone-host, pid 999999, backup\) expired/.test(n.message)), JSON.stringify(again.notes));
  });

  it('notes what a failed backup left without failing, and --backup checks only that backup and its chain', async () => {
    const failed = await plantRecord(repo, other, { status: 'error', failReason: 'disk on fire', leaseExpiresAt: null });
    await fs.mkdir(path.dirname(objectFile(failed, '')), { recursive: true });
    await fs.writeFile(objectFile(failed, '-00001'), 'partial');
    const all = await verifyRepository(repo);
    assert.equal(all.ok, true, JSON.stringify(all.problems));
    assert.ok(all.notes.some((n) => n.backupId === failed.id && /failed backup .* still has 1 object/.test(n.message)));

    await fs.rm(await someDataObject(other));
    const one = await verifyRepository(repo, { backupId: incr.id, readData: true });
    assert.equal(one.ok, true, JSON.stringify(one.problems));
    assert.equal(one.recordsChecked, 2, 'the incremental and its parent');
    const cli = await verifyCli('--backup', other.id);
    assert.equal(cli.code, 1);
    assert.match(cli.stdout, /missing-object/);
  });
});

describe('verify and restore: a segment dropped consistently', function () {
  this.timeout(60_000);
  let dir: string;

  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  // Format 2 (docs/format.md): a full backup lists only the segments it touched, so a segment removed
  // together with its entry in the metadata (digests fixed up, or the record's digest removed) reads as
  // a range of zeros. Only the record's object count and stored bytes still tell that something is gone.
  for (const digest of ['fixed up', 'removed'] as const) {
    it(`is reported by verify (exit 1) and fails a restore (record digest ${digest})`, async () => {
      dir = await tempDir('dropped-segment');
      const repoDir = path.join(dir, 'repo');
      const image = path.join(dir, 'vol.img');
      // 16 KiB chunks, 128 chunks a segment: 2 MiB segments, three of them, all with data.
      await makeImage(image, 5 * MiB, 21, 64 * KiB);
      const repo = await openRepository(repoDir, { create: true, host: 'verify-host' });
      let full: BackupRecord;
      try {
        full = await createBackup(repo, { volume: image, volumeId: 'vol-d', chunkSize: 16 * KiB, blockSize: 4 * KiB });
      } finally {
        await repo.close();
      }
      const metadataFile = path.join(repoDir, `${full.objectPrefix}_metadata`);
      const metadata = JSON.parse(await fs.readFile(metadataFile, 'utf8'));
      assert.equal(metadata.segments.length, 3, 'the full touched three segments');
      const [dropped] = metadata.segments.splice(1, 1);
      await fs.rm(path.join(repoDir, dropped.name));
      await fs.writeFile(metadataFile, JSON.stringify(metadata));
      const recordFile = path.join(repoDir, 'records', full.volumeId, `${full.id}.json`);
      const record = JSON.parse(await fs.readFile(recordFile, 'utf8'));
      record.metadataSha256 = digest === 'removed' ? null : createHash('sha256').update(await fs.readFile(metadataFile)).digest('hex');
      await fs.writeFile(recordFile, JSON.stringify(record));

      const cli = await runCli(['verify', '--repo', repoDir]);
      assert.equal(cli.code, 1, cli.stdout + cli.stderr);
      assert.match(cli.stdout, new RegExp(`problem .*${full.id}`));

      const target = path.join(dir, 'restored.img');
      const restore = await runCli(['restore', '--repo', repoDir, '--backup', full.id, '--target', target]);
      assert.equal(restore.code, 1, restore.stdout + restore.stderr);
      assert.match(restore.stderr, new RegExp(full.id));
      await assert.rejects(fs.stat(target), 'a failed restore leaves no new target');
    });
  }
});

/** A record beside an existing backup's, as another host (or a crash) would have left it. */
async function plantRecord(repo: Repository, like: BackupRecord, patch: Partial<BackupRecord>): Promise<BackupRecord> {
  const id = newBackupId();
  const record: BackupRecord = {
    ...like,
    id,
    createdAt: new Date().toISOString(),
    updatedAt: new Date().toISOString(),
    ...patch,
  };
  record.objectPrefix = backupPrefix(repo.driver, { volumeId: record.volumeId, backupId: id, createdAt: record.createdAt });
  await repo.createRecord(record);
  return record;
}
