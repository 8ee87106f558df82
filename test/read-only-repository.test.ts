/**
 * A repository on a file system remounted read-only between two commands (a backup disk mounted
 * read-only to protect it, a replica, a snapshot): whatever writes fails with one clear line and changes
 * nothing; reading works, and so does a restore, which then cannot mark the backup `restoring` and says so.
 */
import { strict as assert } from 'assert';
import { execFile } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { createBackup, initRepository } from '../lib';
import { openRepository } from '../lib/open';
import { Limiter } from '../nodes/common/limiter';
import type { RepositoryConfigNode } from '../nodes/common/repository-config';
import { Operations } from '../plugins/backups-sidebar/operations';
import { cliJson, runCli } from './helpers/cli';
import { listFiles, makeImage, sha256File, tempDir } from './helpers/volumes';

const exec = promisify(execFile);
const MiB = 1024 * 1024;
const NOBODY = 65534;

describe('a repository remounted read-only (tmpfs)', function () {
  this.timeout(120_000);
  let dir = '';
  let mnt = '';
  let volume = '';

  before(async function () {
    if (process.getuid?.() !== 0) {
      console.log(`      skipped: needs root to mount a tmpfs; running as uid ${process.getuid?.()}`);
      return this.skip();
    }
    dir = await tempDir('ro-repo');
    mnt = path.join(dir, 'mnt');
    await fs.mkdir(mnt);
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mnt]);
    volume = path.join(dir, 'volume.img');
    await makeImage(volume, 8 * MiB, 51);
  });
  after(async () => {
    if (mnt) await exec('umount', [mnt]).catch(() => exec('umount', ['-l', mnt]));
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('create, delete and reset-status fail clearly and change nothing; list, verify and restore work, the restore saying it could not mark the backup', async () => {
    const repoDir = path.join(mnt, 'repo');
    const repo = await initRepository(repoDir);
    const backup = await createBackup(repo, { volume, volumeId: 'v', chunkSize: MiB });
    await repo.close();
    await exec('mount', ['-o', 'remount,ro', mnt]);
    try {
      const before = await listFiles(repoDir);
      for (const args of [['create', '--volume', volume, '--volume-id', 'v'], ['delete', '--backup', backup.id], ['reset-status', '--backup', backup.id, '--status', 'error']]) {
        const r = await runCli([...args, '--repo', repoDir]);
        assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
        assert.match(r.stderr.trim(), new RegExp(`^volume-backup ${args[0]}: error: cannot write object \\S+ to the repository at ${repoDir}: read-only file system \\(EROFS\\): mount the file system of ${repoDir} read-write, or use another repository$`));
      }
      assert.deepEqual(await listFiles(repoDir), before, 'nothing was written');

      const listed = await cliJson<{ id: string; status: string }[]>(['list', '--repo', repoDir]);
      assert.deepEqual(listed.map((r) => [r.id, r.status]), [[backup.id, 'available']]);
      const verified = await runCli(['verify', '--repo', repoDir, '--read-data']);
      assert.equal(verified.code, 0, verified.stderr);

      const target = path.join(dir, 'restored.img');
      const restored = await runCli(['restore', '--repo', repoDir, '--backup', backup.id, '--target', target]);
      assert.equal(restored.code, 0, restored.stderr);
      assert.match(restored.stderr.trim(), new RegExp(`^warning: backup ${backup.id} could not be marked restoring: the repository refuses writes \\(EROFS\\); restoring it anyway: `));
      assert.equal(restored.stderr.trim().split('\n').length, 1, restored.stderr);
      assert.equal(await sha256File(target), await sha256File(volume));
      assert.deepEqual(await listFiles(repoDir), before, 'nothing was written');
    } finally {
      await exec('mount', ['-o', 'remount,rw', mnt]);
    }
    const afterwards = await cliJson<{ id: string; status: string }[]>(['list', '--repo', repoDir]);
    assert.deepEqual(afterwards.map((r) => [r.id, r.status]), [[backup.id, 'available']]);
  });

  it('the sidebar restores from it too, and its operation shows the warning (done, byte-identical)', async () => {
    const repoDir = path.join(mnt, 'repo-sidebar');
    const repo = await initRepository(repoDir);
    const backup = await createBackup(repo, { volume, volumeId: 'v', chunkSize: MiB });
    await repo.close();
    await exec('mount', ['-o', 'remount,ro', mnt]);
    const reader = await openRepository({ backend: 'posix', path: repoDir });
    try {
      const operations = new Operations(() => undefined);
      const config = { limiter: new Limiter(1), getRepository: async () => reader } as unknown as RepositoryConfigNode;
      const target = path.join(dir, 'restored-sidebar.img');
      const started = operations.start('cfg', config, { action: 'restore', backupId: backup.id, target, overwrite: false });
      const done = await operations.wait(started.id);
      assert.equal(done.state, 'done', JSON.stringify(done.error));
      assert.equal(done.warnings.length, 1, JSON.stringify(done.warnings));
      assert.match(done.warnings[0], new RegExp(`^backup ${backup.id} could not be marked restoring: the repository refuses writes \\(EROFS\\)`));
      assert.equal(await sha256File(target), await sha256File(volume));
    } finally {
      await reader.close();
      await exec('mount', ['-o', 'remount,rw', mnt]);
    }
  });

  it('a repository owned by root, restored by another user (nobody): restored byte-identical, saying it could not mark the backup', async function () {
    const asNobody = { uid: NOBODY, gid: NOBODY };
    const probe = await runCli(['--help'], asNobody);
    if (probe.code !== 0) {
      console.log(`      skipped: uid ${NOBODY} cannot run the CLI from this checkout (${probe.stderr.split('\n')[0]})`);
      return this.skip();
    }
    await fs.chmod(dir, 0o755);
    const repoDir = path.join(dir, 'root-repo');
    const repo = await initRepository(repoDir);
    const backup = await createBackup(repo, { volume, volumeId: 'v', chunkSize: MiB });
    await repo.close();
    await exec('chmod', ['-R', 'u=rwX,go=rX', repoDir]);
    const before = await listFiles(repoDir);
    const targetDir = path.join(dir, 'nobody-target');
    await fs.mkdir(targetDir);
    await fs.chown(targetDir, NOBODY, NOBODY);
    const target = path.join(targetDir, 'restored.img');
    const restored = await runCli(['restore', '--repo', repoDir, '--backup', backup.id, '--target', target], asNobody);
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stderr.trim(), new RegExp(`^warning: backup ${backup.id} could not be marked restoring: the repository refuses writes \\(EACCES\\); restoring it anyway: `));
    assert.equal(await sha256File(target), await sha256File(volume));
    assert.deepEqual(await listFiles(repoDir), before, 'nothing was written');
  });
});
