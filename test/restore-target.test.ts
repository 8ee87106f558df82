/**
 * Restore targets, as a user runs `volume-backup restore`: a target inside a posix repository (one of
 * its objects by path, symlink, hard link or loop device; a new file in it; the directory itself;
 * another repository) is refused with a clear error and the backups stay intact. A regular-file target
 * larger than the backup ends at the backup's size, so its bytes are the volume's; a larger block
 * device keeps its tail, and the result says how much was left. The success message claims only what
 * was checked.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { VolumeBackupError, openRepository, restoreBackup } from '../lib';
import type { BackupRecord, RestoreResult } from '../lib';
import { runCommand } from '../lib/snapshot';
import { cliJson, runCli } from './helpers/cli';
import { Prng, makeImage, sha256File, tempDir } from './helpers/volumes';
import { loopFsSkipReason, mountLoopFs, skipSuite } from './snapshot-loopfs';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('restore targets', function () {
  this.timeout(120_000);
  let dir: string;
  let repo: string;
  let other: string;
  let small: BackupRecord;
  let big: BackupRecord;
  let bigObject: string;
  let image: string;
  let imageSha: string;

  const create = (r: string, volume: string, id: string, extra: string[] = []) =>
    cliJson<BackupRecord>(['create', '--repo', r, '--volume', volume, '--volume-id', id, '--progress', 'none', ...extra]);

  before(async () => {
    dir = await tempDir('restore-target');
    repo = path.join(dir, 'repo');
    other = path.join(dir, 'other-repo');
    // Backup "big": incompressible, stored uncompressed in 1 MiB objects, each larger than backup "small".
    const bigImg = path.join(dir, 'big.img');
    await fs.writeFile(bigImg, new Prng(5).fill(Buffer.alloc(2 * MiB)));
    big = await create(repo, bigImg, 'big', ['--chunk-size', '1M', '--compression', 'none']);
    const smallImg = path.join(dir, 'small.img');
    await fs.writeFile(smallImg, new Prng(6).fill(Buffer.alloc(256 * KiB)));
    small = await create(repo, smallImg, 'small');
    await create(other, smallImg, 'small');
    const objects = (await fs.readdir(repo, { recursive: true })).filter((f) => f.endsWith(`backup_${big.id}-00001`));
    assert.equal(objects.length, 1);
    bigObject = path.join(repo, objects[0]);
    image = path.join(dir, 'disk.img');
    await makeImage(image, 4 * MiB, 9, 256 * KiB);
    imageSha = await sha256File(image);
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** The restore of backup "small" onto `target` is refused, and backup "big" still verifies block by block. */
  async function assertRefused(target: string, why: RegExp): Promise<void> {
    const objectSha = await sha256File(bigObject);
    const r = await runCli(['restore', '--repo', repo, '--backup', small.id, '--target', target, '--progress', 'none']);
    assert.equal(r.code, 2, `restore onto ${target}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, why);
    assert.match(r.stderr, /choose a target outside the repository/);
    assert.equal(r.stdout, '');
    assert.equal(await sha256File(bigObject), objectSha, 'the object is unchanged');
    const verify = await runCli(['verify', '--repo', repo, '--read-data', '--progress', 'none']);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  }

  it('refuses a repository object as the target, by its path, through a symlink and through a hard link', async () => {
    await assertRefused(bigObject, /is inside the repository /);
    const link = path.join(dir, 'looks-harmless.img');
    await fs.symlink(bigObject, link);
    await assertRefused(link, /is inside the repository /);
    const hard = path.join(dir, 'hard-link.img');
    await fs.link(bigObject, hard);
    await assertRefused(hard, /is a hard link to .*backup_.*-00001, a file of the repository/);
  });

  it('refuses a new file inside the repository (not created), the repository directory, and a file of another repository', async () => {
    const inside = path.join(repo, 'volume_big', 'restored.img');
    await assertRefused(inside, /is inside the repository /);
    await assert.rejects(fs.stat(inside), 'no file was created');
    await assertRefused(repo, /is the repository directory/);
    const viaDots = path.join(dir, 'x', '..', 'repo', 'new.img');
    await fs.mkdir(path.join(dir, 'x'));
    await assertRefused(viaDots, /is inside the repository /);
    const otherObject = (await fs.readdir(other, { recursive: true })).find((f) => f.endsWith('-00001'))!;
    await assertRefused(path.join(other, otherObject), /is inside the volume-backup repository .*other-repo/);
  });

  it('the library (what the nodes and the sidebar call) refuses the same, and leaves the backup available', async () => {
    const r = await openRepository(repo);
    try {
      const link = path.join(dir, 'api-link.img');
      await fs.symlink(path.dirname(bigObject), link);
      await assert.rejects(restoreBackup(r, { backupId: small.id, target: path.join(link, path.basename(bigObject)) }), (err: VolumeBackupError) => {
        assert.equal(err.code, 'INVALID_ARGUMENT');
        assert.match(err.message, /is inside the repository /);
        return true;
      });
      assert.equal((await r.getRecord(small.id)).status, 'available');
    } finally {
      await r.close();
    }
    assert.equal((await runCli(['verify', '--repo', repo, '--read-data'])).code, 0);
  });

  it('refuses a loop device whose backing file is a repository object', async function () {
    if (process.getuid?.() !== 0) skipSuite(this, 'attaching a loop device needs root');
    const device = (await runCommand('losetup', ['-f', '--show', bigObject], { timeoutMs: 10_000 })).stdout.trim();
    try {
      await assertRefused(device, /is a loop device on .*backup_.*-00001, a file of the repository/);
    } finally {
      await runCommand('losetup', ['-d', device], { timeoutMs: 10_000 });
    }
  });

  for (const kind of ['xfs', 'btrfs'] as const) {
    it(`refuses the device the repository's file system (${kind}) is on`, async function () {
      const why = await loopFsSkipReason(kind);
      if (why) skipSuite(this, why);
      const loop = await mountLoopFs(kind, 320);
      try {
        const onDevice = path.join(loop.mountPoint, 'repo');
        const backup = await create(onDevice, path.join(dir, 'small.img'), 'small');
        const r = await runCli(['restore', '--repo', onDevice, '--backup', backup.id, '--target', loop.device, '--progress', 'none']);
        assert.equal(r.code, 2, r.stdout + r.stderr);
        assert.match(r.stderr, /is the device the repository is stored on/);
        assert.equal((await runCli(['verify', '--repo', onDevice, '--read-data'])).code, 0);
      } finally {
        await loop.unmount();
      }
    });
  }

  it('a larger regular file ends at the backup size: its bytes are the volume\'s', async () => {
    const backup = await create(repo, image, 'disk');
    const target = path.join(dir, 'old-6MiB.img');
    await fs.writeFile(target, Buffer.alloc(6 * MiB, 0x5a));
    const r = await runCli(['restore', '--repo', repo, '--backup', backup.id, '--target', target, '--progress', 'none', '--overwrite']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /restored to .*: 4\.0 MiB, each block checked against its SHA-256 before it was written/);
    assert.doesNotMatch(r.stdout, /every block verified|past the backup's end/);
    assert.equal((await fs.stat(target)).size, 4 * MiB);
    assert.equal(await sha256File(target), imageSha);

    await fs.writeFile(target, Buffer.alloc(6 * MiB, 0x5a));
    const json = await cliJson<RestoreResult>(['restore', '--repo', repo, '--backup', backup.id, '--target', target, '--progress', 'none', '--overwrite']);
    assert.equal(json.bytesLeftPastEnd, 0);
    assert.equal(await sha256File(target), imageSha);
  });

  it('a larger block device keeps its tail, and the result says how much was left', async function () {
    if (process.getuid?.() !== 0) skipSuite(this, 'attaching a loop device needs root');
    const backup = await create(repo, image, 'disk2');
    const backing = path.join(dir, 'lun-6MiB.img');
    await fs.writeFile(backing, Buffer.alloc(6 * MiB, 0x5a));
    const device = (await runCommand('losetup', ['-f', '--show', backing], { timeoutMs: 10_000 })).stdout.trim();
    try {
      const r = await runCli(['restore', '--repo', repo, '--backup', backup.id, '--target', device, '--progress', 'none', '--overwrite']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /4\.0 MiB, each block checked .*; the device's last 2\.0 MiB, past the backup's end, were left as they were/);
      const json = await cliJson<RestoreResult>(['restore', '--repo', repo, '--backup', backup.id, '--target', device, '--progress', 'none', '--overwrite']);
      assert.equal(json.bytesLeftPastEnd, 2 * MiB);
    } finally {
      await runCommand('losetup', ['-d', device], { timeoutMs: 10_000 });
    }
    const data = await fs.readFile(backing);
    assert.equal(data.length, 6 * MiB);
    const head = path.join(dir, 'lun-head.img');
    await fs.writeFile(head, data.subarray(0, 4 * MiB));
    assert.equal(await sha256File(head), imageSha);
    assert.ok(data.subarray(4 * MiB).every((b) => b === 0x5a), 'the tail past the backup is untouched');
  });
});
