/**
 * Prune on the object stores (s3rver behind its precondition layer, the GCS test server): the same
 * decisions as on posix, object listings by prefix, orphans, dry runs that change nothing, and every
 * kept backup restores byte-identical.
 */
import { strict as assert } from 'assert';
import { createHash, randomUUID } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { BackupRecord, Repository, createBackup, listBackups, openRepository, pruneRepository, restoreBackup } from '../lib';
import { Backend, gcsBackend, s3Backend } from './servers/backends';
import { makeImage, scatterWrites, sha256File, tempDir } from './helpers/volumes';

const KiB = 1024;
const SMALL = { chunkSize: 64 * KiB, blockSize: 4 * KiB, compression: 'none' as const };

for (const make of [s3Backend, gcsBackend]) {
  const backend: Backend = make();
  describe(`prune on ${backend.name}`, function () {
    this.timeout(180_000);
    let dir: string;
    let repo: Repository;
    let img: string;
    const expected = new Map<string, string>();

    before(async () => backend.start());
    after(async () => backend.stop());
    beforeEach(async () => {
      dir = await tempDir(`prune-${backend.name}`);
      repo = await openRepository(backend.spec({ prefix: `t-${randomUUID()}` }), { create: true });
      img = path.join(dir, 'disk.img');
      await makeImage(img, 384 * KiB, 4, 64 * KiB);
    });
    afterEach(async () => {
      await repo.close();
      await fs.rm(dir, { recursive: true, force: true });
    });

    let seed = 0;
    async function backup(mode: 'full' | 'incremental'): Promise<BackupRecord> {
      await scatterWrites(img, 0.05, ++seed, 4 * KiB);
      const record = await createBackup(repo, { volume: img, volumeId: 'disk', mode, ...SMALL });
      expected.set(record.id, await sha256File(img));
      return record;
    }

    /** Every object with the SHA-256 of its bytes. */
    async function snapshot(): Promise<Record<string, string>> {
      const out: Record<string, string> = {};
      for (const e of await repo.driver.listEntries(repo.container, '')) {
        out[e.name] = createHash('sha256').update((await repo.driver.readObject(repo.container, e.name)).data).digest('hex');
      }
      return out;
    }

    it('two chains, keep-last 2, an orphan: the dry run changes nothing; prune keeps the new chain, deletes the old one and the orphan', async () => {
      const a0 = await backup('full');
      const a1 = await backup('incremental');
      const b0 = await backup('full');
      const b1 = await backup('incremental');
      const b2 = await backup('incremental');
      const orphan = `volume_disk/20200101000000/backup_${randomUUID()}-00001`;
      await repo.driver.writeObject(repo.container, orphan, Buffer.alloc(321, 3));

      const before = await snapshot();
      const dry = await pruneRepository(repo, { policy: { keepLast: 2 }, dryRun: true, orphanGracePeriodMs: 0 });
      assert.deepEqual(await snapshot(), before, 'the dry run changed the store');
      assert.deepEqual(dry.volumes[0].orphans.map((o) => [o.name, o.action]), [[orphan, 'would delete']]);

      const report = await pruneRepository(repo, { policy: { keepLast: 2 }, orphanGracePeriodMs: 0 });
      const v = report.volumes[0];
      assert.deepEqual(v.kept.map((k) => k.id), [b2.id, b1.id, b0.id]);
      assert.deepEqual(v.deleted.map((d) => d.id), [a1.id, a0.id]);
      assert.deepEqual(dry.volumes[0].deleted.map((d) => [d.id, d.bytesFreed]), v.deleted.map((d) => [d.id, d.bytesFreed]));
      assert.equal(report.orphansDeleted, 1);
      const names = (await repo.driver.listEntries(repo.container, 'volume_')).map((e) => e.name);
      assert.ok(names.length > 0);
      for (const n of names) assert.ok([b0, b1, b2].some((r) => n.startsWith(r.objectPrefix)), `object ${n} survived`);
      assert.deepEqual((await listBackups(repo)).map((r) => r.id).sort(), [b0.id, b1.id, b2.id].sort());
      for (const r of [b0, b1, b2]) {
        const target = path.join(dir, `r-${r.id}.img`);
        await restoreBackup(repo, { backupId: r.id, target });
        assert.equal(await sha256File(target), expected.get(r.id));
      }
    });
  });
}
