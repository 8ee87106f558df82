/**
 * The engine on a posix repository: round trips compared by SHA-256, chains, sparse and odd sizes,
 * what incrementals store, corruption and missing objects, refused deletes, cancel, bad input.
 */
import { strict as assert } from 'assert';
import { promises as fs, readFileSync, rmSync, writeFileSync } from 'fs';
import * as path from 'path';
import {
  BackupRecord, Repository, createBackup, deleteBackup, exportRecord, importRecord, listBackups,
  openRepository, restoreBackup,
} from '../lib';
import { expectError } from './helpers/assert';
import { listFiles, makeImage, scatterWrites, sha256File, tempDir, treeBytes } from './helpers/volumes';

const KiB = 1024;
const MiB = 1024 * KiB;
// Small chunks so that a few MiB make many chunks.
const SMALL = { chunkSize: 256 * KiB, blockSize: 4 * KiB };

describe('engine (posix repository)', function () {
  this.timeout(120_000);
  let dir: string;
  let repoDir: string;
  let repo: Repository;

  beforeEach(async () => {
    dir = await tempDir('engine');
    repoDir = path.join(dir, 'repo');
    repo = await openRepository(repoDir, { create: true });
  });
  afterEach(async () => {
    await repo.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function roundTrip(record: BackupRecord, expectedSha: string, name = 'restored.img'): Promise<string> {
    const target = path.join(dir, name);
    await fs.rm(target, { force: true });
    const result = await restoreBackup(repo, { backupId: record.id, target });
    assert.equal(result.size, record.size);
    assert.equal(await sha256File(target), expectedSha, `restore of ${record.kind} ${record.id} differs from the source`);
    return target;
  }

  it('full backup round trip: restored bytes equal the source, zero regions stay holes, objects and record exist', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, 8 * MiB + 12345, 11);
    const sha = await sha256File(img);
    const events: string[] = [];
    const record = await createBackup(repo, { volume: img, volumeId: 'disk', ...SMALL, onProgress: (e) => events.push(e.type) });
    assert.equal(record.status, 'available');
    assert.equal(record.kind, 'full');
    assert.equal(record.size, 8 * MiB + 12345);
    // One progress event per chunk, plus start and end.
    assert.equal(events.filter((t) => t === 'chunk').length, Math.ceil(record.size / SMALL.chunkSize));
    assert.deepEqual([events[0], events[events.length - 1]], ['start', 'end']);
    const files = await listFiles(repoDir);
    assert.ok(files.includes(`records/disk/${record.id}.json`));
    assert.ok(files.some((f) => f.endsWith(`backup_${record.id}_metadata`)));
    // Version 2: one segment object per segment with data (SMALL chunks: 128 x 64 KiB = 8 MiB), no hash list.
    assert.ok(!files.some((f) => f.endsWith(`backup_${record.id}_sha256file`)));
    const segments = files.filter((f) => f.includes(`backup_${record.id}_segment-`));
    assert.ok(segments.length >= 1 && segments.every((f) => /_segment-00000[01]$/.test(f)), segments.join());
    assert.equal(files.filter((f) => f.includes(`backup_${record.id}-`)).length, record.objectCount - 1 - segments.length);
    // Zero detection: the zero regions are not stored, so fewer bytes are stored than the volume holds.
    assert.ok(record.storedBytes < record.size * 0.8, `stored ${record.storedBytes} of ${record.size}`);
    const target = await roundTrip(record, sha);
    const st = await fs.stat(target);
    assert.ok(st.blocks * 512 < st.size, 'a new restore target is sparse');
  });

  it('incremental chain 4 deep stores only changed extents and every link restores', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, 16 * MiB, 3);
    const shas: string[] = [await sha256File(img)];
    const records = [await createBackup(repo, { volume: img, volumeId: 'v', ...SMALL })];
    for (let i = 1; i <= 3; i++) {
      const changed = await scatterWrites(img, 0.01, 100 + i);
      shas.push(await sha256File(img));
      const incr = await createBackup(repo, { volume: img, volumeId: 'v', mode: 'incremental' });
      assert.equal(incr.parentId, records[i - 1].id, 'the parent is the newest available backup');
      assert.equal(incr.kind, 'incremental');
      // Random data does not compress: stored bytes track changed bytes (64 KiB writes touch 17 4K blocks at most).
      assert.ok(incr.storedBytes <= changed * 1.5 + 64 * KiB, `incremental stored ${incr.storedBytes} for ${changed} changed`);
      records.push(incr);
    }
    for (let i = 0; i < records.length; i++) await roundTrip(records[i], shas[i], `r${i}.img`);
  });

  it('an incremental with no changes stores no data objects and restores', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, 3 * MiB, 5);
    const sha = await sha256File(img);
    await createBackup(repo, { volume: img, volumeId: 'v', ...SMALL });
    const incr = await createBackup(repo, { volume: img, volumeId: 'v', mode: 'incremental' });
    assert.equal(incr.objectCount, 1, 'only its metadata (no segment: nothing changed)');
    await roundTrip(incr, sha);
  });

  it('differential backups use the newest full backup as parent', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, 4 * MiB, 7);
    const full = await createBackup(repo, { volume: img, volumeId: 'v', ...SMALL });
    await scatterWrites(img, 0.02, 8);
    const incr = await createBackup(repo, { volume: img, volumeId: 'v', mode: 'incremental' });
    await scatterWrites(img, 0.02, 9);
    const sha = await sha256File(img);
    const diff = await createBackup(repo, { volume: img, volumeId: 'v', mode: 'differential' });
    assert.equal(incr.parentId, full.id);
    assert.equal(diff.parentId, full.id);
    assert.equal(diff.kind, 'differential');
    await roundTrip(diff, sha);
  });

  it('blocks that became zero are restored as zeros, also into an existing target', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, 2 * MiB, 13);
    const handle = await fs.open(img, 'r+');
    await handle.write(Buffer.alloc(MiB, 0x61), 0, MiB, 0); // make sure the first MiB is data
    await handle.close();
    await createBackup(repo, { volume: img, volumeId: 'v', ...SMALL });
    const h2 = await fs.open(img, 'r+');
    await h2.write(Buffer.alloc(300 * KiB), 0, 300 * KiB, 10 * KiB);
    await h2.close();
    const sha = await sha256File(img);
    const incr = await createBackup(repo, { volume: img, volumeId: 'v', mode: 'incremental' });
    await roundTrip(incr, sha);
    // An existing target full of other bytes is overwritten completely.
    const existing = path.join(dir, 'existing.img');
    await fs.writeFile(existing, Buffer.alloc(3 * MiB, 0xff));
    await restoreBackup(repo, { backupId: incr.id, target: existing });
    const restored = await fs.readFile(existing);
    assert.equal(
      (await import('crypto')).createHash('sha256').update(restored.subarray(0, 2 * MiB)).digest('hex'),
      sha,
    );
  });

  it('sizes that are not multiples of the block or chunk size, and a single-block volume', async () => {
    for (const size of [1, 4095, 4097, 256 * KiB - 1, 256 * KiB + 1, 3 * 256 * KiB + 777]) {
      const img = path.join(dir, `odd-${size}.img`);
      await makeImage(img, size, size, 64 * KiB);
      const sha = await sha256File(img);
      const rec = await createBackup(repo, { volume: img, volumeId: `odd-${size}`, ...SMALL });
      await roundTrip(rec, sha, `odd-${size}.out`);
    }
  });

  it('all three compressions round trip; zstd and zlib store less than none on text', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, 4 * MiB, 21);
    const sha = await sha256File(img);
    const stored: Record<string, number> = {};
    for (const compression of ['none', 'zlib', 'zstd'] as const) {
      const rec = await createBackup(repo, { volume: img, volumeId: `c-${compression}`, compression, ...SMALL });
      assert.equal(rec.compression, compression);
      stored[compression] = rec.storedBytes;
      await roundTrip(rec, sha, `${compression}.img`);
    }
    assert.ok(stored.zstd < stored.none && stored.zlib < stored.none, JSON.stringify(stored));
  });

  it('detects a flipped byte, a truncated object, a missing object, and an edited segment object (block hashes)', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, 2 * MiB, 31);
    const rec = await createBackup(repo, { volume: img, volumeId: 'v', ...SMALL, compression: 'none' });
    const files = (await listFiles(repoDir)).filter((f) => f.includes(`backup_${rec.id}-`));
    const victim = path.join(repoDir, files[0]);
    const original = await fs.readFile(victim);

    const flipped = Buffer.from(original);
    flipped[100] ^= 0x01;
    await fs.writeFile(victim, flipped);
    const target = path.join(dir, 'out.img');
    const err = await expectError(restoreBackup(repo, { backupId: rec.id, target }), 'CORRUPT', new RegExp(`${files[0].split('/').pop()}.*corrupt`));
    assert.match(err.message, new RegExp(rec.id));
    await assert.rejects(fs.stat(target), 'a failed restore removes the file it created');
    await expectError(restoreBackup(repo, { backupId: rec.id, verifyOnly: true }), 'CORRUPT', /corrupt/);

    await fs.writeFile(victim, original.subarray(0, original.length - 10));
    await expectError(restoreBackup(repo, { backupId: rec.id, verifyOnly: true }), 'CORRUPT', /corrupt/);

    await fs.rm(victim);
    await expectError(restoreBackup(repo, { backupId: rec.id, target }), 'OBJECT_MISSING', /missing/);
    await fs.writeFile(victim, original);
    await restoreBackup(repo, { backupId: rec.id, verifyOnly: true });

    const segmentFile = path.join(repoDir, (await listFiles(repoDir)).find((f) => f.endsWith(`backup_${rec.id}_segment-000000`))!);
    const segment = await fs.readFile(segmentFile);
    segment[segment.length - 5] ^= 0xff; // in the block hashes
    await fs.writeFile(segmentFile, segment);
    await expectError(restoreBackup(repo, { backupId: rec.id, verifyOnly: true }), 'CORRUPT', /segment 0 of backup .*corrupt/);
  });

  it('a record edited to point at another backup is detected', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, MiB, 41);
    const a = await createBackup(repo, { volume: img, volumeId: 'v', ...SMALL });
    const b = await createBackup(repo, { volume: img, volumeId: 'v', ...SMALL });
    const recordFile = path.join(repoDir, `records/v/${a.id}.json`);
    const edited = { ...JSON.parse(await fs.readFile(recordFile, 'utf8')), objectPrefix: b.objectPrefix };
    await fs.writeFile(recordFile, JSON.stringify(edited));
    await expectError(restoreBackup(repo, { backupId: a.id, verifyOnly: true }), 'CORRUPT', /objectPrefix/);
  });

  it('refuses to delete a parent, deletes children first with cascade, and removes every object', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, 2 * MiB, 51);
    const full = await createBackup(repo, { volume: img, volumeId: 'v', ...SMALL });
    await scatterWrites(img, 0.05, 52);
    const incr = await createBackup(repo, { volume: img, volumeId: 'v', mode: 'incremental' });
    const err = await expectError(deleteBackup(repo, { backupId: full.id }), 'HAS_DEPENDENTS', new RegExp(incr.id));
    assert.deepEqual(err.details?.dependents, [incr.id]);
    assert.equal((await listBackups(repo)).length, 2, 'nothing was deleted');
    const deletedOrder: string[] = [];
    const result = await deleteBackup(repo, { backupId: full.id, cascade: true, onDeleted: (r) => deletedOrder.push(r.id) });
    assert.deepEqual(deletedOrder, [incr.id, full.id]);
    assert.ok(result.bytesFreed > 0);
    assert.deepEqual((await listFiles(repoDir)).filter((f) => !f.startsWith('repository.json')), []);
  });

  it('a cancelled backup removes its objects and ends in error, never available', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, 8 * MiB, 61);
    const controller = new AbortController();
    let chunks = 0;
    await expectError(
      createBackup(repo, {
        volume: img, volumeId: 'v', ...SMALL, signal: controller.signal,
        onProgress: (e) => { if (e.type === 'chunk' && ++chunks === 3) controller.abort(new Error('operator pressed stop')); },
      }),
      'CANCELLED',
      /operator pressed stop/,
    );
    const [record] = await listBackups(repo);
    assert.equal(record.status, 'error');
    assert.match(record.failReason ?? '', /cancelled/);
    assert.deepEqual((await listFiles(repoDir)).filter((f) => f.startsWith('volume_')), [], 'no partial objects remain');
    await expectError(restoreBackup(repo, { backupId: record.id, verifyOnly: true }), 'CONFLICT', /error/);
  });

  it('a cancelled restore reports failure and removes the partial target', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, 8 * MiB, 62);
    const rec = await createBackup(repo, { volume: img, volumeId: 'v', ...SMALL });
    const controller = new AbortController();
    const target = path.join(dir, 'out.img');
    await expectError(
      restoreBackup(repo, { backupId: rec.id, target, signal: controller.signal, onProgress: (e) => e.chunkIndex === 2 && controller.abort() }),
      'CANCELLED',
      /cancelled/,
    );
    await assert.rejects(fs.stat(target));
    assert.equal((await listBackups(repo))[0].status, 'available', 'the backup is available again');
  });

  it('refuses incrementals that cannot work: no parent, grown volume, other block size', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, MiB, 71);
    await expectError(createBackup(repo, { volume: img, volumeId: 'v', mode: 'incremental' }), 'NOT_FOUND', /do a full backup first/);
    await createBackup(repo, { volume: img, volumeId: 'v', ...SMALL });
    await expectError(createBackup(repo, { volume: img, volumeId: 'v', mode: 'incremental', blockSize: 8 * KiB }), 'INCOMPATIBLE_PARENT', /do a full backup/);
    await fs.appendFile(img, Buffer.alloc(4096, 1));
    await expectError(createBackup(repo, { volume: img, volumeId: 'v', mode: 'incremental' }), 'INCOMPATIBLE_PARENT', /grew .* do a full backup/);
  });

  it('bad input gets clear errors and leaves no record', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, MiB, 81);
    const empty = path.join(dir, 'empty.img');
    await fs.writeFile(empty, '');
    await expectError(createBackup(repo, { volume: path.join(dir, 'missing.img') }), 'NOT_FOUND', /does not exist/);
    await expectError(createBackup(repo, { volume: empty }), 'INVALID_ARGUMENT', /empty \(0 bytes\)/);
    await expectError(createBackup(repo, { volume: dir }), 'INVALID_ARGUMENT', /not a regular file/);
    await expectError(createBackup(repo, { volume: img, chunkSize: 100_000 }), 'INVALID_ARGUMENT', /multiple of the block size/);
    await expectError(createBackup(repo, { volume: img, blockSize: -4 }), 'INVALID_ARGUMENT', /positive/);
    await expectError(createBackup(repo, { volume: img, volumeId: '../escape' }), 'INVALID_ARGUMENT', /invalid volume id/);
    await expectError(createBackup(repo, { volume: img, compression: 'lz4' as never }), 'INVALID_ARGUMENT', /unknown compression/);
    await expectError(restoreBackup(repo, { backupId: '00000000-0000-4000-8000-000000000000', verifyOnly: true }), 'NOT_FOUND', /not found/);
    await expectError(restoreBackup(repo, { backupId: '../../etc/passwd', verifyOnly: true }), 'INVALID_ARGUMENT', /invalid backup id/);
    await expectError(openRepository(path.join(dir, 'nowhere')), 'NOT_FOUND', /no volume-backup repository/);
    assert.deepEqual(await listBackups(repo), []);
    // A restore never overwrites a target smaller than the backup.
    const rec = await createBackup(repo, { volume: img, volumeId: 'v', ...SMALL });
    const small = path.join(dir, 'small.img');
    await fs.writeFile(small, 'keep me');
    await expectError(restoreBackup(repo, { backupId: rec.id, target: small }), 'INVALID_ARGUMENT', /larger target/);
    assert.equal(await fs.readFile(small, 'utf8'), 'keep me');
  });

  it('a verify whose chain is deleted meanwhile says so instead of reporting damage', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, 4 * MiB, 97);
    const full = await createBackup(repo, { volume: img, volumeId: 'v', ...SMALL });
    await scatterWrites(img, 0.05, 98);
    const incr = await createBackup(repo, { volume: img, volumeId: 'v', mode: 'incremental' });
    const objectFiles = (await listFiles(repoDir)).filter((n) => n.includes(`backup_${full.id}-`));
    let pruned = false;
    const err = await expectError(
      restoreBackup(repo, {
        backupId: incr.id,
        verifyOnly: true,
        onProgress: (e) => {
          if (e.type !== 'start' || pruned) return;
          pruned = true;
          // What a concurrent prune (another process) does: mark the full backup deleting, remove its objects.
          const recordFile = path.join(repoDir, `records/v/${full.id}.json`);
          writeFileSync(recordFile, JSON.stringify({ ...JSON.parse(readFileSync(recordFile, 'utf8')), status: 'deleting' }));
          for (const f of objectFiles) rmSync(path.join(repoDir, f));
        },
      }),
      'CONFLICT',
      new RegExp(`${full.id} of its chain is being deleted`),
    );
    assert.ok(pruned && err);
  });

  it('export and import adopt a backup copied into another repository', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, 2 * MiB, 91);
    const sha = await sha256File(img);
    const rec = await createBackup(repo, { volume: img, volumeId: 'v', ...SMALL });
    const exported = await exportRecord(repo, rec.id);
    const otherDir = path.join(dir, 'other');
    const other = await openRepository(otherDir, { create: true, host: 'elsewhere' });
    await assert.rejects(importRecord(other, exported), /missing|copy the backup/);
    await fs.cp(path.join(repoDir, rec.objectPrefix.split('/')[0]), path.join(otherDir, rec.objectPrefix.split('/')[0]), { recursive: true });
    const adopted = await importRecord(other, exported);
    assert.equal(adopted.id, rec.id);
    assert.equal(adopted.host, 'elsewhere');
    const target = path.join(dir, 'adopted.img');
    await restoreBackup(other, { backupId: rec.id, target });
    assert.equal(await sha256File(target), sha);
    await assert.rejects(importRecord(other, exported), /already exists/);
    await assert.rejects(importRecord(other, 'bm90IGpzb24='), /not an exported record/);
    await other.close();
    assert.ok((await treeBytes(otherDir)) > 0);
  });
});
