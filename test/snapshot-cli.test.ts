/**
 * The snapshot options of `volume-backup create`, run as a user would on a loop-mounted btrfs:
 * `--snapshot btrfs` on a live image being written to, and `--from-snapshot` with an incremental that
 * picks its parent by the snapshot's time.
 */
import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as path from 'path';
import type { BackupRecord } from '../lib';
import { cliJson, runCli } from './helpers/cli';
import { scatterWrites, sha256File } from './helpers/volumes';
import { LoopFs, LoopFsVolume, run, setUpLoopFsVolume } from './snapshot-loopfs';
import { StampLayout, Writer, readGenerations, startWriter } from './snapshot-writer';

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;
const LAYOUT: StampLayout = { stride: 256 * 1024, count: SIZE / (256 * 1024) };

describe('volume-backup create --snapshot / --from-snapshot (btrfs loop device)', function () {
  this.timeout(180_000);
  let fixture: LoopFsVolume | undefined;
  let loop: LoopFs;
  let work: string;
  let repo: string;
  let vmDir: string;
  let volume: string;
  let stateDir: string;
  let writer: Writer | null = null;
  const env = () => ({ ...process.env, VOLUME_BACKUP_STATE_DIR: stateDir });

  before(async function () {
    fixture = await setUpLoopFsVolume(this, 'btrfs', { size: SIZE, seed: 9, subvolume: 'vms' });
    ({ loop, volumeDir: vmDir, volume, work, stateDir } = fixture);
    repo = path.join(work, 'repo');
  });

  after(async () => {
    await writer?.stop();
    await fixture?.remove();
  });

  it('--snapshot btrfs backs up a live image as of one instant and leaves no snapshot subvolume', async () => {
    writer = await startWriter(volume, LAYOUT, 1);
    // --no-base-snapshot: this test is about the temporary; kept bases are in changed-extents.test.ts.
    const result = await runCli(['create', '--repo', repo, '--volume', volume, '--volume-id', 'vm', '--snapshot', 'btrfs', '--no-base-snapshot', '--chunk-size', '1M', '--json'], { env: env() });
    await writer.stop();
    writer = null;
    assert.strictEqual(result.code, 0, result.stderr);
    const record = JSON.parse(result.stdout) as BackupRecord;
    assert.strictEqual(record.snapshotProvider, 'btrfs');
    assert.strictEqual(record.sourcePath, volume);
    const target = path.join(work, 'restored.img');
    await cliJson(['restore', '--repo', repo, '--backup', record.id, '--target', target]);
    const gens = readGenerations(target, LAYOUT);
    assert.ok(Math.max(...gens) - Math.min(...gens) <= 1, `one instant, not a torn mix: ${gens.join(',')}`);
    const subvolumes = await run('btrfs', ['subvolume', 'list', loop.mountPoint]);
    assert.deepStrictEqual(subvolumes.trim().split('\n').map((l) => l.split(' path ')[1]), ['vms']);
    assert.deepStrictEqual((await fsp.readdir(vmDir)).sort(), ['disk.img']);
  });

  it('--from-snapshot: an incremental of an older snapshot takes the backup older than it as parent', async () => {
    const full = await cliJson<BackupRecord>(['create', '--repo', repo, '--volume', volume, '--volume-id', 'vm2', '--snapshot', 'auto'], { env: env() });
    await new Promise((r) => setTimeout(r, 20));
    await scatterWrites(volume, 0.05, 3);
    const snapshotTime = new Date().toISOString();
    const snap = path.join(loop.mountPoint, 'nightly');
    await run('btrfs', ['subvolume', 'snapshot', '-r', vmDir, snap]);
    await new Promise((r) => setTimeout(r, 20));
    await scatterWrites(volume, 0.05, 4);
    const live = await cliJson<BackupRecord>(['create', '--repo', repo, '--volume', volume, '--volume-id', 'vm2', '--incremental']);
    assert.strictEqual(live.parentId, full.id);

    const fromSnap = await cliJson<BackupRecord>([
      'create', '--repo', repo, '--volume-id', 'vm2', '--incremental',
      '--from-snapshot', path.join(snap, 'disk.img'), '--snapshot-id', 'nightly', '--snapshot-time', snapshotTime,
    ]);
    assert.strictEqual(fromSnap.parentId, full.id, 'the live backup is newer than the snapshot, so not its parent');
    assert.strictEqual(fromSnap.snapshotId, 'nightly');
    assert.strictEqual(fromSnap.dataTimestamp, snapshotTime);
    const target = path.join(work, 'restored-nightly.img');
    await cliJson(['restore', '--repo', repo, '--backup', fromSnap.id, '--target', target]);
    assert.strictEqual(await sha256File(target), await sha256File(path.join(snap, 'disk.img')));
    await run('btrfs', ['subvolume', 'delete', snap]);
  });

  it('says what is missing for --from-snapshot, and refuses an unknown provider', async () => {
    const missing = await runCli(['create', '--repo', repo, '--from-snapshot', volume, '--snapshot-id', 'x']);
    assert.strictEqual(missing.code, 2);
    assert.match(missing.stderr, /--from-snapshot PATH needs --volume-id ID, --snapshot-id ID and --snapshot-time ISO8601/);
    const unknown = await runCli(['create', '--repo', repo, '--volume', volume, '--snapshot', 'zfs']);
    assert.strictEqual(unknown.code, 2);
    assert.match(unknown.stderr, /--snapshot must be one of auto, btrfs, reflink, lvm, command, copy/);
  });
});
