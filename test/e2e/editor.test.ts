/**
 * The editor in a real browser (Debian's chromium driven by playwright-core): the six nodes in the
 * palette under "backup", every edit dialog, a driver-config made from a node's dialog, a deploy, and
 * the first example flow after a backup ran (green status, record in the debug sidebar).
 * Screenshots go to test-output/screenshots/ (docs/screenshots/ with UPDATE_SCREENSHOTS=1).
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { tempDir } from '../helpers/volumes';
import { launchChromium } from './chromium';
import { NodeRedProcess, nodeRedEnv } from './node-red-process';

// UPDATE_SCREENSHOTS=1 refreshes the ones the README shows; otherwise they go to the git-ignored test-output/.
const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS ? path.join(nodeRedEnv.root, 'docs', 'screenshots') : path.join(nodeRedEnv.root, 'test-output', 'screenshots');
const PALETTE = [
  ['volume-backup-create', 'backup-create'],
  ['volume-backup-incremental', 'backup-incremental'],
  ['volume-snapshot-backup', 'snapshot-backup'],
  ['volume-restore', 'restore'],
  ['volume-prune', 'prune'],
] as const;

describe('the editor in a browser', function () {
  this.timeout(120_000);
  let work: string;
  let red: NodeRedProcess;
  let context: any;
  let page: any;

  before(async function () {
    work = await tempDir('editor');
    ({ context, page } = await launchChromium(this, path.join(work, 'profile')));
    // The first example makes its demo volume in the temporary folder: this test's own.
    red = new NodeRedProcess(path.join(work, 'user-dir'), { TMPDIR: path.join(work, 'tmp') });
    await red.start();
    await fs.mkdir(SCREENSHOTS, { recursive: true });
  });
  after(async () => {
    await context?.close();
    await red?.stop();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('shows the five operation nodes under "backup" in the palette, and registers the driver-config', async () => {
    await page.goto(`http://127.0.0.1:${red.port}/`);
    await page.waitForSelector(`.red-ui-palette-node[data-palette-type='volume-backup-create']`, { timeout: 60_000 });
    for (const [type, label] of PALETTE) {
      const node = page.locator(`.red-ui-palette-node[data-palette-type='${type}']`);
      assert.strictEqual(await node.count(), 1, type);
      // The palette breaks long labels at the hyphen.
      assert.strictEqual(((await node.locator('.red-ui-palette-label').textContent()) ?? '').replace(/\s+/g, ''), label);
      const category = await node.evaluate((el: any) => el.closest('.red-ui-palette-category')?.id ?? '');
      assert.match(category, /backup$/, `${type} is in the "backup" category`);
    }
    const config = await page.evaluate(() => {
      const def = (globalThis as unknown as { RED: { nodes: { getType(t: string): { category: string; paletteLabel: string } } } }).RED.nodes.getType('volume-driver-config');
      return { category: def.category, paletteLabel: def.paletteLabel };
    });
    assert.deepStrictEqual(config, { category: 'config', paletteLabel: 'driver-config' });
    // Just the "backup" category (the palette starts with common and function): the screenshot scrolls to it.
    await page.locator(`.red-ui-palette-category[id$='backup']`).screenshot({ path: path.join(SCREENSHOTS, 'palette.png') });
  });

  it('opens every edit dialog, makes a driver-config from it, and deploys', async () => {
    // Place one of each node on the workspace, as dragging from the palette would.
    await page.evaluate((types: string[]) => {
      const RED = (globalThis as unknown as { RED: any }).RED;
      const z = RED.workspaces.active();
      const withDefaults = (type: string) => {
        const defaults = RED.nodes.getType(type).defaults as Record<string, { value: unknown }>;
        return Object.fromEntries(Object.entries(defaults).map(([key, d]) => [key, d.value]));
      };
      RED.view.importNodes(types.map((type, i) => ({ ...withDefaults(type), id: `ed-${i}`, type, x: 200, y: 80 + i * 60, z, wires: [] })), { generateIds: false });
    }, PALETTE.map(([type]) => type));

    for (const [index, [, label]] of PALETTE.entries()) {
      await page.evaluate((id: string) => {
        const RED = (globalThis as unknown as { RED: any }).RED;
        RED.editor.edit(RED.nodes.node(id));
      }, `ed-${index}`);
      await page.waitForSelector('#node-input-repository', { state: 'visible' });
      await stillPage(); // the dialog slides in
      if (index === 0) {
        // Add a driver-config from the repository field's pencil button.
        await page.click('#node-input-btn-repository-add');
        await page.waitForSelector('#node-config-input-path', { state: 'visible' });
        await page.fill('#node-config-input-path', path.join(work, 'repository'));
        await page.fill('#node-config-input-name', 'local repository');
        await stillPage();
        await page.locator('.red-ui-tray').last().screenshot({ path: path.join(SCREENSHOTS, 'driver-config.png') });
        await page.click('#node-config-dialog-ok');
        await page.waitForSelector('#node-config-input-path', { state: 'detached' });
      } else {
        // The driver-config made for the first node is offered to the others.
        await page.selectOption('#node-input-repository', { label: 'local repository' });
      }
      await page.locator('.red-ui-tray').last().screenshot({ path: path.join(SCREENSHOTS, `edit-${label}.png`) });
      await page.click('#node-dialog-ok');
      await page.waitForSelector('#node-input-repository', { state: 'detached' });
    }

    const invalid = await page.evaluate(() => {
      const RED = (globalThis as unknown as { RED: any }).RED;
      const out: unknown[] = [];
      RED.nodes.eachNode((n: any) => { if (!n.valid) out.push({ type: n.type, errors: n.validationErrors, repository: n.repository }); });
      RED.nodes.eachConfig((n: any) => { if (!n.valid) out.push({ type: n.type, errors: n.validationErrors }); });
      return out;
    });
    assert.deepStrictEqual(invalid, [], 'every node is valid after its dialog');
    await page.click('#red-ui-header-button-deploy');
    let flows: { type: string; path?: string; repository?: string }[] = [];
    for (;;) {
      const res = await red.request('GET', '/flows', undefined, { 'Node-RED-API-Version': 'v2' });
      flows = (res.body as { flows: typeof flows }).flows;
      if (flows.some((n) => n.type === 'volume-driver-config')) break;
      await page.waitForTimeout(200);
    }
    await deployFinished();
    const config = flows.find((n) => n.type === 'volume-driver-config') as { id: string; path: string } | undefined;
    assert.ok(config, 'the driver-config was deployed');
    assert.strictEqual(config.path, path.join(work, 'repository'));
    for (const [type] of PALETTE) {
      const node = flows.find((n) => n.type === type);
      assert.ok(node, `${type} deployed`);
      assert.strictEqual(node.repository, config.id);
    }
    assert.ok(!/\[error\]/.test(red.log()), red.log().slice(-2000));
  });

  it('shows the first example after a backup: inject → full backup (green size and time) → debug, the record in the sidebar', async () => {
    const flows = nodeRedEnv.exampleTabs(['01-']);
    const tab = flows.find((n) => n.type === 'tab') as { id: string };
    await nodeRedEnv.deployFlows(red.port, flows);
    await page.reload();
    await page.waitForSelector(`.red-ui-palette-node[data-palette-type='volume-backup-create']`, { timeout: 60_000 });
    await page.evaluate((id: string) => {
      const RED = (globalThis as unknown as { RED: any }).RED;
      RED.workspaces.show(id);
      RED.sidebar.show('debug');
    }, tab.id);
    await page.waitForSelector(`#red-ui-tab-${tab.id}.active`);

    const res = await red.request('POST', '/inject/vb-ex1-now');
    assert.strictEqual(res.status, 200, res.text);
    const status = page.locator(`[id='vb-ex1-full'] .red-ui-flow-node-status-label`);
    // The status shows the size and time when the backup is done, however long that takes.
    const done = /^32 MiB read, [\d.]+ [KM]iB stored, [\d.]+ (ms|s)$/;
    await status.filter({ hasText: done }).waitFor({ timeout: 0 });
    assert.match((await status.textContent()) ?? '', done, 'the full backup node shows what it read, stored, and how long it took');
    await page.waitForSelector('.red-ui-debug-msg', { timeout: 0 });
    const debugText = await page.locator('.red-ui-debug-msg').first().textContent();
    assert.match(debugText ?? '', /backup record/);
    await deployFinished();
    await page.mouse.move(0, 0); // no hover highlight

    // The flow (its nodes lie within x < 720, y < 300 of the workspace) and the debug sidebar beside it.
    const tabs = await page.locator('#red-ui-workspace-tabs').boundingBox();
    const sidebar = await page.locator('#red-ui-sidebar').boundingBox();
    assert.ok(tabs && sidebar);
    await page.screenshot({
      path: path.join(SCREENSHOTS, 'deployed.png'),
      clip: { x: tabs.x, y: tabs.y, width: sidebar.x + sidebar.width - tabs.x, height: 360 },
    });
  });

  /** No animation is running (CSS transitions, and jQuery's: the editor's trays slide in with both). */
  async function stillPage(): Promise<void> {
    await page.waitForFunction(() => {
      const g = globalThis as unknown as { document: { getAnimations(): { playState: string }[] }; $: (selector: string) => { length: number } };
      return g.document.getAnimations().every((a) => a.playState !== 'running') && g.$(':animated').length === 0;
    }, undefined, { timeout: 0 });
  }

  /** The deploy is over in the editor: nothing left to deploy, no spinner, no notification over the flow. */
  async function deployFinished(): Promise<void> {
    await page.waitForFunction(() => !(globalThis as unknown as { RED: { nodes: { dirty(): boolean } } }).RED.nodes.dirty(), undefined, { timeout: 0 });
    await page.waitForSelector('.red-ui-deploy-button-spinner', { state: 'hidden', timeout: 0 });
    await page.waitForSelector('.red-ui-notification', { state: 'detached', timeout: 0 });
  }
});
