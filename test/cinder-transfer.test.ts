/**
 * Moving backups between Cinder and a repository (issue 20): `import --from cinder:…` turns a chain that
 * Cinder's own PosixBackupDriver made into native backups (ids, names, descriptions, times, parents kept)
 * that restore byte-identical and that the next native incremental continues; `export --format cinder`
 * writes a backup in Cinder's posix layout whose backup_url Cinder imports and whose bytes Cinder's own
 * restore() gives back.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { cinderBackup, cinderImportRecord, cinderMissing, cinderRestore, overwritePieces, storeFiles } from './helpers/cinder';
import { makeImage, sha256File, tempDir } from './helpers/volumes';

const KiB = 1024;
const MiB = 1024 * KiB;
const VOLUME = '7c0ffee0-1234-4abc-8def-0123456789ab';
const IDS = ['1d2e3f40-0000-4000-8000-00000000000a', '1d2e3f40-0000-4000-8000-00000000000b', '1d2e3f40-0000-4000-8000-00000000000c'];

interface Listed {
  id: string;
  volumeId: string;
  name: string;
  description: string;
  parentId: string | null;
  kind: string;
  createdAt: string;
  status: string;
}

describe('Cinder import and export', function () {
  this.timeout(300_000);
  let dir: string;
  let store: string;
  const images: string[] = [];
  const hashes: string[] = [];
  const created: string[] = [];

  before(async function () {
    if (cinderMissing()) this.skip(); // CI installs python3-cinder: there this never skips
    dir = await tempDir('cinder-transfer');
    store = path.join(dir, 'cinder');
    for (let i = 0; i < 3; i++) {
      images.push(path.join(dir, `v${i}.img`));
      if (i === 0) await makeImage(images[0], 3 * MiB + 777, 11, 256 * KiB);
      else {
        await fs.copyFile(images[i - 1], images[i]);
        await overwritePieces(images[i], [i * 300 * KiB, 2 * MiB + i * 1000], 'random', 50 + i);
      }
      hashes.push(await sha256File(images[i]));
      const b = await cinderBackup({ store, volumeFile: images[i], volumeId: VOLUME, backupId: IDS[i], parent: i ? IDS[i - 1] : undefined, compression: i === 1 ? 'bz2' : 'zlib', chunkSize: MiB, name: `cinder ${i}`, description: `made by Cinder, #${i}` });
      created.push(b.created_at);
    }
  });

  after(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('imports a Cinder chain keeping ids, names, descriptions, times and parents; it restores byte-identical and a native incremental continues it', async () => {
    const repo = path.join(dir, 'repo');
    const imp = await runCli(['import', '--repo', repo, '--from', `cinder:${store}`, '--backup', IDS[2]]);
    assert.equal(imp.code, 0, imp.stderr);
    assert.match(imp.stdout, /imported 3 Cinder backup\(s\)/);
    const list = JSON.parse((await runCli(['list', '--repo', repo, '--json'])).stdout) as Listed[];
    const byId = new Map(list.map((r) => [r.id, r]));
    for (let i = 0; i < 3; i++) {
      const r = byId.get(IDS[i]);
      assert.ok(r, `backup ${IDS[i]} imported`);
      assert.equal(r.volumeId, VOLUME);
      assert.equal(r.name, `cinder ${i}`);
      assert.equal(r.description, `made by Cinder, #${i}`);
      assert.equal(r.parentId, i ? IDS[i - 1] : null);
      assert.equal(r.kind, i ? 'incremental' : 'full');
      assert.equal(r.status, 'available');
      assert.equal(Date.parse(r.createdAt), Date.parse(created[i].replace(' ', 'T')), 'creation time kept');
    }
    for (let i = 0; i < 3; i++) {
      const target = path.join(dir, `imported-${i}.img`);
      const r = await runCli(['restore', '--repo', repo, '--backup', IDS[i], '--target', target]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(target), hashes[i]);
      await fs.rm(target);
    }
    // The volume changes again; the next native incremental's parent is the last imported backup.
    const next = path.join(dir, 'v3.img');
    await fs.copyFile(images[2], next);
    await overwritePieces(next, [1 * MiB + 5], 'random', 99);
    const inc = await runCli(['create', '--repo', repo, '--volume', next, '--volume-id', VOLUME, '--incremental', '--json']);
    assert.equal(inc.code, 0, inc.stderr);
    const record = JSON.parse(inc.stdout) as { id: string; parentId: string; storedBytes: number };
    assert.equal(record.parentId, IDS[2]);
    assert.ok(record.storedBytes < 200 * KiB, `only the change is stored (${record.storedBytes} bytes)`);
    const target = path.join(dir, 'native-on-imported.img');
    const r = await runCli(['restore', '--repo', repo, '--backup', record.id, '--target', target]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(target), await sha256File(next));
    // Importing the volume again keeps what is there and adds nothing twice.
    const again = await runCli(['import', '--repo', repo, '--from', `cinder:${store}`, '--volume-id', VOLUME]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /imported 0 Cinder backup\(s\), 3 already in the repository/);
  });

  it('refuses an import of a damaged chain before it writes a backup, naming backup and object', async () => {
    const copy = path.join(dir, 'damaged');
    await fs.cp(store, copy, { recursive: true });
    const victim = (await storeFiles(copy)).find((f) => f.includes(IDS[0]) && f.endsWith('-00002'))!;
    const data = await fs.readFile(path.join(copy, victim));
    data[10] ^= 1;
    await fs.writeFile(path.join(copy, victim), data);
    const repo = path.join(dir, 'repo-damaged');
    const imp = await runCli(['import', '--repo', repo, '--from', `cinder:${copy}`, '--backup', IDS[1]]);
    assert.equal(imp.code, 1, imp.stdout + imp.stderr);
    assert.match(imp.stderr, new RegExp(`${path.basename(victim)} of backup ${IDS[0]}`));
    const list = await runCli(['list', '--repo', repo, '--json']);
    assert.deepEqual(JSON.parse(list.stdout), [], 'nothing imported');
  });

  it('usage errors: --from needs a Cinder store, and --backup or --volume-id (exit 2)', async () => {
    const repo = path.join(dir, 'repo-usage');
    for (const [args, pattern] of [
      [['--from', path.join(dir, 'nowhere')], /--from takes a Cinder store/],
      [['--from', `cinder:${store}`], /give --backup ID .* or --volume-id V/],
      [['--from', `cinder:${store}`, '--backup', IDS[0], '--volume-id', VOLUME], /give --backup ID .* or --volume-id V/],
    ] as [string[], RegExp][]) {
      const r = await runCli(['import', '--repo', repo, ...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
    }
  });

  describe('export --format cinder', () => {
    let repo: string;
    let fullId: string;
    let incId: string;
    let a: string;
    let b: string;

    before(async function () {
      if (!dir) this.skip();
      repo = path.join(dir, 'native');
      a = path.join(dir, 'native-a.img');
      b = path.join(dir, 'native-b.img');
      await makeImage(a, 2 * MiB + 4096 + 100, 21, 128 * KiB);
      await fs.copyFile(a, b);
      await overwritePieces(b, [5 * KiB, 1 * MiB + 3 * 32 * KiB], 'random', 77);
      const full = await runCli(['create', '--repo', repo, '--volume', a, '--volume-id', VOLUME, '--name', 'native full', '--description', 'für Cinder', '--chunk-size', '512K', '--json']);
      assert.equal(full.code, 0, full.stderr);
      fullId = (JSON.parse(full.stdout) as { id: string }).id;
      const inc = await runCli(['create', '--repo', repo, '--volume', b, '--volume-id', VOLUME, '--incremental', '--name', 'native inc', '--json']);
      assert.equal(inc.code, 0, inc.stderr);
      incId = (JSON.parse(inc.stdout) as { id: string }).id;
    });

    interface Exported {
      backupId: string;
      parentId: string | null;
      container: string;
      backupService: string;
      backupUrl: string;
    }

    it('flattened: Cinder imports the printed backup_url and its own restore() gives back the same bytes', async () => {
      const to = path.join(dir, 'export-flat');
      const r = await runCli(['export', '--repo', repo, '--backup', incId, '--format', 'cinder', '--to', to, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const exported = JSON.parse(r.stdout) as Exported[];
      assert.equal(exported.length, 1);
      assert.equal(exported[0].backupService, 'cinder.backup.drivers.posix.PosixBackupDriver');
      assert.equal(exported[0].container, `${incId.slice(0, 2)}/${incId.slice(2, 4)}/${incId}`);
      const imported = await cinderImportRecord(to, exported[0].backupUrl);
      assert.equal(imported.id, incId);
      assert.equal(imported.parent_id, null);
      assert.equal(imported.display_name, 'native inc');
      const target = path.join(dir, 'cinder-restored-flat.img');
      await cinderRestore(to, incId, target);
      assert.equal(await sha256File(target), await sha256File(b));
      // The text form prints one `cinder backup-import` line per backup; a second export to the same place is refused.
      const again = await runCli(['export', '--repo', repo, '--backup', incId, '--format', 'cinder', '--to', to]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already holds/);
    });

    it('a chain export that fails part-way removes what it wrote and leaves what was there', async () => {
      const to = path.join(dir, 'export-partial');
      const taken = path.join(to, incId.slice(0, 2), incId.slice(2, 4), incId);
      await fs.mkdir(taken, { recursive: true });
      await fs.writeFile(path.join(taken, 'someone-elses'), 'keep me');
      const r = await runCli(['export', '--repo', repo, '--backup', incId, '--format', 'cinder', '--to', to, '--chain']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`${incId} is there already`));
      assert.equal(r.stdout, '', 'no backup_url printed');
      await assert.rejects(fs.stat(path.join(to, fullId.slice(0, 2), fullId.slice(2, 4), fullId)), 'the full backup written first was removed');
      assert.deepEqual(await storeFiles(to), [path.join(incId.slice(0, 2), incId.slice(2, 4), incId, 'someone-elses')]);
    });

    it('as a chain: Cinder imports both records in order and restores each backup byte-identical; our reader reads the export too', async () => {
      const to = path.join(dir, 'export-chain');
      const r = await runCli(['export', '--repo', repo, '--backup', incId, '--format', 'cinder', '--to', to, '--chain', '--compression', 'zstd']);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines.length, 2);
      const urls = lines.map((l) => /^cinder backup-import cinder\.backup\.drivers\.posix\.PosixBackupDriver (\S+)$/.exec(l)![1]);
      const first = await cinderImportRecord(to, urls[0]);
      const second = await cinderImportRecord(to, urls[1]);
      assert.equal(first.id, fullId);
      assert.equal(second.parent_id, fullId);
      assert.equal(first.display_description, 'für Cinder');
      for (const [id, image] of [[incId, b], [fullId, a]]) {
        const target = path.join(dir, `cinder-restored-${id}.img`);
        await cinderRestore(to, id, target);
        assert.equal(await sha256File(target), await sha256File(image), `Cinder's restore of ${id}`);
      }
      const incObjects = (await storeFiles(to)).filter((f) => f.includes(`backup_${incId}-`));
      assert.ok(incObjects.length >= 1 && incObjects.length <= 3, `the incremental holds only the changed runs (${incObjects.length} objects)`);
      const v = await runCli(['verify', '--repo', `cinder:${to}`, '--read-data']);
      assert.equal(v.code, 0, v.stdout + v.stderr);
    });
  });
});
