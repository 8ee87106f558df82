/**
 * The operation nodes' edit dialogs in a real editor (Debian's chromium driven by playwright-core
 * against a started Node-RED), on a flow saved by an earlier version: nodes that have none of the
 * properties added since (lockWait, timeoutSeconds, fullIfNoParent, overwrite, queueSize, the typedInput
 * types …). They open without a validation warning, on the canvas or in the dialog; the rows come from
 * the shared editor script (resources/); rows are shown only where they apply; a bad value is refused
 * in words. Screenshots: test-output/screenshots/form-*.png (docs/screenshots/ with UPDATE_SCREENSHOTS=1).
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { BrowserContext, Page } from 'playwright-core';
import { tempDir } from '../helpers/volumes';
import { SCREENSHOTS, chromiumOrSkip, openBrowser } from './chromium';
import { NodeRed, PACKAGE_ROOT } from './sidebar-node-red';
import { sidebarFlow } from './sidebar-repository';
const TYPES = ['volume-backup-create', 'volume-backup-incremental', 'volume-snapshot-backup', 'volume-restore', 'volume-prune'];

type Any = any;

describe('operation node dialogs in the editor (chromium)', function () {
  this.timeout(90_000);
  let dir: string;
  let red: NodeRed;
  let context: BrowserContext;
  let page: Page;
  let pageErrors: string[] = [];

  before(async function () {
    if (!chromiumOrSkip(this)) return;
    dir = await tempDir('editor-forms');
    red = await NodeRed.start();
    const { flows, configId } = sidebarFlow(path.join(dir, 'repository'));
    const tab = flows[0].id as string;
    // A driver-config as today's editor saves it (its own old-flow defaults are its own test's business).
    Object.assign(flows[1], { chunkSize: '8 MiB', blockSize: '32 KiB', compression: 'zstd', progress: true, cleanupAtStart: true });
    // Saved by an earlier version: the node's id, type, place, wires and repository; nothing else.
    const old = TYPES.map((type, i) => ({ id: `old-${i}`, type, z: tab, repository: configId, x: 200, y: 60 + i * 60, wires: [[], []] }));
    await red.deploy([...flows, ...old]);
    ({ context, page, pageErrors } = await openBrowser({ width: 1280, height: 900 }));
    await page.goto(red.url);
    await page.waitForFunction(() => !!(globalThis as Any).RED?.nodes?.node('old-4'), undefined, { timeout: 60_000 });
  });

  after(async () => {
    await context?.close();
    await red?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  /** Open a node's dialog as a double click does; resolves when it has slid in. */
  async function open(id: string): Promise<void> {
    await page.evaluate((nodeId) => {
      const RED = (globalThis as Any).RED;
      RED.editor.edit(RED.nodes.node(nodeId));
    }, id);
    await page.waitForSelector('#node-input-repository', { state: 'visible' });
    await page.waitForFunction(() => (globalThis as Any).document.getAnimations().every((a: Any) => a.playState !== 'running') && (globalThis as Any).$(':animated').length === 0);
  }

  async function close(button: 'ok' | 'cancel' = 'cancel'): Promise<void> {
    await page.click(`#node-dialog-${button}`);
    await page.waitForSelector('#node-input-repository', { state: 'detached' });
  }

  /** The rows of the open dialog that show a validation error, by input id. */
  const errorsInDialog = () =>
    page.evaluate(() => {
      const $ = (globalThis as Any).$;
      // Node-RED marks the input and, for a typedInput, its container.
      return $('.red-ui-tray .input-error')
        .map((_: number, el: Any) => $(el).closest('.form-row').find('input').attr('id') || el.id || el.className)
        .get()
        .filter((id: string, i: number, all: string[]) => all.indexOf(id) === i);
    });

  const visible = (id: string) => page.locator(`#node-input-${id}`).first().isVisible();
  /** A typedInput's input is hidden itself; its row says whether it is shown. */
  const rowVisible = (name: string) => page.locator(`.red-ui-tray:last-child .volume-backup-row-${name}`).isVisible();

  it('the shared editor script is served from the package resources and builds every form', async () => {
    const script = await red.request('GET', '/resources/node-red-contrib-volume-backup/volume-backup-editor.js');
    assert.strictEqual(script.status, 200);
    assert.match(script.text, /VolumeBackupEditor/);
    const templates = await page.evaluate((types) => types.map((t) => (globalThis as Any).$(`script[data-template-name="${t}"]`).length), TYPES);
    assert.deepStrictEqual(templates, [1, 1, 1, 1, 1]);
  });

  it('every example, imported as from Import > Examples, shows no warning', async () => {
    const examples = (await fs.readdir(path.join(PACKAGE_ROOT, 'examples'))).filter((f) => f.endsWith('.json'));
    assert.ok(examples.length >= 6);
    for (const file of examples) {
      const nodes = JSON.parse(await fs.readFile(path.join(PACKAGE_ROOT, 'examples', file), 'utf8'));
      const invalid = await page.evaluate((flow) => {
        const RED = (globalThis as Any).RED;
        // The editor's import (what Import > Examples calls), with new ids; then its validation of each node.
        const imported = RED.nodes.import(flow, { generateIds: true });
        const configs: Any[] = [];
        RED.nodes.eachConfig((c: Any) => { if (Object.values(imported.nodeMap).includes(c)) configs.push(c); });
        const all = [...imported.nodes, ...configs.filter((c) => !imported.nodes.includes(c))];
        all.forEach((n: Any) => RED.editor.validateNode(n));
        return { count: all.length, invalid: all.filter((n: Any) => !n.valid).map((n: Any) => ({ type: n.type, name: n.name, errors: n.validationErrors })) };
      }, nodes);
      // A config node the editor already has (the same example repository) is reused, not imported again.
      const flowNodes = nodes.filter((n: { x?: number }) => n.x !== undefined).length;
      assert.ok(invalid.count >= flowNodes, `${file}: ${invalid.count} nodes imported of ${nodes.length}`);
      assert.deepStrictEqual(invalid.invalid, [], `${file}: every node valid after import`);
    }
  });

  it('a flow saved without the new properties shows no warning: not on the canvas, not in any dialog', async () => {
    const onCanvas = await page.evaluate(() => {
      const RED = (globalThis as Any).RED;
      const out: unknown[] = [];
      RED.nodes.eachNode((n: Any) => { if (!n.valid) out.push({ type: n.type, errors: n.validationErrors }); });
      return out;
    });
    assert.deepStrictEqual(onCanvas, [], 'no red triangle');
    for (const [i, type] of TYPES.entries()) {
      await open(`old-${i}`);
      assert.deepStrictEqual(await errorsInDialog(), [], `${type}: no field is marked invalid`);
      await close('ok');
      const after = await page.evaluate((id) => {
        const n = (globalThis as Any).RED.nodes.node(id);
        return { valid: n.valid, errors: n.validationErrors ?? [] };
      }, `old-${i}`);
      assert.deepStrictEqual(after, { valid: true, errors: [] }, `${type} after Done`);
    }
    assert.deepStrictEqual(pageErrors, []);
  });

  it('snapshot-backup shows snapshot dir, LVM size and timeout only for a temporary snapshot whose provider uses them', async () => {
    await open('old-2');
    // An existing snapshot (the default): only msg.snapshot applies.
    assert.strictEqual(await rowVisible('snapshot'), true);
    for (const name of ['provider', 'snapshotDir', 'lvmSize', 'timeoutSeconds', 'createCommand', 'deleteCommand', 'keepBase', 'fullReadEvery']) {
      assert.strictEqual(await rowVisible(name), false, `${name} is hidden for an existing snapshot`);
    }
    await page.locator('.red-ui-tray').last().screenshot({ path: path.join(SCREENSHOTS, 'form-snapshot-existing.png') });
    // A temporary snapshot, provider auto: where and how big, and the timeout; no commands.
    await page.evaluate(() => (globalThis as Any).$('#node-input-source').typedInput('value', 'provider'));
    assert.strictEqual(await rowVisible('snapshot'), false);
    for (const name of ['provider', 'snapshotDir', 'lvmSize', 'timeoutSeconds']) assert.strictEqual(await rowVisible(name), true, `${name} is shown for provider auto`);
    assert.strictEqual(await rowVisible('createCommand'), false);
    // Base snapshots: for the providers that can keep one, ticked in a flow saved before the setting existed.
    assert.strictEqual(await rowVisible('keepBase'), true, 'keepBase is shown for provider auto');
    assert.strictEqual(await page.evaluate(() => (globalThis as Any).$('#node-input-keepBase').prop('checked')), true, 'keepBase ticked by default');
    // "Full read every N": with the base checkbox, and only while it is ticked; empty in an old flow (the engine's 30).
    assert.strictEqual(await rowVisible('fullReadEvery'), true, 'fullReadEvery is shown while bases are kept');
    assert.strictEqual(await page.evaluate(() => (globalThis as Any).$('#node-input-fullReadEvery').typedInput('value')), '');
    await page.locator('#node-input-keepBase').uncheck();
    assert.strictEqual(await rowVisible('fullReadEvery'), false, 'no bases kept: nothing to re-read');
    await page.locator('#node-input-keepBase').check();
    assert.strictEqual(await rowVisible('fullReadEvery'), true);
    await page.selectOption('#node-input-provider', 'lvm');
    assert.strictEqual(await rowVisible('keepBase'), false, 'LVM keeps no base snapshots');
    assert.strictEqual(await rowVisible('fullReadEvery'), false, 'nor re-reads');
    await page.selectOption('#node-input-provider', 'command');
    for (const name of ['snapshotDir', 'createCommand', 'deleteCommand', 'timeoutSeconds']) assert.strictEqual(await rowVisible(name), true, `${name} is shown for provider command`);
    assert.strictEqual(await rowVisible('lvmSize'), false, 'no LVM size for commands');
    assert.strictEqual(await rowVisible('keepBase'), false, 'commands keep no base snapshots');
    await page.selectOption('#node-input-provider', 'msg');
    assert.strictEqual(await rowVisible('keepBase'), true, 'keepBase applies to whichever provider msg.temporarySnapshot names');
    for (const name of ['snapshotDir', 'lvmSize', 'timeoutSeconds', 'createCommand', 'deleteCommand']) {
      assert.strictEqual(await rowVisible(name), false, `${name} is hidden: msg.temporarySnapshot says it all`);
    }
    await close('cancel');
  });

  it('restore shows target, overwrite and the base only when restoring', async () => {
    await open('old-3');
    for (const name of ['target', 'overwrite', 'baseBackupId', 'trustBase']) assert.strictEqual(await rowVisible(name), true, `${name} is shown for a restore`);
    assert.strictEqual(await visible('overwrite'), true);
    assert.strictEqual(await page.evaluate(() => (globalThis as Any).$('#node-input-trustBase').prop('checked')), false, 'the base is sampled unless ticked');
    await page.evaluate(() => (globalThis as Any).$('#node-input-action').typedInput('value', 'list'));
    for (const name of ['target', 'overwrite', 'baseBackupId', 'trustBase']) assert.strictEqual(await rowVisible(name), false, `${name} is hidden for list`);
    await close('cancel');
  });

  it('a value the runtime would refuse is refused in the dialog, in words', async () => {
    await open('old-0');
    // Typed as a user types (the old node's volume id and wait are fixed text and a number by default).
    await page.locator('.volume-backup-row-volumeId .red-ui-typedInput-input').fill('a/b');
    await page.keyboard.press('Tab');
    await page.locator('.volume-backup-row-lockWait .red-ui-typedInput-input').fill('2 days');
    await page.keyboard.press('Tab');
    assert.deepStrictEqual((await errorsInDialog()).sort(), ['node-input-lockWait', 'node-input-volumeId']);
    const words = await page.evaluate(() => {
      const RED = (globalThis as Any).RED;
      const defaults = RED.nodes.getType('volume-backup-create').defaults;
      const node = RED.nodes.node('old-0');
      return [defaults.volumeId.validate.call(node, 'a/b'), defaults.lockWait.validate.call(node, '2 days')];
    });
    assert.deepStrictEqual(words, [
      'a volume id is 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit',
      'a number of seconds from 0 to 86400 (0: fail at once when the volume is busy)',
    ]);
    await page.locator('.red-ui-tray').last().screenshot({ path: path.join(SCREENSHOTS, 'form-invalid.png') });
    await close('ok');
    const node = await page.evaluate(() => {
      const n = (globalThis as Any).RED.nodes.node('old-0');
      return { valid: n.valid, errors: ([...(n.validationErrors ?? [])] as string[]).sort() };
    });
    // The red triangle's tooltip lists the same words.
    assert.deepStrictEqual(node, { valid: false, errors: words.slice().reverse() });
  });
});
