/**
 * Cancel from anywhere: `volume-backup cancel` in a second process stops a backup running in another,
 * within one lease period, through the repository alone. The running backup is held at its third data
 * object by a stalled-storage preload (test/helpers/gate-preload.ts), so the cancel always lands while
 * it runs; the cancel itself does not wait for the stalled storage.
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { DEFAULT_LEASE_TTL_MS } from '../lib/repository/locks';
import type { BackupRecord } from '../lib/repository/records';
import { runCli } from './helpers/cli';
import { isChunkEvent, startCli } from './helpers/cli-process';
import { backupsIn } from './helpers/repository';
import { listFiles, sparseChunkedImage, tempDir } from './helpers/volumes';

const GATE_PRELOAD = path.join(__dirname, 'helpers', 'gate-preload.js');

describe('volume-backup cancel (from another process)', function () {
  this.timeout(180_000);
  let dir: string;
  let repo: string;
  let image: string;

  before(async () => {
    dir = await tempDir('cancel');
    repo = path.join(dir, 'repo');
    image = path.join(dir, 'disk.img');
    await sparseChunkedImage(image, 1024 ** 3);
    assert.equal((await runCli(['init', '--repo', repo])).code, 0);
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('stops a running backup within one lease period; the record ends error and says who cancelled; its objects are removed', async () => {
    const backup = startCli(['create', '--repo', repo, '--volume', image, '--volume-id', 'vol', '--host', 'host-a', '--progress', 'json'], {
      NODE_OPTIONS: `--require ${GATE_PRELOAD}`,
      VB_GATE_FILE: path.join(dir, 'never'),
      VB_GATE_AT: '3',
    });
    const backupId = (JSON.parse(await backup.waitForLine(isChunkEvent, 60_000)) as { backupId: string }).backupId;

    const cancel = await runCli(['cancel', '--repo', repo, '--backup', backupId, '--host', 'host-b']);
    const requestedAt = Date.now();
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(cancel.stdout, new RegExp(`cancel of backup ${backupId} requested \\(create by process ${backup.pid} on host host-a\\)`));

    const ended = await backup.result;
    const stoppedWithin = Date.now() - requestedAt;
    assert.equal(ended.code, 130, ended.stderr);
    assert.ok(stoppedWithin < DEFAULT_LEASE_TTL_MS, `stopped ${stoppedWithin} ms after the request, more than one lease period`);
    assert.match(ended.stderr, /cancelled by .*host host-b \(cli\)/);

    const record = (await backupsIn(repo)).find((r) => r.id === backupId) as BackupRecord;
    assert.equal(record.status, 'error');
    assert.match(record.failReason ?? '', /^cancelled by .*host host-b \(cli\) at \d{4}-/);
    assert.equal(record.cancelRequest?.host, 'host-b');
    assert.equal(record.cancelRequest?.source, 'cli');
    assert.deepEqual((await listFiles(repo)).filter((f) => f.includes(`backup_${backupId}`)), [], 'its objects are removed');

    // Nothing runs any more: a second cancel says so (exit 1) and changes nothing.
    const again = await runCli(['cancel', '--repo', repo, '--backup', backupId]);
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /is error: no operation on it is running, so there is nothing to cancel/);
  });
});
