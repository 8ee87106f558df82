/**
 * Opening a repository on an object store first checks that the store enforces create-if-absent and
 * replace-if-match (lib/drivers/conditional-probe.ts): once per process, leaving no probe object behind.
 * A store that does not (s3rver without the test layer) is refused, by the library and the CLI, with the
 * setting that opts out; with conditionalWrites=false it opens.
 */
import * as assert from 'assert';
import { openRepository, VolumeBackupError } from '../lib';
import { cliEnv, runCli } from './helpers/cli';
import { startFaultProxy } from './servers/fault-proxy';
import { BUCKET, s3Backend } from './servers/backends';
import { S3_CLI_ENV, S3_STORE, S3_TARGET } from './servers/s3-target';

describe(`conditional-write probe on s3 (${S3_STORE})`, function () {
  this.timeout(60_000);
  const backend = s3Backend();

  before(() => backend.start());
  after(() => backend.stop());

  it('probes once per process on first open, and leaves no probe object', async () => {
    const probes: string[] = [];
    const proxy = await startFaultProxy(backend.endpoint, 's3', (r) => {
      if (r.method === 'PUT' && r.url.includes('/probes/')) probes.push(r.headers['if-none-match'] ? 'create' : r.headers['if-match'] ? 'replace' : 'write');
      return null;
    });
    try {
      const spec = backend.spec({ endpoint: proxy.endpoint, prefix: 'probed' });
      await (await openRepository(spec, { create: true })).close();
      await (await openRepository(spec)).close();
      assert.deepStrictEqual(probes, ['create', 'create', 'replace', 'replace'], 'create, create again (refused), replace from a wrong and from the right ETag; once');
      assert.deepStrictEqual(await backend.driver({ prefix: 'probed' }).listEntries('', 'probes/'), []);
    } finally {
      await proxy.stop();
    }
  });

  // s3rver alone ignores If-None-Match and If-Match: a store the probe must refuse.
  if (!S3_TARGET) {
    it('refuses a store that does not enforce conditional writes, naming conditionalWrites=false', async () => {
      const spec = backend.spec({ endpoint: backend.server.upstreamEndpoint, prefix: 'bare' });
      await assert.rejects(openRepository(spec, { create: true }), (err: VolumeBackupError) => {
        assert.strictEqual(err.code, 'CONFLICT');
        assert.match(err.message, /does not enforce create-if-absent .*conditionalWrites=false/);
        return true;
      });
      await (await openRepository({ ...spec, conditionalWrites: false } as typeof spec, { create: true })).close();
    });

    it('the CLI refuses it too, with exit 1 and the setting in its message', async () => {
      const env = cliEnv(S3_CLI_ENV);
      const url = (extra: string) => `s3://${BUCKET}/bare-cli?endpoint=${backend.server.upstreamEndpoint}&forcePathStyle=true&checksums=when_required${extra}`;
      const refused = await runCli(['init', '--repo', url('')], { env });
      assert.strictEqual(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /does not enforce create-if-absent .*conditionalWrites=false/);
      assert.deepStrictEqual(await backend.driver({ prefix: 'bare-cli' }).listEntries('', ''), [], 'nothing written');
      const made = await runCli(['init', '--repo', url('&conditionalWrites=false')], { env });
      assert.strictEqual(made.code, 0, made.stderr);
    });
  }
});
