/**
 * A command killed mid-way (SIGKILL, as a crash or an OOM kill would) and then simply run again, as a user
 * would, without a start-up cleanup in between: the second run must work, or say exactly what blocks it
 * and what to do. A half-written restore target must never be taken for a complete one.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { Repository, createBackup, openRepository } from '../lib';
import { cliJson, runCli } from './helpers/cli';
import { finishKill, isChunkEvent, startCli } from './helpers/cli-process';
import { makeImage, sha256File, tempDir } from './helpers/volumes';

const MiB = 1024 * 1024;

describe('running a command again after it was killed (no cleanup in between)', function () {
  this.timeout(120_000);
  let dir: string;
  let repoDir: string;
  let volume: string;
  let repo: Repository;

  before(async () => {
    dir = await tempDir('rerun');
    volume = path.join(dir, 'volume.img');
    await makeImage(volume, 24 * MiB, 41);
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    repoDir = path.join(dir, `repo-${Math.random().toString(36).slice(2)}`);
    repo = await openRepository(repoDir, { create: true });
  });
  afterEach(async () => {
    await repo.close();
    await fs.rm(repoDir, { recursive: true, force: true });
  });

  const statuses = async () => (await cliJson<{ id: string; status: string }[]>(['list', '--repo', repoDir])).map((r) => r.status);

  for (const existing of [false, true]) {
    it(`a restore killed mid-way into ${existing ? 'an existing file' : 'a new file'}, run again: it restores byte-identical, saying the first one was interrupted`, async () => {
      const backup = await createBackup(repo, { volume, volumeId: 'v', chunkSize: 256 * 1024, compression: 'none' });
      const target = path.join(dir, `target-${existing}.img`);
      await fs.rm(target, { force: true });
      if (existing) await fs.writeFile(target, Buffer.alloc(24 * MiB, 0x5a));
      const overwrite = existing ? ['--overwrite'] : [];
      const first = startCli(['restore', '--repo', repoDir, '--backup', backup.id, '--target', target, '--progress', 'json', ...overwrite]);
      await first.waitForLine(isChunkEvent);
      process.kill(first.pid, 'SIGSTOP');

      // While the first restore's process lives, a second one is refused, saying who holds the backup.
      const busy = await runCli(['restore', '--repo', repoDir, '--backup', backup.id, '--target', path.join(dir, 'other.img')]);
      assert.equal(busy.code, 1, busy.stderr);
      assert.match(busy.stderr, new RegExp(`backup ${backup.id} is restoring \\(process ${first.pid} of this host is restoring it\\)`));
      assert.deepEqual(await statuses(), ['restoring']);

      assert.equal((await finishKill(first)).signal, 'SIGKILL');
      const again = await runCli(['restore', '--repo', repoDir, '--backup', backup.id, '--target', target, ...overwrite]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, new RegExp(`warning: .*the restore of backup ${backup.id} .* was interrupted`));
      assert.match(again.stdout, new RegExp(`backup ${backup.id} restored to ${target}`));
      assert.equal(await sha256File(target), await sha256File(volume));
      assert.deepEqual(await statuses(), ['available']);
      await fs.rm(target);
    });
  }
});
