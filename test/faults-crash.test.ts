/**
 * Crashes: the real CLI is SIGKILLed at many exact points of a full backup, an incremental, a restore,
 * a cascading delete and a prune — just before its Nth change to the repository (test/helpers/
 * kill-preload.ts), or after the Nth progress event. After each crash, as after a reboot: start-up
 * cleanup, then `verify --read-data` must find nothing wrong, no record may be left creating/restoring/
 * deleting, every available backup must restore byte-identical to the volume it was taken of, and the
 * interrupted operation must succeed when done again.
 */
import { strict as assert } from 'assert';
import { spawn } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import {
  Repository, cleanupHost, createBackup, deleteBackup, initRepository, openRepository, pruneRepository, restoreBackup, verifyRepository,
} from '../lib';
import { CLI, cliEnv } from './helpers/cli';
import { note, tryCase } from './helpers/fault-report';
import { listFiles, makeImage, scatterWrites, sha256File, tempDir } from './helpers/volumes';

const KiB = 1024;
const MiB = 1024 * KiB;
const SIZE = 2 * MiB + 3 * 4 * KiB + 100;
const SIZES = { chunkSize: 64 * KiB, blockSize: 4 * KiB };
const SIZE_ARGS = ['--chunk-size', '64K', '--block-size', '4K'];
const PRELOAD = path.join(__dirname, 'helpers', 'kill-preload.js');
/** Start-up cleanup runs "after the reboot": later than any lease a killed process held. */
const AFTER_REBOOT = () => new Date(Date.now() + 10 * 60_000);

interface Operation {
  name: string;
  template: string;
  args(repo: string, target: string): string[];
  /** The volume state a backup made by this operation holds (null: it makes none). */
  newBackupSha: string | null;
  /** Backups of the template this operation may remove. */
  mayRemove: Set<string>;
  redo(repo: Repository, target: string): Promise<void>;
  /** Mutation kill points to try, and progress-event kill points. */
  points: number;
  progressPoints?: number;
}

interface CrashRun {
  killed: boolean;
  code: number | null;
  stderr: string;
}

function runKilled(args: string[], env: NodeJS.ProcessEnv, killAfterProgress = 0): Promise<CrashRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', PRELOAD, CLI, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let events = 0;
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (killAfterProgress > 0) {
        events = (stderr.match(/"type":"chunk"/g) ?? []).length;
        if (events >= killAfterProgress) child.kill('SIGKILL');
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ killed: signal === 'SIGKILL', code, stderr });
    });
  });
}

/** k distinct points spread evenly over 1..max. */
function spread(max: number, k: number): number[] {
  if (max <= k) return Array.from({ length: max }, (_, i) => i + 1);
  return [...new Set(Array.from({ length: k }, (_, i) => 1 + Math.round((i * (max - 1)) / (k - 1))))];
}

describe('fault suite: crashes (SIGKILL of the CLI)', function () {
  this.timeout(300_000);
  let base: string;
  const vols: string[] = [];
  const shas: string[] = [];
  /** The volume state each template backup holds. */
  const expected = new Map<string, string>();
  const ids: Record<string, string> = {};
  const failures: string[] = [];

  before(async () => {
    base = await tempDir('crash');
    for (let i = 0; i < 4; i++) {
      const vol = path.join(base, `vol${i}.img`);
      if (i === 0) await makeImage(vol, SIZE, 21, 128 * KiB);
      else {
        await fs.copyFile(vols[i - 1], vol);
        await scatterWrites(vol, 0.08, 30 + i, 16 * KiB);
      }
      vols.push(vol);
      shas.push(await sha256File(vol));
    }
    // Templates: each a repository as an operation finds it.
    const work = path.join(base, 'template-work');
    const repo = await initRepository(work);
    try {
      await fs.cp(work, path.join(base, 't-empty'), { recursive: true });
      const backup = async (label: string, vol: number, mode: 'full' | 'incremental') => {
        const r = await createBackup(repo, { volume: vols[vol], volumeId: 'v', mode, ...SIZES });
        ids[label] = r.id;
        expected.set(r.id, shas[vol]);
      };
      await backup('F0', 0, 'full');
      await fs.cp(work, path.join(base, 't-full'), { recursive: true });
      await backup('I1', 1, 'incremental');
      await backup('I2', 2, 'incremental');
      await fs.cp(work, path.join(base, 't-chain'), { recursive: true });
      await backup('F3', 2, 'full');
      await backup('I4', 3, 'incremental');
      await fs.cp(work, path.join(base, 't-prune'), { recursive: true });
    } finally {
      await repo.close();
    }
  });

  after(async () => {
    await fs.rm(base, { recursive: true, force: true });
  });

  function operations(): Operation[] {
    const create = (vol: number, extra: string[]) => (repo: string) => ['create', '--repo', repo, '--volume', vols[vol], '--volume-id', 'v', ...SIZE_ARGS, ...extra];
    return [
      {
        name: 'full backup', template: 't-empty', args: create(0, []), newBackupSha: shas[0], mayRemove: new Set(), points: 14,
        redo: async (repo) => { await createBackup(repo, { volume: vols[0], volumeId: 'v', ...SIZES }); },
      },
      {
        name: 'incremental backup', template: 't-full', args: create(1, ['--incremental']), newBackupSha: shas[1], mayRemove: new Set(), points: 12,
        redo: async (repo) => { await createBackup(repo, { volume: vols[1], volumeId: 'v', mode: 'incremental' }); },
      },
      {
        name: 'restore', template: 't-chain', newBackupSha: null, mayRemove: new Set(), points: 6, progressPoints: 6,
        args: (repo, target) => ['restore', '--repo', repo, '--backup', ids.I2, '--target', target, '--progress', 'json'],
        redo: async (repo, target) => {
          await fs.rm(target, { force: true });
          await restoreBackup(repo, { backupId: ids.I2, target });
          assert.equal(await sha256File(target), shas[2], 'the restore done again is byte-identical');
        },
      },
      {
        name: 'cascading delete', template: 't-chain', newBackupSha: null, mayRemove: new Set([ids.F0, ids.I1, ids.I2]), points: 10,
        args: (repo) => ['delete', '--repo', repo, '--backup', ids.F0, '--cascade'],
        redo: async (repo) => {
          if ((await repo.listRecords()).some((r) => r.id === ids.F0)) await deleteBackup(repo, { backupId: ids.F0, cascade: true });
          assert.deepEqual(await repo.listRecords(), [], 'everything is deleted');
        },
      },
      {
        name: 'prune', template: 't-prune', newBackupSha: null, mayRemove: new Set([ids.F0, ids.I1, ids.I2]), points: 12,
        args: (repo) => ['prune', '--repo', repo, '--keep-last', '1', '--time-zone', 'UTC'],
        redo: async (repo) => {
          await pruneRepository(repo, { policy: { keepLast: 1, timeZone: 'UTC' } });
          assert.deepEqual((await repo.listRecords()).map((r) => r.id).sort(), [ids.F3, ids.I4].sort(), 'prune keeps the newest and its parent');
        },
      },
    ];
  }

  /** Everything that must hold after a crash and a start-up cleanup. */
  async function checkAfterCrash(op: Operation, repoDir: string, target: string): Promise<void> {
    const repo = await openRepository(repoDir);
    try {
      const cleaned = await cleanupHost(repo, { now: AFTER_REBOOT, snapshots: false });
      assert.deepEqual(cleaned.errors, [], 'start-up cleanup had errors');
      const leftovers = (await listFiles(repoDir)).filter((f) => f.includes('.tmp-') || f.endsWith('.lock'));
      assert.deepEqual(leftovers, [], 'start-up cleanup left temporary or lock files of the killed process');
      const records = await repo.listRecords(undefined, (name, reason) => assert.fail(`malformed record ${name}: ${reason}`));
      for (const r of records) assert.ok(['available', 'error'].includes(r.status), `backup ${r.id} is still ${r.status} after cleanup`);
      const verified = await verifyRepository(repo, { readData: true, now: AFTER_REBOOT });
      assert.ok(verified.ok, `verify --read-data: ${verified.problems.map((p) => p.message).join('; ')}`);
      for (const id of expected.keys()) { // their bytes are checked below, with every available backup
        const r = records.find((x) => x.id === id);
        if (!r && op.mayRemove.has(id)) continue;
        const template = await fs.readFile(path.join(base, op.template, `records/v/${id}.json`)).catch(() => null);
        if (!template) continue; // not part of this template
        assert.ok(r, `backup ${id} was lost though the ${op.name} does not remove it`);
        assert.equal(r.status, 'available', `backup ${id} is ${r.status}`);
      }
      for (const r of records.filter((x) => x.status === 'available')) {
        const want = expected.get(r.id) ?? op.newBackupSha;
        assert.ok(want, `an unexpected backup ${r.id} appeared`);
        const out = path.join(path.dirname(target), `check-${r.id}.img`);
        await restoreBackup(repo, { backupId: r.id, target: out });
        assert.equal(await sha256File(out), want, `available backup ${r.id} (${r.kind}) does not restore byte-identical`);
        await fs.rm(out);
      }
      await op.redo(repo, target);
    } finally {
      await repo.close();
    }
  }

  async function runPoint(op: Operation, label: string, killAt: number, killAfterProgress: number, mutations: number): Promise<boolean> {
    const dir = await fs.mkdtemp(path.join(base, 'run-'));
    const repoDir = path.join(dir, 'repo');
    const target = path.join(dir, 'target.img');
    const trace = path.join(dir, 'trace');
    await fs.cp(path.join(base, op.template), repoDir, { recursive: true });
    const run = await runKilled(op.args(repoDir, target), cliEnv({ VB_KILL_ROOT: repoDir + path.sep, VB_KILL_AT: String(killAt), VB_KILL_TRACE_FILE: trace }), killAfterProgress);
    // A kill counts only if it landed before the operation finished: before its last change to the
    // repository was begun (a kill from outside, after a progress event, may land later on a slow machine).
    const begun = Number(await fs.readFile(trace, 'utf8').catch(() => '0'));
    const landedInTime = killAt > 0 ? begun < killAt : begun < mutations;
    if (!run.killed || !landedInTime) {
      // The operation finished before the point: not a crash, nothing to count.
      if (!run.killed) assert.equal(run.code, 0, `${op.name} ${label} ended with ${run.code}: ${run.stderr}`);
      else note(`${op.name} ${label}: the kill landed after all ${mutations} changes were begun; not counted`);
      await fs.rm(dir, { recursive: true, force: true });
      return false;
    }
    const failure = await tryCase('killPoints', op.name, label, () => checkAfterCrash(op, repoDir, target));
    if (failure) failures.push(failure);
    await fs.rm(dir, { recursive: true, force: true });
    return true;
  }

  it('every kill point ends in a clean, verified repository whose available backups restore byte-identical', async () => {
    let killPoints = 0;
    const perOperation: string[] = [];
    for (const op of operations()) {
      // Count the operation's changes to the repository once, to place the kill points over all of them.
      const dir = await fs.mkdtemp(path.join(base, 'count-'));
      await fs.cp(path.join(base, op.template), path.join(dir, 'repo'), { recursive: true });
      const countFile = path.join(dir, 'count');
      const clean = await runKilled(op.args(path.join(dir, 'repo'), path.join(dir, 'target.img')), cliEnv({
        VB_KILL_ROOT: path.join(dir, 'repo') + path.sep, VB_KILL_AT: '0', VB_KILL_COUNT_FILE: countFile,
      }));
      assert.equal(clean.code, 0, `${op.name} without a crash: ${clean.stderr}`);
      const mutations = Number(await fs.readFile(countFile, 'utf8'));
      await fs.rm(dir, { recursive: true, force: true });

      let killed = 0;
      for (const n of spread(mutations, op.points)) if (await runPoint(op, `before change ${n} of ${mutations}`, n, 0, mutations)) killed++;
      const chunks = Math.ceil(SIZE / SIZES.chunkSize);
      for (const n of spread(chunks - 1, op.progressPoints ?? 0)) if (await runPoint(op, `after progress event ${n} of ${chunks}`, 0, n, mutations)) killed++;
      perOperation.push(`${op.name}: ${killed} kill points over ${mutations} changes`);
      killPoints += killed;
    }
    note(`crash suite: ${perOperation.join('; ')}`);
    assert.deepEqual(failures, []);
    assert.ok(killPoints >= 50, `only ${killPoints} kill points`);
  });
});
