/**
 * One base per volume, also when retiring the old one fails: a backup that succeeded but could not write
 * the previous backup's record (here a real fault: that record file made immutable) leaves two bases and
 * says start-up cleanup will remove the old one. It must: `volume-backup cleanup` removes the base that a
 * later backup of the volume has replaced, and keeps the later one, which the next incremental still uses.
 * Real btrfs and XFS file systems on loop devices (the repository on them too, for chattr +i).
 */
import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as path from 'path';
import type { BackupRecord } from '../lib/repository/records';
import { openRepository } from '../lib/open';
import { createSnapshotBackup } from '../lib/engine/snapshot-backup';
import { cliEnv, runCli } from './helpers/cli';
import { scatterWrites, sha256File } from './helpers/volumes';
import { LoopFsKind, LoopFsVolume, run, setUpLoopFsVolume } from './snapshot-loopfs';

const MiB = 1024 * 1024;

/** Our snapshots left on the file system: clone files beside the volume, or snapshot subvolumes. */
async function basesLeft(fx: LoopFsVolume): Promise<string[]> {
  if (fx.loop.kind !== 'btrfs') return (await fsp.readdir(fx.volumeDir)).filter((n) => n.startsWith('volume-backup-tmp-'));
  return (await run('btrfs', ['subvolume', 'list', fx.loop.mountPoint])).split('\n').filter((l) => l.includes('volume-backup-tmp-'));
}

for (const [kind, provider] of [['btrfs', 'btrfs'], ['xfs', 'reflink']] as [LoopFsKind, 'btrfs' | 'reflink'][]) {
  describe(`a base snapshot whose retiring failed on ${kind} (loop device, CLI)`, function () {
    this.timeout(300_000);
    let fx: LoopFsVolume | undefined;
    let repoDir = '';
    let env: NodeJS.ProcessEnv;
    let locked = '';

    const cli = (...args: string[]) => runCli(args, { env });
    const create = async (...extra: string[]): Promise<BackupRecord & { stderr: string }> => {
      const r = await cli('create', '--repo', repoDir, '--volume', fx!.volume, '--volume-id', 'vm', '--snapshot', provider, '--chunk-size', '1M', '--json', ...extra);
      assert.strictEqual(r.code, 0, r.stderr);
      return { ...(JSON.parse(r.stdout) as BackupRecord), stderr: r.stderr };
    };

    before(async function () {
      fx = await setUpLoopFsVolume(this, kind, { size: 16 * MiB, seed: 5, subvolume: kind === 'btrfs' ? 'vols' : undefined });
      repoDir = path.join(fx.loop.mountPoint, 'repo');
      env = cliEnv({ VOLUME_BACKUP_STATE_DIR: fx.stateDir });
      assert.strictEqual((await cli('init', '--repo', repoDir)).code, 0);
    });

    after(async () => {
      if (locked) await run('chattr', ['-i', locked]).catch(() => undefined);
      await fx?.remove();
    });

    it('start-up cleanup removes the base a later backup replaced, and keeps the later one', async () => {
      const first = await create();
      // The repository refuses to rewrite the first backup's record: the next backup cannot retire its base.
      locked = path.join(repoDir, 'records', 'vm', `${first.id}.json`);
      await fsp.access(locked);
      await run('chattr', ['+i', locked]);
      await scatterWrites(fx!.volume, 0.02, 3);
      const second = await create('--incremental');
      assert.match(second.stderr, /could not remove the base snapshot .* start-up cleanup will/);
      assert.strictEqual((await basesLeft(fx!)).length, 2, 'both bases are there after the failed retire');
      await run('chattr', ['-i', locked]);
      locked = '';

      const cleaned = await cli('cleanup', '--repo', repoDir);
      assert.strictEqual(cleaned.code, 0, cleaned.stderr);
      const left = await basesLeft(fx!);
      assert.strictEqual(left.length, 1, `one base per volume after start-up cleanup: ${left.join(', ')}`);
      assert.ok(left[0].includes(second.baseSnapshot!.name), `the later backup's base is the one kept: ${left[0]}`);
      assert.deepStrictEqual(await fsp.readdir(fx!.stateDir), [`${second.baseSnapshot!.name}.owner.json`]);

      await scatterWrites(fx!.volume, 0.02, 4);
      const expected = await sha256File(fx!.volume);
      const third = await create('--incremental');
      assert.strictEqual(third.readStats?.method, 'changed-extents', JSON.stringify(third.readStats));
      const target = path.join(fx!.work, 'restored.img');
      assert.strictEqual((await cli('restore', '--repo', repoDir, '--backup', third.id, '--target', target)).code, 0);
      assert.strictEqual(await sha256File(target), expected);
    });
    it('a backup whose snapshot cannot be kept as base (the state directory refuses the owner file) succeeds without a base', async () => {
      const repo = await openRepository(repoDir);
      try {
        await scatterWrites(fx!.volume, 0.02, 6);
        const expected = await sha256File(fx!.volume);
        const warnings: string[] = [];
        const log = { info: () => undefined, warn: (m: string) => warnings.push(m) };
        const record = await createSnapshotBackup(repo, {
          volume: fx!.volume,
          volumeId: 'vm',
          temporarySnapshot: { provider },
          stateDir: fx!.stateDir,
          mode: 'incremental',
          log,
          // A real fault once the snapshot exists: its owner file can no longer be handed to the backup.
          onSnapshot: async () => {
            locked = fx!.stateDir;
            await run('chattr', ['+i', fx!.stateDir]);
          },
        });
        await run('chattr', ['-i', fx!.stateDir]);
        locked = '';
        assert.strictEqual(record.status, 'available');
        assert.strictEqual(record.baseSnapshot ?? null, null, 'the result names no base');
        assert.strictEqual((await repo.getRecord(record.id)).baseSnapshot ?? null, null, 'the record names no base');
        assert.match(warnings.join('\n'), /could not keep .* as the base snapshot of backup .*: the next incremental reads everything/);
        assert.deepStrictEqual(await basesLeft(fx!), [], 'no snapshot left behind');
        const target = path.join(fx!.work, 'restored-nobase.img');
        assert.strictEqual((await cli('restore', '--repo', repoDir, '--backup', record.id, '--target', target)).code, 0);
        assert.strictEqual(await sha256File(target), expected);

        const next = await create('--incremental');
        assert.strictEqual(next.readStats?.method, 'full');
        assert.match(next.readStats.reason ?? '', /kept no base snapshot/);
      } finally {
        await repo.close();
      }
    });
  });
}
