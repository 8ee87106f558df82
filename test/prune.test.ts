/**
 * Prune on a real posix repository: what goes and what stays (by record and by object), every kept
 * backup restores byte-identical, dry runs change nothing, failed and half-deleted backups are
 * cleaned, orphaned objects wait for their grace period, progress, and the CLI.
 */
import { strict as assert } from 'assert';
import { createHash, randomUUID } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import {
  BackupRecord, ProgressEvent, PruneReport, Repository, createBackup, listBackups, openRepository, pruneRepository, restoreBackup,
} from '../lib';
import { ORPHAN_STATE_PREFIX } from '../lib/engine/prune';
import { DEFAULT_LEASE_TTL_MS } from '../lib/repository/locks';
import { backupPrefix } from '../lib/repository/layout';
import { listFiles, makeImage, scatterWrites, sha256File, tempDir } from './helpers/volumes';
import { runCli } from './helpers/cli';

const KiB = 1024;
const SMALL = { chunkSize: 64 * KiB, blockSize: 4 * KiB, compression: 'none' as const };

/** Every file of the repository with the SHA-256 of its bytes: equal snapshots mean nothing changed. */
export async function repositorySnapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of await listFiles(dir)) out[f] = createHash('sha256').update(await fs.readFile(path.join(dir, f))).digest('hex');
  return out;
}

describe('prune (posix repository)', function () {
  this.timeout(120_000);
  let dir: string;
  let repoDir: string;
  let repo: Repository;
  let img: string;
  /** SHA-256 of the volume as each backup saw it. */
  const expected = new Map<string, string>();
  let seed = 0;

  beforeEach(async () => {
    dir = await tempDir('prune');
    repoDir = path.join(dir, 'repo');
    repo = await openRepository(repoDir, { create: true });
    img = path.join(dir, 'disk.img');
    await makeImage(img, 640 * KiB, 7, 64 * KiB);
    expected.clear();
  });
  afterEach(async () => {
    await repo.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function backup(mode: 'full' | 'incremental' | 'differential', at?: string, volume = img, volumeId = 'disk'): Promise<BackupRecord> {
    await scatterWrites(volume, 0.05, ++seed, 4 * KiB);
    const record = await createBackup(repo, {
      volume, volumeId, mode, ...SMALL,
      snapshot: at ? { id: null, createdAt: new Date(at), provider: null } : undefined,
    });
    expected.set(record.id, await sha256File(volume));
    return record;
  }

  async function assertRestores(ids: string[]): Promise<void> {
    for (const id of ids) {
      const target = path.join(dir, `restore-${id}.img`);
      await restoreBackup(repo, { backupId: id, target });
      assert.equal(await sha256File(target), expected.get(id), `backup ${id} does not restore to what it backed up`);
      await fs.rm(target);
    }
  }

  const objectsOf = async (r: BackupRecord) => (await listFiles(repoDir)).filter((f) => f.startsWith(r.objectPrefix));
  const ids = (list: { id: string }[]) => list.map((r) => r.id);

  it('two chains, keep-last 2: the newest chain stays to its full backup, the older chain goes children first, all kept restore', async () => {
    const a0 = await backup('full');
    const a1 = await backup('incremental');
    const a2 = await backup('incremental');
    const b0 = await backup('full');
    const b1 = await backup('incremental');
    const b2 = await backup('incremental');
    const before = await Promise.all([a0, a1, a2].map(objectsOf));
    assert.ok(before.every((o) => o.length > 0));
    const events: ProgressEvent[] = [];
    const report = await pruneRepository(repo, { policy: { keepLast: 2 }, onProgress: (e) => events.push(e) });

    assert.equal(report.volumes.length, 1);
    const v = report.volumes[0];
    assert.deepEqual(ids(v.kept), [b2.id, b1.id, b0.id]);
    assert.deepEqual(v.kept.map((k) => k.reasons), [['keep-last'], ['keep-last', `parent of ${b2.id}`], [`parent of ${b1.id}`]]);
    assert.deepEqual(ids(v.deleted), [a2.id, a1.id, a0.id]);
    const storedA = [a0, a1, a2].reduce((n, r) => n + r.storedBytes, 0);
    assert.ok(storedA > 0 && report.bytesFreed >= storedA, `freed ${report.bytesFreed} < stored ${storedA}`);
    assert.equal(report.backupsDeleted, 3);
    // What a user checks: records and objects of the old chain are gone, the new chain restores.
    assert.deepEqual(ids(await listBackups(repo)).sort(), [b0.id, b1.id, b2.id].sort());
    for (const r of [a0, a1, a2]) assert.deepEqual(await objectsOf(r), []);
    await assertRestores([b0.id, b1.id, b2.id]);
    // One progress event per deleted backup, in deletion order.
    assert.deepEqual(events.map((e) => [e.operation, e.backupId]), [['prune', a2.id], ['prune', a1.id], ['prune', a0.id]]);
    assert.equal(events[2].percent, 100);
    assert.equal(events[2].bytesDone, report.bytesFreed);
  });

  it('a dry run changes nothing, byte for byte, and predicts exactly what the real run does', async () => {
    await backup('full', '2024-01-01T10:00:00Z');
    await backup('incremental', '2024-01-01T20:00:00Z');
    await backup('incremental', '2024-01-02T10:00:00Z');
    await backup('full', '2024-01-03T10:00:00Z');
    await backup('differential', '2024-01-03T12:00:00Z');
    const policy = { keepDaily: 1, timeZone: 'UTC' };
    const before = await repositorySnapshot(repoDir);
    const dry = await pruneRepository(repo, { policy, dryRun: true, orphanGracePeriodMs: 0 });
    assert.deepEqual(await repositorySnapshot(repoDir), before, 'the dry run changed the repository');
    assert.equal(dry.dryRun, true);
    const real = await pruneRepository(repo, { policy, orphanGracePeriodMs: 0 });
    const shape = (r: PruneReport) => r.volumes.map((v) => ({ kept: v.kept.map((k) => [k.id, k.reasons]), deleted: v.deleted.map((d) => [d.id, d.reason, d.bytesFreed]), bytes: v.bytesFreed }));
    assert.deepEqual(shape(dry), shape(real));
    assert.ok(real.backupsDeleted > 0);
    await assertRestores(real.volumes[0].kept.map((k) => k.id));
  });

  it('a record that cannot be read keeps every backup of its volume: it may need any of them', async () => {
    const a = await backup('full', '2024-01-01T10:00:00Z');
    const b = await backup('incremental', '2024-01-01T11:00:00Z');
    const c = await backup('full', '2024-01-02T10:00:00Z');
    // d builds on a (an explicit parent), then its record is damaged: prune cannot see that it needs a.
    await scatterWrites(img, 0.05, ++seed, 4 * KiB);
    const d = await createBackup(repo, { volume: img, volumeId: 'disk', mode: 'incremental', parentId: a.id, ...SMALL, snapshot: { id: null, createdAt: new Date('2024-01-01T12:00:00Z'), provider: null } });
    expected.set(d.id, await sha256File(img));
    const recordFile = path.join(repoDir, 'records', 'disk', `${d.id}.json`);
    const damaged = JSON.parse(await fs.readFile(recordFile, 'utf8'));
    damaged.size = -1;
    await fs.writeFile(recordFile, JSON.stringify(damaged));
    const before = await repositorySnapshot(repoDir);
    const report = await pruneRepository(repo, { policy: { keepLast: 1 }, orphanGracePeriodMs: 0 });
    assert.equal(report.backupsDeleted, 0);
    assert.deepEqual(report.volumes[0].kept.map((k) => k.id).sort(), [a.id, b.id, c.id].sort());
    assert.ok(report.problems.some((p) => p.includes(d.id)), report.problems.join('\n'));
    assert.ok(report.problems.some((p) => /kept because a record of this volume cannot be read/.test(p)), report.problems.join('\n'));
    const backupFiles = (snapshot: Record<string, string>) => Object.fromEntries(Object.entries(snapshot).filter(([name]) => !name.startsWith('prune/')));
    assert.deepEqual(backupFiles(await repositorySnapshot(repoDir)), backupFiles(before), 'prune changed a record or an object');
    // Repaired, the record is d's again and d restores.
    damaged.size = (await fs.stat(img)).size;
    await fs.writeFile(recordFile, JSON.stringify(damaged));
    await assertRestores([d.id]);
  });

  it('several volumes: each gets the policy on its own; --volume-id limits prune to one', async () => {
    const img2 = path.join(dir, 'other.img');
    await makeImage(img2, 320 * KiB, 9, 64 * KiB);
    const d0 = await backup('full');
    const d1 = await backup('full');
    const o0 = await backup('full', undefined, img2, 'other');
    const o1 = await backup('incremental', undefined, img2, 'other');
    const o2 = await backup('full', undefined, img2, 'other');
    const only = await pruneRepository(repo, { policy: { keepLast: 1 }, volumeId: 'other' });
    assert.deepEqual(only.volumes.map((v) => v.volumeId), ['other']);
    assert.deepEqual(ids(only.volumes[0].deleted), [o1.id, o0.id]);
    assert.ok((await listBackups(repo)).some((r) => r.id === d0.id), 'the other volume was touched');
    const all = await pruneRepository(repo, { policy: { keepLast: 1 } });
    assert.deepEqual(all.volumes.map((v) => [v.volumeId, ids(v.kept), ids(v.deleted)]), [['disk', [d1.id], [d0.id]], ['other', [o2.id], []]]);
    await assertRestores([d1.id, o2.id]);
  });

  it('failed backups and their partial objects go; keep-failed-for keeps recent ones', async () => {
    const full = await backup('full');
    const controller = new AbortController();
    let chunks = 0;
    await assert.rejects(
      createBackup(repo, {
        volume: img, volumeId: 'disk', mode: 'incremental', ...SMALL, signal: controller.signal,
        onProgress: (e) => { if (e.type === 'chunk' && ++chunks === 2) controller.abort(new Error('stop')); },
      }),
    );
    const failed = (await listBackups(repo)).find((r) => r.status === 'error')!;
    assert.ok(failed, 'no failed record');
    // A crash would have left objects behind: put one there.
    await fs.mkdir(path.dirname(path.join(repoDir, failed.objectPrefix)), { recursive: true });
    await fs.writeFile(path.join(repoDir, `${failed.objectPrefix}-00001`), Buffer.alloc(5000, 1));
    const kept = await pruneRepository(repo, { policy: { keepLast: 1, keepFailedFor: '1d' } });
    assert.deepEqual(new Set(ids(kept.volumes[0].kept)), new Set([full.id, failed.id]));
    assert.ok(kept.volumes[0].kept.find((k) => k.id === failed.id)!.reasons.includes('keep-failed-for 1d'));
    assert.equal(kept.backupsDeleted, 0);
    const report = await pruneRepository(repo, { policy: { keepLast: 1 } });
    assert.deepEqual(report.volumes[0].deleted.map((d) => [d.id, d.reason.startsWith('failed')]), [[failed.id, true]]);
    assert.equal(report.volumes[0].deleted[0].bytesFreed, 5000);
    assert.deepEqual(await objectsOf(failed), []);
    assert.deepEqual(ids(await listBackups(repo)), [full.id]);
  });

  it('objects no record covers are reported, kept for the grace period, then deleted; dry runs only report', async () => {
    const full = await backup('full');
    const stray = `volume_disk/20200101000000/backup_${randomUUID()}-00001`;
    await fs.mkdir(path.dirname(path.join(repoDir, stray)), { recursive: true });
    await fs.writeFile(path.join(repoDir, stray), Buffer.alloc(777, 2));
    const hour = 3600_000;
    const first = await pruneRepository(repo, { policy: { keepLast: 1 }, orphanGracePeriodMs: hour });
    assert.deepEqual(first.volumes[0].orphans.map((o) => [o.name, o.size, o.action, o.firstSeen]), [[stray, 777, 'kept for the grace period', null]]);
    assert.equal(first.bytesFreed, 0);
    const statePath = path.join(repoDir, `${ORPHAN_STATE_PREFIX}disk.json`);
    const state = JSON.parse(await fs.readFile(statePath, 'utf8'));
    assert.ok(state.firstSeen[stray], 'prune did not remember when it saw the orphan');
    // Still within the grace period: kept again, first sighting unchanged.
    const second = await pruneRepository(repo, { policy: { keepLast: 1 }, orphanGracePeriodMs: hour });
    assert.equal(second.volumes[0].orphans[0].firstSeen, state.firstSeen[stray]);
    await fs.access(path.join(repoDir, stray));
    // Two hours later (as far as the state says): a dry run would delete it, the real run does.
    state.firstSeen[stray] = new Date(Date.now() - 2 * hour).toISOString();
    await fs.writeFile(statePath, JSON.stringify(state));
    const before = await repositorySnapshot(repoDir);
    const dry = await pruneRepository(repo, { policy: { keepLast: 1 }, orphanGracePeriodMs: hour, dryRun: true });
    assert.equal(dry.volumes[0].orphans[0].action, 'would delete');
    assert.equal(dry.bytesFreed, 777);
    assert.deepEqual(await repositorySnapshot(repoDir), before);
    const last = await pruneRepository(repo, { policy: { keepLast: 1 }, orphanGracePeriodMs: hour });
    assert.equal(last.volumes[0].orphans[0].action, 'deleted');
    assert.equal(last.orphansDeleted, 1);
    await assert.rejects(fs.access(path.join(repoDir, stray)));
    await assert.rejects(fs.access(statePath));
    await assertRestores([full.id]);
  });

  it('a deletion a crash left half done is finished by the next prune', async () => {
    const full = await backup('full');
    const inc = await backup('incremental');
    const newer = await backup('full');
    // A prune that passed its check (commit point: metadataSha256 cleared), deleted some objects, died.
    await repo.transition(inc.id, ['available'], 'deleting');
    await repo.updateRecord(inc.id, () => ({ metadataSha256: null }));
    const objs = await objectsOf(inc);
    await fs.rm(path.join(repoDir, objs[0]));
    const report = await pruneRepository(repo, { policy: { keepLast: 1 } });
    assert.deepEqual(report.volumes[0].deleted.map((d) => [d.id, d.reason]), [[inc.id, 'unfinished deletion'], [full.id, 'no keep rule matches']]);
    assert.deepEqual(await objectsOf(inc), []);
    assert.deepEqual(ids(await listBackups(repo)), [newer.id]);
  });

  it('a deletion that died before its check is given back when a backup still depends on it', async () => {
    const full = await backup('full');
    const inc = await backup('incremental');
    const inc2 = await backup('incremental');
    await repo.transition(inc.id, ['available'], 'deleting'); // crashed right after the compare-and-swap
    const report = await pruneRepository(repo, { policy: { keepLast: 1 } });
    const v = report.volumes[0];
    assert.deepEqual(ids(v.kept), [inc2.id, inc.id, full.id]);
    assert.ok(v.kept[1].reasons.includes(`in use by ${inc2.id}`), v.kept[1].reasons.join('; '));
    assert.equal((await repo.getRecord(inc.id)).status, 'available');
    await assertRestores([inc2.id, inc.id]);
  });

  it('a backup whose writer died (lease expired) is fenced to error and removed; a live one keeps its parent', async () => {
    const full = await backup('full');
    const newer = await backup('full');
    const ghostId = randomUUID();
    const ghost = await repo.createRecord({
      ...full, id: ghostId, status: 'creating', parentId: full.id, kind: 'incremental', metadataSha256: null,
      objectPrefix: backupPrefix(repo.driver, { volumeId: 'disk', backupId: ghostId, createdAt: full.createdAt }),
      dataTimestamp: new Date().toISOString(), leaseExpiresAt: new Date(Date.now() - 1000).toISOString(),
    });
    const report = await pruneRepository(repo, { policy: { keepLast: 1 } });
    assert.deepEqual(report.volumes[0].deleted.map((d) => d.id), [ghost.record.id, full.id]);
    assert.match(report.volumes[0].deleted[0].reason, /^abandoned/);
    assert.deepEqual(ids(await listBackups(repo)), [newer.id]);
    // A live writer (lease in the future) pins its parent.
    const liveId = randomUUID();
    const live = await repo.createRecord({ ...ghost.record, id: liveId, objectPrefix: backupPrefix(repo.driver, { volumeId: 'disk', backupId: liveId, createdAt: full.createdAt }), parentId: newer.id, leaseExpiresAt: new Date(Date.now() + DEFAULT_LEASE_TTL_MS).toISOString() });
    const third = await backup('full');
    const r2 = await pruneRepository(repo, { policy: { keepLast: 1 } });
    const byId = (x: string[], y: string[]) => x[0].localeCompare(y[0]);
    assert.deepEqual(r2.volumes[0].kept.map((k) => [k.id, k.reasons[0]]).sort(byId), [[live.record.id, 'being created'], [newer.id, `parent of ${live.record.id}`], [third.id, 'keep-last']].sort(byId));
    assert.equal(r2.backupsDeleted, 0);
  });

  it('a writer that names a parent after prune marked it makes prune give that parent and its ancestors back', async () => {
    const full = await backup('full');
    const inc1 = await backup('incremental');
    const inc2 = await backup('incremental');
    const newer = await backup('full');
    // The moment that matters: after prune marked its batch `deleting`, before its one re-listing,
    // a writer on another host creates its record naming inc1 as parent (it will then see inc1 is
    // deleting and fail; prune must not have deleted inc1 by then, nor inc1's parent).
    const writerId = randomUUID();
    const driver = repo.driver;
    const list = driver.listEntries.bind(driver);
    let injected = false;
    driver.listEntries = async (container: string, prefix: string) => {
      if (!injected && prefix === 'records/disk/' && (await repo.getRecord(inc1.id)).status === 'deleting') {
        injected = true;
        await repo.createRecord({
          ...inc2, id: writerId, status: 'creating', parentId: inc1.id, metadataSha256: null, storedBytes: 0,
          objectPrefix: backupPrefix(repo.driver, { volumeId: 'disk', backupId: writerId, createdAt: inc2.createdAt }), leaseExpiresAt: new Date(Date.now() + DEFAULT_LEASE_TTL_MS).toISOString(),
        });
      }
      return list(container, prefix);
    };
    try {
      const report = await pruneRepository(repo, { policy: { keepLast: 1 } });
      assert.ok(injected, 'the writer never got its moment');
      const v = report.volumes[0];
      assert.deepEqual(ids(v.deleted), [inc2.id]);
      assert.deepEqual(v.kept.find((k) => k.id === inc1.id)?.reasons, [`in use by ${writerId}`]);
      assert.deepEqual(v.kept.find((k) => k.id === full.id)?.reasons, [`in use by ${inc1.id}`]);
      assert.equal((await repo.getRecord(inc1.id)).status, 'available');
      assert.equal((await repo.getRecord(full.id)).status, 'available');
    } finally {
      driver.listEntries = list;
    }
    await assertRestores([inc1.id, full.id, newer.id]);
  });

  it('bad policies are refused before anything is read or changed', async () => {
    await backup('full');
    const before = await repositorySnapshot(repoDir);
    await assert.rejects(pruneRepository(repo, { policy: { keepDaily: -3 } }), /keep-daily/);
    await assert.rejects(pruneRepository(repo, { policy: { keepWithin: '2 weeks' } }), /keep-within "2 weeks" is not a duration/);
    await assert.rejects(pruneRepository(repo, { policy: { keepLast: 1 }, volumeId: '../etc' }), /invalid volume id/);
    assert.deepEqual(await repositorySnapshot(repoDir), before);
  });

  describe('CLI', () => {
    it('prune --dry-run, --json and the real run; delete --cascade', async () => {
      const a0 = await backup('full');
      const a1 = await backup('incremental');
      const b0 = await backup('full');
      const b1 = await backup('incremental');
      const before = await repositorySnapshot(repoDir);
      const dry = await runCli(['prune', '--repo', repoDir, '--keep-last', '2', '--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /^dry run: keep the 2 newest/);
      assert.match(dry.stdout, new RegExp(`would delete +${a1.id}  incremental .*no keep rule matches`));
      assert.match(dry.stdout, new RegExp(`keep +${b0.id}  full .*parent of ${b1.id}`));
      assert.match(dry.stdout, /would delete 2 backup\(s\) and 0 unreferenced object\(s\)/);
      assert.deepEqual(await repositorySnapshot(repoDir), before);

      const real = await runCli(['prune', '--repo', repoDir, '--keep-last', '2', '--json', '--progress', 'json']);
      assert.equal(real.code, 0, real.stderr);
      const report = JSON.parse(real.stdout) as PruneReport;
      assert.deepEqual(report.volumes[0].deleted.map((d) => d.id), [a1.id, a0.id]);
      const progress = real.stderr.trim().split('\n').map((l) => JSON.parse(l) as ProgressEvent);
      assert.deepEqual(progress.map((e) => e.backupId), [a1.id, a0.id]);

      const bad = await runCli(['prune', '--repo', repoDir, '--keep-within', '1w']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /keep-within "1w" is not a duration/);

      const refused = await runCli(['delete', '--repo', repoDir, '--backup', b0.id]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, new RegExp(`${b1.id} depends on it`));
      const cascade = await runCli(['delete', '--repo', repoDir, '--backup', b0.id, '--cascade']);
      assert.equal(cascade.code, 0, cascade.stderr);
      assert.deepEqual(await listBackups(repo), []);
      assert.deepEqual((await listFiles(repoDir)).filter((f) => f.startsWith('volume_')), []);
    });
  });
});
