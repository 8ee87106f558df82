/**
 * Reading Cinder stores (issue 20): backups made by Cinder's own PosixBackupDriver (python3-cinder, run
 * by test/cinder/harness.py) listed, shown, restored byte-identical and verified through the CLI, from
 * the posix layout and, renamed into Cinder's object-store layout, from S3; damage (a flipped byte, a
 * missing object, a wrong MD5 in the metadata, a wrong SHA-256 in the hash list) found and named.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { createDriver, loadBackendModules } from '../lib/backends/registry';
import { runCli } from './helpers/cli';
import { cinderBackup, cinderMissing, overwritePieces, storeFiles } from './helpers/cinder';
import { makeImage, sha256File, tempDir } from './helpers/volumes';
import { gcsBackend, s3Backend } from './servers/backends';
import { S3_CLI_ENV } from './servers/s3-target';

const KiB = 1024;
const MiB = 1024 * KiB;
const VOLUME = '5e1b6c4a-0d0f-4c55-9a57-1b0f6f0e7a01';
const IDS = ['0a1b2c3d-0000-4000-8000-000000000001', '0a1b2c3d-0000-4000-8000-000000000002', '0a1b2c3d-0000-4000-8000-000000000003', '0a1b2c3d-0000-4000-8000-000000000004'];
const COMPRESSIONS = ['zlib', 'bz2', 'zstd', 'none'] as const;

describe('Cinder stores (read-only): list, show, restore, verify', function () {
  this.timeout(300_000);
  let dir: string;
  let store: string;
  const images: string[] = [];
  const hashes: string[] = [];

  before(async function () {
    const missing = cinderMissing();
    if (missing) this.skip(); // CI installs python3-cinder: there this never skips (and the CI skip check would fail the run)
    dir = await tempDir('cinder-read');
    store = path.join(dir, 'cinder');
    // A 4 MiB volume plus a partial last block; 1 MiB objects; a chain of four, one compression each.
    images.push(path.join(dir, 'v0.img'));
    await makeImage(images[0], 4 * MiB + 12345, 7, 256 * KiB);
    const edits: [number[], 'text' | 'random'][] = [
      [[100 * KiB, 1 * MiB - 8 * KiB, 3 * MiB + 5], 'text'],
      [[2 * MiB + 77, 4 * MiB - 20 * KiB], 'text'],
      [[12 * KiB, 3 * MiB + 100 * KiB], 'random'],
    ];
    for (let i = 0; i < 4; i++) {
      if (i > 0) {
        images.push(path.join(dir, `v${i}.img`));
        await fs.copyFile(images[i - 1], images[i]);
        await overwritePieces(images[i], edits[i - 1][0], edits[i - 1][1], 100 + i);
      }
      hashes.push(await sha256File(images[i]));
      await cinderBackup({ store, volumeFile: images[i], volumeId: VOLUME, backupId: IDS[i], parent: i ? IDS[i - 1] : undefined, compression: COMPRESSIONS[i], chunkSize: MiB, name: `b${i}`, description: `backup number ${i}` });
    }
  });

  after(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('lists and shows the chain with Cinder\'s ids, names, descriptions, parents and every compression in use', async () => {
    const list = await runCli(['list', '--repo', `cinder:${store}`, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const views = JSON.parse(list.stdout) as { id: string; parentId: string | null; name: string; description: string; kind: string; size: number; compression: string }[];
    assert.deepEqual(views.map((v) => v.id), IDS);
    assert.deepEqual(views.map((v) => v.parentId), [null, ...IDS.slice(0, 3)]);
    assert.deepEqual(views.map((v) => v.name), ['b0', 'b1', 'b2', 'b3']);
    assert.deepEqual(views.map((v) => v.kind), ['full', 'incremental', 'incremental', 'incremental']);
    // The image's length as Cinder's restore leaves it (the third edit grew the volume inside its last block).
    assert.deepEqual(views.map((v) => v.size), await Promise.all(images.map(async (f) => (await fs.stat(f)).size)));
    const used = new Set(views.flatMap((v) => v.compression.split('+')));
    for (const c of COMPRESSIONS) assert.ok(used.has(c), `compression ${c} is used by some object (${[...used].join(', ')})`);
    const show = await runCli(['show', '--repo', `cinder:${store}`, '--backup', IDS[2]]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /description\s+backup number 2/);
  });

  it('restores every backup of the chain byte-identical to the volume it was made from', async () => {
    for (let i = 0; i < 4; i++) {
      const target = path.join(dir, `restored-${i}.img`);
      const r = await runCli(['restore', '--repo', `cinder:${store}`, '--backup', IDS[i], '--target', target]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`chain of ${i + 1}`));
      assert.equal(await sha256File(target), hashes[i], `backup ${i} restored`);
      await fs.rm(target);
    }
  });

  it('verify --read-data and restore --verify-only pass on the untouched store', async () => {
    const v = await runCli(['verify', '--repo', `cinder:${store}`, '--read-data']);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /4 backup\(s\).*no problems/);
    const r = await runCli(['restore', '--repo', `cinder:${store}`, '--backup', IDS[3], '--verify-only']);
    assert.equal(r.code, 0, r.stderr);
  });

  /** A copy of the store with one thing damaged; returns it and the damaged object's name. */
  async function damaged(label: string, damage: (copy: string, files: string[]) => Promise<string>): Promise<{ copy: string; object: string }> {
    const copy = path.join(dir, `damaged-${label}`);
    await fs.cp(store, copy, { recursive: true });
    const object = await damage(copy, await storeFiles(copy));
    return { copy, object };
  }
  const dataObjectOf = (files: string[], id: string, n = 1) => files.find((f) => f.includes(id) && f.endsWith(`-0000${n}`))!;

  async function expectRestoreFails(copy: string, backupId: string, pattern: RegExp): Promise<void> {
    const target = path.join(dir, 'never.img');
    const r = await runCli(['restore', '--repo', `cinder:${copy}`, '--backup', backupId, '--target', target]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, pattern);
    await assert.rejects(fs.stat(target), 'no half-restored target is left');
  }

  it('a flipped byte in an object fails restore and verify --read-data, naming backup and object', async () => {
    const { copy, object } = await damaged('flip', async (c, files) => {
      const f = dataObjectOf(files, IDS[1]);
      const data = await fs.readFile(path.join(c, f));
      data[Math.floor(data.length / 2)] ^= 0x40;
      await fs.writeFile(path.join(c, f), data);
      return f;
    });
    const name = path.basename(object);
    await expectRestoreFails(copy, IDS[3], new RegExp(`${name}.*backup ${IDS[1]}`));
    const v = await runCli(['verify', '--repo', `cinder:${copy}`, '--read-data']);
    assert.equal(v.code, 1);
    assert.match(v.stdout, new RegExp(`problem \\(corrupt\\).*${name}.*${IDS[1]}`));
  });

  it('a missing object fails restore and verify (without reading data), naming backup and object', async () => {
    const { copy, object } = await damaged('missing', async (c, files) => {
      const f = dataObjectOf(files, IDS[0], 3);
      await fs.rm(path.join(c, f));
      return f;
    });
    await expectRestoreFails(copy, IDS[2], new RegExp(`backup ${IDS[0]} is missing 1 object\\(s\\): ${path.basename(object)}`));
    const v = await runCli(['verify', '--repo', `cinder:${copy}`]);
    assert.equal(v.code, 1);
    assert.match(v.stdout, new RegExp(`problem \\(missing-object\\): object ${object} of backup ${IDS[0]} is missing`));
  });

  it('a wrong MD5 in the metadata fails restore and verify --read-data', async () => {
    const { copy } = await damaged('md5', async (c, files) => {
      const f = files.find((x) => x.includes(IDS[2]) && x.endsWith('_metadata'))!;
      const meta = JSON.parse(await fs.readFile(path.join(c, f), 'utf8')) as { objects: Record<string, { md5: string }>[] };
      const entry = Object.values(meta.objects[0])[0];
      entry.md5 = entry.md5.replace(/^./, (ch) => (ch === '0' ? '1' : '0'));
      await fs.writeFile(path.join(c, f), JSON.stringify(meta, null, 2));
      return f;
    });
    await expectRestoreFails(copy, IDS[2], new RegExp(`backup ${IDS[2]} does not match its MD5`));
    const v = await runCli(['verify', '--repo', `cinder:${copy}`, '--read-data', '--backup', IDS[3]]);
    assert.equal(v.code, 1);
    assert.match(v.stdout, /does not match its MD5/);
  });

  it('a wrong SHA-256 in a _sha256file fails restore and verify', async () => {
    const { copy } = await damaged('sha', async (c, files) => {
      const f = files.find((x) => x.includes(IDS[0]) && x.endsWith('_sha256file'))!;
      const sha = JSON.parse(await fs.readFile(path.join(c, f), 'utf8')) as { sha256s: string[] };
      sha.sha256s[5] = sha.sha256s[5].replace(/^./, (ch) => (ch === '0' ? '1' : '0'));
      await fs.writeFile(path.join(c, f), JSON.stringify(sha, null, 2));
      return f;
    });
    await expectRestoreFails(copy, IDS[0], new RegExp(`block 5 .*backup ${IDS[0]} does not match the SHA-256`));
    const v = await runCli(['verify', '--repo', `cinder:${copy}`, '--read-data']);
    assert.equal(v.code, 1);
    assert.match(v.stdout, new RegExp(`block 5 .*backup ${IDS[0]}`));
  });

  it('an unlisted object with a backup\'s prefix is reported (Cinder\'s own restore refuses that container)', async () => {
    const { copy } = await damaged('unlisted', async (c, files) => {
      const f = dataObjectOf(files, IDS[1]).replace(/-00001$/, '-00099');
      await fs.writeFile(path.join(c, f), 'stray');
      return f;
    });
    const v = await runCli(['verify', '--repo', `cinder:${copy}`]);
    assert.equal(v.code, 1);
    assert.match(v.stdout, new RegExp(`problem \\(orphaned-objects\\): backup ${IDS[1]} has 1 object`));
  });

  it('a missing _metadata object: the backup is not listed, restore says it is not there, verify names it; a wrong path is an error', async () => {
    const { copy } = await damaged('no-metadata', async (c, files) => {
      const f = files.find((x) => x.includes(IDS[3]) && x.endsWith('_metadata'))!;
      await fs.rm(path.join(c, f));
      return f;
    });
    const list = await runCli(['list', '--repo', `cinder:${copy}`, '--json']);
    assert.deepEqual((JSON.parse(list.stdout) as { id: string }[]).map((v) => v.id), IDS.slice(0, 3));
    await expectRestoreFails(copy, IDS[3], new RegExp(`backup ${IDS[3]} is not in the cinder posix layout`));
    const v = await runCli(['verify', '--repo', `cinder:${copy}`]);
    assert.equal(v.code, 1);
    assert.match(v.stdout, new RegExp(`problem \\(missing-object\\): backup ${IDS[3]} has \\d+ object\\(s\\) but no _metadata object`));
    const wrong = await runCli(['list', '--repo', `cinder:${path.join(dir, 'no-such-dir')}`]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /no Cinder store at .*no-such-dir: it is not a directory/);
  });

  it('imports the whole chain; the backup whose volume grew inside its last block becomes a full one, with a warning', async () => {
    const repo = path.join(dir, 'imported');
    const imp = await runCli(['import', '--repo', repo, '--from', `cinder:${store}`, '--volume-id', VOLUME]);
    assert.equal(imp.code, 0, imp.stderr);
    assert.match(imp.stderr, new RegExp(`warning: Cinder backup ${IDS[2]} is of a volume larger than its parent ${IDS[1]}'s: it is imported as a full backup`));
    const list = JSON.parse((await runCli(['list', '--repo', repo, '--json'])).stdout) as { id: string; parentId: string | null }[];
    assert.deepEqual(IDS.map((id) => list.find((r) => r.id === id)?.parentId), [null, IDS[0], null, IDS[2]]);
    for (let i = 0; i < 4; i++) {
      const target = path.join(dir, `imported-${i}.img`);
      const r = await runCli(['restore', '--repo', repo, '--backup', IDS[i], '--target', target]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(target), hashes[i]);
      await fs.rm(target);
    }
  });

  it('refuses writes to a Cinder store with a clear message (exit 2), and the store is unchanged', async () => {
    const before = await storeFiles(store);
    for (const args of [
      ['create', '--repo', `cinder:${store}`, '--volume', images[0]],
      ['delete', '--repo', `cinder:${store}`, '--backup', IDS[3]],
      ['prune', '--repo', `cinder:${store}`, '--keep-last', '1'],
    ]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /Cinder store .* is read-only/);
    }
    assert.deepEqual(await storeFiles(store), before);
  });

  it('restore onto an existing file is refused without --overwrite (exit 2, the file untouched) and done with it', async () => {
    const target = path.join(dir, 'precious.img');
    await fs.writeFile(target, Buffer.alloc(5 * MiB, 0x5a));
    const before = await sha256File(target);
    const refused = await runCli(['restore', '--repo', `cinder:${store}`, '--backup', IDS[3], '--target', target]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /restore target .*precious\.img exists \(5242880 bytes\): a restore would overwrite it; choose a new file, or allow overwriting \(CLI --overwrite/);
    assert.equal(await sha256File(target), before, 'the existing file is untouched');
    const restored = await runCli(['restore', '--repo', `cinder:${store}`, '--backup', IDS[3], '--target', target, '--overwrite']);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal(await sha256File(target), hashes[3], 'overwritten, and cut to the image size');
    await fs.rm(target);
  });

  // Any registered backend holds a Cinder store: a third-party one (examples/custom-backend, a local
  // directory of its own layout) is read in Cinder's posix layout, loaded by --backend-module.
  describe('through a third-party backend (cinder+sharded:)', () => {
    const EXAMPLE = path.resolve(__dirname, '..', ...(path.basename(path.resolve(__dirname, '..')) === 'dist' ? ['..'] : []), 'examples', 'custom-backend');
    let sharded: string;
    before(async function () {
      if (!store) this.skip();
      sharded = path.join(dir, 'sharded');
      const [module] = loadBackendModules([EXAMPLE]);
      const driver = createDriver({ backend: module.name, path: sharded });
      for (const f of await storeFiles(store)) await driver.writeObject('', f, await fs.readFile(path.join(store, f)));
      await driver.close?.();
    });

    it('lists, restores byte-identical and verifies the chain; without the module the scheme is refused by name', async () => {
      const url = `cinder+sharded:${sharded}`;
      const unknown = await runCli(['list', '--repo', url]);
      assert.equal(unknown.code, 2, unknown.stderr);
      assert.match(unknown.stderr, /unsupported Cinder store URL scheme "cinder\+sharded:"/);
      const list = await runCli(['list', '--repo', url, '--backend-module', EXAMPLE, '--json']);
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual((JSON.parse(list.stdout) as { id: string }[]).map((v) => v.id), IDS);
      const target = path.join(dir, 'sharded-restored.img');
      const r = await runCli(['restore', '--repo', url, '--backend-module', EXAMPLE, '--backup', IDS[3], '--target', target]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(target), hashes[3]);
      const v = await runCli(['verify', '--repo', url, '--backend-module', EXAMPLE, '--read-data']);
      assert.equal(v.code, 0, v.stdout + v.stderr);
    });
  });

  // Cinder's object stores name objects volume_<v>/<YYYYmmddHHMMSS>/az_<az>_backup_<id>-NNNNN from the bucket's root:
  // the posix backups above, renamed so (their data and digests unchanged), in S3 and in GCS.
  for (const [scheme, backend, query] of [
    ['s3', s3Backend(), 'forcePathStyle=true&checksums=when_required'],
    ['gs', gcsBackend(), 'project=p'],
  ] as const) {
    describe(`in the object-store layout (cinder+${scheme}://)`, () => {
      before(async function () {
        if (!store) this.skip();
        await backend.start();
        const driver = backend.driver({ prefix: 'cinder-backups' });
        const rename = (name: string) => name.replace(/^volume_(.+)_(\d{14})_backup_(.+)$/, 'volume_$1/$2/az_nova_backup_$3');
        for (const f of await storeFiles(store)) {
          let data = await fs.readFile(path.join(store, f));
          if (f.endsWith('_metadata')) {
            const meta = JSON.parse(data.toString()) as { objects: Record<string, unknown>[] };
            meta.objects = meta.objects.map((o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [rename(k), v])));
            data = Buffer.from(JSON.stringify(meta, null, 2));
          }
          await driver.writeObject('', rename(path.basename(f)), data);
        }
        await driver.close?.();
      });
      after(() => backend.stop());

      const url = () => `cinder+${scheme}://${backend.bucket}/cinder-backups?endpoint=${backend.endpoint}&${query}`;

      it('lists, restores byte-identical and verifies the chain', async () => {
        const env = { ...process.env, ...S3_CLI_ENV };
        const list = await runCli(['list', '--repo', url(), '--json'], { env });
        assert.equal(list.code, 0, list.stderr);
        assert.deepEqual((JSON.parse(list.stdout) as { id: string }[]).map((v) => v.id), IDS);
        const target = path.join(dir, `${scheme}-restored.img`);
        const r = await runCli(['restore', '--repo', url(), '--backup', IDS[3], '--target', target], { env });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await sha256File(target), hashes[3]);
        const v = await runCli(['verify', '--repo', url(), '--read-data'], { env });
        assert.equal(v.code, 0, v.stdout + v.stderr);
      });
    });
  }
});
