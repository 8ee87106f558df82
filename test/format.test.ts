/**
 * The repository format (docs/format.md): what an incremental of a large sparse volume adds (issue 15:
 * metadata per backup ∝ change), and a repository written by the version-1 code (committed fixture,
 * made by `volume-backup` at main before issue 15) still restoring, verifying and taking incrementals.
 */
import { strict as assert } from 'assert';
import { readFileSync, promises as fs } from 'fs';
import * as path from 'path';
import { gunzipSync } from 'zlib';
import { createBackup, deleteBackup, exportRecord, importRecord, initRepository, listBackups, openRepository, pruneRepository, restoreBackup, verifyRepository } from '../lib';
import type { Repository } from '../lib';
import { Prng, listFiles, sha256File, tempDir } from './helpers/volumes';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const FIXTURE = path.join(__dirname, '../../test/fixtures/v1-repository');

/** Sizes of the files under dir, by path relative to it. */
async function fileSizes(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const rel of await listFiles(dir)) out.set(rel, (await fs.stat(path.join(dir, rel))).size);
  return out;
}

describe('format: metadata per backup follows the change', function () {
  this.timeout(900_000);
  let dir: string;
  let repo: Repository;

  before(async () => {
    dir = await tempDir('format-scale');
    repo = await openRepository(path.join(dir, 'repo'), { create: true });
  });
  after(async () => {
    await repo?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('an incremental of a 16 GiB sparse image adds ≤ 1.5x the changed bytes + 256 KiB, and both backups restore', async () => {
    const img = path.join(dir, 'thin.img');
    const prng = new Prng(1501);
    const handle = await fs.open(img, 'w');
    // 8 MiB of data in 1 MiB pieces spread over the volume, the rest holes (a thin VM image).
    const dataAt = Array.from({ length: 8 }, (_, k) => k * 2 * GiB + 3 * MiB);
    const changes: number[] = [];
    try {
      await handle.truncate(16 * GiB);
      for (const at of dataAt) await handle.write(prng.fill(Buffer.alloc(MiB)), 0, MiB, at);
    } finally {
      await handle.close();
    }
    const full = await createBackup(repo, { volume: img, volumeId: 'thin' });
    // Holes cost nothing: 8 data objects, one segment object per GiB holding data (8), the metadata.
    assert.equal(full.objectCount, 8 + 8 + 1);
    const before = await fileSizes(path.join(dir, 'repo'));

    // 640 KiB changed: ten 64 KiB writes at 4 KiB-aligned offsets, in data and in holes, across the volume.
    const h = await fs.open(img, 'r+');
    try {
      for (let k = 0; k < 10; k++) {
        const at = k * 1600 * MiB + 4 * KiB * (1 + prng.int(4096));
        changes.push(at);
        await h.write(prng.fill(Buffer.alloc(64 * KiB)), 0, 64 * KiB, at);
      }
    } finally {
      await h.close();
    }
    const changed = 10 * 64 * KiB;
    const incr = await createBackup(repo, { volume: img, volumeId: 'thin', mode: 'incremental' });
    const after = await fileSizes(path.join(dir, 'repo'));
    const added = [...after].filter(([rel]) => !before.has(rel)).reduce((n, [, size]) => n + size, 0);
    const objects = [...after].filter(([rel]) => rel.includes(path.basename(incr.objectPrefix))).reduce((n, [, size]) => n + size, 0);
    const limit = 1.5 * changed + 256 * KiB;
    assert.equal(objects, incr.storedBytes, 'the record counts every byte of its objects');
    assert.ok(incr.storedBytes <= limit, `the incremental stored ${incr.storedBytes} bytes for ${changed} changed (limit ${limit})`);
    // Everything the repository grew by, its record included.
    assert.ok(added <= limit, `the repository grew by ${added} bytes for ${changed} changed (limit ${limit})`);
    assert.ok(full.storedBytes < 8 * MiB + 512 * KiB, `the full stored ${full.storedBytes} bytes for 8 MiB of data`);

    // Restores: every block is checked against its hash; the new target is sparse, so its bytes equal
    // the image's where the image has data, and it holds nothing else (bytes written = data blocks).
    const target = path.join(dir, 'restored.img');
    const result = await restoreBackup(repo, { backupId: incr.id, target });
    assert.equal((await fs.stat(target)).size, 16 * GiB);
    const [src, dst] = await Promise.all([fs.open(img, 'r'), fs.open(target, 'r')]);
    try {
      for (const [at, len] of [...dataAt.map((a) => [a, MiB]), ...changes.map((a) => [a - 32 * KiB, 128 * KiB])]) {
        const a = Buffer.alloc(len);
        const b = Buffer.alloc(len);
        await src.read(a, 0, len, at);
        await dst.read(b, 0, len, at);
        assert.ok(a.equals(b), `the restored image differs at ${at}`);
      }
    } finally {
      await Promise.all([src.close(), dst.close()]);
    }
    const dataBlocks = new Set<number>();
    for (const at of dataAt) for (let b = at / (32 * KiB); b < (at + MiB) / (32 * KiB); b++) dataBlocks.add(b);
    for (const at of changes) for (let b = Math.floor(at / (32 * KiB)); b * 32 * KiB < at + 64 * KiB; b++) dataBlocks.add(b);
    assert.equal(result.bytesWritten, dataBlocks.size * 32 * KiB, 'only the data blocks were written');
    await fs.rm(target);
    await restoreBackup(repo, { backupId: full.id, verifyOnly: true });
  });
});

describe('format: a version-1 repository (written before issue 15) still works', function () {
  this.timeout(120_000);
  let dir: string;
  let repoDir: string;
  let repo: Repository;
  const fixture = JSON.parse(readFileSync(path.join(FIXTURE, 'backups.json'), 'utf8')) as { volumeId: string; full: string; incremental: string; fullImage: string; incrementalImage: string };

  beforeEach(async () => {
    dir = await tempDir('format-v1');
    repoDir = path.join(dir, 'repo');
    await fs.cp(path.join(FIXTURE, 'repo'), repoDir, { recursive: true });
    repo = await openRepository(repoDir);
  });
  afterEach(async () => {
    await repo?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function image(name: string): Promise<string> {
    const file = path.join(dir, name.replace(/\.gz$/, ''));
    await fs.writeFile(file, gunzipSync(await fs.readFile(path.join(FIXTURE, name))));
    return file;
  }

  it('lists, verifies (--read-data) and restores its backups byte-identically', async () => {
    const listed = await listBackups(repo);
    assert.deepEqual(listed.map((r) => r.id).sort(), [fixture.full, fixture.incremental].sort());
    const verified = await verifyRepository(repo, { readData: true });
    assert.ok(verified.ok, JSON.stringify(verified.problems));
    assert.equal(verified.backupsVerified, 2);
    for (const [id, img] of [[fixture.full, fixture.fullImage], [fixture.incremental, fixture.incrementalImage]]) {
      const target = path.join(dir, `${id}.img`);
      await restoreBackup(repo, { backupId: id, target });
      assert.equal(await sha256File(target), await sha256File(await image(img)), `backup ${id} restored wrong`);
    }
  });

  it('takes incrementals and differentials on top of its backups (written in version 2), which restore; delete --cascade removes all', async () => {
    const vol = await image(fixture.incrementalImage);
    const h = await fs.open(vol, 'r+');
    try {
      await h.write(new Prng(7).fill(Buffer.alloc(20 * KiB)), 0, 20 * KiB, 130 * KiB); // data over data
      await h.write(Buffer.alloc(64 * KiB), 0, 64 * KiB, 256 * KiB); // data to zeros
      await h.write(Buffer.from('new data in a hole'), 0, 18, 600 * KiB); // data in a hole
    } finally {
      await h.close();
    }
    const sha = await sha256File(vol);
    const incr = await createBackup(repo, { volume: vol, volumeId: fixture.volumeId, mode: 'incremental' });
    assert.equal(incr.parentId, fixture.incremental);
    const diff = await createBackup(repo, { volume: vol, volumeId: fixture.volumeId, mode: 'differential' });
    assert.equal(diff.parentId, fixture.full);
    const files = await listFiles(repoDir);
    assert.ok(files.some((f) => f.endsWith(`backup_${incr.id}_segment-000000`)), 'the incremental is written in version 2');
    assert.ok(!files.some((f) => f.endsWith(`backup_${incr.id}_sha256file`)));
    for (const b of [incr, diff]) {
      const target = path.join(dir, `${b.id}.img`);
      await restoreBackup(repo, { backupId: b.id, target });
      assert.equal(await sha256File(target), sha, `${b.kind} on a version-1 parent restored wrong`);
    }
    const verified = await verifyRepository(repo, { readData: true });
    assert.ok(verified.ok, JSON.stringify(verified.problems));
    assert.equal(verified.backupsVerified, 4);

    await deleteBackup(repo, { backupId: fixture.full, cascade: true });
    assert.deepEqual((await listFiles(repoDir)).filter((f) => !f.startsWith('repository.json') && !f.startsWith('locks/')), []);
  });

  it('exports and imports its backups into another repository, and prune deletes them once a newer full replaces them', async () => {
    const otherDir = path.join(dir, 'other');
    const other = await initRepository(otherDir);
    try {
      await fs.cp(path.join(repoDir, 'volume_v1vol'), path.join(otherDir, 'volume_v1vol'), { recursive: true });
      for (const id of [fixture.full, fixture.incremental]) await importRecord(other, await exportRecord(repo, id));
      const target = path.join(dir, 'imported.img');
      await restoreBackup(other, { backupId: fixture.incremental, target });
      assert.equal(await sha256File(target), await sha256File(await image(fixture.incrementalImage)));
    } finally {
      await other.close();
    }

    const full = await createBackup(repo, { volume: await image(fixture.incrementalImage), volumeId: fixture.volumeId });
    const report = await pruneRepository(repo, { policy: { keepLast: 1 } });
    const deleted = report.volumes.flatMap((v) => v.deleted.map((d) => d.id)).sort();
    assert.deepEqual(deleted, [fixture.full, fixture.incremental].sort());
    assert.deepEqual((await listBackups(repo)).map((r) => r.id), [full.id]);
    const left = (await listFiles(repoDir)).filter((f) => f.startsWith('volume_'));
    assert.ok(left.length > 0 && left.every((f) => f.includes(full.id)), `objects of the pruned version-1 backups are left: ${left.join(', ')}`);
  });
});
