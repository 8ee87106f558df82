/**
 * Scale-out with CLI workers: several hosts' processes share one repository (posix, and S3 on the test
 * server) and run dozens of backups of several volumes at once, with a prune running beside them. One
 * worker is SIGKILLed mid-backup and restarted after `cleanup --host` for it; a second host dies and is
 * retired with reset-status. Afterwards: verify --read-data passes, the killed host's record is error
 * with its objects gone, every available backup restores byte-identical to what it read, and nothing
 * of any other host was touched. Also: two backups of one volume never run at once (BUSY or wait).
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import {
  BackupRecord, Repository, VolumeBackupError, createBackup, openRepository, restoreBackup,
} from '../lib';
import { acquireVolumeLease, lockName } from '../lib/repository/locks';
import { mapLimit } from '../lib/util/concurrency';
import { CliResult, cliEnv, runCli } from './helpers/cli';
import { finishKill, killAtFirstChunk, startCli } from './helpers/cli-process';
import { makeImage, scatterWrites, sha256File, tempDir } from './helpers/volumes';
import { BUCKET, s3Backend } from './servers/backends';
import { S3_CLI_ENV } from './servers/s3-target';

const MiB = 1024 * 1024;
const VOLUMES = 4;
/** Per volume: full, incr, incr, full, incr, incr. */
const MODES = ['full', 'incremental', 'incremental', 'full', 'incremental', 'incremental'] as const;
const HOSTS = ['worker-1', 'worker-2', 'worker-3'];
const SLOW = ['--chunk-size', '256K', '--compression', 'zlib', '--compression-level', '9', '--progress', 'json'];

interface Job {
  volume: number;
  version: number;
  mode: (typeof MODES)[number];
  file: string;
  taken: boolean;
  done: boolean;
  attempts: number;
  host?: string;
  record?: BackupRecord;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A killed writer's record lease and volume lease, made to last past the test (they are not renewed). */
async function holdLeases(repo: Repository, backupId: string, volumeId: string, host: string): Promise<void> {
  const until = '2100-01-01T00:00:00.000Z';
  await repo.updateRecord(backupId, () => ({ leaseExpiresAt: until }), volumeId);
  const lease = await repo.driver.readObject(repo.container, lockName(volumeId));
  const holder = JSON.parse(lease.data.toString('utf8')) as { host: string; operation: string; expiresAt: string };
  assert.deepEqual([holder.host, holder.operation], [host, 'backup'], `the lease of ${volumeId} is held by the killed backup`);
  await repo.driver.replaceIfMatch(repo.container, lockName(volumeId), Buffer.from(JSON.stringify({ ...holder, expiresAt: until }) + '\n'), lease.etag);
}

describe('scale-out: CLI workers of several hosts on one repository', function () {
  this.timeout(240_000);
  let dir: string;
  let versions: string[][];

  before(async () => {
    dir = await tempDir('scale');
    // Every version of every volume is its own file, so each backup's expected bytes stay known.
    versions = [];
    for (let v = 0; v < VOLUMES; v++) {
      const files: string[] = [];
      for (let k = 0; k < MODES.length; k++) {
        const file = path.join(dir, `vol${v}-v${k}.img`);
        if (k === 0) await makeImage(file, 2 * MiB + v * 4096, 100 + v, 256 * 1024);
        else {
          await fs.copyFile(files[k - 1], file);
          await scatterWrites(file, 0.04, 1000 * v + k);
        }
        files.push(file);
      }
      versions.push(files);
    }
    await makeImage(path.join(dir, 'victim.img'), 24 * MiB, 77);
    await makeImage(path.join(dir, 'ghost.img'), 24 * MiB, 78);
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const s3 = s3Backend();
  const backends = [
    { name: 'posix', start: async () => undefined, stop: async () => undefined, repo: () => path.join(dir, 'repo-posix'), open: (host: string) => openRepository(path.join(dir, 'repo-posix'), { host, create: true }) },
    {
      name: 's3',
      start: () => s3.start(),
      stop: () => s3.stop(),
      repo: () => `s3://${BUCKET}/scale?endpoint=${s3.endpoint}&forcePathStyle=true&checksums=when_required`,
      open: (host: string) => openRepository(s3.spec({ prefix: 'scale' }), { host, create: true }),
    },
  ];

  for (const backend of backends) {
    describe(`on ${backend.name}`, () => {
      let repo: Repository;
      const env = cliEnv(backend.name === 's3' ? S3_CLI_ENV : {});
      before(async () => {
        await backend.start();
        repo = await backend.open('test-runner');
      });
      after(async () => {
        await repo?.close();
        await backend.stop();
      });
      const cli = (args: string[], timeoutMs = 120_000): Promise<CliResult> => runCli([...args, '--repo', backend.repo()], { env: { ...env, VOLUME_BACKUP_STATE_DIR: path.join(dir, 'state') }, timeoutMs });

      it('dozens of concurrent backups, a prune beside them, one worker killed and restarted: nothing lost, nothing broken', async () => {
        const jobs: Job[] = [];
        for (let k = 0; k < MODES.length; k++) {
          for (let v = 0; v < VOLUMES; v++) jobs.push({ volume: v, version: k, mode: MODES[k], file: versions[v][k], taken: false, done: false, attempts: 0 });
        }
        const job = (v: number, k: number) => jobs[k * VOLUMES + v];
        // An incremental chooses its parent when it starts, so it waits for the previous version;
        // a full may start any time (and then waits for the volume's lease if it is busy).
        const ready = (j: Job) => !j.taken && (j.mode === 'full' || job(j.volume, j.version - 1).done);
        const failures: string[] = [];
        let waitedForLease = 0;

        async function worker(host: string): Promise<void> {
          for (;;) {
            const next = jobs.find(ready);
            if (!next) {
              if (jobs.every((j) => j.taken)) return;
              await sleep(20);
              continue;
            }
            next.taken = true;
            next.attempts++;
            const result = await cli([
              'create', '--host', host, '--volume', next.file, '--volume-id', `vol-${next.volume}`, '--chunk-size', '256K',
              ...(next.mode === 'incremental' ? ['--incremental'] : []), '--lock-wait', '60', '--progress', 'none', '--json',
            ]);
            if (/waiting for the volume/.test(result.stderr)) waitedForLease++;
            if (result.code === 0) {
              next.record = JSON.parse(result.stdout) as BackupRecord;
              next.host = host;
              next.done = true;
            } else if (next.attempts < 3 && /try again/.test(result.stderr)) {
              next.taken = false; // e.g. its parent was being pruned: a requester would retry
            } else {
              failures.push(`vol-${next.volume} v${next.version} on ${host}: ${result.stderr}`);
              next.done = true;
            }
          }
        }

        let pruning = true;
        const pruneRuns: CliResult[] = [];
        async function pruner(): Promise<void> {
          while (pruning) {
            pruneRuns.push(await cli(['prune', '--keep-last', '2', '--keep-failed-for', '1d', '--json']));
            await sleep(200);
          }
        }

        // And a verify beside them: work in progress must never be reported as a problem.
        const verifyRuns: { problems: { kind: string; host?: string; message: string }[] }[] = [];
        async function verifier(): Promise<void> {
          while (pruning) {
            // (--read-data only on posix: on s3rver it would mostly slow the workers down.)
            const run = await cli(['verify', ...(backend.name === 'posix' ? ['--read-data'] : []), '--json']);
            verifyRuns.push(JSON.parse(run.stdout));
          }
        }

        const workers = HOSTS.map(worker);
        const pruneLoop = pruner();
        const verifyLoop = verifier();

        // Mid-run: two more hosts start slow backups; both are SIGKILLed at their first chunk.
        const victim = startCli(['create', '--repo', backend.repo(), '--host', 'victim', '--volume', path.join(dir, 'victim.img'), '--volume-id', 'vol-victim', ...SLOW], env);
        const ghost = startCli(['create', '--repo', backend.repo(), '--host', 'ghost', '--volume', path.join(dir, 'ghost.img'), '--volume-id', 'vol-ghost', ...SLOW], env);
        const victimId = await killAtFirstChunk(victim);
        const ghostId = await killAtFirstChunk(ghost);
        await Promise.all([finishKill(victim), finishKill(ghost)]);
        // The killed processes stopped renewing their leases (60 s). On a slow machine those could run out
        // before the test looks, and prune would then rightly fence and remove the backups, or take over the
        // victim's volume lease before its host's cleanup releases it. So both stay held past the test's end:
        // the ghost host is unreachable, not known dead; the victim's is found dead by its own cleanup.
        await holdLeases(repo, victimId, 'vol-victim', 'victim');
        await holdLeases(repo, ghostId, 'vol-ghost', 'ghost');
        const ghostBefore = await repo.getRecord(ghostId);
        assert.equal(ghostBefore.status, 'creating');
        assert.equal((await repo.getRecord(victimId)).status, 'creating');
        const victimRecord = await repo.getRecord(victimId);
        const ghostObjects = await repo.listObjects(ghostBefore.objectPrefix);
        assert.ok(ghostObjects.length > 0);

        // The victim's host restarts: its start-up cleanup runs while the other workers keep going.
        const cleaned = await cli(['cleanup', '--host', 'victim', '--json']);
        assert.equal(cleaned.code, 0, cleaned.stderr);
        const report = JSON.parse(cleaned.stdout);
        assert.deepEqual(report.failedBackups.map((b: { backupId: string }) => b.backupId), [victimId]);
        assert.deepEqual(report.releasedLeases.map((l: { volumeId: string }) => l.volumeId), ['vol-victim']);
        assert.deepEqual([report.failedRestores, report.finishedDeletes, report.skipped, report.errors], [[], [], [], []]);
        // …then it backs up its volume again at once and joins the others.
        const again = await cli(['create', '--host', 'victim', '--volume', versions[0][0], '--volume-id', 'vol-victim', '--json', '--progress', 'none']);
        assert.equal(again.code, 0, again.stderr);
        await Promise.all([...workers, worker('victim')]);
        pruning = false;
        await Promise.all([pruneLoop, verifyLoop]);
        const finalPrune = await cli(['prune', '--keep-last', '2', '--keep-failed-for', '1d', '--json']);
        pruneRuns.push(finalPrune);

        assert.deepEqual(failures, []);
        assert.equal(jobs.filter((j) => j.record?.status === 'available').length, VOLUMES * MODES.length);
        const hostsUsed = new Set(jobs.map((j) => j.host));
        for (const h of HOSTS) assert.ok(hostsUsed.has(h), `${h} got work`);
        for (const run of pruneRuns) assert.equal(run.code, 0, run.stderr);
        assert.ok(verifyRuns.length >= 2);
        for (const run of verifyRuns) {
          assert.deepEqual(run.problems, [], 'verify beside the workers');
        }
        const pruned = pruneRuns.flatMap((r) => (JSON.parse(r.stdout).volumes as { deleted: { id: string }[] }[]).flatMap((v) => v.deleted.map((d) => d.id)));
        assert.ok(pruned.length >= VOLUMES * 2, `prune deleted the chains keep-last 2 no longer needs (${pruned.length})`);
        assert.ok(!pruned.includes(victimId) && !pruned.includes(ghostId), 'failed backups are kept for a day');

        // The killed host's record: error, its objects gone. The ghost's: exactly as it was left.
        const victimAfter = await repo.getRecord(victimId);
        assert.equal(victimAfter.status, 'error');
        assert.match(victimAfter.failReason ?? '', /interrupted/);
        assert.deepEqual(await repo.listObjects(victimRecord.objectPrefix), []);
        assert.deepEqual(await repo.getRecord(ghostId), ghostBefore);
        assert.deepEqual(await repo.listObjects(ghostBefore.objectPrefix), ghostObjects);

        // The operator retires the ghost host for good; then the whole repository verifies.
        const retired = await cli(['reset-status', '--backup', ghostId, '--status', 'error', '--force']);
        assert.equal(retired.code, 0, retired.stderr);
        const verified = await cli(['verify', '--read-data', '--json'], 180_000);
        const verifyReport = JSON.parse(verified.stdout);
        assert.deepEqual(verifyReport.problems, []);
        assert.equal(verified.code, 0);

        // Every available backup restores to exactly the bytes it read.
        const available = (await repo.listRecords()).filter((r) => r.status === 'available');
        assert.ok(available.length >= VOLUMES * 2 + 1);
        await mapLimit(available, 4, async (record) => {
          const target = path.join(dir, `restore-${record.id}.img`);
          await restoreBackup(repo, { backupId: record.id, target });
          assert.equal(await sha256File(target), await sha256File(record.sourcePath!), `backup ${record.id} (${record.kind} of ${record.volumeId} by ${record.host})`);
          await fs.rm(target);
        });
        console.log(`      ${backend.name}: ${jobs.length + 3} backups by ${HOSTS.length + 2} hosts, ${pruneRuns.length} prunes (${pruned.length} deleted), ${verifyRuns.length} verifies beside them, ${waitedForLease} waited for a volume lease, ${available.length} restored`);
      });

      it('two backups of one volume never run at once: the second fails with BUSY, or waits with --lock-wait', async () => {
        const first = startCli(['create', '--repo', backend.repo(), '--host', 'host-a', '--volume', path.join(dir, 'victim.img'), '--volume-id', 'vol-shared', ...SLOW], env);
        await first.waitForLine((l) => l.includes('"type":"start"'));
        process.kill(first.pid, 'SIGSTOP'); // it holds the volume's lease, and keeps it while we look
        let waiting;
        try {
          const busy = await cli(['create', '--host', 'host-b', '--volume', versions[1][0], '--volume-id', 'vol-shared']);
          assert.equal(busy.code, 1);
          assert.match(busy.stderr, new RegExp(`volume vol-shared is busy: host host-a \\(pid ${first.pid}\\) is running backup`));
          // An incremental: it may only choose its parent once it holds the lease, i.e. the backup it waited for.
          waiting = startCli(['create', '--repo', backend.repo(), '--host', 'host-b', '--volume', versions[1][0], '--volume-id', 'vol-shared', '--incremental', '--lock-wait', '120', '--json', '--progress', 'none'], env);
          await waiting.waitForLine((l) => /waiting for the volume: host host-a/.test(l));
        } finally {
          process.kill(first.pid, 'SIGCONT');
        }
        const waiter = await waiting.result;
        assert.equal(waiter.code, 0, waiter.stderr);
        const firstDone = await first.result;
        assert.equal(firstDone.code, 0, firstDone.stderr);
        const a = (await repo.listRecords('vol-shared')).find((r) => r.host === 'host-a')!;
        const b = JSON.parse(waiter.stdout) as BackupRecord;
        assert.equal(a.status, 'available');
        assert.equal(b.status, 'available');
        // The second began only after the first had finished, and builds on it.
        assert.ok(Date.parse(b.createdAt) >= Date.parse(a.updatedAt), `${b.createdAt} vs ${a.updatedAt}`);
        assert.equal(b.parentId, a.id);
      });
    });
  }

  it('lockWaitMs: createBackup waits for the holder (and says so), or fails at once with BUSY', async () => {
    const repoDir = path.join(dir, 'repo-lock');
    const a = await openRepository(repoDir, { host: 'host-a', create: true });
    const b = await openRepository(repoDir, { host: 'host-b' });
    try {
      const held = await acquireVolumeLease(b, 'vol-l', { operation: 'backup' });
      await assert.rejects(createBackup(a, { volume: versions[2][0], volumeId: 'vol-l' }), (err: unknown) => {
        assert.ok(err instanceof VolumeBackupError);
        assert.equal(err.code, 'BUSY');
        assert.match(err.message, /volume vol-l is busy: host host-b \(pid \d+\) is running backup since .*; try again when it has finished/);
        return true;
      });
      const waits: string[] = [];
      const record = await createBackup(a, {
        volume: versions[2][0],
        volumeId: 'vol-l',
        lockWaitMs: 30_000,
        onLockWait: (holder) => {
          waits.push(holder.host);
          void held.release();
        },
      });
      assert.deepEqual(waits, ['host-b']);
      assert.equal(record.status, 'available');
      assert.equal(record.host, 'host-a');
    } finally {
      await a.close();
      await b.close();
    }
  });
});
