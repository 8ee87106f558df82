/**
 * Storage faults seen from a real Node-RED runtime (the runtime must stay up, each fault one Catch or one
 * result): a backup node whose repository fills up (a 16 MiB tmpfs), then a restore node reading that
 * repository once it is remounted read-only.
 */
import * as assert from 'assert';
import { execFile } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { withRepository } from '../helpers/repository';
import { Prng, sha256File } from '../helpers/volumes';
import { loadTestFlow, loggedTexts, nodeRedVersion, nodeTestSuite, statusTexts } from './support';
import { withTmpfs } from '../helpers/tmpfs';

const exec = promisify(execFile);
const MiB = 1024 * 1024;

describe(`Node-RED nodes: a full and a read-only repository (node-red ${nodeRedVersion()})`, function () {
  this.timeout(120_000);
  const suite = nodeTestSuite('nodes-storage-faults', { size: 8 * MiB, seed: 71 });

  before(function () {
    if (process.getuid?.() !== 0) {
      console.log(`      skipped: needs root to mount a tmpfs; running as uid ${process.getuid?.()}`);
      this.skip();
    }
  });

  it('a backup that fills the repository ends in one Catch naming ENOSPC and an error record; a restore from it read-only succeeds with a warning', async () => {
    // Mounted and unmounted here: the suite's work directory is removed by an earlier-registered after hook.
    const mnt = path.join(suite.work, 'small');
    await withTmpfs(mnt, '16m', async () => {
      await fillThenReadOnly(mnt);
    });
  });

  async function fillThenReadOnly(mnt: string): Promise<void> {
    const repoDir = path.join(mnt, 'repo');
    const big = path.join(suite.work, 'big.img');
    await fs.writeFile(big, new Prng(72).fill(Buffer.alloc(24 * MiB))); // incompressible: more than the 16 MiB there are
    const t = await loadTestFlow(repoDir, [
      { id: 'big', type: 'volume-backup-create', volume: 'volume', volumeType: 'msg', compression: 'none' },
      { id: 'small', type: 'volume-backup-create', volume: 'volume', volumeType: 'msg' },
      { id: 'restore', type: 'volume-restore', action: 'restore', actionType: 'action', backupId: 'backupId', backupIdType: 'msg', target: 'target', targetType: 'msg' },
    ]);
    t.node('big').receive({ volume: big, volumeId: 'big', topic: 'big' });
    const [caught] = await t.caught.waitFor(1, 60_000);
    assert.strictEqual(caught.error?.source?.id, 'big');
    assert.match(caught.error?.message ?? '', new RegExp(`cannot write object \\S+ to the repository at ${repoDir}: no space left on device \\(ENOSPC\\): free space on the file system of ${repoDir}, or prune old backups`));
    assert.strictEqual(statusTexts(t.node('big')).at(-1)?.fill, 'red');
    const failed = await withRepository(repoDir, (repo) => repo.listRecords());
    assert.deepStrictEqual(failed.map((r) => r.status), ['error']);

    // The runtime is still up: a backup that fits works.
    t.node('small').receive({ volume: suite.image, volumeId: 'small', topic: 'small' });
    const [done] = await t.out.waitFor(1, 60_000);
    const backupId = (done.payload as { id: string }).id;

    await exec('mount', ['-o', 'remount,ro', mnt]);
    try {
      const target = path.join(suite.work, 'restored.img');
      t.node('restore').receive({ backupId, target, topic: 'restore' });
      const [, restored] = await t.out.waitFor(2, 60_000);
      assert.strictEqual(restored.topic, 'restore');
      assert.strictEqual(await sha256File(target), await sha256File(suite.image));
      assert.strictEqual(t.caught.messages.length, 1, 'no further Catch');
      assert.ok(loggedTexts(t.node('restore'), 'warn').some((w) => w.includes(`backup ${backupId} could not be marked restoring: the repository refuses writes (EROFS); restoring it anyway`)), 'the restore node warns');
    } finally {
      await exec('mount', ['-o', 'remount,rw', mnt]);
    }
  }
});
