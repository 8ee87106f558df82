/**
 * `verify --volume PATH` (issue 16 item 3): a volume compared block by block with a backup's recorded
 * hashes, the check that catches a file system that reported extents wrongly. Exit 0 when every block
 * matches, 1 naming the first differing block when one does not; bad usage exits 2.
 */
import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { cliJson, runCli } from './helpers/cli';
import { makeImage, scatterWrites, tempDir } from './helpers/volumes';

const MiB = 1024 * 1024;

describe('verify --volume: a volume against its backup', function () {
  this.timeout(120_000);
  let dir: string;
  let repo: string;
  let image: string;
  let fullId: string;

  before(async () => {
    dir = await tempDir('verify-volume');
    repo = path.join(dir, 'repo');
    image = path.join(dir, 'disk.img');
    await makeImage(image, 6 * MiB, 5);
    await cliJson(['init', '--repo', repo]);
    fullId = (await cliJson<{ id: string }>(['create', '--repo', repo, '--volume', image, '--volume-id', 'vm', '--chunk-size', '1M'])).id;
    await scatterWrites(image, 0.02, 6);
    await cliJson(['create', '--repo', repo, '--volume', image, '--volume-id', 'vm', '--incremental']);
  });

  after(() => fsp.rm(dir, { recursive: true, force: true }));

  it('matches the newest backup; differs from an older one, and from the newest once a block changes', async () => {
    const ok = await runCli(['verify', '--repo', repo, '--volume', image, '--volume-id', 'vm']);
    assert.strictEqual(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /matches backup .*every block's SHA-256 as recorded/);

    const older = await runCli(['verify', '--repo', repo, '--volume', image, '--backup', fullId]);
    assert.strictEqual(older.code, 1);
    assert.match(older.stdout, new RegExp(`differs from backup ${fullId} in \\d+ chunk`));

    // One byte flipped.
    const handle = await fsp.open(image, 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 3 * MiB + 40_000);
    await handle.write(Buffer.from([byte[0] ^ 0xff]), 0, 1, 3 * MiB + 40_000);
    await handle.close();
    const changed = await runCli(['verify', '--repo', repo, '--volume', image, '--volume-id', 'vm', '--json']);
    assert.strictEqual(changed.code, 1);
    const result = JSON.parse(changed.stdout) as { ok: boolean; differingAt: number[]; differingChunks: number };
    assert.strictEqual(result.ok, false);
    assert.deepStrictEqual(result.differingAt, [3 * MiB + 32 * 1024]);
  });

  it('refuses --read-data with --volume, and --volume-id without --volume (exit 2)', async () => {
    const both = await runCli(['verify', '--repo', repo, '--volume', image, '--read-data']);
    assert.strictEqual(both.code, 2);
    assert.match(both.stderr, /give one of them/);
    const idOnly = await runCli(['verify', '--repo', repo, '--volume-id', 'vm']);
    assert.strictEqual(idOnly.code, 2);
    assert.match(idOnly.stderr, /--volume-id goes with --volume/);
  });
});
