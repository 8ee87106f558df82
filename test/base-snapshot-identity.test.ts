/**
 * A base snapshot stands for its backup's bytes only while it is a snapshot of this very volume file and
 * nobody has touched it. Two ways it stops being one, on real btrfs and XFS file systems (loop devices),
 * through the CLI: the volume id moved to a file on another file system (an inode number and a physical
 * address mean nothing across file systems, and two fresh file systems lay out a file alike), and the
 * base rewritten by hand. Either must give a full read that says why, and a restore equal to the volume.
 */
import * as assert from 'assert';
import { randomBytes } from 'crypto';
import { promises as fsp } from 'fs';
import * as path from 'path';
import type { BackupRecord } from '../lib/repository/records';
import { cliEnv, runCli } from './helpers/cli';
import { sha256File, scatterWrites, tempDir } from './helpers/volumes';
import { LoopFs, LoopFsKind, loopFsSkipReason, mountLoopFs, run, skipSuite } from './snapshot-loopfs';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;

for (const [kind, provider] of [['btrfs', 'btrfs'], ['xfs', 'reflink']] as [LoopFsKind, 'btrfs' | 'reflink'][]) {
  describe(`base snapshots that no longer stand for their backup on ${kind} (loop devices, CLI)`, function () {
    this.timeout(300_000);
    const mounts: LoopFs[] = [];
    let work = '';
    let repoDir = '';
    let env: NodeJS.ProcessEnv;
    /** The volume the backups are of now (the second test goes on from the first). */
    let volume = '';

    /** A volume directory on a fresh file system: the same steps give the same layout on each. */
    async function freshVolume(): Promise<string> {
      const fs = await mountLoopFs(kind, 512);
      mounts.push(fs);
      const dir = kind === 'btrfs' ? path.join(fs.mountPoint, 'vols') : fs.mountPoint;
      if (kind === 'btrfs') await run('btrfs', ['subvolume', 'create', dir]);
      const volume = path.join(dir, 'disk.img');
      await fsp.writeFile(volume, randomBytes(SIZE));
      return volume;
    }

    const create = async (volume: string, ...extra: string[]): Promise<BackupRecord> => {
      const r = await runCli(['create', '--repo', repoDir, '--volume', volume, '--volume-id', 'vm', '--snapshot', provider, '--chunk-size', '1M', '--json', ...extra], { env });
      assert.strictEqual(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as BackupRecord;
    };

    async function restoredHash(backupId: string): Promise<string> {
      const target = path.join(work, `${backupId}.img`);
      const r = await runCli(['restore', '--repo', repoDir, '--backup', backupId, '--target', target], { env });
      assert.strictEqual(r.code, 0, r.stderr);
      return sha256File(target);
    }

    before(async function () {
      const why = await loopFsSkipReason(kind);
      if (why) skipSuite(this, why);
      work = await tempDir(`baseid${kind}`);
      repoDir = path.join(work, 'repo');
      env = cliEnv({ VOLUME_BACKUP_STATE_DIR: path.join(work, 'state') });
      assert.strictEqual((await runCli(['init', '--repo', repoDir], { env })).code, 0);
    });

    after(async () => {
      for (const fs of mounts.reverse()) await fs.unmount();
      if (work) await fsp.rm(work, { recursive: true, force: true });
    });

    it('the volume id moved to a file on another file system: full read, not the old file\'s extents', async () => {
      const first = await freshVolume();
      await create(first);
      volume = await freshVolume();
      const expected = await sha256File(volume);
      const incr = await create(volume, '--incremental');
      assert.strictEqual(incr.readStats?.method, 'full', JSON.stringify(incr.readStats));
      assert.match(incr.readStats.reason ?? '', /base snapshot is of .*disk\.img/);
      assert.strictEqual(await restoredHash(incr.id), expected);
    });

    it('a base snapshot rewritten by hand: full read, not the rewritten extents', async () => {
      assert.ok(volume, 'the test before made the volume');
      const untouched = await create(volume, '--incremental');
      assert.strictEqual(untouched.readStats?.method, 'changed-extents', 'a base nobody touched is used');
      const base = untouched.baseSnapshot!;
      await scatterWrites(volume, 0.02, 7);
      const expected = await sha256File(volume);
      // Someone "refreshes" the base: it now shares every extent with the changed volume.
      if (kind === 'btrfs') await run('btrfs', ['property', 'set', base.removes, 'ro', 'false']);
      await run('cp', ['--reflink=always', volume, base.path]);
      const incr = await create(volume, '--incremental');
      assert.strictEqual(incr.readStats?.method, 'full', JSON.stringify(incr.readStats));
      assert.match(incr.readStats.reason ?? '', /changed since/);
      assert.strictEqual(await restoredHash(incr.id), expected);
    });
  });
}
