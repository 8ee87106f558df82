/**
 * The CLI against object stores, as a user runs it: `volume-backup create/restore --repo s3://…` on
 * s3rver (through the precondition layer) with credentials from the environment, and `--repo gs://…`
 * on the GCS test server; restored bytes hash-equal. Then backups through the fault proxy, with 503s,
 * 429s and dropped connections injected, still complete and restore.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { BackupRecord, RestoreResult } from '../lib';
import { cliEnv, cliJson, runCli } from './helpers/cli';
import { makeImage, sha256File, tempDir } from './helpers/volumes';
import { BUCKET, gcsBackend, s3Backend } from './servers/backends';
import { S3_CLI_ENV } from './servers/s3-target';
import { FaultProxy, plans, startFaultProxy } from './servers/fault-proxy';

const MiB = 1024 * 1024;

describe('volume-backup CLI on S3 and GCS', function () {
  this.timeout(180_000);
  const s3 = s3Backend();
  const gcs = gcsBackend();
  let dir: string;
  let img: string;
  let imgSha: string;
  const env = cliEnv(S3_CLI_ENV);

  before(async () => {
    dir = await tempDir('object-store-cli');
    img = path.join(dir, 'disk.img');
    await makeImage(img, 40 * MiB, 4242);
    imgSha = await sha256File(img);
    await Promise.all([s3.start(), gcs.start()]);
  });
  after(async () => {
    await Promise.all([s3.stop(), gcs.stop()]);
    await fs.rm(dir, { recursive: true, force: true });
  });

  const s3Url = (endpoint: string, bucket: string, prefix: string) => `s3://${bucket}/${prefix}?endpoint=${endpoint}&forcePathStyle=true&checksums=when_required`;
  const gsUrl = (endpoint: string, bucket: string, prefix: string) => `gs://${bucket}/${prefix}?endpoint=${endpoint}&project=p`;

  async function roundTrip(repo: string, label: string): Promise<{ backup: BackupRecord; stderr: string }> {
    const created = await runCli(['create', '--repo', repo, '--volume', img, '--volume-id', 'disk1', '--progress', 'none', '--json'], { env, timeoutMs: 150_000 });
    assert.equal(created.code, 0, `create on ${label} failed: ${created.stderr}`);
    const backup = JSON.parse(created.stdout) as BackupRecord;
    assert.equal(backup.status, 'available');
    const target = path.join(dir, `${label}.img`);
    const restored = await cliJson<RestoreResult>(['restore', '--repo', repo, '--backup', backup.id, '--target', target, '--progress', 'none'], { env, timeoutMs: 150_000 });
    assert.equal(restored.size, 40 * MiB);
    assert.equal(await sha256File(target), imgSha, `restore from ${label} differs`);
    await fs.rm(target);
    return { backup, stderr: created.stderr };
  }

  it('backs up to s3:// and restores byte-identical, objects named as in Cinder', async () => {
    const { backup } = await roundTrip(s3Url(s3.endpoint, BUCKET, 'cli'), 's3');
    const names = (await s3.driver({ prefix: 'cli' }).listEntries('', '')).map((e) => e.name);
    assert.ok(names.some((n) => n.startsWith(`volume_disk1/`) && n.includes(`backup_${backup.id}`)), names.join('\n'));
  });

  it('creates a missing bucket on the first backup', async () => {
    await roundTrip(s3Url(s3.endpoint, 'fresh-bucket', ''), 's3-fresh');
    await roundTrip(gsUrl(gcs.endpoint, 'fresh-bucket', ''), 'gcs-fresh');
  });

  it('backs up to gs:// and restores byte-identical', async () => {
    const { backup } = await roundTrip(gsUrl(gcs.endpoint, BUCKET, 'cli'), 'gcs');
    const names = (await gcs.driver({ prefix: 'cli' }).listEntries('', '')).map((e) => e.name);
    assert.ok(names.some((n) => n.startsWith(`volume_disk1/`) && n.includes(`backup_${backup.id}`)), names.join('\n'));
  });

  it('fails clearly when the repository does not exist', async () => {
    const result = await runCli(['list', '--repo', s3Url(s3.endpoint, 'no-such-bucket', '')], { env });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /no-such-bucket/);
  });

  for (const [name, backend] of [['s3', s3], ['gcs', gcs]] as const) {
    it(`completes a ${name} backup and restore while the network answers 503/429 and drops connections`, async () => {
      let proxy: FaultProxy | undefined;
      try {
        proxy = await startFaultProxy(backend.endpoint, name, plans.everyNth(4, ['status-503', 'reset', 'status-429']));
        const repo = name === 's3' ? s3Url(proxy.endpoint, BUCKET, 'faulty') : gsUrl(proxy.endpoint, BUCKET, 'faulty');
        const { stderr } = await roundTrip(repo, `${name}-faulty`);
        assert.ok(proxy.injected.length >= 5, `faults injected: ${proxy.injected.length}`);
        assert.match(stderr, /warning: .*retry \d+/);
      } finally {
        await proxy?.stop();
      }
    });
  }
});
