/**
 * Prune beside other processes, as in real life: the `volume-backup` CLI in child processes.
 * - Races: each round, one process prunes (keep-last 1: it wants almost everything gone) while
 *   another creates an incremental on a parent prune wants to delete, and a third restores a backup
 *   prune wants to delete. Whatever the interleaving, no incremental may end available without its
 *   parent, every process must either succeed or fail cleanly, and every available backup must
 *   restore byte-identical.
 * - Crashes: a prune process SIGKILLed at a random point between or inside deletions leaves a
 *   repository whose available backups all restore, and the next prune finishes the job.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { BackupRecord, Repository, chainOf, createBackup, listBackups, openRepository, pruneRepository, restoreBackup } from '../lib';
import { CliResult, runCli, spawnCli } from './helpers/cli';
import { Prng, listFiles, makeImage, scatterWrites, sha256File, tempDir } from './helpers/volumes';

const KiB = 1024;
const SIZES = ['--chunk-size', '64K', '--block-size', '4K', '--compression', 'none'];
const SMALL = { chunkSize: 64 * KiB, blockSize: 4 * KiB, compression: 'none' as const };
const ROUNDS = Number(process.env.PRUNE_RACE_ROUNDS ?? 20);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The invariant: every available backup's whole chain is there and available (or being restored). */
function assertChainsIntact(records: BackupRecord[]): void {
  for (const r of records.filter((x) => x.status === 'available')) {
    const chain = chainOf(records, r.id); // throws when a parent is missing
    for (const link of chain) assert.ok(link.status === 'available' || link.status === 'restoring', `backup ${r.id} is available but needs ${link.id}, which is ${link.status}`);
  }
}

/** A failure a user can act on: the CLI said why, and nothing is left looking available. */
function assertCleanFailure(result: CliResult, what: string): void {
  assert.equal(result.signal, null, `${what} was killed`);
  assert.equal(result.code, 1, `${what}: exit ${result.code}: ${result.stderr}`);
  assert.match(result.stderr, /error: .*(deleting|being pruned|not found|not a backup|is restoring|is deleting|only available backups|needs .* which is|is busy|changed)/i, `${what} failed unclearly: ${result.stderr}`);
}

describe('prune beside other processes', function () {
  this.timeout(600_000);
  let dir: string;
  let repoDir: string;
  let repo: Repository;
  const expected = new Map<string, string>();

  beforeEach(async () => {
    dir = await tempDir('prune-race');
    repoDir = path.join(dir, 'repo');
    repo = await openRepository(repoDir, { create: true });
    expected.clear();
  });
  afterEach(async () => {
    await repo.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function imageVersion(base: string, name: string, seed: number): Promise<string> {
    const file = path.join(dir, name);
    await fs.copyFile(base, file);
    await scatterWrites(file, 0.05, seed, 4 * KiB);
    return file;
  }

  async function backupInProcess(volume: string, mode: 'full' | 'incremental'): Promise<BackupRecord> {
    const record = await createBackup(repo, { volume, volumeId: 'race', mode, ...SMALL });
    expected.set(record.id, await sha256File(volume));
    return record;
  }

  async function assertAllRestore(label: string): Promise<number> {
    const records = await listBackups(repo);
    assertChainsIntact(records);
    let n = 0;
    for (const r of records.filter((x) => x.status === 'available')) {
      const target = path.join(dir, `check-${r.id}.img`);
      await restoreBackup(repo, { backupId: r.id, target });
      assert.equal(await sha256File(target), expected.get(r.id), `${label}: backup ${r.id} does not restore byte-identical`);
      await fs.rm(target);
      n++;
    }
    return n;
  }

  it(`${ROUNDS} rounds of prune racing an incremental backup and a restore, each in its own process`, async () => {
    const prng = new Prng(42);
    const base = path.join(dir, 'base.img');
    await makeImage(base, 512 * KiB, 3, 64 * KiB);
    let version = 0;
    const refusals = new Set<string>();
    const tally = { backupsOk: 0, backupsRefused: 0, restoresOk: 0, restoresRefused: 0, keptInUse: 0, deleted: 0 };

    for (let round = 0; round < ROUNDS; round++) {
      // Fresh material for prune: a new chain beside whatever survived.
      const full = await backupInProcess(await imageVersion(base, `v${++version}.img`, version), 'full');
      await backupInProcess(await imageVersion(base, `v${++version}.img`, version), 'incremental');
      await backupInProcess(await imageVersion(base, `v${++version}.img`, version), 'incremental');
      const available = (await listBackups(repo, { volumeId: 'race' })).filter((r) => r.status === 'available');
      // Not the newest: the ones keep-last 1 wants to delete (older chains and this chain's own links).
      const victims = available.filter((r) => r.id !== available[available.length - 1].id);
      const parent = victims[prng.int(victims.length)] ?? full;
      const restoreOf = victims[prng.int(victims.length)] ?? full;
      const image = await imageVersion(base, `v${++version}.img`, version);
      const imageSha = await sha256File(image);
      const target = path.join(dir, `restore-${round}.img`);

      const delayed = (ms: number, args: string[]) => sleep(ms).then(() => runCli(args, { timeoutMs: 120_000 }));
      const [pruned, backedUp, restored] = await Promise.all([
        delayed(prng.int(250), ['prune', '--repo', repoDir, '--keep-last', '1', '--orphan-grace', '0h', '--json']),
        delayed(prng.int(250), ['create', '--repo', repoDir, '--volume', image, '--volume-id', 'race', '--parent', parent.id, '--json', ...SIZES]),
        delayed(prng.int(250), ['restore', '--repo', repoDir, '--backup', restoreOf.id, '--target', target]),
      ]);

      assert.equal(pruned.code, 0, `round ${round}: prune failed: ${pruned.stderr}`);
      const report = JSON.parse(pruned.stdout) as { backupsDeleted: number; volumes: { kept: { reasons: string[] }[] }[] };
      tally.deleted += report.backupsDeleted;
      tally.keptInUse += report.volumes.flatMap((v) => v.kept).filter((k) => k.reasons.some((r) => /^in use by|^busy/.test(r))).length;
      if (backedUp.code === 0) {
        const record = JSON.parse(backedUp.stdout) as BackupRecord;
        assert.equal(record.status, 'available');
        assert.equal(record.parentId, parent.id);
        expected.set(record.id, imageSha);
        tally.backupsOk++;
      } else {
        assertCleanFailure(backedUp, `round ${round}: backup on ${parent.id}`);
        tally.backupsRefused++;
        refusals.add(backedUp.stderr.replace(/[0-9a-f-]{36}/g, 'ID').trim());
      }
      if (restored.code === 0) {
        assert.equal(await sha256File(target), expected.get(restoreOf.id), `round ${round}: restore of ${restoreOf.id} that prune raced is wrong`);
        tally.restoresOk++;
      } else {
        assertCleanFailure(restored, `round ${round}: restore of ${restoreOf.id}`);
        await assert.rejects(fs.access(target), 'a failed restore left its target behind');
        tally.restoresRefused++;
      }
      await fs.rm(target, { force: true });

      // Everyone has finished: nothing may be stuck, every chain is whole, every backup restores.
      const records = await listBackups(repo);
      for (const r of records) assert.ok(r.status === 'available' || r.status === 'error', `round ${round}: backup ${r.id} left ${r.status}`);
      await assertAllRestore(`round ${round}`);
    }
    // Settle: one more prune removes the failed records; the survivors still restore.
    await pruneRepository(repo, { policy: { keepLast: 1 }, orphanGracePeriodMs: 0 });
    const survivors = await assertAllRestore('final');
    assert.ok(survivors >= 1);
    assert.ok(tally.backupsOk + tally.backupsRefused === ROUNDS);
    // The races must actually have happened both ways, or this test proves nothing.
    assert.ok(tally.deleted > 0, 'prune never deleted anything');
    assert.ok(tally.backupsOk > 0, 'no incremental ever completed beside prune');
    console.log(`      races: ${JSON.stringify(tally)}\n      backups refused with: ${[...refusals].join(' | ')}`);
  });

  it('a prune killed at a random point leaves every available backup restorable; the next prune finishes', async () => {
    const prng = new Prng(7);
    const base = path.join(dir, 'base.img');
    await makeImage(base, 512 * KiB, 5, 64 * KiB);
    let version = 0;
    const crashes = Number(process.env.PRUNE_CRASH_ROUNDS ?? 6);
    let leftDeleting = 0;
    for (let round = 0; round < crashes; round++) {
      for (let c = 0; c < 4; c++) {
        await backupInProcess(await imageVersion(base, `c${++version}.img`, 1000 + version), 'full');
        await backupInProcess(await imageVersion(base, `c${++version}.img`, 1000 + version), 'incremental');
        await backupInProcess(await imageVersion(base, `c${++version}.img`, 1000 + version), 'incremental');
      }
      // Kill it after a random number of deletions, a random moment later (often inside the next one).
      const killAfter = prng.int(8);
      const child = spawnCli(['prune', '--repo', repoDir, '--keep-last', '1', '--progress', 'json', '--orphan-grace', '0h']);
      let seen = 0;
      let stderr = '';
      const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
      child.stderr!.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
        seen += (d.match(/"operation":"prune"/g) ?? []).length;
        if (seen > killAfter && !child.killed) setTimeout(() => child.kill('SIGKILL'), prng.int(3));
      });
      child.stdin!.end();
      await exited;

      const records = await listBackups(repo);
      leftDeleting += records.filter((r) => r.status === 'deleting').length;
      // Consistent right after the crash: every available backup restores.
      await assertAllRestore(`after crash ${round} (${seen} deletions seen, ${stderr.length} bytes of stderr)`);
      // The next prune finishes what the crash left: no deleting record, no object without a record.
      await pruneRepository(repo, { policy: { keepLast: 1 }, orphanGracePeriodMs: 0 });
      const after = await listBackups(repo);
      assert.deepEqual(after.filter((r) => r.status !== 'available').map((r) => `${r.id} ${r.status}`), []);
      const prefixes = after.map((r) => r.objectPrefix);
      const stray = (await listFiles(repoDir)).filter((f) => f.startsWith('volume_') && !prefixes.some((p) => f.startsWith(p)));
      assert.deepEqual(stray, [], 'objects without a record survived the second prune');
      await assertAllRestore(`after the prune that followed crash ${round}`);
    }
    console.log(`      crashes: ${crashes}, records left in deleting by a crash: ${leftDeleting}`);
  });
});
