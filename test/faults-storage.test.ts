/**
 * Storage faults on real file systems: a disk that fills up (a small ext4 on a loop device), permission
 * denied (the CLI run as an unprivileged user), objects that vanish during a restore, a verify or a
 * backup. Each either succeeds or fails with a clear one-line error and a clean repository: no
 * available record, partial objects removed, nothing stuck, and the repository works again once the
 * fault is gone. (Object-store 5xx/429/resets/truncations: test/drivers-faults.test.ts.)
 */
import { strict as assert } from 'assert';
import { execFile } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import {
  BackupRecord, Repository, VolumeBackupError, cleanupHost, createBackup, initRepository, openRepository, restoreBackup, verifyRepository,
} from '../lib';
import { CliResult, cliEnv, runCli } from './helpers/cli';
import { skipped, tryCase } from './helpers/fault-report';
import { Prng, listFiles, makeImage, sha256File, tempDir } from './helpers/volumes';

const exec = promisify(execFile);
const KiB = 1024;
const MiB = 1024 * KiB;
const NOBODY = 65534;
const AFTER_REBOOT = () => new Date(Date.now() + 10 * 60_000);
const PASSPHRASE = 'storage fault passphrase';
const FAST_KDF = { N: 2 ** 14, r: 8, p: 1 };

function oneLineError(r: CliResult, pattern: RegExp, codes = [1]): void {
  assert.ok(codes.includes(r.code ?? -1), `exit code ${r.code}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0], pattern);
}

/** The repository is clean: no available backup besides `keep`, no partial objects, no temporaries, no leases. */
async function assertClean(repoDir: string, keep: string[] = [], passphrase?: string): Promise<void> {
  const repo = await openRepository(repoDir, { passphrase });
  try {
    const records = await repo.listRecords();
    for (const r of records) {
      if (keep.includes(r.id)) assert.equal(r.status, 'available', `backup ${r.id} is ${r.status}`);
      else assert.notEqual(r.status, 'available', `failed backup ${r.id} looks available`);
    }
    const kept = records.filter((r) => keep.includes(r.id)).map((r) => path.basename(r.objectPrefix));
    const stray = (await repo.listObjects('volume_')).filter((o) => !kept.some((k) => path.basename(o.name).startsWith(k)));
    assert.deepEqual(stray.map((o) => o.name), [], 'partial objects are left');
    const temporaries = (await listFiles(repoDir)).filter((f) => f.includes('.tmp-') || f.endsWith('.lock'));
    assert.deepEqual(temporaries, [], 'temporary files are left');
    assert.deepEqual((await repo.driver.listEntries(repo.container, 'locks/')).map((e) => e.name), [], 'a volume lease is left');
  } finally {
    await repo.close();
  }
}

/** After the fault is gone: cleanup, verify, and a backup and restore work. */
async function assertRecovers(repoDir: string, volume: string, scratch: string, passphrase?: string): Promise<void> {
  const repo = await openRepository(repoDir, { passphrase });
  try {
    const cleaned = await cleanupHost(repo, { now: AFTER_REBOOT, snapshots: false });
    assert.deepEqual(cleaned.errors, []);
    for (const r of await repo.listRecords()) assert.ok(['available', 'error'].includes(r.status), `backup ${r.id} is ${r.status}`);
    const verified = await verifyRepository(repo, { readData: true, now: AFTER_REBOOT });
    assert.ok(verified.ok, verified.problems.map((p) => p.message).join('; '));
    const rec = await createBackup(repo, { volume, volumeId: 'recovered', chunkSize: 256 * KiB, blockSize: 4 * KiB });
    const out = path.join(scratch, 'recovered.img');
    await fs.rm(out, { force: true });
    await restoreBackup(repo, { backupId: rec.id, target: out });
    assert.equal(await sha256File(out), await sha256File(volume));
    await fs.rm(out);
  } finally {
    await repo.close();
  }
}

async function randomImage(file: string, size: number, seed: number): Promise<void> {
  await fs.writeFile(file, new Prng(seed).fill(Buffer.alloc(size)));
}

describe('fault suite: storage faults', function () {
  this.timeout(300_000);
  let base: string;
  const failures: string[] = [];

  before(async () => {
    base = await tempDir('storage');
    await fs.chmod(base, 0o755);
  });
  after(async () => {
    await fs.rm(base, { recursive: true, force: true });
  });

  describe('disk full (ext4 on a loop device)', () => {
    let mnt = '';
    let image = '';
    before(async function () {
      if (process.getuid?.() !== 0) {
        skipped('disk full', `needs root for a loop mount; running as uid ${process.getuid?.()}`);
        return this.skip();
      }
      image = path.join(base, 'small-fs.img');
      mnt = path.join(base, 'mnt');
      await fs.mkdir(mnt);
      await fs.writeFile(image, '');
      await fs.truncate(image, 24 * MiB);
      try {
        await exec('mkfs.ext4', ['-q', '-F', '-m', '0', image]);
        await exec('mount', ['-o', 'loop', image, mnt]);
      } catch (err) {
        skipped('disk full', `cannot make or mount an ext4 image: ${(err as Error).message.split('\n')[0]}`);
        mnt = '';
        return this.skip();
      }
    });
    after(async () => {
      if (mnt) await exec('umount', [mnt]).catch(() => exec('umount', ['-l', mnt]));
    });

    async function freeBytes(): Promise<number> {
      const st = await fs.statfs(mnt);
      return st.bavail * st.bsize;
    }

    /** Allocate a filler file that leaves about `budget` bytes free (the file's own extents need room too). */
    async function fillUpTo(filler: string, budget: number): Promise<void> {
      for (let size = (await freeBytes()) - budget; size > 0; size -= 16 * KiB) {
        try {
          await exec('fallocate', ['-l', String(size), filler]);
          return;
        } catch {
          await fs.rm(filler, { force: true });
        }
      }
    }

    // Leave this much room before the backup: from nothing (even the record cannot be written) to most
    // of the file system (the failure comes late, during the data objects).
    const budgets = [0, 2 * KiB, 16 * KiB, 64 * KiB, 512 * KiB, 2 * MiB, 8 * MiB, -1];
    for (const encrypted of [false, true]) {
      it(`${encrypted ? 'encrypted' : 'plain'} repository: a backup that fills the disk fails cleanly at ${budgets.length} fill levels, and the repository works again`, async () => {
        const volume = path.join(base, 'big.img');
        await randomImage(volume, 40 * MiB, 3);
        const small = path.join(base, 'small.img');
        await makeImage(small, 512 * KiB, 4, 64 * KiB);
        const passphrase = encrypted ? PASSPHRASE : undefined;
        const env = cliEnv(encrypted ? { VOLUME_BACKUP_PASSPHRASE: PASSPHRASE } : {});
        for (const budget of budgets) {
          const repoDir = path.join(mnt, 'repo');
          await fs.rm(repoDir, { recursive: true, force: true });
          await (await initRepository(repoDir, encrypted ? { encrypt: true, passphrase: PASSPHRASE, kdf: FAST_KDF } : {})).close();
          const filler = path.join(mnt, 'filler');
          if (budget >= 0) await fillUpTo(filler, budget);
          const label = budget < 0 ? 'the whole file system free' : `${budget} bytes free`;
          const failure = await tryCase('storageFaults', `disk full (${encrypted ? 'encrypted' : 'plain'})`, label, async () => {
            const r = await runCli(['create', '--repo', repoDir, '--volume', volume, '--volume-id', 'big', '--chunk-size', '256K', '--block-size', '4K', '--compression', 'zstd'], { env });
            // What was being written, where, and what to do; no bare "ENOSPC: …, write", no class name.
            oneLineError(r, new RegExp(`^volume-backup create: error: (.*: )?cannot write (object \\S+|its directory) to the repository at ${repoDir}: no space left on device \\(ENOSPC\\): free space on the file system of ${repoDir}, or prune old backups`));
            assert.doesNotMatch(r.stderr, /VolumeBackupError|ENOSPC: no space left on device, write/);
            await fs.rm(filler, { force: true });
            await assertClean(repoDir, [], passphrase);
            await assertRecovers(repoDir, small, base, passphrase);
          });
          await fs.rm(filler, { force: true });
          if (failure) failures.push(failure);
        }
        assert.deepEqual(failures, []);
      });
    }

    it('a restore onto a file system too small fails clearly, removes its target, and leaves the backup available', async () => {
      const repoDir = path.join(base, 'repo-for-restore');
      const volume = path.join(base, 'big-restore.img');
      await randomImage(volume, 32 * MiB, 5);
      const repo = await initRepository(repoDir);
      let rec: BackupRecord;
      try {
        rec = await createBackup(repo, { volume, volumeId: 'big', chunkSize: MiB, blockSize: 4 * KiB });
      } finally {
        await repo.close();
      }
      await fs.rm(path.join(mnt, 'repo'), { recursive: true, force: true });
      const target = path.join(mnt, 'restored.img');
      const failure = await tryCase('storageFaults', 'disk full (restore target)', 'target larger than the file system', async () => {
        const r = await runCli(['restore', '--repo', repoDir, '--backup', rec.id, '--target', target]);
        oneLineError(r, new RegExp(`^volume-backup restore: error: cannot write the restore target ${target}: no space left on device \\(ENOSPC\\): free space on the file system of ${target}, or restore to a larger one`));
        await assert.rejects(fs.stat(target), 'the partial target was removed');
        await assertClean(repoDir, [rec.id]);
        const again = path.join(base, 'restored-elsewhere.img');
        const ok = await runCli(['restore', '--repo', repoDir, '--backup', rec.id, '--target', again]);
        assert.equal(ok.code, 0, ok.stderr);
        assert.equal(await sha256File(again), await sha256File(volume));
        await fs.rm(again);
      });
      if (failure) failures.push(failure);
      assert.deepEqual(failures, []);
    });
  });

  describe('permission denied (the CLI as an unprivileged user)', () => {
    let volume = '';
    const asNobody = { uid: NOBODY, gid: NOBODY };

    before(async function () {
      if (process.getuid?.() !== 0) {
        skipped('permission denied', `needs root to run the CLI as another user; running as uid ${process.getuid?.()}`);
        return this.skip();
      }
      // The unprivileged user must be able to run the CLI at all (the checkout readable by it).
      const probe = await runCli(['--help'], asNobody);
      if (probe.code !== 0) {
        skipped('permission denied', `uid ${NOBODY} cannot run the CLI from this checkout (${probe.stderr.split('\n')[0]}): make the checkout readable by others`);
        return this.skip();
      }
      volume = path.join(base, 'perm.img');
      await makeImage(volume, MiB, 6, 64 * KiB);
      await fs.chmod(volume, 0o644);
    });

    async function repoWithBackup(name: string): Promise<{ dir: string; rec: BackupRecord }> {
      const dir = path.join(base, name);
      const repo = await initRepository(dir);
      try {
        const rec = await createBackup(repo, { volume, volumeId: 'v', chunkSize: 64 * KiB, blockSize: 4 * KiB });
        return { dir, rec };
      } finally {
        await repo.close();
      }
    }
    const chownR = (dir: string) => exec('chown', ['-R', `${NOBODY}:${NOBODY}`, dir]);
    const rootOwned = async (dir: string) => {
      await exec('chown', ['-R', '0:0', dir]);
      await exec('chmod', ['-R', 'u=rwX,go=rX', dir]);
    };

    const cases: { name: string; run: () => Promise<void> }[] = [
      {
        name: 'the repository is not writable: create fails, nothing is written',
        run: async () => {
          const dir = path.join(base, 'p-readonly');
          await (await initRepository(dir)).close();
          await rootOwned(dir);
          const before = await listFiles(dir);
          oneLineError(await runCli(['create', '--repo', dir, '--volume', volume, '--volume-id', 'v'], asNobody), /permission denied|EACCES/i);
          assert.deepEqual(await listFiles(dir), before);
        },
      },
      {
        name: 'records writable, data area not: the backup ends in error, never available',
        run: async () => {
          const dir = path.join(base, 'p-data');
          await (await initRepository(dir)).close();
          await chownR(dir);
          await fs.mkdir(path.join(dir, 'volume_v'), { mode: 0o755 });
          oneLineError(await runCli(['create', '--repo', dir, '--volume', volume, '--volume-id', 'v'], asNobody), /permission denied|EACCES/i);
          const repo = await openRepository(dir);
          try {
            const records = await repo.listRecords();
            assert.equal(records.length, 1);
            assert.equal(records[0].status, 'error');
            assert.match(records[0].failReason ?? '', /permission denied|EACCES/i);
          } finally {
            await repo.close();
          }
          await assertClean(dir);
        },
      },
      {
        name: 'records not writable: delete fails and the backup stays available and restorable',
        run: async () => {
          const { dir, rec } = await repoWithBackup('p-delete');
          await chownR(dir);
          await rootOwned(path.join(dir, 'records'));
          oneLineError(await runCli(['delete', '--repo', dir, '--backup', rec.id], asNobody), /permission denied|EACCES/i);
          await assertClean(dir, [rec.id]);
          await assertRecovers(dir, volume, base);
        },
      },
      {
        name: 'data area not writable: delete fails, the backup is never half-available, cleanup finishes it later',
        run: async () => {
          const { dir, rec } = await repoWithBackup('p-delete-data');
          await chownR(dir);
          await rootOwned(path.join(dir, 'volume_v'));
          oneLineError(await runCli(['delete', '--repo', dir, '--backup', rec.id], asNobody), /permission denied|EACCES/i);
          const repo = await openRepository(dir);
          try {
            const r = await repo.getRecord(rec.id).catch(() => null);
            assert.ok(!r || r.status !== 'available' || (await restoreBackup(repo, { backupId: rec.id, verifyOnly: true })), 'an available backup must be complete');
          } finally {
            await repo.close();
          }
          await assertRecovers(dir, volume, base);
          const after = await openRepository(dir);
          try {
            assert.equal((await after.listRecords()).some((r) => r.id === rec.id), false, 'cleanup finished the deletion');
          } finally {
            await after.close();
          }
        },
      },
      {
        name: 'the volume is not readable: create fails, no record',
        run: async () => {
          const dir = path.join(base, 'p-volume');
          await (await initRepository(dir)).close();
          await chownR(dir);
          const secretVolume = path.join(base, 'root-only.img');
          await fs.copyFile(volume, secretVolume);
          await fs.chmod(secretVolume, 0o600);
          oneLineError(await runCli(['create', '--repo', dir, '--volume', secretVolume, '--volume-id', 'v'], asNobody), /not readable|permission denied|EACCES/i, [1, 2]);
          await assertClean(dir);
        },
      },
      {
        name: 'the restore target directory is not writable: restore fails, the backup stays available',
        run: async () => {
          const { dir, rec } = await repoWithBackup('p-target');
          await chownR(dir);
          const targetDir = path.join(base, 'root-dir');
          await fs.mkdir(targetDir, { mode: 0o755 });
          oneLineError(await runCli(['restore', '--repo', dir, '--backup', rec.id, '--target', path.join(targetDir, 'out.img')], asNobody), /permission denied|EACCES/i, [1, 2]);
          assert.deepEqual(await fs.readdir(targetDir), []);
          await assertClean(dir, [rec.id]);
        },
      },
      {
        name: 'an existing target is read-only: restore fails, the file is unchanged',
        run: async () => {
          const { dir, rec } = await repoWithBackup('p-target-ro');
          await chownR(dir);
          const target = path.join(base, 'readonly-target.img');
          await fs.writeFile(target, Buffer.alloc(2 * MiB, 0x33));
          await fs.chmod(target, 0o444);
          const sha = await sha256File(target);
          oneLineError(await runCli(['restore', '--repo', dir, '--backup', rec.id, '--target', target, '--overwrite'], asNobody), /permission denied|EACCES/i);
          assert.equal(await sha256File(target), sha);
          await assertClean(dir, [rec.id]);
        },
      },
      {
        name: 'repository.json is not readable: every command fails clearly',
        run: async () => {
          const { dir, rec } = await repoWithBackup('p-config');
          await chownR(dir);
          await exec('chown', ['0:0', path.join(dir, 'repository.json')]);
          await fs.chmod(path.join(dir, 'repository.json'), 0o600);
          for (const args of [['list'], ['show', '--backup', rec.id], ['restore', '--backup', rec.id, '--verify-only'], ['verify']]) {
            oneLineError(await runCli([args[0], '--repo', dir, ...args.slice(1)], asNobody), /permission denied|EACCES/i);
          }
          await assertClean(dir, [rec.id]);
        },
      },
    ];

    it(`${cases.length} permission faults: each a clear one-line error and a clean repository`, async () => {
      for (const c of cases) {
        const failure = await tryCase('storageFaults', 'permission denied', c.name, c.run);
        if (failure) failures.push(failure);
      }
      assert.deepEqual(failures, []);
    });
  });

  describe('objects that vanish', () => {
    // Each case gets its own repository with one full backup.
    let dir: string;
    let repo: Repository;
    let rec: BackupRecord;
    let volume: string;

    async function fixture(): Promise<void> {
      dir = await fs.mkdtemp(path.join(base, 'vanish-'));
      volume = path.join(dir, 'v.img');
      await makeImage(volume, 2 * MiB, 8, 64 * KiB);
      repo = await initRepository(path.join(dir, 'repo'));
      rec = await createBackup(repo, { volume, volumeId: 'v', chunkSize: 64 * KiB, blockSize: 4 * KiB, compression: 'none' });
    }

    async function dataObjects(r: BackupRecord): Promise<string[]> {
      return (await repo.listObjects(r.objectPrefix + '-')).map((o) => o.name);
    }

    it('mid-restore, mid-verify and before an incremental: clear errors naming the object, nothing left half-done', async () => {
      const cases: { name: string; run: () => Promise<void> }[] = [
        {
          name: 'a data object vanishes during a restore',
          run: async () => {
            const objects = await dataObjects(rec);
            const victim = objects[objects.length - 1];
            const target = path.join(dir, 'out.img');
            let events = 0;
            await assert.rejects(
              restoreBackup(repo, { backupId: rec.id, target, onProgress: (e) => { if (e.type === 'chunk' && ++events === 2) void repo.deleteObject(victim); } }),
              (err: VolumeBackupError) => err.code === 'OBJECT_MISSING' && err.message.includes(victim) && err.message.includes(rec.id),
            );
            await assert.rejects(fs.stat(target), 'the partial target was removed');
            assert.equal((await repo.getRecord(rec.id)).status, 'available', 'the backup is not left restoring');
          },
        },
        {
          name: "a backup's whole directory vanishes during a restore",
          run: async () => {
            const target = path.join(dir, 'out2.img');
            let events = 0;
            await assert.rejects(
              restoreBackup(repo, { backupId: rec.id, target, onProgress: (e) => { if (e.type === 'chunk' && ++events === 1) void fs.rm(path.join(repo.driver.location, path.dirname(rec.objectPrefix)), { recursive: true, force: true }); } }),
              (err: VolumeBackupError) => err.code === 'OBJECT_MISSING' && err.message.includes(rec.id),
            );
            await assert.rejects(fs.stat(target));
            const verified = await verifyRepository(repo, { readData: true });
            assert.ok(!verified.ok && verified.problems.some((p) => p.message.includes(rec.id)), 'verify reports the backup');
          },
        },
        {
          name: 'a data object vanishes during verify --read-data',
          run: async () => {
            const objects = await dataObjects(rec);
            const victim = objects[objects.length - 2];
            let events = 0;
            const verified = await verifyRepository(repo, { readData: true, onProgress: (e) => { if (e.type === 'chunk' && ++events === 2) void repo.deleteObject(victim); } });
            assert.ok(!verified.ok, 'verify passed a backup whose object vanished');
            assert.ok(verified.problems.some((p) => p.message.includes(path.basename(victim)) || p.message.includes(rec.id)), verified.problems.map((p) => p.message).join('; '));
          },
        },
        {
          // The parent's segments are read a window at a time while the incremental runs (docs/format.md):
          // it fails naming the parent, and ends in error with nothing of it left.
          name: "the parent's segment object vanishes before an incremental",
          run: async () => {
            await repo.deleteObject(`${rec.objectPrefix}_segment-000000`);
            await assert.rejects(
              createBackup(repo, { volume, volumeId: 'v', mode: 'incremental' }),
              (err: VolumeBackupError) => err.code === 'OBJECT_MISSING' && err.message.includes(rec.id),
            );
            const failed = (await repo.listRecords()).filter((r) => r.id !== rec.id);
            assert.deepEqual(failed.map((r) => r.status), ['error'], 'the incremental that could not read its parent is not available');
            assert.deepEqual(await repo.listObjects(failed[0].objectPrefix), [], 'and left no objects');
          },
        },
        {
          name: "objects of a running backup vanish before it finishes (it must not end available and incomplete)",
          run: async () => {
            let events = 0;
            let deleted = '';
            const result = await createBackup(repo, {
              volume, volumeId: 'v2', chunkSize: 64 * KiB, blockSize: 4 * KiB, compression: 'none',
              onProgress: (e) => {
                if (e.type === 'chunk' && ++events === 10) {
                  void repo.listObjects('volume_v2/').then(async (found) => {
                    deleted = found[0]?.name ?? '';
                    if (deleted) await repo.deleteObject(deleted);
                  });
                }
              },
            }).then((r) => r, (err: VolumeBackupError) => err);
            if (result instanceof Error) {
              assert.ok(result instanceof VolumeBackupError, String(result));
              assert.match(result.message, /missing|vanished/);
              for (const r of await repo.listRecords('v2')) assert.notEqual(r.status, 'available');
            } else {
              assert.ok(deleted, 'an object was deleted');
              await restoreBackup(repo, { backupId: result.id, verifyOnly: true });
            }
          },
        },
      ];
      for (const c of cases) {
        await fixture();
        const failure = await tryCase('storageFaults', 'vanishing objects', c.name, c.run);
        await repo.close();
        if (failure) failures.push(failure);
      }
      assert.deepEqual(failures, []);
    });
  });
});
