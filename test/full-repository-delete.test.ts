/**
 * Deleting on a repository whose file system is full to the last block (a tmpfs): a deletion must first
 * record itself, which needs a few KiB, so it fails; the error must not send the user round in a circle
 * ("free space, or prune old backups") but say what frees the way. Once a little room is made elsewhere on
 * that file system, delete works and frees the backup's space.
 */
import { strict as assert } from 'assert';
import { execFile } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { createBackup, initRepository } from '../lib';
import { cliJson, runCli } from './helpers/cli';
import { Prng, listFiles, tempDir } from './helpers/volumes';
import { withTmpfs } from './helpers/tmpfs';

const exec = promisify(execFile);
const MiB = 1024 * 1024;

describe('delete and prune on a repository whose file system is full (tmpfs)', function () {
  this.timeout(120_000);
  let dir = '';

  before(async function () {
    if (process.getuid?.() !== 0) {
      console.log(`      skipped: needs root to mount a tmpfs; running as uid ${process.getuid?.()}`);
      return this.skip();
    }
    dir = await tempDir('full-delete');
  });
  after(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('delete fails saying a deletion needs a few KiB and where to free them; nothing changes; with a little room it deletes', async () => {
    const mnt = path.join(dir, 'mnt');
    await withTmpfs(mnt, '16m', async () => {
      const volume = path.join(dir, 'volume.img');
      await fs.writeFile(volume, new Prng(81).fill(Buffer.alloc(4 * MiB)));
      const repoDir = path.join(mnt, 'repo');
      const repo = await initRepository(repoDir);
      const older = await createBackup(repo, { volume, volumeId: 'v', chunkSize: MiB, compression: 'none' });
      await createBackup(repo, { volume, volumeId: 'v', chunkSize: MiB, compression: 'none' });
      await repo.close();
      // Fill the file system to the last page.
      const filler = path.join(mnt, 'filler');
      await exec('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k']).catch(() => undefined);
      assert.equal((await fs.statfs(mnt)).bavail, 0, 'the file system is full');

      const message = `backup ${older.id} cannot be deleted yet: the file system of the repository at ${repoDir} is full (ENOSPC), and a deletion first records itself there (a few KiB); free a little space on it outside the repository, then delete or prune again`;
      const refused = await runCli(['delete', '--repo', repoDir, '--backup', older.id]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.equal(refused.stderr, `volume-backup delete: error: ${message}\n`);
      // Nothing left behind that would hold up the next attempt (an empty replace lock waited out for 30 s).
      assert.deepEqual((await listFiles(repoDir)).filter((f) => f.endsWith('.lock') || f.includes('.tmp-')), []);
      const pruned = await runCli(['prune', '--repo', repoDir, '--keep-last', '1']);
      assert.match(pruned.stderr, new RegExp(`warning: backup ${older.id} could not be deleted: ${message.replace(/[()]/g, '\\$&')}`));
      // A prune that could not delete what its policy removes failed: not exit 0 with "deleted 0 backup(s)".
      assert.equal(pruned.code, 1, pruned.stderr);
      assert.ok(pruned.stderr.includes(`volume-backup prune: error: 1 backup(s) the policy removes could not be deleted (${older.id}: ${message}); they are kept, and the prune did the rest\n`), pruned.stderr);
      assert.match(pruned.stdout, /deleted 0 backup\(s\)/, 'the report of what it did still comes out');
      assert.deepEqual((await cliJson<{ status: string }[]>(['list', '--repo', repoDir])).map((r) => r.status), ['available', 'available']);

      await fs.truncate(filler, (await fs.stat(filler)).size - MiB);
      const deleted = await runCli(['delete', '--repo', repoDir, '--backup', older.id]);
      assert.equal(deleted.code, 0, deleted.stderr);
      assert.deepEqual((await cliJson<{ id: string }[]>(['list', '--repo', repoDir])).map((r) => r.id).includes(older.id), false);
      assert.ok((await fs.statfs(mnt)).bavail * (await fs.statfs(mnt)).bsize >= 4 * MiB, 'its 4 MiB are free again');
    });
  });
});
