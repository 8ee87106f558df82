/**
 * Start-up cleanup and reset-status with real crashes: CLI processes of several hosts sharing one posix
 * repository are stopped (SIGSTOP) at a known point and killed (SIGKILL); then `volume-backup cleanup
 * --host H` must fix exactly H's leftovers and nothing of any other host.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { BackupRecord, Repository, cleanupHost, createBackup, openRepository, verifyRepository } from '../lib';
import { lockName } from '../lib/repository/locks';
import { backupPrefix } from '../lib/repository/layout';
import { newBackupId } from '../lib/repository/names';
import { cliEnv, cliJson, runCli } from './helpers/cli';
import { finishKill, isChunkEvent, killAtFirstChunk, startCli } from './helpers/cli-process';
import { makeImage, sha256File, tempDir } from './helpers/volumes';

const MiB = 1024 * 1024;
/** Slow enough (zlib level 9, small chunks) that a process can be stopped in the middle. */
const SLOW = ['--chunk-size', '256K', '--compression', 'zlib', '--compression-level', '9', '--progress', 'json'];

describe('start-up cleanup and reset-status (posix, real crashes)', function () {
  this.timeout(90_000);
  let dir: string;
  let repoDir: string;
  let stateDir: string;
  let repo: Repository;

  before(async () => {
    dir = await tempDir('cleanup');
    stateDir = path.join(dir, 'state');
    await makeImage(path.join(dir, 'slow-a.img'), 24 * MiB, 21);
    await makeImage(path.join(dir, 'slow-b.img'), 24 * MiB, 22);
    await makeImage(path.join(dir, 'small.img'), 2 * MiB, 23);
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    repoDir = path.join(dir, `repo-${Math.random().toString(36).slice(2)}`);
    repo = await openRepository(repoDir, { create: true, host: 'test-runner' });
  });
  afterEach(async () => {
    await repo.close();
    await fs.rm(repoDir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => runCli([...args, '--repo', repoDir], { env: cliEnv({ VOLUME_BACKUP_STATE_DIR: stateDir }) });
  const recordFile = (r: { volumeId: string; id: string }) => path.join(repoDir, 'records', r.volumeId, `${r.id}.json`);
  const exists = (p: string) => fs.access(p).then(() => true, () => false);

  async function crashBackup(host: string, image: string, volumeId: string): Promise<BackupRecord> {
    const worker = startCli(['create', '--repo', repoDir, '--host', host, '--volume', path.join(dir, image), '--volume-id', volumeId, ...SLOW]);
    const backupId = await killAtFirstChunk(worker);
    const record = await repo.getRecord(backupId);
    assert.equal(record.status, 'creating', 'the worker was stopped mid-backup');
    assert.ok((await repo.listObjects(record.objectPrefix)).length > 0, 'some objects were written');
    const killed = await finishKill(worker);
    assert.equal(killed.signal, 'SIGKILL');
    return record;
  }

  it("turns only the named host's interrupted backup into error, removes its objects and lease, and touches no other host", async () => {
    const dead = await crashBackup('host-dead', 'slow-a.img', 'vol-a');
    const other = await crashBackup('host-other', 'slow-b.img', 'vol-b');
    const otherRecordBefore = await fs.readFile(recordFile(other));
    const otherObjectsBefore = await repo.listObjects(other.objectPrefix);
    const otherLeaseBefore = await fs.readFile(path.join(repoDir, lockName('vol-b')));

    const result = await cliJson<{ failedBackups: { backupId: string; reason: string }[]; releasedLeases: { volumeId: string }[]; skipped: unknown[] }>(
      ['cleanup', '--repo', repoDir, '--host', 'host-dead', '--state-dir', stateDir],
    );
    assert.deepEqual(result.failedBackups.map((b) => b.backupId), [dead.id]);
    assert.deepEqual(result.releasedLeases.map((l) => l.volumeId), ['vol-a']);
    assert.deepEqual(result.skipped, []);

    const after = await repo.getRecord(dead.id);
    assert.equal(after.status, 'error');
    assert.match(after.failReason ?? '', /interrupted: the process on host host-dead .* stopped/);
    assert.deepEqual(await repo.listObjects(dead.objectPrefix), [], 'the partial objects are gone');
    assert.equal(await exists(path.join(repoDir, lockName('vol-a'))), false, 'the dead lease is released');

    // Host-other's crash is not ours to clean: record, objects and lease exactly as they were.
    assert.deepEqual(await fs.readFile(recordFile(other)), otherRecordBefore);
    assert.deepEqual(await repo.listObjects(other.objectPrefix), otherObjectsBefore);
    assert.deepEqual(await fs.readFile(path.join(repoDir, lockName('vol-b'))), otherLeaseBefore);

    // The cleaned volume is free at once; the other one still says who holds it.
    const again = await cli('create', '--host', 'host-dead', '--volume', path.join(dir, 'small.img'), '--volume-id', 'vol-a', '--json');
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).status, 'available');
    const busy = await cli('create', '--host', 'host-new', '--volume', path.join(dir, 'small.img'), '--volume-id', 'vol-b');
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /volume vol-b is busy: host host-other \(pid \d+\) is running backup since .*try again when it has finished/);

    // An operator retires host-other: refused while its lease is live, unless forced.
    const refused = await cli('reset-status', '--backup', other.id, '--status', 'error');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /is creating and its lease runs until .*host-other may still be working on it.*--force/);
    assert.equal((await repo.getRecord(other.id)).status, 'creating');
    const forced = await cli('reset-status', '--backup', other.id, '--status', 'error', '--force');
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /creating → error/);
    const retired = await repo.getRecord(other.id);
    assert.equal(retired.status, 'error');
    assert.match(retired.failReason ?? '', /reset to error by an operator \(was creating\)/);

    const verified = await verifyRepository(repo, { readData: true });
    assert.deepEqual(verified.problems, []);
  });

  it('leaves a live process of the same host alone (it finishes normally)', async () => {
    const worker = startCli(['create', '--repo', repoDir, '--host', 'host-same', '--volume', path.join(dir, 'slow-a.img'), '--volume-id', 'vol-a', ...SLOW]);
    const backupId = await killAtFirstChunk(worker); // stopped, not dead
    try {
      const result = await cliJson<{ failedBackups: unknown[]; skipped: { backupId: string; reason: string }[]; releasedLeases: unknown[] }>(
        ['cleanup', '--repo', repoDir, '--host', 'host-same', '--state-dir', stateDir],
      );
      assert.deepEqual(result.failedBackups, []);
      assert.deepEqual(result.releasedLeases, []);
      assert.equal(result.skipped.length, 1);
      assert.equal(result.skipped[0].backupId, backupId);
      assert.match(result.skipped[0].reason, new RegExp(`process ${worker.pid} of this host is creating it`));
    } finally {
      process.kill(worker.pid, 'SIGCONT');
    }
    const done = await worker.result;
    assert.equal(done.code, 0, done.stderr);
    const record = await repo.getRecord(backupId);
    assert.equal(record.status, 'available');
    const target = path.join(dir, 'same.img');
    assert.equal((await runCli(['restore', '--repo', repoDir, '--backup', backupId, '--target', target])).code, 0);
    assert.equal(await sha256File(target), await sha256File(path.join(dir, 'slow-a.img')));
    await fs.rm(target);
  });

  for (const existing of [false, true]) it(`gives back a backup whose restore was killed (the restoring process owns it) once that process is gone; the incomplete target ${existing ? 'that existed is reported' : 'it had created is removed'}`, async () => {
    const backup = await createBackup(repo, { volume: path.join(dir, 'slow-b.img'), volumeId: `vol-b${existing ? '-2' : ''}`, chunkSize: 256 * 1024, compression: 'none' });
    const target = path.join(dir, 'restore-target.img');
    if (existing) await fs.writeFile(target, Buffer.alloc((await fs.stat(path.join(dir, 'slow-b.img'))).size, 0x5a));
    const restorer = startCli(['restore', '--repo', repoDir, '--host', 'host-restorer', '--backup', backup.id, '--target', target, '--progress', 'json', ...(existing ? ['--overwrite'] : [])]);
    await restorer.waitForLine((l) => l.includes('"type":"start"') || isChunkEvent(l));
    process.kill(restorer.pid, 'SIGSTOP');
    const during = await repo.getRecord(backup.id);
    assert.equal(during.status, 'restoring', 'stopped mid-restore');
    assert.equal(during.host, 'test-runner', 'the creator stays recorded');
    assert.deepEqual({ host: during.owner?.host, pid: during.owner?.pid, operation: during.owner?.operation }, { host: 'host-restorer', pid: restorer.pid, operation: 'restore' });
    assert.deepEqual(during.restoreTarget, { path: target, host: 'host-restorer', created: !existing }, 'the record names the target and the host writing it');

    // Neither the creator's cleanup nor the restorer's touches it while the restoring process lives.
    const creator = await cleanupHost(repo, { host: 'test-runner', snapshots: false });
    assert.deepEqual(creator.failedRestores, []);
    const early = await cleanupHost(repo, { host: 'host-restorer', snapshots: false });
    assert.deepEqual(early.failedRestores, []);
    assert.match(early.skipped[0]?.reason ?? '', new RegExp(`process ${restorer.pid} of this host is restoring it`));
    assert.equal((await repo.getRecord(backup.id)).status, 'restoring');

    await finishKill(restorer);
    const later = await cleanupHost(repo, { host: 'host-restorer', snapshots: false });
    assert.deepEqual(later.failedRestores, [{ backupId: backup.id, volumeId: backup.volumeId, target: { path: target, host: 'host-restorer', created: !existing }, targetRemoved: !existing }]);
    assert.equal(await fs.stat(target).then(() => true, () => false), existing, existing ? 'a target that existed is left (reported incomplete)' : 'the half-written target the restore created is removed');
    const after = await repo.getRecord(backup.id);
    assert.equal(after.restoreTarget, null);
    assert.equal(after.status, 'available');
    assert.equal(after.owner, null);
    assert.equal(after.leaseExpiresAt, null);
    assert.equal((await restoreBackupVerify(repo, backup.id)), true);
    await fs.rm(target, { force: true });
  });

  it('finishes an interrupted deletion of its own, and gives one back when a backup depends on it now', async () => {
    const small = path.join(dir, 'small.img');
    const gone = await createBackup(repo, { volume: small, volumeId: 'vol-c' });
    const kept = await createBackup(repo, { volume: small, volumeId: 'vol-d' });
    // A deleter that crashed after its commit point (and had removed some objects)…
    await repo.transition(gone.id, ['available'], 'deleting', { leaseExpiresAt: null });
    await repo.updateRecord(gone.id, () => ({ metadataSha256: null }));
    const objects = await repo.listObjects(gone.objectPrefix);
    await repo.deleteObject(objects[0].name);
    // …and one that crashed before it, while an incremental started using the backup.
    await repo.transition(kept.id, ['available'], 'deleting', { leaseExpiresAt: null });
    const child = await plantDependent(repo, kept);

    const result = await cleanupHost(repo, { snapshots: false });
    assert.deepEqual(result.finishedDeletes.map((d) => d.backupId), [gone.id]);
    assert.deepEqual(result.keptDeletes.map((d) => d.backupId), [kept.id]);
    assert.deepEqual(await repo.listObjects(gone.objectPrefix), []);
    assert.equal(await exists(recordFile(gone)), false);
    assert.equal((await repo.getRecord(kept.id)).status, 'available');
    assert.equal((await verifyRepository(repo, { readData: true })).ok, true);
    assert.equal(child.parentId, kept.id);
  });

  it('reset-status --status available checks the objects first and refuses an incomplete backup', async () => {
    const complete = await crashAfterObjects(repo, path.join(dir, 'small.img'), 'vol-e');
    const incomplete = await crashAfterObjects(repo, path.join(dir, 'small.img'), 'vol-f');
    await fs.rm(path.join(repoDir, `${incomplete.objectPrefix}_segment-000000`));

    const refused = await cli('reset-status', '--backup', incomplete.id, '--status', 'available');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /cannot be made available: segment 0 of backup .* is missing.*Reset it to error instead/);
    assert.equal((await repo.getRecord(incomplete.id)).status, 'creating');

    const ok = await cli('reset-status', '--backup', complete.id, '--status', 'available', '--json');
    assert.equal(ok.code, 0, ok.stderr);
    const record = await repo.getRecord(complete.id);
    assert.equal(record.status, 'available');
    assert.match(record.metadataSha256 ?? '', /^[0-9a-f]{64}$/, 'the record vouches for its metadata again');
    const target = path.join(dir, 'reset.img');
    assert.equal((await runCli(['restore', '--repo', repoDir, '--backup', complete.id, '--target', target])).code, 0);
    assert.equal(await sha256File(target), await sha256File(path.join(dir, 'small.img')));
    await fs.rm(target);
  });
});

async function restoreBackupVerify(repo: Repository, backupId: string): Promise<boolean> {
  return (await verifyRepository(repo, { backupId, readData: true })).ok;
}

/** An incremental whose writer chose `parent` before its deletion began (the race prune guards against). */
async function plantDependent(repo: Repository, parent: BackupRecord): Promise<BackupRecord> {
  const now = new Date().toISOString();
  const id = newBackupId();
  const record: BackupRecord = {
    ...parent, id, parentId: parent.id, kind: 'incremental', status: 'creating', metadataSha256: null, createdAt: now, updatedAt: now,
    dataTimestamp: now, leaseExpiresAt: new Date(Date.now() + 60_000).toISOString(), host: 'someone-else', objectPrefix: backupPrefix(repo.driver, { volumeId: parent.volumeId, backupId: id, createdAt: now }),
  };
  await repo.createRecord(record);
  return record;
}

/**
 * A backup whose process stopped after writing every object but before its record said available:
 * made by a real backup whose record is then put back to `creating`, as the crash would have left it.
 */
async function crashAfterObjects(repo: Repository, volume: string, volumeId: string): Promise<BackupRecord> {
  const done = await createBackup(repo, { volume, volumeId });
  const file = repo.recordName(done.volumeId, done.id);
  const crashed = { ...done, status: 'creating', metadataSha256: null, storedBytes: 0, objectCount: 0, leaseExpiresAt: new Date(Date.now() - 1000).toISOString(), host: 'host-gone' };
  await repo.driver.writeObject(repo.container, file, Buffer.from(JSON.stringify(crashed)));
  return { ...done, ...crashed } as BackupRecord;
}
