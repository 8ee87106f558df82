/**
 * Reflink snapshots on a real XFS file system (made with reflink=1 on a loop device by the test): a
 * volume written to during the backup is backed up through a copy-on-write clone, which `auto` picks
 * here; the restore equals the clone exactly, and no clone remains, also after a cancel.
 */
import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { openRepository } from '../lib/open';
import { Repository } from '../lib/repository/repository';
import { restoreBackup } from '../lib/engine/restore';
import { createSnapshotBackup } from '../lib/engine/snapshot-backup';
import type { ProgressEvent } from '../lib/engine/types';
import type { TemporarySnapshot } from '../lib/snapshot';
import { isError } from './helpers/assert';
import { sha256File } from './helpers/volumes';
import { LoopFs, LoopFsVolume, setUpLoopFsVolume } from './snapshot-loopfs';
import { StampLayout, Writer, readGenerations, startWriter, waitForPasses } from './snapshot-writer';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const CHUNK = 1 * MiB;
const LAYOUT: StampLayout = { stride: 256 * 1024, count: SIZE / (256 * 1024) };

describe('reflink snapshot backups on XFS (loop device)', function () {
  this.timeout(180_000);
  let fixture: LoopFsVolume | undefined;
  let loop: LoopFs;
  let work: string;
  let repo: Repository;
  let volume: string;
  let stateDir: string;
  let writer: Writer | null = null;

  before(async function () {
    fixture = await setUpLoopFsVolume(this, 'xfs', { size: SIZE, seed: 7 });
    ({ loop, volume, work, stateDir } = fixture);
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

  it('auto picks reflink; the restore equals the clone exactly while a writer keeps changing the volume; the clone is gone', async () => {
    writer = await startWriter(volume, LAYOUT, 2);
    const lines: string[] = [];
    let taken = null as TemporarySnapshot | null;
    let cloneHash = '';
    const record = await createSnapshotBackup(repo, {
      volume,
      temporarySnapshot: { provider: 'auto' },
      stateDir,
      keepBase: false, // these tests are about temporaries; base snapshots: changed-extents.test.ts
      chunkSize: CHUNK,
      log: { info: (m) => lines.push(m), warn: (m) => lines.push(m) },
      onSnapshot: async (snap) => {
        taken = snap;
        cloneHash = await sha256File(snap.path);
      },
      onProgress: (e: ProgressEvent) => e.type === 'chunk' && waitForPasses(volume, LAYOUT, 2),
    });
    // Read once the writer stopped: a read racing one of its writes can see a stamp half-written (a torn read of the live file, not of the backup).
    await writer.stop();
    const liveGens = readGenerations(volume, LAYOUT);

    assert.match(lines.join('\n'), /snapshot provider auto: using reflink for /);
    assert.strictEqual(record.snapshotProvider, 'reflink');
    assert.strictEqual(path.dirname(taken!.path), loop.mountPoint, 'the clone sits beside the volume');
    const target = path.join(work, 'restored.img');
    await restoreBackup(repo, { backupId: record.id, target });
    assert.strictEqual(await sha256File(target), cloneHash);
    const gens = readGenerations(target, LAYOUT);
    assert.ok(Math.max(...gens) - Math.min(...gens) <= 1, `one instant, not a torn mix: ${gens.join(',')}`);
    assert.ok(Math.min(...liveGens) > Math.max(...gens) + 2, 'the writer kept writing during the backup');
    assert.deepStrictEqual((await fsp.readdir(loop.mountPoint)).sort(), ['disk.img']);
    assert.deepStrictEqual(await fsp.readdir(stateDir), []);
  });

  it('removes the clone when the backup is cancelled on its first progress event', async () => {
    const controller = new AbortController();
    let taken = null as TemporarySnapshot | null;
    await assert.rejects(
      createSnapshotBackup(repo, {
        volume,
        temporarySnapshot: { provider: 'reflink' },
        stateDir,
        keepBase: false, // these tests are about temporaries; base snapshots: changed-extents.test.ts
        chunkSize: CHUNK,
        signal: controller.signal,
        onSnapshot: (s) => void (taken = s),
        onProgress: () => controller.abort(),
      }),
      isError('CANCELLED'),
    );
    assert.ok(taken);
    assert.deepStrictEqual((await fsp.readdir(loop.mountPoint)).sort(), ['disk.img']);
    assert.deepStrictEqual(await fsp.readdir(stateDir), []);
  });
});
