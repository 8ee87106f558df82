/**
 * Snapshot backups on a real btrfs file system (a loop device made by the test): a live volume written to
 * during the backup is backed up through a temporary read-only snapshot; the restore equals the snapshot
 * exactly and is not a torn mix; no snapshot subvolume remains, also after a cancel mid-backup; and
 * incrementals of later snapshots pick their parent by data timestamp.
 */
import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { openRepository } from '../lib/open';
import { Repository } from '../lib/repository/repository';
import { createBackup } from '../lib/engine/backup';
import { restoreBackup } from '../lib/engine/restore';
import { createSnapshotBackup } from '../lib/engine/snapshot-backup';
import type { ProgressEvent } from '../lib/engine/types';
import { TemporarySnapshot, runCommand, selectProvider } from '../lib/snapshot';
import { isError } from './helpers/assert';
import { scatterWrites, sha256File } from './helpers/volumes';
import { LoopFs, LoopFsVolume, run, setUpLoopFsVolume } from './snapshot-loopfs';
import { StampLayout, Writer, readGenerations, startWriter, waitForPasses } from './snapshot-writer';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const CHUNK = 1 * MiB;
// One stamp block every 256 KiB: four per chunk, spread over the whole volume.
const LAYOUT: StampLayout = { stride: 256 * 1024, count: SIZE / (256 * 1024) };

function spread(gens: number[]): number {
  return Math.max(...gens) - Math.min(...gens);
}

/** What a user would check: nothing named like our temporaries beside the volume, no extra subvolume. */
async function temporariesLeft(dir: string, mountPoint: string): Promise<string[]> {
  const files = (await fsp.readdir(dir)).filter((n) => n.startsWith('volume-backup-tmp-'));
  const subvolumes = (await run('btrfs', ['subvolume', 'list', mountPoint])).split('\n').filter((l) => l.includes('volume-backup-tmp-'));
  return [...files, ...subvolumes];
}

describe('snapshot backups on btrfs (loop device)', function () {
  this.timeout(180_000);
  let fixture: LoopFsVolume | undefined;
  let loop: LoopFs;
  let work: string;
  let repo: Repository;
  let vmDir: string;
  let volume: string;
  let stateDir: string;
  let writer: Writer | null = null;

  before(async function () {
    fixture = await setUpLoopFsVolume(this, 'btrfs', { size: SIZE, seed: 5, subvolume: 'vms' });
    ({ loop, volumeDir: vmDir, volume, work, stateDir } = fixture);
    repo = await openRepository(path.join(work, 'repo'), { create: true });
  });

  afterEach(async () => {
    await writer?.stop();
    writer = null;
  });

  after(async () => {
    await writer?.stop();
    await repo?.close();
    await fixture?.remove();
  });

  it('restores a volume written to during the backup to the snapshot exactly, not a torn mix, and removes the snapshot', async () => {
    writer = await startWriter(volume, LAYOUT, 2);
    let taken = null as TemporarySnapshot | null;
    let snapshotHash = '';
    let snapshotGens: number[] = [];
    const record = await createSnapshotBackup(repo, {
      volume,
      volumeId: 'vm1',
      temporarySnapshot: { provider: 'btrfs' },
      stateDir,
      keepBase: false, // these tests are about temporaries; base snapshots: changed-extents.test.ts
      chunkSize: CHUNK,
      onSnapshot: async (snap) => {
        taken = snap;
        snapshotHash = await sha256File(snap.path);
        snapshotGens = readGenerations(snap.path, LAYOUT);
      },
      // Between chunks the writer makes two more passes: reading the live volume would be torn for sure.
      onProgress: (e: ProgressEvent) => e.type === 'chunk' && waitForPasses(volume, LAYOUT, 2),
    });
    // Read once the writer stopped: a read racing one of its writes can see a stamp half-written (a torn read of the live file, not of the backup).
    await writer.stop();
    const liveGens = readGenerations(volume, LAYOUT);

    assert.strictEqual(record.status, 'available');
    assert.strictEqual(record.snapshotProvider, 'btrfs');
    assert.strictEqual(record.snapshotId, null);
    assert.strictEqual(record.sourcePath, volume);
    assert.ok(taken, 'the provider hook saw the snapshot');
    assert.strictEqual(record.dataTimestamp, taken!.createdAt.toISOString());
    assert.ok(taken!.path.startsWith(vmDir + path.sep), `snapshot beside the volume by default: ${taken!.path}`);

    const target = path.join(work, 'restored-1.img');
    await restoreBackup(repo, { backupId: record.id, target });
    assert.strictEqual(await sha256File(target), snapshotHash, 'the restore equals the snapshot byte for byte');
    const restoredGens = readGenerations(target, LAYOUT);
    assert.deepStrictEqual(restoredGens, snapshotGens);
    assert.ok(spread(restoredGens) <= 1, `one instant holds at most two adjacent generations, got ${restoredGens.join(',')}`);
    assert.ok(Math.min(...liveGens) >= Math.max(...restoredGens) + 2 * (SIZE / CHUNK - 1), 'the writer kept writing during the backup');

    assert.deepStrictEqual(await temporariesLeft(vmDir, loop.mountPoint), []);
    assert.deepStrictEqual(await fsp.readdir(stateDir), [], 'no owner file left');
  });

  it('(control) the same check finds a backup of the live volume torn', async () => {
    writer = await startWriter(volume, LAYOUT, 2);
    const record = await createBackup(repo, {
      volume,
      volumeId: 'vm1-live-control',
      chunkSize: CHUNK,
      onProgress: (e: ProgressEvent) => e.type === 'chunk' && waitForPasses(volume, LAYOUT, 2),
    });
    await writer.stop();
    const target = path.join(work, 'restored-live.img');
    await restoreBackup(repo, { backupId: record.id, target });
    const gens = readGenerations(target, LAYOUT);
    assert.ok(spread(gens) >= 2, `a live backup mixes generations: ${gens.join(',')}`);
  });

  it('removes the snapshot when the backup is cancelled on its first progress event', async () => {
    writer = await startWriter(volume, LAYOUT, 2);
    const controller = new AbortController();
    let taken = null as TemporarySnapshot | null;
    await assert.rejects(
      createSnapshotBackup(repo, {
        volume,
        volumeId: 'vm1',
        temporarySnapshot: { provider: 'btrfs' },
        stateDir,
        keepBase: false, // these tests are about temporaries; base snapshots: changed-extents.test.ts
        chunkSize: CHUNK,
        signal: controller.signal,
        onSnapshot: (snap) => {
          taken = snap;
        },
        onProgress: () => controller.abort(new Error('stopped by the test')),
      }),
      isError('CANCELLED'),
    );
    assert.ok(taken, 'a snapshot was taken before the cancel');
    assert.strictEqual(await fsp.stat(taken!.path).then(() => true, () => false), false, `the snapshot ${taken!.path} is gone`);
    assert.deepStrictEqual(await temporariesLeft(vmDir, loop.mountPoint), []);
    assert.deepStrictEqual(await fsp.readdir(stateDir), []);
    const failed = (await repo.listRecords('vm1')).filter((r) => r.status !== 'available');
    assert.ok(failed.length === 1 && failed[0].status === 'error', 'the cancelled backup is recorded as error, not available');
  });

  it('auto picks btrfs for a file on btrfs and says so', async () => {
    const lines: string[] = [];
    const provider = await selectProvider(volume, { provider: 'auto' }, { runner: runCommand, log: { info: (m) => lines.push(m), warn: (m) => lines.push(m) } });
    assert.strictEqual(provider.name, 'btrfs');
    assert.match(lines.join('\n'), /snapshot provider auto: using btrfs for .*lvm: .*not a block device/);
  });

  it('an incremental of a later snapshot picks the newest backup older than the snapshot', async () => {
    const volumeId = 'vm2';
    const snapDir = path.join(loop.mountPoint, 'user-snapshots');
    await fsp.mkdir(snapDir);
    const userSnapshot = async (name: string) => {
      const createdAt = new Date();
      await run('btrfs', ['subvolume', 'snapshot', '-r', vmDir, path.join(snapDir, name)]);
      return { path: path.join(snapDir, name, 'disk.img'), id: name, createdAt };
    };
    const pause = () => new Promise((r) => setTimeout(r, 20));

    // t1: full backup through a temporary snapshot (in a directory the user chose).
    const full = await createSnapshotBackup(repo, { volume, volumeId, temporarySnapshot: { provider: 'btrfs', snapshotDir: loop.mountPoint }, stateDir, keepBase: false, chunkSize: CHUNK });
    await pause();
    await scatterWrites(volume, 0.05, 11);
    const s2 = await userSnapshot('s2'); // t2
    await pause();
    await scatterWrites(volume, 0.05, 12);
    const live3 = await createBackup(repo, { volume, volumeId, mode: 'incremental', chunkSize: CHUNK }); // t3
    await pause();
    await scatterWrites(volume, 0.05, 13);
    const s4 = await userSnapshot('s4'); // t4

    // The backup of s2 comes after live3, but its data is older: its parent is the full backup of t1.
    const b2 = await createSnapshotBackup(repo, { snapshot: s2, volumeId, mode: 'incremental' });
    assert.strictEqual(live3.parentId, full.id);
    assert.strictEqual(b2.parentId, full.id);
    assert.strictEqual(b2.snapshotId, 's2');
    assert.strictEqual(b2.dataTimestamp, s2.createdAt.toISOString());
    // s4 is newer than every backup so far: its parent is live3 (t3), the newest by data timestamp.
    const b4 = await createSnapshotBackup(repo, { snapshot: { ...s4, createdAt: s4.createdAt.toISOString() }, volumeId, mode: 'incremental' });
    assert.strictEqual(b4.parentId, live3.id);
    // A live incremental now: the newest data is s4's.
    const live5 = await createSnapshotBackup(repo, { volume, volumeId, mode: 'incremental', temporarySnapshot: { provider: 'btrfs' }, stateDir, keepBase: false });
    assert.strictEqual(live5.parentId, b4.id);

    for (const [record, source] of [[b2, s2.path], [b4, s4.path], [live5, volume]] as const) {
      const target = path.join(work, `restored-${record.id}.img`);
      await restoreBackup(repo, { backupId: record.id, target });
      assert.strictEqual(await sha256File(target), await sha256File(source), `backup ${record.id} restores to ${source}`);
    }
    for (const name of ['s2', 's4']) await run('btrfs', ['subvolume', 'delete', path.join(snapDir, name)]);
    assert.deepStrictEqual(await temporariesLeft(vmDir, loop.mountPoint), []);
    assert.deepStrictEqual((await fsp.readdir(loop.mountPoint)).filter((n) => n.startsWith('volume-backup-tmp-')), []);
  });
});
