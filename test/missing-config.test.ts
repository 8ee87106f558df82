/**
 * A repository whose repository.json is gone (deleted, lost in a partial copy) but whose records and
 * objects are there is never silently made again: a fresh repository.json would give it a new id and,
 * encrypted, a new master key, and every old backup would fail to decrypt with errors that blame the
 * objects. `create`, `init` and opening from the library refuse, say what is missing and what to do;
 * `verify` reports it as a problem; only an empty location (stale temporaries at most) is initialised.
 * Real CLI processes on a posix directory and on the S3 and GCS test servers.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { openRepository } from '../lib';
import type { BackupRecord, RestoreResult } from '../lib';
import { cliEnv, cliJson, runCli } from './helpers/cli';
import { listFiles, makeImage, sha256File, tempDir } from './helpers/volumes';
import { BUCKET, gcsBackend, s3Backend } from './servers/backends';

const MiB = 1024 * 1024;
const MISSING = /repository\.json is missing at .*holds a repository's backups \(1 record, \d+ backup objects\).*restore repository\.json from a copy.*key.*or use an empty location/;

describe('a repository whose repository.json is missing', function () {
  this.timeout(120_000);
  let dir: string;
  let img: string;
  const pass = 'correct horse battery staple';
  const env = cliEnv({ AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' });
  const s3 = s3Backend();
  const gcs = gcsBackend();

  before(async () => {
    dir = await tempDir('missing-config');
    img = path.join(dir, 'disk.img');
    await makeImage(img, 3 * MiB, 77);
    await Promise.all([s3.start(), gcs.start()]);
  });
  after(async () => {
    await Promise.all([s3.stop(), gcs.stop()]);
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function backup(repo: string, e = env): Promise<BackupRecord> {
    return cliJson<BackupRecord>(['create', '--repo', repo, '--volume', img, '--volume-id', 'disk', '--progress', 'none'], { env: e });
  }

  /** Every command that could make a repository refuses, and verify reports the problem. */
  async function assertRefused(repo: string, e = env): Promise<void> {
    for (const args of [
      ['create', '--repo', repo, '--volume', img, '--volume-id', 'disk', '--progress', 'none'],
      ['init', '--repo', repo, ...(e.VOLUME_BACKUP_PASSPHRASE ? ['--encrypt'] : [])],
      ['list', '--repo', repo],
    ]) {
      const r = await runCli(args, { env: e });
      assert.equal(r.code, 1, `${args[0]}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, MISSING, args[0]);
    }
    const verify = await runCli(['verify', '--repo', repo], { env: e });
    assert.equal(verify.code, 1, verify.stderr);
    assert.match(verify.stdout, /problem \(missing-config\): repository\.json is missing/);
    assert.match(verify.stdout, /1 problem\(s\)/);
    const json = await runCli(['verify', '--repo', repo, '--json'], { env: e });
    assert.equal(json.code, 1);
    const result = JSON.parse(json.stdout);
    assert.equal(result.ok, false);
    assert.deepEqual(result.problems.map((p: { kind: string }) => p.kind), ['missing-config']);
  }

  it('posix, encrypted: create/init refuse to make a new key, verify reports it; with repository.json restored from a copy the backup restores', async () => {
    const repo = path.join(dir, 'encrypted');
    const e = { ...env, VOLUME_BACKUP_PASSPHRASE: pass };
    const init = await runCli(['init', '--repo', repo, '--encrypt'], { env: e });
    assert.equal(init.code, 0, init.stderr);
    const made = await backup(repo, e);
    const config = path.join(repo, 'repository.json');
    const copy = await fs.readFile(config);
    await fs.rm(config);
    const before = await listFiles(repo);

    await assertRefused(repo, e);
    await assert.rejects(openRepository(repo, { create: true, passphrase: pass }), MISSING);
    assert.deepEqual(await listFiles(repo), before, 'nothing was written: no new repository.json, no new backup');

    await fs.writeFile(config, copy);
    const target = path.join(dir, 'encrypted.img');
    const restored = await cliJson<RestoreResult>(['restore', '--repo', repo, '--backup', made.id, '--target', target, '--progress', 'none'], { env: e });
    assert.equal(restored.size, 3 * MiB);
    assert.equal(await sha256File(target), await sha256File(img));
  });

  it('posix, unencrypted, in a container: refused the same way', async () => {
    const repo = path.join(dir, 'plain');
    await runCli(['init', '--repo', repo, '--container', 'c1'], { env });
    await cliJson(['create', '--repo', repo, '--container', 'c1', '--volume', img, '--volume-id', 'disk', '--progress', 'none'], { env });
    await fs.rm(path.join(repo, 'c1', 'repository.json'));
    const r = await runCli(['create', '--repo', repo, '--container', 'c1', '--volume', img, '--volume-id', 'disk'], { env });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /repository\.json is missing at .*\(container c1\)/);
    await assert.rejects(fs.stat(path.join(repo, 'c1', 'repository.json')));
  });

  it('objects copied in for an import, without a repository: refused, the error says to init first', async () => {
    const source = path.join(dir, 'source');
    await backup(source);
    const copy = path.join(dir, 'copy');
    await fs.cp(path.join(source, 'volume_disk'), path.join(copy, 'volume_disk'), { recursive: true });
    const r = await runCli(['import', '--repo', copy], { env, input: '{}' });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /repository\.json is missing .*\(3 backup objects\).*make the repository with init before copying them in; for objects of an encrypted repository, copy that repository's repository\.json instead\)/);
    await assert.rejects(fs.stat(path.join(copy, 'repository.json')));
  });

  it('an empty location, or one with only a stale temporary file, is initialised', async () => {
    const repo = path.join(dir, 'empty');
    await fs.mkdir(path.join(repo, 'records', 'disk'), { recursive: true });
    await fs.writeFile(path.join(repo, 'records', 'disk', 'x.json.tmp-999999@00000000-000000000000'), 'partial');
    await backup(repo);
    const again = await backup(repo);
    assert.equal(again.status, 'available');
  });

  for (const [name, backend, url] of [
    ['s3', s3, (prefix: string) => `s3://${BUCKET}/${prefix}?endpoint=${s3.endpoint}&forcePathStyle=true&checksums=when_required`],
    ['gcs', gcs, (prefix: string) => `gs://${BUCKET}/${prefix}?endpoint=${gcs.endpoint}&project=p`],
  ] as const) {
    it(`${name}: refused the same way, and nothing written`, async () => {
      const repo = url('lost');
      await backup(repo);
      const driver = backend.driver({ prefix: 'lost' });
      try {
        await driver.deleteObject('', 'repository.json');
        const before = (await driver.listEntries('', '')).map((o) => o.name);
        await assertRefused(repo);
        assert.deepEqual((await driver.listEntries('', '')).map((o) => o.name), before);
      } finally {
        await driver.close?.();
      }
    });
  }
});
