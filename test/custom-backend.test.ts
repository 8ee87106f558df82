/**
 * A third-party backend end to end: examples/custom-backend ("sharded", a package of its own) backs up
 * and restores through the real CLI (--backend-module, VOLUME_BACKUP_BACKENDS) and through a Node-RED
 * flow in which it is registered as a plugin of type volume-backup-backend. Its contract suite runs in
 * drivers-contract.test.ts. Also: the editor's backend descriptors, and that the dialog's check and the
 * runtime's refuse a bad setting in the same words.
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import * as vm from 'vm';
import type { BackupRecord } from '../lib/repository/records';
import { cliEnv, runCli } from './helpers/cli';
import { listFiles, makeImage, sha256File, tempDir } from './helpers/volumes';
import { Collector, NODE_MODULES, helper, loggedTexts, nodeRedVersion } from './nodes/support';
import type { TestNode } from './nodes/support';

const MiB = 1024 * 1024;
const ROOT = path.resolve(__dirname, '..', ...(path.basename(path.resolve(__dirname, '..')) === 'dist' ? ['..'] : []));
const EXAMPLE = path.join(ROOT, 'examples', 'custom-backend');

/** Every object file of a sharded repository lies two hash-named directories down: _<container>/xx/yy/<name>. */
async function assertSharded(repoDir: string): Promise<string[]> {
  const files = await listFiles(repoDir);
  assert.ok(files.length > 0, 'the repository has files');
  for (const f of files) assert.match(f, /^_[^/]*\/[0-9a-f]{2}\/[0-9a-f]{2}\/[^/]+$/, f);
  return files.map((f) => decodeURIComponent(path.basename(f)));
}

describe('a third-party backend (examples/custom-backend, "sharded")', function () {
  this.timeout(120_000);
  let work: string;
  let image: string;
  let imageHash: string;

  before(async () => {
    work = await tempDir('custom-backend');
    image = path.join(work, 'disk.img');
    await makeImage(image, 3 * MiB + 4096, 18);
    imageHash = await sha256File(image);
  });
  after(() => fs.rm(work, { recursive: true, force: true }));

  describe('through the CLI', () => {
    it('is refused, saying how to load it, when no backend module is given', async () => {
      const run = await runCli(['list', '--repo', `sharded:${path.join(work, 'nowhere')}`]);
      assert.strictEqual(run.code, 2, run.stderr);
      assert.match(run.stderr, /unsupported repository URL scheme "sharded:".*--backend-module/);
      await assert.rejects(fs.stat(path.join(work, 'nowhere')), 'nothing was made');
    });

    it('backs up with --backend-module, lists with VOLUME_BACKUP_BACKENDS, restores byte for byte', async () => {
      const repo = `sharded:${path.join(work, 'cli-repo')}`;
      const created = await runCli(['create', '--repo', repo, '--backend-module', EXAMPLE, '--volume', image, '--chunk-size', '1M', '--json']);
      assert.strictEqual(created.code, 0, created.stderr);
      const record = JSON.parse(created.stdout) as BackupRecord;
      assert.strictEqual(record.status, 'available');

      const listed = await runCli(['list', '--repo', repo, '--json'], { env: cliEnv({ VOLUME_BACKUP_BACKENDS: ` ,${EXAMPLE}, ` }) });
      assert.strictEqual(listed.code, 0, listed.stderr);
      assert.deepStrictEqual((JSON.parse(listed.stdout) as BackupRecord[]).map((r) => r.id), [record.id]);

      const target = path.join(work, 'cli-restored.img');
      const restored = await runCli(['restore', '--repo', repo, '--backup', record.id, '--target', target], { env: cliEnv({ VOLUME_BACKUP_BACKENDS: EXAMPLE }) });
      assert.strictEqual(restored.code, 0, restored.stderr);
      assert.strictEqual(await sha256File(target), imageHash);

      const names = await assertSharded(path.join(work, 'cli-repo'));
      assert.ok(names.some((n) => n.startsWith(`volume_${record.volumeId}/`) && n.endsWith('-00004')), 'the four chunks are objects');
    });

    it('a backend module that does not load is refused by name, exit 2', async () => {
      const run = await runCli(['list', '--repo', `sharded:${work}`], { env: cliEnv({ VOLUME_BACKUP_BACKENDS: path.join(work, 'no-such-module') }) });
      assert.strictEqual(run.code, 2, run.stderr);
      assert.match(run.stderr, /backend module ".*no-such-module" was not found/);
    });
  });

  describe(`in Node-RED ${nodeRedVersion()} (registered as a plugin)`, () => {
    beforeEach(() => helper.startServer());
    afterEach(async () => {
      await helper.unload();
      await helper.stopServer();
    });

    /**
     * The test helper's runtime has a plugin API that registers nothing; Node-RED's own keeps plugins by
     * type. This stands in for it: the example's plugin.js registers through it, as in Node-RED.
     */
    function withPluginRuntime(modules: unknown[], extraPlugins: Array<{ id: string; backend: unknown }> = []): unknown[] {
      const byType = new Map<string, Array<Record<string, unknown>>>();
      const plugins = {
        registerPlugin: (id: string, definition: Record<string, unknown>) => {
          const list = byType.get(String(definition.type)) ?? [];
          list.push({ ...definition, id });
          byType.set(String(definition.type), list);
        },
        get: (id: string) => [...byType.values()].flat().find((p) => p.id === id),
        getByType: (type: string) => byType.get(type) ?? [],
      };
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- the example package's plugin file, as Node-RED loads it
      const examplePlugin = require(path.join(EXAMPLE, 'plugin.js')) as (red: unknown) => void;
      // Node-RED loads plugins before nodes: the same order here.
      const others = () => extraPlugins.forEach((p) => plugins.registerPlugin(p.id, { type: 'volume-backup-backend', backend: p.backend }));
      return [(red: { plugins: unknown }) => ((red.plugins = plugins), examplePlugin(red), others()), ...modules];
    }

    it('a flow backs up to a sharded repository and restores byte for byte', async () => {
      const repoDir = path.join(work, 'flow-repo');
      const target = path.join(work, 'flow-restored.img');
      const flow = [
        { id: 't1', type: 'tab', label: 'sharded' },
        { id: 'cfg', type: 'volume-driver-config', backend: 'sharded', path: repoDir, chunkSize: '1 MiB', blockSize: '32 KiB', compression: 'zstd', progress: false, maxConcurrent: 1 },
        { id: 'backup', z: 't1', x: 100, y: 100, type: 'volume-backup-create', repository: 'cfg', volume: 'volume', volumeType: 'msg', wires: [['restore'], []] },
        { id: 'restore', z: 't1', x: 100, y: 100, type: 'volume-restore', repository: 'cfg', action: 'restore', actionType: 'action', backupId: 'payload.id', backupIdType: 'msg', target: 'target', targetType: 'msg', wires: [['out'], []] },
        { id: 'out', z: 't1', x: 100, y: 100, type: 'helper' },
        { id: 'catch', z: 't1', x: 100, y: 100, type: 'catch', scope: ['backup', 'restore'], uncaught: false, wires: [['caught']] },
        { id: 'caught', z: 't1', x: 100, y: 100, type: 'helper' },
      ];
      await helper.load(withPluginRuntime(NODE_MODULES), flow);
      const out = new Collector(helper.getNode('out'));
      const caught = new Collector(helper.getNode('caught'));
      (helper.getNode('backup') as TestNode).receive({ volume: image, target });
      await Promise.race([out.waitFor(1), caught.waitFor(1).then((m) => assert.fail(String(m[0].error?.message)))]);
      assert.strictEqual(await sha256File(target), imageHash);
      await assertSharded(repoDir);
    });

    it('a plugin whose backend is broken is reported by name in the log; the others work', async () => {
      const flow = [{ id: 'cfg', type: 'volume-driver-config', backend: 'sharded', path: path.join(work, 'with-broken') }];
      await helper.load(withPluginRuntime(NODE_MODULES, [{ id: 'volume-backup-broken', backend: { name: 'broken' } }]), flow);
      const logged = (helper.log().args as unknown[][]).map((a) => JSON.stringify(a[0]));
      assert.ok(logged.some((l) => l.includes('Node-RED plugin \\"volume-backup-broken\\" is not a volume-backup backend')), logged.join('\n').slice(0, 2000));
      assert.deepStrictEqual(loggedTexts(helper.getNode('cfg') as TestNode, 'warn'), []);
    });

    it('driver-configs saved by the earlier editor (every property of every backend in the flow) deploy without a warning', async () => {
      const legacy = {
        type: 'volume-driver-config', path: '', bucket: '', prefix: '', endpoint: '', region: '', forcePathStyle: false, checksums: 'when_supported',
        storageClass: '', serverSideEncryption: '', kmsKeyId: '', conditionalWrites: true, project: '', container: '', chunkSize: '8 MiB',
        blockSize: '32 KiB', compression: 'zstd', progress: true, host: '', cleanupAtStart: true, maxConcurrent: 2,
      };
      const flow = [
        { ...legacy, id: 'old-posix', backend: 'posix', path: path.join(work, 'legacy') },
        { ...legacy, id: 'old-s3', backend: 's3', bucket: 'legacy-bucket', endpoint: 'http://127.0.0.1:9', forcePathStyle: true, checksums: 'when_required', serverSideEncryption: 'AES256' },
        { ...legacy, id: 'old-gcs', backend: 'gcs', bucket: 'legacy-bucket', project: 'p' },
      ];
      await helper.load(withPluginRuntime(NODE_MODULES), flow, { 'old-s3': { accessKeyId: 'AKIA-LEGACY', secretAccessKey: 'legacy-secret' }, 'old-gcs': { serviceAccountJson: '' } });
      for (const id of ['old-posix', 'old-s3', 'old-gcs']) assert.deepStrictEqual(loggedTexts(helper.getNode(id) as TestNode, 'warn'), [], id);
    });

    it('the editor gets every backend from the registry, and its check refuses a 2-character bucket in the words the runtime uses', async () => {
      const flow = [{ id: 'bad', type: 'volume-driver-config', backend: 's3', bucket: 'ab' }];
      await helper.load(withPluginRuntime(NODE_MODULES), flow);
      const reply = await helper.request().get('/volume-backup/backends.js').expect(200);
      assert.match(String(reply.headers['content-type']), /javascript/);
      const window: { VolumeBackupBackends?: { backends: Array<{ name: string; fields: Array<{ name: string; label: string; rules: object; secret?: boolean }> }>; checkSetting(label: string, rules: object, value: unknown): string | null } } = {};
      vm.runInNewContext(reply.text, { window });
      const registry = window.VolumeBackupBackends!;
      assert.strictEqual(registry.backends.map((b) => b.name).join(' '), 'posix s3 gcs sharded');
      const bucket = registry.backends.find((b) => b.name === 's3')!.fields.find((f) => f.name === 'bucket')!;
      const inDialog = registry.checkSetting(bucket.label, bucket.rules, 'ab');
      assert.strictEqual(inDialog, 'Bucket must be 3 to 63 characters long; "ab" has 2 characters');
      assert.strictEqual(registry.checkSetting(bucket.label, bucket.rules, 'abc'), null);
      // Secrets are credentials, never settings the descriptors carry a value of.
      assert.ok(registry.backends.find((b) => b.name === 's3')!.fields.find((f) => f.name === 'secretAccessKey')!.secret);
      const warnings = loggedTexts(helper.getNode('bad') as TestNode, 'warn');
      assert.ok(warnings.some((w) => w.endsWith(inDialog!)), `the runtime's warning: ${JSON.stringify(warnings)}`);
    });
  });
});
