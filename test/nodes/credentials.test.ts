/**
 * driver-config on a real S3 server (s3rver behind the test layer): what the node's credentials hold
 * is what S3 receives, and no secret appears in a message, status or log line; the S3 settings of
 * the editor (conditional writes) reach the driver.
 */
import * as assert from 'assert';
import { S3TestServer, S3_TEST_CREDENTIALS, startS3Server } from '../servers/s3-server';
import { makeImage, tempDir } from '../helpers/volumes';
import { promises as fs } from 'fs';
import * as path from 'path';
import * as http from 'http';
import { startFaultProxy } from '../servers/fault-proxy';
import { Collector, NODE_MODULES, TestNode, helper, nodeRedVersion } from './support';

describe(`driver-config credentials (node-red ${nodeRedVersion()})`, function () {
  this.timeout(60_000);
  let server: S3TestServer;
  let work: string;
  let image: string;

  before(async () => {
    server = await startS3Server();
    work = await tempDir('nodes-creds');
    image = path.join(work, 'disk.img');
    await makeImage(image, 3 * 1024 * 1024, 3);
  });
  after(async () => {
    await server?.stop();
    await fs.rm(work, { recursive: true, force: true });
  });
  beforeEach(() => helper.startServer());
  afterEach(async () => {
    await helper.unload();
    await helper.stopServer();
  });

  /** A proxy in front of the S3 server that lets every request through and keeps its headers. */
  async function headerRecordingProxy() {
    const seen: http.IncomingHttpHeaders[] = [];
    const proxy = await startFaultProxy(server.endpoint, 's3', (request) => {
      seen.push(request.headers);
      return null;
    });
    return { proxy, seen };
  }

  const SECRET = 'secret-key-7f3a9c0d';
  const SESSION = 'session-token-51be20aa';
  const PASSPHRASE = 'passphrase-c0ffee42';

  it('S3 credentials reach the store through the node\'s credentials and show up in no message, status or log', async () => {
    // The signature names the access key id, and the session token travels as a header. (s3rver checks
    // the key id but not the secret's signature.)
    const { proxy, seen } = await headerRecordingProxy();
    try {
      const flow = [
        { id: 't1', type: 'tab' },
        {
          id: 'cfg', type: 'volume-driver-config', backend: 's3', bucket: 'node-credentials', prefix: 'site-a', endpoint: proxy.endpoint,
          region: 'us-east-1', forcePathStyle: true, checksums: 'when_required', chunkSize: '1 MiB', progress: true, maxConcurrent: 2,
        },
        { id: 'n1', z: 't1', x: 1, y: 1, type: 'volume-backup-create', repository: 'cfg', volume: 'volume', volumeType: 'msg', wires: [['out'], ['progress']] },
        { id: 'out', z: 't1', x: 1, y: 1, type: 'helper' },
        { id: 'progress', z: 't1', x: 1, y: 1, type: 'helper' },
        { id: 'catch', z: 't1', x: 1, y: 1, type: 'catch', scope: ['n1'], uncaught: false, wires: [['caught']] },
        { id: 'caught', z: 't1', x: 1, y: 1, type: 'helper' },
      ];
      const credentials = { cfg: { accessKeyId: S3_TEST_CREDENTIALS.accessKeyId, secretAccessKey: SECRET, sessionToken: SESSION, passphrase: PASSPHRASE } };
      await helper.load(NODE_MODULES, flow, credentials);
      const out = new Collector(helper.getNode('out'));
      const progress = new Collector(helper.getNode('progress'));
      const caught = new Collector(helper.getNode('caught'));
      (helper.getNode('n1') as TestNode).receive({ volume: image });
      const [result] = await out.waitFor(1).catch((err) => {
        const n1 = helper.getNode('n1') as TestNode;
        throw new Error(`${err.message}; status: ${JSON.stringify(n1.status.args.filter((_, i) => n1.status.thisValues[i] === n1))}`);
      });
      assert.strictEqual((result.payload as { status: string }).status, 'available');
      assert.strictEqual(caught.messages.length, 0);

      assert.ok(seen.length > 0);
      assert.ok(seen.every((h) => String(h.authorization).includes('Credential=S3RVER/')), 'every request is signed with the configured key id');
      assert.ok(seen.every((h) => h['x-amz-security-token'] === SESSION), 'every request carries the configured session token');
      assert.ok(seen.some((h) => h['if-none-match'] === '*'), 'records are written with If-None-Match by default');

      const logged = helper.log().args.map((a: unknown[]) => JSON.stringify(a));
      const node = helper.getNode('n1') as TestNode;
      const visible = [...logged, ...node.status.args.map((a) => JSON.stringify(a)), ...[out, progress, caught].flatMap((c) => c.messages.map((m) => JSON.stringify(m)))].join('\n');
      for (const secret of [SECRET, SESSION, PASSPHRASE]) assert.ok(!visible.includes(secret), `${secret} must not appear in messages, statuses or logs`);
      assert.ok(!JSON.stringify(flow).includes(SECRET));

      // An access key id the store does not know: a clear error in Catch, with the message.
      await helper.unload();
      await helper.load(NODE_MODULES, flow, { cfg: { accessKeyId: 'UNKNOWNKEY', secretAccessKey: SECRET } });
      const refused = new Collector(helper.getNode('caught'));
      (helper.getNode('n1') as TestNode).receive({ volume: image, attempt: 2 });
      const [err] = await refused.waitFor(1);
      assert.strictEqual(err.attempt, 2);
      assert.match(err.error?.message ?? '', /credentials for s3:\/\/node-credentials/);
      assert.ok(!JSON.stringify(err).includes(SECRET));
    } finally {
      await proxy.stop();
    }
  });

  it('conditional writes off: the driver reads, compares and writes (no If-None-Match/If-Match), and the log warns of one writer only', async () => {
    const { proxy, seen } = await headerRecordingProxy();
    try {
      const flow = [
        { id: 't1', type: 'tab' },
        {
          id: 'cfg', type: 'volume-driver-config', backend: 's3', bucket: 'node-single-writer', endpoint: proxy.endpoint, region: 'us-east-1',
          forcePathStyle: true, checksums: 'when_required', conditionalWrites: false, chunkSize: '1 MiB', progress: false, maxConcurrent: 2,
        },
        { id: 'n1', z: 't1', x: 1, y: 1, type: 'volume-backup-create', repository: 'cfg', volume: 'volume', volumeType: 'msg', wires: [['out'], []] },
        { id: 'out', z: 't1', x: 1, y: 1, type: 'helper' },
        { id: 'catch', z: 't1', x: 1, y: 1, type: 'catch', scope: ['n1'], uncaught: false, wires: [['caught']] },
        { id: 'caught', z: 't1', x: 1, y: 1, type: 'helper' },
      ];
      await helper.load(NODE_MODULES, flow, { cfg: { ...S3_TEST_CREDENTIALS } });
      const out = new Collector(helper.getNode('out'));
      const caught = new Collector(helper.getNode('caught'));
      (helper.getNode('n1') as TestNode).receive({ volume: image });
      const [result] = await Promise.race([out.waitFor(1), caught.waitFor(1).then((m) => assert.fail(m[0].error?.message))]);
      assert.strictEqual((result.payload as { status: string }).status, 'available');

      const cfg = helper.getNode('cfg') as TestNode & { getRepository(create: boolean): Promise<{ driver: { conditionalWrites?: boolean } }> };
      assert.strictEqual((await cfg.getRepository(false)).driver.conditionalWrites, false);
      assert.ok(seen.some((h) => h['content-length'] !== undefined), 'the backup went through the proxy');
      assert.ok(seen.every((h) => h['if-none-match'] === undefined && h['if-match'] === undefined), 'no conditional request was sent');
      const warnings = cfg.warn.args.filter((_, i) => (cfg.warn as unknown as { thisValues: unknown[] }).thisValues[i] === cfg).map((a) => String(a[0]));
      assert.ok(warnings.some((w) => /conditional writes are off for s3:\/\/node-single-writer.*only one writer/.test(w)), JSON.stringify(warnings));
    } finally {
      await proxy.stop();
    }
  });
});
