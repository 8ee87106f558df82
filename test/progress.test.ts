/**
 * Progress reads forward (issue 19 item 5): chunks finish in any order, but chunksDone counts 1..N in
 * order, the percent never goes back, chunkIndex still names each chunk once, and the events carry the
 * snapshot the backup was taken from. Real backups and restores on a posix repository.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { Repository, createBackup, openRepository, restoreBackup } from '../lib';
import { createSnapshotBackup } from '../lib/engine/snapshot-backup';
import type { ProgressEvent } from '../lib/engine/types';
import { makeImage, tempDir } from './helpers/volumes';

const KiB = 1024;
const MiB = 1024 * KiB;
// Many small chunks, so that several are in flight at once and finish out of order.
const SMALL = { chunkSize: 64 * KiB, blockSize: 4 * KiB };

function assertReadsForward(events: ProgressEvent[], chunkCount: number): void {
  const chunks = events.filter((e) => e.type === 'chunk');
  assert.equal(chunks.length, chunkCount);
  assert.deepEqual(chunks.map((e) => e.chunksDone), Array.from({ length: chunkCount }, (_, i) => i + 1), 'chunksDone counts 1..N in order');
  assert.deepEqual(chunks.map((e) => e.chunkIndex).sort((a, b) => a - b), Array.from({ length: chunkCount }, (_, i) => i), 'every chunk index once');
  for (let i = 1; i < events.length; i++) {
    assert.ok(events[i].percent >= events[i - 1].percent, `percent went back: ${events[i - 1].percent} then ${events[i].percent}`);
  }
  assert.deepEqual([events[0].type, events[0].chunksDone, events[0].percent], ['start', 0, 0]);
  const end = events[events.length - 1];
  assert.deepEqual([end.type, end.chunksDone, end.percent], ['end', chunkCount, 100]);
  assert.ok(events.every((e) => e.chunkCount === chunkCount));
}

describe('progress reads forward', function () {
  this.timeout(120_000);
  let dir: string;
  let repo: Repository;

  beforeEach(async () => {
    dir = await tempDir('progress');
    repo = await openRepository(path.join(dir, 'repo'), { create: true });
  });
  afterEach(async () => {
    await repo.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('a full backup and its restore: chunksDone 1..N in order, percent monotonic, no snapshot', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, 4 * MiB + 777, 3, 128 * KiB);
    const chunkCount = Math.ceil((4 * MiB + 777) / SMALL.chunkSize);
    const backup: ProgressEvent[] = [];
    const record = await createBackup(repo, { volume: img, volumeId: 'disk', ...SMALL, onProgress: (e) => backup.push(e) });
    assertReadsForward(backup, chunkCount);
    assert.ok(backup.every((e) => e.backupId === record.id && e.snapshotId === null));

    const restore: ProgressEvent[] = [];
    await restoreBackup(repo, { backupId: record.id, target: path.join(dir, 'restored.img'), onProgress: (e) => restore.push(e) });
    assertReadsForward(restore, chunkCount);
  });

  it('a backup of an existing snapshot names the snapshot in every progress event', async () => {
    const snap = path.join(dir, 'snap.img');
    await makeImage(snap, 1 * MiB, 4, 128 * KiB);
    const events: ProgressEvent[] = [];
    const record = await createSnapshotBackup(repo, {
      snapshot: { path: snap, id: 'snap-2026-11-28', createdAt: new Date('2026-11-28T00:00:00Z') },
      volumeId: 'vol',
      ...SMALL,
      onProgress: (e) => events.push(e),
    });
    assert.equal(record.snapshotId, 'snap-2026-11-28');
    assertReadsForward(events, 16);
    assert.ok(events.every((e) => e.snapshotId === 'snap-2026-11-28'), JSON.stringify(events.map((e) => e.snapshotId)));
  });
});
