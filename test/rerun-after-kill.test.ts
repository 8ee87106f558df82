/**
 * A command killed mid-way (SIGKILL, as a crash or an OOM kill would) and then simply run again, as a user
 * would, without a start-up cleanup in between: the second run must work, or say exactly what blocks it
 * and what to do. A half-written restore target must never be taken for a complete one.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Repository, createBackup, openRepository } from '../lib';
import { cliJson, runCli } from './helpers/cli';
import { finishKill, isChunkEvent, startCli } from './helpers/cli-process';
import { Prng, makeImage, sha256File, tempDir } from './helpers/volumes';
import { withTmpfs } from './helpers/tmpfs';


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

  it('a full backup killed late on a file system with room for one backup (tmpfs), run again: it succeeds, the killed one is error and its objects are gone', async function () {
    if (process.getuid?.() !== 0) {
      console.log(`      skipped: needs root to mount a tmpfs; running as uid ${process.getuid?.()}`);
      return this.skip();
    }
    const mnt = path.join(dir, 'small');
    await withTmpfs(mnt, '40m', async () => {
      const random = path.join(dir, 'random.img');
      await fs.writeFile(random, new Prng(43).fill(Buffer.alloc(24 * MiB))); // incompressible: 24 MiB stored
      const small = path.join(mnt, 'repo');
      await (await openRepository(small, { create: true })).close();
      const args = ['create', '--repo', small, '--volume', random, '--volume-id', 'r', '--chunk-size', '256K', '--compression', 'none'];
      const first = startCli([...args, '--progress', 'json']);
      const late = await first.waitForLine((l) => isChunkEvent(l) && (JSON.parse(l) as { chunksDone: number }).chunksDone >= 64);
      process.kill(first.pid, 'SIGSTOP');
      assert.equal((await finishKill(first)).signal, 'SIGKILL');
      const killedId = (JSON.parse(late) as { backupId: string }).backupId;
      assert.deepEqual(await cliJson<{ id: string; status: string }[]>(['list', '--repo', small]).then((l) => l.map((r) => [r.id, r.status])), [[killedId, 'creating']]);
      // What the user sees before running it again: it looks busy, and list says it is not.
      const listed0 = await runCli(['list', '--repo', small]);
      assert.equal(listed0.code, 0, listed0.stderr);
      assert.equal(listed0.stderr, `warning: backup ${killedId} is creating, but process ${first.pid} of host ${os.hostname()} that was creating it is gone: run volume-backup cleanup to end that\n`);
      // Nothing would ever read a cancel request: refused, saying what to do instead.
      const cancel = await runCli(['cancel', '--repo', small, '--backup', killedId]);
      assert.equal(cancel.code, 1, cancel.stdout);
      assert.equal(cancel.stderr, `volume-backup cancel: error: backup ${killedId} is creating, but process ${first.pid} of host ${os.hostname()} that was creating it is gone, so there is nothing to cancel: run volume-backup cleanup to end it\n`);

      const again = await runCli(args);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, new RegExp(`warning: .*backup ${killedId} of volume r was interrupted; marked error and \\d+ bytes of partial objects removed`));
      const listed = await cliJson<{ id: string; status: string; failReason: string | null }[]>(['list', '--repo', small]);
      const killed = listed.find((r) => r.id === killedId)!;
      assert.equal(killed.status, 'error');
      assert.match(killed.failReason ?? '', /interrupted: the process on host \S+ that was creating this backup stopped \(found by the next backup of the volume/);
      assert.deepEqual(listed.filter((r) => r.id !== killedId).map((r) => r.status), ['available']);
      const killedObjects = (await fs.readdir(path.join(small, 'volume_r'), { recursive: true })).filter((f) => String(f).includes(killedId));
      assert.deepEqual(killedObjects, [], 'the killed backup\'s objects are removed');
      const restored = path.join(dir, 'random-restored.img');
      const r = await runCli(['restore', '--repo', small, '--backup', listed.find((b) => b.id !== killedId)!.id, '--target', restored]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(restored), await sha256File(random));
      await fs.rm(restored);
    });
  });
});
