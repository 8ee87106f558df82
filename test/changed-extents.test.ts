/**
 * Changed-extent incrementals (issue 16) on real btrfs and XFS file systems (loop devices made by the
 * test): a backup through a btrfs or reflink snapshot keeps it as the base of the next incremental, which
 * reads only the ranges whose extents changed. What it stores is exactly what a full re-read stores (the
 * chunks' hash lists and zero maps compared block by block with a full-read incremental of the same
 * change, in a second repository); the restore is byte-identical; one base per volume is left, and none
 * once its backup is deleted; a base that is gone gives a full read that says why.
 */
import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { openRepository } from '../lib/open';
import { Repository } from '../lib/repository/repository';
import type { BackupRecord } from '../lib/repository/records';
import { ChainView } from '../lib/repository/chain-view';
import { chainOf } from '../lib/repository/catalog';
import { chunkCount } from '../lib/repository/format';
import { deleteBackup } from '../lib/engine/delete';
import { restoreBackup } from '../lib/engine/restore';
import { verifyVolume } from '../lib/engine/verify-volume';
import { createSnapshotBackup, SnapshotBackupOptions } from '../lib/engine/snapshot-backup';
import { backupView } from '../plugins/backups-sidebar/view';
import { cliEnv, runCli } from './helpers/cli';
import { scatterWrites, sha256File } from './helpers/volumes';
import { LoopFsKind, LoopFsVolume, run, setUpLoopFsVolume } from './snapshot-loopfs';

const MiB = 1024 * 1024;
const SIZE = 48 * MiB;
const CHUNK = 1 * MiB;

/** Our snapshots left on the file system: clone files beside the volume, or snapshot subvolumes. */
async function basesLeft(fx: LoopFsVolume): Promise<string[]> {
  const files = (await fsp.readdir(fx.volumeDir)).filter((n) => n.startsWith('volume-backup-tmp-'));
  if (fx.loop.kind !== 'btrfs') return files;
  return (await run('btrfs', ['subvolume', 'list', fx.loop.mountPoint])).split('\n').filter((l) => l.includes('volume-backup-tmp-'));
}

/** Per chunk: whether the newest backup touched it, and the chunk's zero map and block hashes after it. */
async function chunkStates(repo: Repository, record: BackupRecord): Promise<string[]> {
  const view = await ChainView.open(repo, chainOf(await repo.listRecords(record.volumeId), record.id));
  const newest = view.layers[view.layers.length - 1];
  const out: string[] = [];
  for (let i = 0; i < chunkCount(record.size, record.chunkSize); i++) {
    const state = await view.state(i);
    const touched = (await newest.entry(i)) !== undefined;
    out.push(`${touched ? 'T' : '-'} ${Buffer.from(state.zero).toString('hex')} ${state.hashes.toString('hex')}`);
  }
  return out;
}

/** Rewrites of the kind a guest makes besides random data: a zeroed range, and bytes written back unchanged. */
async function zeroAndRewrite(volume: string): Promise<void> {
  const handle = await fsp.open(volume, 'r+');
  try {
    await handle.write(Buffer.alloc(96 * 1024), 0, 96 * 1024, 7 * MiB + 5000);
    const same = Buffer.alloc(64 * 1024);
    await handle.read(same, 0, same.length, 20 * MiB);
    await handle.write(same, 0, same.length, 20 * MiB);
  } finally {
    await handle.close();
  }
}

for (const [kind, provider] of [['btrfs', 'btrfs'], ['xfs', 'reflink']] as [LoopFsKind, 'btrfs' | 'reflink'][]) {
  describe(`changed-extent incrementals on ${kind} (loop device, ${provider} snapshots)`, function () {
    this.timeout(300_000);
    let fx: LoopFsVolume | undefined;
    let fast: Repository;
    let slow: Repository;
    const backup = (repo: Repository, extra: Partial<SnapshotBackupOptions>) =>
      createSnapshotBackup(repo, { volume: fx!.volume, temporarySnapshot: { provider }, stateDir: fx!.stateDir, chunkSize: CHUNK, ...extra });

    before(async function () {
      fx = await setUpLoopFsVolume(this, kind, { size: SIZE, seed: 11, subvolume: kind === 'btrfs' ? 'vols' : undefined });
      fast = await openRepository(path.join(fx.work, 'fast'), { create: true });
      slow = await openRepository(path.join(fx.work, 'slow'), { create: true });
    });

    after(async () => {
      await fast?.close();
      await slow?.close();
      await fx?.remove();
    });

    it('reads only the changed extents, stores what a full re-read stores, restores byte-identical, and leaves one base', async () => {
      const lines: string[] = [];
      const log = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
      const fullFast = await backup(fast, { mode: 'full', log });
      await backup(slow, { mode: 'full', keepBase: false });
      assert.strictEqual(fullFast.baseSnapshot?.provider, provider);
      assert.strictEqual((await basesLeft(fx!)).length, 1);

      const changed = await scatterWrites(fx!.volume, 0.01, 5);
      await zeroAndRewrite(fx!.volume);
      const expected = await sha256File(fx!.volume);
      const incr = await backup(fast, { mode: 'incremental', log });
      const reread = await backup(slow, { mode: 'incremental', keepBase: false });

      assert.strictEqual(incr.readStats?.method, 'changed-extents', lines.join('\n'));
      assert.strictEqual(reread.readStats?.method, 'full');
      assert.ok(reread.readStats.bytesRead > SIZE / 2, `the full read read ${reread.readStats.bytesRead} bytes (the image's holes are skipped)`);
      assert.ok(incr.readStats.bytesRead <= 4 * changed + 2 * MiB, `read ${incr.readStats.bytesRead} bytes for ${changed} changed`);
      assert.ok(incr.readStats.bytesRead >= changed, `read ${incr.readStats.bytesRead} bytes, fewer than the ${changed} changed`);
      assert.match(lines.join('\n'), /changed extents: reading \d+ of \d+ bytes/);
      assert.deepStrictEqual(await chunkStates(fast, incr), await chunkStates(slow, reread));
      assert.strictEqual(incr.storedBytes > 0, true);

      const target = path.join(fx!.work, 'restored.img');
      await restoreBackup(fast, { backupId: incr.id, target });
      assert.strictEqual(await sha256File(target), expected);

      // The full backup's base was replaced by the incremental's: one base, named in the newest record only.
      assert.strictEqual((await basesLeft(fx!)).length, 1);
      const records = await fast.listRecords(incr.volumeId);
      assert.deepStrictEqual(records.filter((r) => r.baseSnapshot).map((r) => r.id), [incr.id]);
      // The sidebar shows where it is.
      assert.match(backupView(records.find((r) => r.id === incr.id)!, 1, new Date()).baseSnapshot ?? '', /volume-backup-tmp-\S+ on /);
      assert.strictEqual((await fsp.readdir(fx!.stateDir)).length, 1, 'one owner file: the base');
      const checked = await verifyVolume(fast, { volume: fx!.volume, backupId: incr.id });
      assert.deepStrictEqual([checked.ok, checked.differingChunks], [true, 0]);

      // After fullReadEvery changed-extent incrementals in a row, the next one reads everything.
      await scatterWrites(fx!.volume, 0.002, 6);
      const again = await backup(fast, { mode: 'incremental', fullReadEvery: 1 });
      assert.strictEqual(again.readStats?.method, 'full');
      assert.match(again.readStats.reason ?? '', /1 changed-extent incremental\(s\) in a row before this one/);
      assert.strictEqual(again.readStats.extentRuns, 0);
    });

    it('falls back to a full read, saying why, when the base is gone; deleting the backup removes its base', async () => {
      const [newest] = (await fast.listRecords()).filter((r) => r.baseSnapshot);
      const base = newest.baseSnapshot!;
      if (kind === 'btrfs') await run('btrfs', ['subvolume', 'delete', base.removes]);
      else await fsp.rm(base.removes);
      await scatterWrites(fx!.volume, 0.005, 9);
      const expected = await sha256File(fx!.volume);
      const incr = await backup(fast, { mode: 'incremental' });
      assert.strictEqual(incr.readStats?.method, 'full');
      assert.match(incr.readStats.reason ?? '', /base snapshot .* is gone/);
      const target = path.join(fx!.work, 'restored2.img');
      await restoreBackup(fast, { backupId: incr.id, target });
      assert.strictEqual(await sha256File(target), expected);
      assert.strictEqual((await basesLeft(fx!)).length, 1);

      await deleteBackup(fast, { backupId: incr.id });
      assert.deepStrictEqual(await basesLeft(fx!), [], 'the deleted backup took its base along');
      assert.deepStrictEqual(await fsp.readdir(fx!.stateDir), []);
    });

    it('CLI: keeps and lists the base, reads changed extents, start-up cleanup removes a base whose backup is gone, --no-base-snapshot removes it', async () => {
      const repoDir = path.join(fx!.work, 'cli');
      const env = cliEnv({ VOLUME_BACKUP_STATE_DIR: path.join(fx!.work, 'cli-state') });
      const cli = (...args: string[]) => runCli(args, { env });
      const create = (...extra: string[]) => cli('create', '--repo', repoDir, '--volume', fx!.volume, '--volume-id', 'cli-vm', '--snapshot', provider, '--chunk-size', '1M', ...extra);
      assert.strictEqual((await cli('init', '--repo', repoDir)).code, 0);
      const bad = await create('--full-read-every', 'often');
      assert.strictEqual(bad.code, 2);
      assert.match(bad.stderr, /--full-read-every must be a whole number/);

      const first = await create();
      assert.strictEqual(first.code, 0, first.stderr);
      assert.match(first.stdout, /kept .*volume-backup-tmp-\S+ as the base snapshot of the next incremental/);
      await scatterWrites(fx!.volume, 0.01, 21);
      const second = await create('--incremental');
      assert.strictEqual(second.code, 0, second.stderr);
      assert.match(second.stdout, /read .* \(changed extents since the base snapshot\)/);
      assert.doesNotMatch(second.stdout, /48\.0 MiB read/, 'the summary must not say the whole volume was read');
      const listed = await cli('list', '--repo', repoDir, '--volume-id', 'cli-vm');
      assert.strictEqual(listed.stdout.match(/base snapshot \(/g)?.length, 1, listed.stdout);

      // A copy imported into another repository does not own the base: deleting it there leaves the base.
      const copy = path.join(fx!.work, 'cli-copy');
      assert.strictEqual((await cli('init', '--repo', copy)).code, 0);
      await fsp.cp(path.join(repoDir, 'volume_cli-vm'), path.join(copy, 'volume_cli-vm'), { recursive: true });
      const ids = (JSON.parse((await cli('list', '--repo', repoDir, '--json')).stdout) as BackupRecord[]).filter((r) => r.volumeId === 'cli-vm').sort((a, b) => a.createdAt.localeCompare(b.createdAt)).map((r) => r.id);
      for (const id of ids) {
        const imported = await runCli(['import', '--repo', copy, '--json'], { env, input: (await cli('export', '--repo', repoDir, '--backup', id)).stdout });
        assert.strictEqual(imported.code, 0, imported.stderr);
        assert.strictEqual((JSON.parse(imported.stdout) as BackupRecord).baseSnapshot ?? null, null);
      }
      assert.strictEqual((await cli('delete', '--repo', copy, '--backup', ids[0], '--cascade')).code, 0);
      assert.strictEqual((await basesLeft(fx!)).length, 1, 'the original repository still has its base');

      // The backup holding the base goes behind this host's back (say, its record is removed by hand):
      // the next run's start-up cleanup removes the base it no longer needs.
      const repo = await openRepository(repoDir);
      const holder = (await repo.listRecords('cli-vm')).find((r) => r.baseSnapshot)!;
      await repo.deleteRecord(holder);
      await repo.close();
      const third = await create('--incremental', '--no-base-snapshot');
      assert.strictEqual(third.code, 0, third.stderr);
      assert.match(third.stderr, /snapshot cleanup: removed .* base snapshot .* backup .* no longer keeps it/);
      assert.match(third.stdout, /\(full read\)/);
      assert.strictEqual(await fsp.stat(holder.baseSnapshot!.removes).then(() => true, () => false), false);
      assert.deepStrictEqual(await basesLeft(fx!), []);
    });
  });
}
