/**
 * The CLI as a new user meets it: a 256 MiB image with zero, random and text regions; a full backup;
 * 1% overwritten in scattered 64 KiB writes; an incremental adding at most 1.5x the changed bytes;
 * every backup restoring byte-identical; one flipped byte making restore fail with a clear message.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { BackupRecord, RestoreResult } from '../lib';
import { cliJson, runCli } from './helpers/cli';
import { listFiles, makeImage, scatterWrites, sha256File, tempDir, treeBytes } from './helpers/volumes';

const MiB = 1024 * 1024;

describe('volume-backup CLI', function () {
  this.timeout(300_000);
  let dir: string;
  let repo: string;
  before(async () => {
    dir = await tempDir('cli');
    repo = path.join(dir, 'repo');
  });
  after(async () => fs.rm(dir, { recursive: true, force: true }));

  it('full, 1% scattered change, incremental ≤ 1.5x changed bytes, both restore byte-identical, a flipped byte is caught', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, 256 * MiB, 2026);
    const sha0 = await sha256File(img);
    const full = await cliJson<BackupRecord>(['create', '--repo', repo, '--volume', img, '--name', 'nightly']);
    assert.equal(full.status, 'available');
    assert.equal(full.name, 'nightly');
    const afterFull = await treeBytes(repo);

    const changed = await scatterWrites(img, 0.01, 7);
    const sha1 = await sha256File(img);
    const incr = await cliJson<BackupRecord>(['create', '--repo', repo, '--volume', img, '--incremental']);
    assert.equal(incr.parentId, full.id);
    assert.equal(incr.volumeId, full.volumeId, 'the volume id derived from the path is stable');
    const added = (await treeBytes(repo)) - afterFull;
    assert.ok(added <= 1.5 * changed, `incremental added ${added} bytes for ${changed} changed (> 1.5x)`);

    for (const [record, sha] of [[full, sha0], [incr, sha1]] as const) {
      const target = path.join(dir, `${record.kind}.img`);
      const result = await cliJson<RestoreResult>(['restore', '--repo', repo, '--backup', record.id, '--target', target]);
      assert.equal(result.size, 256 * MiB);
      assert.equal(await sha256File(target), sha, `${record.kind} restore differs`);
      await fs.rm(target);
    }

    const listed = await cliJson<BackupRecord[]>(['list', '--repo', `file://${repo}`]);
    assert.deepEqual(listed.map((r) => r.id), [full.id, incr.id]);

    // Flip one byte in one stored object of the incremental.
    const objects = (await listFiles(repo)).filter((f) => f.includes(`backup_${incr.id}-`));
    const victim = path.join(repo, objects[0]);
    const bytes = await fs.readFile(victim);
    bytes[Math.floor(bytes.length / 2)] ^= 0x20;
    await fs.writeFile(victim, bytes);
    const failed = await runCli(['restore', '--repo', repo, '--backup', incr.id, '--target', path.join(dir, 'bad.img')]);
    assert.equal(failed.code, 1);
    assert.equal(failed.stderr.trim().split('\n').length, 1, 'one line');
    assert.match(failed.stderr, new RegExp(`object ${objects[0].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} of backup ${incr.id} .*corrupt`));
    await assert.rejects(fs.stat(path.join(dir, 'bad.img')), 'no half-restored file is left');
    const verify = await runCli(['restore', '--repo', repo, '--backup', incr.id, '--verify-only']);
    assert.equal(verify.code, 1);
  });

  it('prints progress as JSON lines on stderr with --progress json, one per chunk', async () => {
    const img = path.join(dir, 'small.img');
    await makeImage(img, 3 * MiB, 5);
    const result = await runCli(['create', '--repo', repo, '--volume', img, '--chunk-size', '512K', '--block-size', '32K', '--progress', 'json', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const events = result.stderr.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(events.filter((e) => e.type === 'chunk').length, 6);
    assert.deepEqual(Object.keys(events[1]).sort(), ['backupId', 'bytesDone', 'bytesPerSecond', 'bytesTotal', 'chunkCount', 'chunkIndex', 'chunksDone', 'etaSeconds', 'operation', 'percent', 'snapshotId', 'type', 'volumeId'].sort());
    assert.equal(events[events.length - 1].percent, 100);
  });

  it('show, delete with and without --cascade, export and import', async () => {
    const img = path.join(dir, 'cascade.img');
    await makeImage(img, 2 * MiB, 9);
    const own = path.join(dir, 'repo2');
    const full = await cliJson<BackupRecord>(['create', '--repo', own, '--volume', img, '--volume-id', 'db1', '--chunk-size', '256K', '--block-size', '4K']);
    await scatterWrites(img, 0.05, 10);
    const incr = await cliJson<BackupRecord>(['create', '--repo', own, '--volume', img, '--volume-id', 'db1', '--incremental']);
    const shown = await cliJson<BackupRecord>(['show', '--repo', own, '--backup', incr.id]);
    assert.equal(shown.parentId, full.id);

    const exported = await runCli(['export', '--repo', own, '--backup', full.id]);
    assert.equal(exported.code, 0);
    const copy = path.join(dir, 'copy');
    // Objects are copied into a repository: a location with objects but no repository.json is not made one.
    await cliJson(['init', '--repo', copy]);
    await fs.cp(path.join(own, 'volume_db1'), path.join(copy, 'volume_db1'), { recursive: true });
    const imported = await runCli(['import', '--repo', copy, '--json'], { input: exported.stdout });
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal(JSON.parse(imported.stdout).id, full.id);
    await cliJson(['restore', '--repo', copy, '--backup', full.id, '--verify-only']);

    const refused = await runCli(['delete', '--repo', own, '--backup', full.id]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`${incr.id} depends on it .*cascade`));
    const deleted = await cliJson<{ deleted: BackupRecord[] }>(['delete', '--repo', own, '--backup', full.id, '--cascade']);
    assert.deepEqual(deleted.deleted.map((r) => r.id), [incr.id, full.id]);
    assert.deepEqual(await cliJson(['list', '--repo', own]), []);
  });

  it('fails with one clear line and a non-zero exit on bad input', async () => {
    const cases: Array<[string[], RegExp, number]> = [
      [['create', '--repo', repo], /--volume is required/, 2],
      [['create', '--repo', repo, '--volume', path.join(dir, 'nope.img')], /does not exist: check the path/, 1],
      [['create', '--repo', repo, '--volume', path.join(dir, 'small.img'), '--chunk-size', '100000'], /multiple of the block size/, 2],
      [['create', '--repo', repo, '--volume', path.join(dir, 'small.img'), '--chunk-size=-5'], /size in bytes/, 2],
      [['create', '--repo', repo, '--volume', path.join(dir, 'small.img'), '--chunk-size', '-5'], /argument is ambiguous.*--help/, 2],
      [['restore', '--repo', repo, '--backup', '11111111-1111-4111-8111-111111111111', '--verify-only'], /not found/, 1],
      [['restore', '--repo', path.join(dir, 'no-repo'), '--backup', '11111111-1111-4111-8111-111111111111', '--verify-only'], /no volume-backup repository/, 1],
      [['restore', '--repo', repo, '--backup', 'x'], /--target PATH .* or --verify-only|invalid backup id/, 2],
      [['list', '--repo', 'ftp://host/x'], /unsupported repository URL/, 2],
      [['frobnicate'], /unknown command/, 2],
      [['list', '--repo', repo, '--bogus'], /Unknown option/, 2],
    ];
    for (const [args, pattern, code] of cases) {
      const result = await runCli(args);
      assert.equal(result.code, code, `${args.join(' ')}: exit ${result.code}, ${result.stderr}`);
      assert.match(result.stderr, pattern, args.join(' '));
      assert.equal(result.stderr.trim().split('\n').length, 1, `one line: ${result.stderr}`);
    }
  });
});
