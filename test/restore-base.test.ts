/**
 * restore --target T --base BACKUP (issue 16 item 4): a target that holds BACKUP's bytes (last drill's
 * restore) gets only the blocks that differ between BACKUP and the restored backup. Before anything is
 * written, a sample of the target's blocks is checked against BACKUP's hashes (or trusted, when told);
 * a target that does not hold BACKUP is refused, unchanged.
 */
import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { cliJson, runCli } from './helpers/cli';
import { makeImage, scatterWrites, sha256File, tempDir } from './helpers/volumes';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;

interface Restored {
  bytesWritten: number;
  base?: { backupId: string; blocksSampled: number; bytesUnchanged: number };
}

describe('restore onto a base (restore --base)', function () {
  this.timeout(120_000);
  let dir: string;
  let repo: string;
  let image: string;
  let fullId: string;
  let incrId: string;
  let changed: number;
  let expected: string;

  before(async () => {
    dir = await tempDir('restore-base');
    repo = path.join(dir, 'repo');
    image = path.join(dir, 'disk.img');
    await makeImage(image, SIZE, 3);
    await cliJson(['init', '--repo', repo]);
    fullId = (await cliJson<{ id: string }>(['create', '--repo', repo, '--volume', image, '--volume-id', 'vm', '--chunk-size', '1M'])).id;
    changed = await scatterWrites(image, 0.01, 4);
    incrId = (await cliJson<{ id: string }>(['create', '--repo', repo, '--volume', image, '--volume-id', 'vm', '--incremental'])).id;
    expected = await sha256File(image);
  });

  after(() => fsp.rm(dir, { recursive: true, force: true }));

  const restoreFull = async (name: string) => {
    const target = path.join(dir, name);
    await cliJson(['restore', '--repo', repo, '--backup', fullId, '--target', target]);
    return target;
  };

  it('writes only the blocks that changed, checks a sample of the target first, and the result is byte-identical', async () => {
    const target = await restoreFull('drill.img');
    const r = await cliJson<Restored>(['restore', '--repo', repo, '--backup', incrId, '--target', target, '--base', fullId]);
    assert.strictEqual(await sha256File(target), expected);
    assert.ok(r.bytesWritten > 0 && r.bytesWritten <= 2 * changed + 32 * 1024 * 4, `wrote ${r.bytesWritten} bytes for ${changed} changed`);
    assert.strictEqual(r.base?.backupId, fullId);
    assert.ok(r.base.blocksSampled >= 32, `sampled ${r.base.blocksSampled} blocks`);
    assert.strictEqual(r.base.bytesUnchanged + r.bytesWritten, SIZE);
  });

  it('refuses a target that does not hold the base, and leaves it as it was; --trust-base skips the check', async () => {
    const target = await restoreFull('other.img');
    // The first block is always in the sample.
    const handle = await fsp.open(target, 'r+');
    await handle.write(Buffer.alloc(4096, 0x55), 0, 4096, 0);
    await handle.close();
    const before = await sha256File(target);
    const refused = await runCli(['restore', '--repo', repo, '--backup', incrId, '--target', target, '--base', fullId]);
    assert.strictEqual(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /does not hold base backup .*: its block at offset 0 differs/);
    assert.strictEqual(await sha256File(target), before, 'nothing was written');

    // Trusted: the block that is wrong in the target but the same in both backups is not rewritten.
    const trusted = await runCli(['restore', '--repo', repo, '--backup', incrId, '--target', target, '--base', fullId, '--trust-base']);
    assert.strictEqual(trusted.code, 0, trusted.stderr);
    assert.match(trusted.stdout, /on base .*written, each checked against its SHA-256 before it was written, .* left as the base had them \(the base trusted\) \(chain of 2\)/);
    // Only the written blocks were checked: the message must not claim every block was.
    assert.doesNotMatch(trusted.stdout, /each block checked|;:/);
    const first = Buffer.alloc(4096);
    const h = await fsp.open(target, 'r');
    await h.read(first, 0, 4096, 0);
    await h.close();
    assert.ok(first.equals(Buffer.alloc(4096, 0x55)), 'a trusted base is not checked: its wrong blocks stay wrong');
  });

  it('refuses a base on a new target, --base without --target, and --trust-base without --base', async () => {
    const fresh = await runCli(['restore', '--repo', repo, '--backup', incrId, '--target', path.join(dir, 'new.img'), '--base', fullId]);
    assert.strictEqual(fresh.code, 2);
    assert.match(fresh.stderr, /did not exist, so it cannot hold base backup/);
    await assert.rejects(fsp.stat(path.join(dir, 'new.img')), /ENOENT/);
    const noTarget = await runCli(['restore', '--repo', repo, '--backup', incrId, '--verify-only', '--base', fullId]);
    assert.strictEqual(noTarget.code, 2);
    assert.match(noTarget.stderr, /--base needs --target/);
    const noBase = await runCli(['restore', '--repo', repo, '--backup', incrId, '--target', path.join(dir, 'x.img'), '--trust-base']);
    assert.strictEqual(noBase.code, 2);
    assert.match(noBase.stderr, /--trust-base goes with --base/);
  });
  it('refuses a target that holds the backup before the base, though the base changed one block in 16384', async () => {
    const image2 = path.join(dir, 'disk2.img');
    await makeImage(image2, 64 * MiB, 8);
    const create = async (...extra: string[]) =>
      (await cliJson<{ id: string }>(['create', '--repo', repo, '--volume', image2, '--volume-id', 'vm2', '--chunk-size', '1M', '--block-size', '4K', ...extra])).id;
    const write = async (at: number, length: number) => {
      const h = await fsp.open(image2, 'r+');
      await h.write(Buffer.alloc(length, 0x5a), 0, length, at);
      await h.close();
    };
    const before = await create();
    const oneBlock = 20 * MiB + 3 * 4096;
    await write(oneBlock, 4096);
    const base = await create('--incremental');
    await write(40 * MiB, 64 * 1024);
    const newest = await create('--incremental');
    // Last drill's restore was of the backup before the base, not of the base.
    const target = path.join(dir, 'drill2.img');
    await cliJson(['restore', '--repo', repo, '--backup', before, '--target', target]);
    const held = await sha256File(target);
    const r = await runCli(['restore', '--repo', repo, '--backup', newest, '--target', target, '--base', base]);
    assert.strictEqual(r.code, 1, `a target that does not hold the base was accepted: ${r.stdout}`);
    assert.match(r.stderr, new RegExp(`does not hold base backup ${base}: its block at offset ${oneBlock} differs`));
    assert.strictEqual(await sha256File(target), held, 'nothing was written');
  });
});
