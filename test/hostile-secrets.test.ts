/**
 * Secrets live only in the environment (or Node-RED credentials): an S3 secret key and an encryption
 * passphrase must never appear in the CLI's output or error texts, in records, in exported records, or
 * in any object stored in the repository — checked on an encrypted repository on s3rver, with good
 * credentials, a wrong access key, and a wrong passphrase.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { cliEnv, runCli } from './helpers/cli';
import { tally } from './helpers/fault-report';
import { makeImage, tempDir } from './helpers/volumes';
import { s3Backend } from './servers/backends';

const SECRET_KEY = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRETKEY';
const PASSPHRASE = 'Passphrase-That-Must-Never-Leak-42';

describe('hostile input: secrets never leak', function () {
  this.timeout(180_000);
  const s3 = s3Backend();
  let dir: string;

  before(async () => {
    dir = await tempDir('secrets');
    await s3.start();
  });
  after(async () => {
    await s3.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('the S3 secret key and the passphrase appear in no output, error, record, export or stored object', async () => {
    const img = path.join(dir, 'disk.img');
    await makeImage(img, 512 * 1024, 12, 64 * 1024);
    // s3rver checks the access key id but not signatures, so any secret key works with S3RVER.
    const repo = `s3://${s3.bucket}/secrets?endpoint=${s3.endpoint}&forcePathStyle=true&checksums=when_required`;
    const base = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: SECRET_KEY, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
    const good = cliEnv({ ...base, VOLUME_BACKUP_PASSPHRASE: PASSPHRASE });
    const outputs: string[] = [];
    const run = async (label: string, args: string[], env: NodeJS.ProcessEnv, expected: number) => {
      const r = await runCli(args, { env });
      outputs.push(r.stdout, r.stderr);
      let error: unknown;
      if (r.code !== expected) error = new Error(`${label}: exit ${r.code}, expected ${expected}: ${r.stderr}`);
      tally('hostileInputs', 'secrets', label, error);
      assert.equal(r.code, expected, `${label}: ${r.stderr}`);
      return r;
    };
    await run('init --encrypt', ['init', '--repo', repo, '--encrypt'], good, 0);
    const created = JSON.parse((await run('create', ['create', '--repo', repo, '--volume', img, '--volume-id', 'v', '--json', '--progress', 'json'], good, 0)).stdout);
    await run('list', ['list', '--repo', repo, '--json'], good, 0);
    await run('show', ['show', '--repo', repo, '--backup', created.id], good, 0);
    await run('export', ['export', '--repo', repo, '--backup', created.id], good, 0);
    await run('verify --read-data', ['verify', '--repo', repo, '--read-data', '--json'], good, 0);
    await run('restore', ['restore', '--repo', repo, '--backup', created.id, '--target', path.join(dir, 'out.img')], good, 0);
    const wrongKey = await run('wrong access key', ['list', '--repo', repo], cliEnv({ ...base, AWS_ACCESS_KEY_ID: 'NOT-A-KEY', VOLUME_BACKUP_PASSPHRASE: PASSPHRASE }), 1);
    assert.match(wrongKey.stderr, /AWS_SECRET_ACCESS_KEY|credentials|access key/i, 'says what to check');
    await run('wrong passphrase', ['restore', '--repo', repo, '--backup', created.id, '--verify-only'], cliEnv({ ...base, VOLUME_BACKUP_PASSPHRASE: 'wrong' }), 1);
    await run('no passphrase', ['list', '--repo', repo], cliEnv(base), 1);
    await run('unreachable endpoint', ['list', '--repo', repo.replace(s3.endpoint, 'http://127.0.0.1:9')], good, 1);

    // Everything stored under the prefix, read back raw.
    const driver = s3.driver({ prefix: 'secrets' });
    try {
      const entries = await driver.listEntries('', '');
      assert.ok(entries.length >= 5, `objects stored: ${entries.length}`);
      for (const e of entries) outputs.push((await driver.readObject('', e.name)).data.toString('latin1'));
    } finally {
      await driver.close?.();
    }
    const exported = outputs.find((o) => /^[A-Za-z0-9+/=]{100,}\s*$/.test(o));
    if (exported) outputs.push(Buffer.from(exported.trim(), 'base64').toString('utf8'));
    for (const secret of [SECRET_KEY, PASSPHRASE]) {
      const leaks = outputs.filter((o) => o.includes(secret));
      tally('hostileInputs', 'secrets', `grep for ${secret === SECRET_KEY ? 'the S3 secret key' : 'the passphrase'} in ${outputs.length} outputs and objects`, leaks.length ? new Error(`leaked in: ${leaks[0].slice(0, 200)}`) : undefined);
      assert.deepEqual(leaks, [], 'a secret leaked');
    }
  });
});
