/**
 * Restores never overwrite by surprise: the CLI refuses an existing file (and any block device) as a
 * target unless --overwrite is given; refused, the target is untouched byte for byte and the backup
 * stays available.
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { backupsIn } from './helpers/repository';
import { cliJson, runCli } from './helpers/cli';
import { makeImage, sha256File, tempDir } from './helpers/volumes';
import { runCommand } from '../lib/snapshot';
import { skipSuite } from './snapshot-loopfs';

const MiB = 1024 * 1024;

describe('restore onto an existing target (CLI)', function () {
  this.timeout(60_000);
  let dir: string;
  let repo: string;
  let image: string;
  let backupId: string;

  before(async () => {
    dir = await tempDir('overwrite');
    repo = path.join(dir, 'repo');
    image = path.join(dir, 'disk.img');
    await makeImage(image, 4 * MiB);
    backupId = (await cliJson<{ id: string }>(['create', '--repo', repo, '--volume', image, '--volume-id', 'v'])).id;
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('without --overwrite an existing file is refused (exit 2) and left untouched; with it, it is restored', async () => {
    const target = path.join(dir, 'precious.img');
    await fs.writeFile(target, Buffer.alloc(6 * MiB, 0x5a));
    const before = await sha256File(target);

    const refused = await runCli(['restore', '--repo', repo, '--backup', backupId, '--target', target]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, new RegExp(`restore target ${target} exists \\(6291456 bytes\\): a restore would overwrite it; choose a new file, or allow overwriting \\(CLI --overwrite`));
    assert.equal(await sha256File(target), before, 'the existing file is untouched');
    assert.equal((await backupsIn(repo))[0].status, 'available');

    const restored = await runCli(['restore', '--repo', repo, '--backup', backupId, '--target', target, '--overwrite']);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal(await sha256File(target), await sha256File(image));
  });

  it('a block device always needs --overwrite: refused, its bytes are untouched', async function () {
    if (process.getuid?.() !== 0) skipSuite(this, 'attaching a loop device needs root');
    const backing = path.join(dir, 'lun.img');
    await fs.writeFile(backing, Buffer.alloc(4 * MiB, 0x33));
    const before = await sha256File(backing);
    const device = (await runCommand('losetup', ['-f', '--show', backing], { timeoutMs: 10_000 })).stdout.trim();
    try {
      const refused = await runCli(['restore', '--repo', repo, '--backup', backupId, '--target', device]);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, new RegExp(`restore target ${device} is a block device: a restore overwrites what it holds; check it is the right device, then allow overwriting`));
    } finally {
      await runCommand('losetup', ['-d', device], { timeoutMs: 10_000 });
    }
    assert.equal(await sha256File(backing), before);
  });

  it('a new file needs no --overwrite', async () => {
    const target = path.join(dir, 'new.img');
    const r = await runCli(['restore', '--repo', repo, '--backup', backupId, '--target', target]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(target), await sha256File(image));
  });
});
