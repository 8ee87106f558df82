/**
 * Backends in a real Node-RED process: the example third-party backend (examples/custom-backend) loaded
 * as Node-RED loads an installed package, its plugin found by the driver-config node, a flow backing up
 * to it (restored by the CLI with --backend-module: same bytes); and the driver-config dialog in Chromium,
 * whose backends and rows come from the registry and which refuses a 2-character bucket in words.
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { BackupRecord } from '../../lib/repository/records';
import { runCli } from '../helpers/cli';
import { listFiles, sha256File, tempDir } from '../helpers/volumes';
import { launchChromium } from './chromium';
import { NodeRedProcess, nodeRedEnv } from './node-red-process';

const EXAMPLE = path.join(nodeRedEnv.root, 'examples', 'custom-backend');

describe('backends in a real Node-RED: a plugin backend, and the driver-config dialog', function () {
  this.timeout(120_000);
  let work: string;
  let volume: string;
  let red: NodeRedProcess;

  before(async () => {
    work = await tempDir('backends-editor');
    volume = path.join(work, 'disk.img');
    nodeRedEnv.makeDemoImage(volume, 4 * 1024 * 1024);
    // The example package beside this one, as a user's install puts both in ~/.node-red/node_modules.
    red = new NodeRedProcess(path.join(work, 'user-dir'), {}, { nodesDir: [nodeRedEnv.root, EXAMPLE] });
    await red.start();
  });
  after(async () => {
    await red?.stop();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('loads the example as a plugin; a flow backs up to a sharded repository, the CLI restores it byte for byte', async () => {
    const plugins = await red.request('GET', '/plugins', undefined, { Accept: 'application/json' });
    assert.ok(JSON.stringify(plugins.body).includes('volume-backup-sharded'), plugins.text);
    const repoDir = path.join(work, 'sharded-repo');
    await nodeRedEnv.deployFlows(red.port, [
      { id: 'tab', type: 'tab', label: 'sharded' },
      { id: 'cfg', type: 'volume-driver-config', backend: 'sharded', path: repoDir, chunkSize: '1 MiB', blockSize: '32 KiB', compression: 'zstd', progress: false, maxConcurrent: 1 },
      { id: 'inj', z: 'tab', type: 'inject', x: 100, y: 100, props: [{ p: 'volume', v: volume, vt: 'str' }], repeat: '', once: false, wires: [['backup']] },
      { id: 'backup', z: 'tab', type: 'volume-backup-create', x: 300, y: 100, repository: 'cfg', volume: 'volume', volumeType: 'msg', wires: [['debug'], []] },
      { id: 'debug', z: 'tab', type: 'debug', x: 500, y: 100, active: true, tosidebar: true, complete: 'payload', targetType: 'msg' },
      { id: 'catch', z: 'tab', type: 'catch', x: 300, y: 200, scope: ['backup'], uncaught: false, wires: [['errors']] },
      { id: 'errors', z: 'tab', type: 'debug', x: 500, y: 200, active: true, tosidebar: true, complete: 'error', targetType: 'msg' },
    ]);
    let res = await red.request('POST', '/inject/inj');
    // 404 while the deployed flow is still starting on a busy machine: ask again.
    for (let i = 0; res.status === 404 && i < 300; i++) {
      await new Promise((r) => setTimeout(r, 200));
      res = await red.request('POST', '/inject/inj');
    }
    assert.strictEqual(res.status, 200, res.text);
    const [record] = (await Promise.race([
      red.debugFrom('debug', 1, 60_000),
      red.debugFrom('errors', 1, 60_000).then((e) => assert.fail(JSON.stringify(e))),
    ])) as BackupRecord[];
    assert.strictEqual(record.status, 'available');
    for (const f of await listFiles(repoDir)) assert.match(f, /^_[^/]*\/[0-9a-f]{2}\/[0-9a-f]{2}\/[^/]+$/, f);
    const target = path.join(work, 'restored.img');
    const restored = await runCli(['restore', '--repo', `sharded:${repoDir}`, '--backend-module', EXAMPLE, '--backup', record.id, '--target', target]);
    assert.strictEqual(restored.code, 0, restored.stderr);
    assert.strictEqual(await sha256File(target), await sha256File(volume));
  });

  describe('the driver-config dialog in Chromium', () => {
     
    let context: any;
     
    let page: any;

    before(async function () {
      ({ context, page } = await launchChromium(this, path.join(work, 'profile')));
    });
    after(() => context?.close());

    it('offers every registered backend with its rows, and refuses a 2-character bucket in words before Done', async () => {
      await page.goto(`http://127.0.0.1:${red.port}/`);
      await page.waitForSelector(`.red-ui-palette-node[data-palette-type='volume-backup-create']`, { timeout: 60_000 });
      await page.evaluate(() => {
        const RED = (globalThis as unknown as { RED: any }).RED;  
        RED.view.importNodes([{ id: 'ed-b', type: 'volume-backup-create', x: 200, y: 80, z: RED.workspaces.active(), wires: [] }], { generateIds: false });
        RED.editor.edit(RED.nodes.node('ed-b'));
      });
      await page.waitForSelector('#node-input-btn-repository-add', { state: 'visible' });
      await page.click('#node-input-btn-repository-add');
      await page.waitForSelector('#node-config-input-backend', { state: 'visible' });

      const offered = await page.$$eval('#node-config-input-backend option', (options: Array<{ value: string }>) => options.map((o) => o.value));
      assert.deepStrictEqual(offered, ['posix', 's3', 'gcs', 'sharded']);
      assert.ok(await page.isVisible('#node-config-input-path'), 'posix: the path row');
      assert.ok(!(await page.isVisible('#node-config-input-bucket')), 'posix: no bucket row');

      await page.selectOption('#node-config-input-backend', 's3');
      assert.ok(await page.isVisible('#node-config-input-secretAccessKey'), 's3: its credentials rows');
      assert.ok(!(await page.isVisible('#node-config-input-path')), 's3: no path row');
      await page.fill('#node-config-input-bucket', 'ab');
      const problem = page.locator('#volume-backup-problem-bucket');
      await problem.waitFor({ state: 'visible' });
      assert.strictEqual(await problem.textContent(), 'Bucket must be 3 to 63 characters long; "ab" has 2 characters');
      assert.ok(await page.$eval('#node-config-input-bucket', (el: { classList: { contains(c: string): boolean } }) => el.classList.contains('input-error')), 'the input is marked');
      await page.fill('#node-config-input-bucket', 'abc');
      await problem.waitFor({ state: 'hidden' });

      // The third-party backend shares the path row with posix.
      await page.selectOption('#node-config-input-backend', 'sharded');
      assert.ok(await page.isVisible('#node-config-input-path'), 'sharded: the path row');
      assert.ok(!(await page.isVisible('#node-config-input-bucket')), 'sharded: no bucket row');

      // Saved with the short bucket anyway, the config node is invalid for that field.
      await page.selectOption('#node-config-input-backend', 's3');
      await page.fill('#node-config-input-bucket', 'ab');
      await page.click('#node-config-dialog-ok');
      await page.waitForSelector('#node-config-input-backend', { state: 'detached' });
      const saved = await page.evaluate(() => {
        const RED = (globalThis as unknown as { RED: any }).RED;  
        const out: unknown[] = [];
        RED.nodes.eachConfig((n: any) => { if (n.type === 'volume-driver-config') out.push({ backend: n.backend, bucket: n.bucket, valid: n.valid, errors: n.validationErrors }); });  
        return out;
      });
      const made = (saved as Array<{ backend: string; bucket?: string; valid: boolean; errors: unknown }>).filter((n) => n.backend === 's3');
      assert.strictEqual(made.length, 1, JSON.stringify(saved));
      assert.deepStrictEqual({ ...made[0], errors: undefined }, { backend: 's3', bucket: 'ab', valid: false, errors: undefined });
      assert.ok(JSON.stringify(made[0].errors).includes('Bucket must be 3 to 63 characters long'), JSON.stringify(saved));
    });
  });
});
