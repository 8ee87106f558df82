/**
 * The benchmark in quick mode (a 64 MiB image, this project only, no borg/restic, no S3): it must run
 * the CLI as a user would, restore hash-equal and write its table and chart. No timing is asserted.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MIB, applyChange, changeOffsets, fileSha256, generateImage, regionPlan } from '../bench/image';
import { runBench } from '../bench/run';

describe('bench: quick smoke run', function () {
  this.timeout(180_000);
  let work: string;
  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-smoke-'));
  });
  after(async () => {
    await fs.rm(work, { recursive: true, force: true });
  });

  it('the image is deterministic: 25% zero, 35% random, 40% text MiB regions; the change is 1% in 64 KiB writes', async () => {
    const plan = regionPlan(100, 7);
    assert.deepEqual(['zero', 'random', 'text'].map((k) => plan.filter((p) => p === k).length), [25, 35, 40]);
    const a = path.join(work, 'a.img');
    const b = path.join(work, 'b.img');
    assert.equal(await generateImage(a, 8 * MIB, 7), await generateImage(b, 8 * MIB, 7));
    assert.notEqual(await generateImage(b, 8 * MIB, 8), await fileSha256(a));
    const offsets = changeOffsets(64 * MIB, 7);
    assert.equal(offsets.length, Math.round((64 * MIB * 0.01) / 65536));
    for (let i = 1; i < offsets.length; i++) assert.ok(offsets[i] - offsets[i - 1] >= 65536, 'writes do not overlap');
    const before = await fileSha256(a);
    assert.equal(await applyChange(a, 8 * MIB, 7), Math.round((8 * MIB * 0.01) / 65536) * 65536);
    assert.notEqual(await fileSha256(a), before);
  });

  it('runs full, incremental and restore, restores hash-equal, and writes the table and the chart', async () => {
    const results = path.join(work, 'results');
    const report = await runBench(['--quick', '--no-peers', '--no-s3', '--no-tradeoffs', '--no-install', '--work', path.join(work, 'w'), '--results', results]);
    const ops = report.results.filter((r) => r.tool === 'volume-backup').map((r) => r.operation).sort();
    assert.deepEqual(ops, ['full', 'incremental', 'restore']);
    const restore = report.results.find((r) => r.operation === 'restore')!;
    assert.equal(restore.verified, true, 'the restored image is hash-equal to the changed source');
    const incremental = report.results.find((r) => r.operation === 'incremental')!;
    assert.ok(incremental.addedBytes! > 0 && incremental.addedBytes! < report.changedBytes * 3, `incremental added ${incremental.addedBytes} bytes for ${report.changedBytes} changed`);
    assert.deepEqual(report.loop.map((l) => l.operation.split(' ')[0]), ['idle', 'backup', 'restore'], 'the event-loop probe ran a baseline, a backup and a restore');
    const md = await fs.readFile(path.join(results, 'latest.md'), 'utf8');
    assert.match(md, /\| operation \| tool \| wall s \| MB\/s \|/);
    assert.match(md, /\| full \| volume-backup \| [\d.]+ \|/);
    assert.match(md, /\| restore \| volume-backup \| .* \| hash equal \|/);
    const svg = await fs.readFile(path.join(results, 'latest.svg'), 'utf8');
    assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(svg, /<rect [^>]*fill="#2b7bb9"/);
  });
});
