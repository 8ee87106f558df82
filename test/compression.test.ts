/**
 * Compression as the engine uses it: zstd at the level asked for (in worker threads, via zstd-napi), raw
 * when it does not shrink, and the fallback when zstd-napi is not built — whose objects the normal build
 * restores, and the other way round (one frame format).
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { MIB, RandomBytes, fileSha256, generateImage } from '../bench/image';
import { compressBound, compressInto, decompressInto, syncZstd } from '../lib/codec/compression';
import * as sinon from 'sinon';
import { createBackup, openRepository, restoreBackup } from '../lib';
import { AdaptiveLevel } from '../lib/codec/adaptive-level';
import * as hashPool from '../lib/engine/hash-pool';
import { runCli } from './helpers/cli';
import { tempDir } from './helpers/volumes';

describe('compression', function () {
  this.timeout(120_000);
  let dir: string;
  let image: string;
  let imageSha: string;
  before(async () => {
    dir = await tempDir('compression');
    image = path.join(dir, 'vol.img');
    imageSha = await generateImage(image, 16 * MIB, 11);
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('zstd honours the level (zstd-napi) and round-trips; random data is stored raw', async function () {
    // zstd-napi is optional: where its install script could not compile it, the fallback test below still runs.
    if (!syncZstd()) this.skip();
    const data = (await fs.readFile(image)).subarray(0, 8 * MIB);
    const out = Buffer.alloc(compressBound(data.length));
    const fast = compressInto(data, out, 'zstd', 1)!;
    const small = compressInto(data, Buffer.alloc(compressBound(data.length)), 'zstd', 9)!;
    assert.equal(fast.compression, 'zstd');
    assert.ok(small.length < fast.length, `level 9 (${small.length}) should be smaller than level 1 (${fast.length})`);
    const back = Buffer.alloc(data.length);
    assert.equal(decompressInto(out.subarray(0, fast.length), 'zstd', back, 'test object'), true);
    assert.ok(back.equals(data));
    const random = new RandomBytes('compression-test').next(MIB);
    const raw = compressInto(random, Buffer.alloc(compressBound(MIB)), 'zstd', 1)!;
    assert.deepEqual(raw, { length: MIB, compression: 'none' });
    assert.throws(() => decompressInto(out.subarray(0, fast.length), 'zstd', Buffer.alloc(data.length - 1), 'object X'), /object X cannot be decompressed|object X decompressed to/);
  });

  it('without zstd-napi a backup still works (level 3 on the thread pool), and each build restores the other\'s objects', async () => {
    const preload = path.join(__dirname, 'helpers', 'no-zstd-napi.js');
    const without = { env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} -r ${preload}`.trim() } };
    const repo = path.join(dir, 'repo');
    const create = async (opts: object) => {
      const r = await runCli(['create', '--repo', repo, '--volume', image, '--volume-id', 'v', '--progress', 'none', '--json'], opts);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as { id: string; storedBytes: number };
    };
    const restore = async (id: string, opts: object) => {
      const target = path.join(dir, `${id}.img`);
      const r = await runCli(['restore', '--repo', repo, '--backup', id, '--target', target, '--progress', 'none'], opts);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await fileSha256(target), imageSha);
      await fs.rm(target);
    };
    const fallback = await create(without);
    const normal = await create({});
    assert.notEqual(fallback.storedBytes, normal.storedBytes, 'the fallback compresses at level 3, the workers at level 1');
    await restore(fallback.id, {});
    await restore(normal.id, without);
  });

  it('a repository made with a compression setting (init) uses it for every backup not told otherwise; all restore', async () => {
    const create = async (repo: string, args: string[] = []) => {
      const r = await runCli(['create', '--repo', repo, '--volume', image, '--volume-id', 'v', '--progress', 'none', '--json', ...args]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as { id: string; storedBytes: number; compression: string };
    };
    const fastRepo = path.join(dir, 'fast-repo');
    const init = await runCli(['init', '--repo', fastRepo, '--compression', 'zstd', '--compression-level=-5', '--json']);
    assert.equal(init.code, 0, init.stderr);
    assert.deepEqual(JSON.parse(init.stdout).compression, { algorithm: 'zstd', level: -5 });
    assert.deepEqual(JSON.parse(await fs.readFile(path.join(fastRepo, 'repository.json'), 'utf8')).compression, { algorithm: 'zstd', level: -5 });
    const fast = await create(fastRepo);
    const told = await create(fastRepo, ['--compression-level=1']);
    // A repository without the setting (as every one made before it): zstd level 1, as before (adaptive, but
    // the level moves only after 3 chunks in a row found every worker busy, and this volume has 2 chunks).
    const before = await create(path.join(dir, 'plain-repo'));
    assert.equal(fast.compression, 'zstd');
    assert.ok(fast.storedBytes > told.storedBytes * 1.05, `the repository's level -5 (${fast.storedBytes} bytes) stores more than level 1 (${told.storedBytes})`);
    assert.ok(Math.abs(before.storedBytes - told.storedBytes) < 1024, `no setting is level 1: ${before.storedBytes} vs ${told.storedBytes}`);
    for (const [repo, id] of [[fastRepo, fast.id], [fastRepo, told.id], [path.join(dir, 'plain-repo'), before.id]]) {
      const target = path.join(dir, `${id}.img`);
      const r = await runCli(['restore', '--repo', repo, '--backup', id, '--target', target, '--progress', 'none']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await fileSha256(target), imageSha);
      await fs.rm(target);
    }
  });

  it('with no level asked for, zstd adapts: level 1 while workers keep up, -5 after 3 chunks in a row found them all busy', () => {
    const level = new AdaptiveLevel();
    const seen = [false, true, true, false, true, true, true, true, false, false, true, false, false, false].map((busy) => level.next(busy));
    assert.deepEqual(seen, [1, 1, 1, 1, 1, 1, -5, -5, -5, -5, -5, -5, -5, 1]);
    assert.equal(level.fastChunks, 7);
  });

  it('a backup with no level asked for packs at the fast level while the CPU is the limit, at 1 otherwise; both restore', async () => {
    // Whether this machine's workers are busy depends on its speed: the answer is fixed here, both ways.
    const big = path.join(dir, 'big.img');
    const bigSha = await generateImage(big, 64 * MIB, 12);
    const repo = await openRepository(path.join(dir, 'adaptive-repo'), { create: true });
    const infos: string[] = [];
    const log = { info: (m: string) => infos.push(m), warn: () => undefined };
    try {
      const busy = sinon.stub(hashPool, 'everyWorkerBusy').returns(true);
      const cpuBound = await createBackup(repo, { volume: big, volumeId: 'a', log });
      busy.returns(false);
      const ioBound = await createBackup(repo, { volume: big, volumeId: 'b', log });
      busy.restore();
      const told = await createBackup(repo, { volume: big, volumeId: 'c', compressionLevel: 1, log });
      assert.equal(ioBound.storedBytes, told.storedBytes, 'workers keeping up: level 1, as asked for explicitly');
      assert.ok(cpuBound.storedBytes > told.storedBytes * 1.05, `CPU-bound: the fast level stores more (${cpuBound.storedBytes} vs ${told.storedBytes})`);
      assert.deepEqual(infos.filter((m) => m.includes('zstd level -5')).map((m) => m.split(':')[0]), [`backup ${cpuBound.id}`]);
      assert.match(infos.find((m) => m.includes('zstd level -5')) ?? '', /: 6 chunks compressed at zstd level -5/);
      for (const record of [cpuBound, ioBound]) {
        const target = path.join(dir, `${record.id}.img`);
        await restoreBackup(repo, { backupId: record.id, target, overwrite: false });
        assert.equal(await fileSha256(target), bigSha);
        await fs.rm(target);
      }
    } finally {
      sinon.restore();
      await repo.close();
      await fs.rm(big, { force: true });
    }
  });

  it('init refuses an unknown compression or a level out of range, saying what to use, and makes nothing', async () => {
    const repo = path.join(dir, 'refused-repo');
    for (const [args, message] of [
      [['--compression', 'lz4'], /unknown compression "lz4": use none, zlib or zstd/],
      [['--compression-level=40'], /compression level 40 is invalid for zstd: use a whole number from -7 to 22/],
      [['--compression', 'zlib', '--compression-level=-1'], /invalid for zlib: use a whole number from 0 to 9/],
      [['--compression-level', 'fast'], /--compression-level must be a whole number/],
    ] as const) {
      const r = await runCli(['init', '--repo', repo, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      await assert.rejects(fs.stat(path.join(repo, 'repository.json')), /ENOENT/);
    }
  });
});
