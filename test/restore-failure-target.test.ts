/**
 * A restore over an existing file (--overwrite) that fails part-way: the file is left partly overwritten
 * (a new file would be removed). The error must say so, or the user takes it for its old content (a
 * cancel sounds like "nothing happened") or for the backup's. Real faults: a full tmpfs, a SIGTERM.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { BackupRecord, createBackup, openRepository } from '../lib';
import { cliJson, runCli } from './helpers/cli';
import { isChunkEvent, startCli } from './helpers/cli-process';
import { makeImage, sha256File, tempDir } from './helpers/volumes';
import { withTmpfs } from './helpers/tmpfs';

const MiB = 1024 * 1024;

describe('a restore over an existing file that fails part-way', function () {
  this.timeout(120_000);
  let dir = '';
  let repoDir = '';
  let volume = '';
  let backup: BackupRecord;

  before(async () => {
    dir = await tempDir('restore-fail');
    volume = path.join(dir, 'volume.img');
    await makeImage(volume, 64 * MiB, 61, 64 * 1024);
    repoDir = path.join(dir, 'repo');
    const repo = await openRepository(repoDir, { create: true });
    try {
      backup = await createBackup(repo, { volume, volumeId: 'v', chunkSize: 256 * 1024, compression: 'none' });
    } finally {
      await repo.close();
    }
  });
  after(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const statuses = async () => (await cliJson<{ status: string }[]>(['list', '--repo', repoDir])).map((r) => r.status);
  const partly = (target: string) => new RegExp(`; ${target} was partly overwritten: it holds neither its old content nor the backup's, so restore again before using it$`);

  it('a new target in a missing directory or on a read-only file system: refused with one clear line, nothing created, the backup stays available', async function () {
    const missing = path.join(dir, 'no-such-dir', 'restored.img');
    const r = await runCli(['restore', '--repo', repoDir, '--backup', backup.id, '--target', missing]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `volume-backup restore: error: cannot create restore target ${missing}: its directory ${path.dirname(missing)} does not exist\n`);
    assert.deepEqual(await statuses(), ['available']);
    if (process.getuid?.() !== 0) {
      console.log(`      skipped the read-only part: needs root to mount a tmpfs; running as uid ${process.getuid?.()}`);
      return;
    }
    const ro = path.join(dir, 'ro');
    await withTmpfs(ro, '1m', async () => {
      const target = path.join(ro, 'restored.img');
      const r2 = await runCli(['restore', '--repo', repoDir, '--backup', backup.id, '--target', target]);
      assert.equal(r2.code, 1, r2.stderr);
      assert.equal(r2.stderr, `volume-backup restore: error: cannot write the restore target ${target}: read-only file system (EROFS): mount the file system of ${target} read-write, or choose another target\n`);
      assert.deepEqual(await fs.readdir(ro), []);
      assert.deepEqual(await statuses(), ['available']);
    }, { readOnly: true });
  });

  it('cancelled by SIGTERM: exit 130, the message says the file was partly overwritten, the backup stays available', async () => {
    const target = path.join(dir, 'existing.img');
    await fs.writeFile(target, Buffer.alloc(64 * MiB, 0x5a));
    const restorer = startCli(['restore', '--repo', repoDir, '--backup', backup.id, '--target', target, '--overwrite', '--progress', 'json']);
    await restorer.waitForLine(isChunkEvent);
    // Stopped at its first chunk, signalled, continued: the signal lands with most chunks still to come.
    process.kill(restorer.pid, 'SIGSTOP');
    process.kill(restorer.pid, 'SIGTERM');
    process.kill(restorer.pid, 'SIGCONT');
    const r = await restorer.result;
    assert.equal(r.code, 130, r.stderr);
    const error = r.stderr.split('\n').filter((l) => l.startsWith('volume-backup restore: error:'));
    assert.equal(error.length, 1, r.stderr);
    assert.match(error[0], /^volume-backup restore: error: cancelled: interrupted by SIGTERM; /);
    assert.match(error[0], partly(target));
    assert.notEqual(await sha256File(target), await sha256File(volume));
    assert.deepEqual(await statuses(), ['available']);
  });

  it('the file system of the file fills up (tmpfs): exit 1, ENOSPC and that the file was partly overwritten, the backup stays available', async function () {
    if (process.getuid?.() !== 0) {
      console.log(`      skipped: needs root to mount a tmpfs; running as uid ${process.getuid?.()}`);
      return this.skip();
    }
    const mnt = path.join(dir, 'small');
    await withTmpfs(mnt, '16m', async () => {
      // A sparse file of the backup's size: it exists, but the blocks written into it need room.
      const target = path.join(mnt, 'existing.img');
      await fs.writeFile(target, '');
      await fs.truncate(target, 64 * MiB);
      const r = await runCli(['restore', '--repo', repoDir, '--backup', backup.id, '--target', target, '--overwrite']);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr.trim(), new RegExp(`^volume-backup restore: error: cannot write the restore target ${target}: no space left on device \\(ENOSPC\\): free space on the file system of ${target}, or restore to a larger one; `));
      assert.match(r.stderr.trim(), partly(target));
      assert.deepEqual(await statuses(), ['available']);
    });
  });
});
