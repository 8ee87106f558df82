/**
 * Who owns a transient state (issue 14, item 5). A delete or a restore run by another host than the one
 * that created the backup is SIGKILLed mid-way; `volume-backup cleanup --host <that host>`, run at once
 * (the killed process's lease has not expired yet), must leave no record deleting or restoring, and the
 * repository must verify clean. Before owners were recorded, a killed delete stayed `deleting` for ever
 * (cleanup of the deleting host found "nothing to clean") and a killed restore stayed `restoring`.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { cliJson, runCli } from './helpers/cli';
import { startCli } from './helpers/cli-process';
import { backupsIn } from './helpers/repository';
import { makeImage, scatterWrites, sha256File, tempDir } from './helpers/volumes';

const MiB = 1024 * 1024;
const PRELOAD = path.join(__dirname, 'helpers', 'kill-preload.js');

interface Cleaned {
  failedRestores: { backupId: string }[];
  finishedDeletes: { backupId: string }[];
  keptDeletes: { backupId: string }[];
  skipped: { backupId: string; reason: string }[];
  errors: { message: string }[];
}

describe('transient states have an owner whose cleanup ends them (issue 14, item 5)', function () {
  this.timeout(300_000);
  let base: string;
  let template: string;
  const images: string[] = [];
  const ids: string[] = [];

  before(async () => {
    base = await tempDir('cleanup-owner');
    for (let i = 0; i < 2; i++) {
      const image = path.join(base, `vol${i}.img`);
      if (i === 0) await makeImage(image, 6 * MiB + 4096, 41);
      else {
        await fs.copyFile(images[0], image);
        await scatterWrites(image, 0.1, 42, 16 * 1024);
      }
      images.push(image);
    }
    // A chain made by host-creator: a full backup and an incremental.
    template = path.join(base, 'template');
    assert.equal((await runCli(['init', '--repo', template])).code, 0);
    for (const [i, mode] of [[0, []], [1, ['--incremental']]] as const) {
      const made = await cliJson<{ id: string }>(['create', '--repo', template, '--host', 'host-creator', '--volume', images[i], '--volume-id', 'v', '--chunk-size', '256K', ...mode]);
      ids.push(made.id);
    }
  });

  after(async () => {
    await fs.rm(base, { recursive: true, force: true });
  });

  async function freshRepository(label: string): Promise<string> {
    const repo = path.join(base, label);
    await fs.cp(template, repo, { recursive: true });
    return repo;
  }

  async function cleanup(repo: string, host: string): Promise<Cleaned> {
    return cliJson<Cleaned>(['cleanup', '--repo', repo, '--host', host, '--state-dir', path.join(base, 'state')]);
  }

  async function assertVerifiesClean(repo: string): Promise<void> {
    const verified = await runCli(['verify', '--repo', repo, '--read-data']);
    assert.equal(verified.code, 0, `verify --read-data after cleanup: ${verified.stdout}${verified.stderr}`);
  }

  /** How many changes under the repository a cascading delete of the chain makes. */
  async function countDeleteMutations(): Promise<number> {
    const repo = await freshRepository('count');
    const countFile = path.join(base, 'count.txt');
    const run = startCli(['delete', '--repo', repo, '--host', 'host-deleter', '--backup', ids[0], '--cascade'], {
      NODE_OPTIONS: `--require ${PRELOAD}`, VB_KILL_ROOT: repo, VB_KILL_AT: '0', VB_KILL_COUNT_FILE: countFile,
    });
    assert.equal((await run.result).code, 0);
    return Number(await fs.readFile(countFile, 'utf8'));
  }

  it('a cascading delete by another host, killed at points from its first mark to its last removal: cleanup of the deleting host leaves nothing deleting', async () => {
    const total = await countDeleteMutations();
    assert.ok(total >= 6, `a cascading delete makes several changes (${total})`);
    // From just after the first mark is written to the last removals (the first and last few changes are the mark's temporary file and empty directories).
    const points = [...new Set([4, 5, Math.round(total / 3), Math.round(total / 2), Math.round((2 * total) / 3), total - 4, total - 3])];
    let caughtDeleting = 0;
    for (const point of points) {
      const repo = await freshRepository(`delete-${point}`);
      const run = startCli(['delete', '--repo', repo, '--host', 'host-deleter', '--backup', ids[0], '--cascade'], {
        NODE_OPTIONS: `--require ${PRELOAD}`, VB_KILL_ROOT: repo, VB_KILL_AT: String(point),
      });
      assert.equal((await run.result).signal, 'SIGKILL', `the delete was killed before change ${point}`);
      const deleting = (await backupsIn(repo)).filter((b) => b.status === 'deleting');
      if (deleting.length > 0) caughtDeleting++;
      for (const b of deleting) assert.equal(b.host, 'host-creator', 'a delete does not rewrite the creator');

      const cleaned = await cleanup(repo, 'host-deleter');
      assert.deepEqual(cleaned.errors, [], `cleanup errors at point ${point}`);
      assert.deepEqual(cleaned.skipped, [], `cleanup skipped something at point ${point}`);
      const left = await backupsIn(repo);
      assert.deepEqual(left.filter((b) => b.status !== 'available').map((b) => `${b.id} ${b.status}`), [], `after a kill at change ${point} of ${total} and cleanup --host host-deleter`);
      assert.ok(cleaned.finishedDeletes.length + cleaned.keptDeletes.length >= deleting.length, 'every deleting record was finished or given back');
      await assertVerifiesClean(repo);
    }
    assert.equal(caughtDeleting, points.length, `the kills left records deleting (${caughtDeleting} of ${points.length} points)`);
  });

  it("a restore by another host killed mid-way: the creator's cleanup leaves it alone, the restoring host's cleanup gives the backup back at once", async () => {
    const repo = await freshRepository('restore');
    const target = path.join(base, 'restored.img');
    // Killed as it creates the target: the backup is marked restoring and its lease is live.
    const restorer = startCli(['restore', '--repo', repo, '--host', 'host-restorer', '--backup', ids[1], '--target', target], {
      NODE_OPTIONS: `--require ${PRELOAD}`, VB_KILL_ROOT: target, VB_KILL_AT: '1',
    });
    assert.equal((await restorer.result).signal, 'SIGKILL');
    const during = (await backupsIn(repo)).find((b) => b.id === ids[1])!;
    assert.equal(during.status, 'restoring', 'killed mid-restore');
    assert.equal(during.host, 'host-creator', 'a restore does not rewrite the creator');

    const creator = await cleanup(repo, 'host-creator');
    assert.deepEqual(creator.failedRestores, [], "another host's live lease is not the creator's to end");
    assert.equal((await backupsIn(repo)).find((b) => b.id === ids[1])!.status, 'restoring');

    const cleaned = await cleanup(repo, 'host-restorer');
    assert.deepEqual(cleaned.failedRestores.map((r) => r.backupId), [ids[1]]);
    assert.ok((await backupsIn(repo)).every((b) => b.status === 'available'), 'no record is left restoring');
    await assertVerifiesClean(repo);
    await fs.rm(target, { force: true });
    const again = await runCli(['restore', '--repo', repo, '--backup', ids[1], '--target', target]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await sha256File(target), await sha256File(images[1]), 'the backup restores byte-identical afterwards');
  });
});
