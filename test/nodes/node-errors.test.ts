/**
 * What a Catch node and the node status show when an operation fails (issue 14, items 7, 9, 10): the
 * message alone (no "VolumeBackupError: " prefix), on one line, control characters escaped; an
 * explicit parent that breaks the rules refused as it is by the CLI.
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { makeImage, tempDir } from '../helpers/volumes';
import { Collector, NODE_MODULES, TestNode, helper } from './support';

const KiB = 1024;
const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('Node-RED nodes: what a failure shows', function () {
  this.timeout(120_000);
  let sandbox: string;

  before(async () => {
    sandbox = await tempDir('node-errors');
    await helper.startServer();
  });
  after(async () => {
    await helper.unload();
    await helper.stopServer();
    await fs.rm(sandbox, { recursive: true, force: true });
  });

  it('Catch gets the message without a class name, escaped; an incremental is refused as a differential parent', async () => {
    const image = path.join(sandbox, 'disk.img');
    await makeImage(image, 256 * KiB, 5, 64 * KiB);
    const placed = (n: Record<string, unknown>) => ({ x: 100, y: 100, z: 't1', ...n });
    await helper.load(NODE_MODULES, [
      { id: 't1', type: 'tab', label: 'errors' },
      { id: 'cfg', type: 'volume-driver-config', backend: 'posix', path: path.join(sandbox, 'repo'), chunkSize: '64 KiB', blockSize: '4 KiB', compression: 'zstd', progress: false },
      placed({ id: 'create', type: 'volume-backup-create', repository: 'cfg', volume: '', volumeType: 'str', wires: [['out'], []] }),
      placed({ id: 'inc', type: 'volume-backup-incremental', repository: 'cfg', volume: '', volumeType: 'str', mode: '', modeType: 'str', wires: [['out'], []] }),
      placed({ id: 'out', type: 'helper' }),
      placed({ id: 'catch', type: 'catch', scope: ['create', 'inc'], uncaught: false, wires: [['caught']] }),
      placed({ id: 'caught', type: 'helper' }),
    ]);
    const out = new Collector(helper.getNode('out'));
    const caught = new Collector(helper.getNode('caught'));
    const create = helper.getNode('create') as TestNode;
    const inc = helper.getNode('inc') as TestNode;

    create.receive({ volume: image, volumeId: 'v' });
    const full = (await out.waitFor(1))[0].payload as { id: string };
    inc.receive({ volume: image, volumeId: 'v' });
    const incremental = (await out.waitFor(2))[1].payload as { id: string; parentId: string };
    assert.equal(incremental.parentId, full.id);

    inc.receive({ volume: image, volumeId: 'v', mode: 'differential', parentId: incremental.id });
    const [refused] = await caught.waitFor(1);
    const message = refused.error?.message ?? '';
    assert.match(message, new RegExp(`^backup ${incremental.id} cannot be the parent of this differential backup: it is an incremental backup`));
    assert.equal(refused.error?.code, 'INCOMPATIBLE_PARENT');

    create.receive({ volume: path.join(sandbox, 'missing\u001b]0;pwned\u0007\u009b2J.img'), volumeId: 'v' });
    const [, missing] = await caught.waitFor(2);
    const text = missing.error?.message ?? '';
    assert.ok(!/^(VolumeBackupError|Error): /.test(text), `class-name prefix: ${text}`);
    assert.ok(!RAW_CONTROL.test(text), `raw control characters: ${JSON.stringify(text)}`);
    assert.ok(text.includes('missing\\u001b]0;pwned\\u0007\\u009b2J.img'), text);
    const statuses = create.status.args.map((a) => (a[0] as { text?: string }).text ?? '');
    assert.ok(statuses.length > 0 && statuses.every((s) => !RAW_CONTROL.test(s)), `status texts: ${JSON.stringify(statuses)}`);
    assert.equal(out.messages.length, 2, 'a refused backup produced a result');
  });
});
