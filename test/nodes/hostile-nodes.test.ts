/**
 * Hostile messages to every operation node in a real Node-RED runtime: wrong types, huge values,
 * negative sizes, NUL bytes, "../" and absolute paths, prototype-polluting objects. Each message ends in
 * exactly one Catch (or, when it happens to be valid, one result), never a crash of the runtime; nothing
 * is written outside the repository and the targets; the nodes keep working afterwards.
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { inspect } from 'util';
import { tally } from '../helpers/fault-report';
import { makeImage, tempDir } from '../helpers/volumes';
import { Collector, Msg, NODE_MODULES, TestNode, helper } from './support';

const KiB = 1024;

describe('hostile messages to the Node-RED nodes', function () {
  this.timeout(180_000);
  let sandbox: string;
  const cwd = process.cwd();

  before(async () => {
    sandbox = await tempDir('hostile-nodes');
    await fs.mkdir(path.join(sandbox, 'outside'));
    await fs.writeFile(path.join(sandbox, 'outside', 'keep.txt'), 'must survive');
    await fs.mkdir(path.join(sandbox, 'a', 'cwd'), { recursive: true });
    // Relative paths in messages resolve here, inside the sandbox.
    process.chdir(path.join(sandbox, 'a', 'cwd'));
    process.env.VOLUME_BACKUP_STATE_DIR = path.join(sandbox, 'state');
    await helper.startServer();
  });
  after(async () => {
    await helper.unload();
    await helper.stopServer();
    process.chdir(cwd);
    delete process.env.VOLUME_BACKUP_STATE_DIR;
    await fs.rm(sandbox, { recursive: true, force: true });
  });

  it('every node answers every bad message with one Catch or one result; the runtime stays up', async () => {
    const image = path.join(sandbox, 'disk.img');
    await makeImage(image, 256 * KiB, 21, 64 * KiB);
    const repoDir = path.join(sandbox, 'repo');
    const placed = (n: Record<string, unknown>) => ({ x: 100, y: 100, z: 't1', ...n });
    const ops = ['create', 'inc', 'snap', 'restore', 'prune'];
    await helper.load(NODE_MODULES, [
      { id: 't1', type: 'tab', label: 'hostile' },
      { id: 'cfg', type: 'volume-driver-config', backend: 'posix', path: repoDir, chunkSize: '64 KiB', blockSize: '4 KiB', compression: 'zstd', progress: false, maxConcurrent: 1 },
      ...[
        { id: 'create', type: 'volume-backup-create', volume: '', volumeType: 'str' },
        { id: 'inc', type: 'volume-backup-incremental', volume: '', volumeType: 'str', mode: '', modeType: 'str' },
        { id: 'snap', type: 'volume-snapshot-backup', source: '', sourceType: 'str', provider: 'copy', snapshotDir: path.join(sandbox, 'snapshots') },
        { id: 'restore', type: 'volume-restore', action: '', actionType: 'str' },
        { id: 'prune', type: 'volume-prune', policy: '', policyType: 'json' },
      ].map((n) => placed({ repository: 'cfg', wires: [['out'], []], ...n })),
      placed({ id: 'out', type: 'helper' }),
      placed({ id: 'catch', type: 'catch', scope: ops, uncaught: false, wires: [['caught']] }),
      placed({ id: 'caught', type: 'helper' }),
      // Complete fires when a node calls done(): with Catch (done(err)), the end of its work on a message.
      placed({ id: 'complete', type: 'complete', scope: ops, uncaught: false, wires: [['completed']] }),
      placed({ id: 'completed', type: 'helper' }),
    ]);
    const out = new Collector(helper.getNode('out'));
    const caught = new Collector(helper.getNode('caught'));
    const completed = new Collector(helper.getNode('completed'));
    const withId = (c: Collector, id: string) => c.messages.filter((m) => m._msgid === id);
    const answers = (id: string) => withId(out, id).length + withId(caught, id).length;
    const crashes: unknown[] = [];
    const onCrash = (err: unknown) => crashes.push(err);
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);

    // A good backup first, so that restores and incrementals have something to work on.
    (helper.getNode('create') as TestNode).receive({ volume: image, volumeId: 'v' });
    const good = (await out.waitFor(1))[0].payload as { id: string };

    const hostile: unknown[] = [
      '../outside/x', '../../outside/keep.txt', '/etc/passwd', 'a\0b', '', ' ', 'x'.repeat(100_000), '%2e%2e%2f', 'C:\\x', '\u202e',
      -1, 0, 1.5, 1e308, -1e308, NaN, Infinity, 2 ** 53, null, true, [], ['a'], {}, { length: -1 },
      JSON.parse('{"__proto__": {"polluted": true}}'), { toString: 'x' }, Buffer.from('bytes'), new Date(0),
    ];
    const cases: { node: string; msg: Msg }[] = [];
    for (const v of hostile) {
      cases.push(
        { node: 'create', msg: { volume: v } },
        { node: 'create', msg: { volume: image, volumeId: v } },
        { node: 'create', msg: { volume: image, volumeId: 'v', chunkSize: v } },
        { node: 'create', msg: { volume: image, volumeId: 'v', backupName: v, description: v } },
        { node: 'create', msg: { volume: image, volumeId: 'v', compression: v } },
        { node: 'inc', msg: { volume: image, volumeId: 'v', parentId: v } },
        { node: 'inc', msg: { volume: image, volumeId: 'v', mode: v } },
        { node: 'snap', msg: { snapshotSource: v, volume: image } },
        { node: 'snap', msg: { snapshotSource: 'existing', snapshot: v, volumeId: 'v' } },
        { node: 'restore', msg: { backupId: v, target: path.join(sandbox, 'restored.img') } },
        { node: 'restore', msg: { backupId: good.id, target: typeof v === 'string' && v.includes('outside') ? v : path.join(sandbox, 'outside') } },
        { node: 'restore', msg: { action: v, backupId: good.id, verifyOnly: true } },
        { node: 'restore', msg: { volumeId: v } },
        { node: 'prune', msg: { policy: v, dryRun: true } },
        { node: 'prune', msg: { policy: { keepLast: v }, dryRun: true } },
        { node: 'prune', msg: { policy: { keepLast: 1 }, volumeId: v, dryRun: true } },
      );
    }

    const failures: string[] = [];
    const ids: string[] = [];
    for (const [i, c] of cases.entries()) {
      const refusedBefore = caught.messages.length;
      // Every answer (result, Catch, Complete) carries the message's id: answers are counted per message,
      // once the node has finished with it (Complete, or the Catch of done(err)), not after a guessed pause.
      const id = `hostile-${i}`;
      ids.push(id);
      let error: unknown;
      try {
        (helper.getNode(c.node) as TestNode).receive({ ...c.msg, _msgid: id });
        await waitUntil(() => withId(completed, id).length + withId(caught, id).length > 0, 60_000);
        assert.equal(answers(id), 1, `${answers(id)} answers`);
        if (caught.messages.length > refusedBefore) {
          const message = caught.messages[caught.messages.length - 1].error?.message ?? '';
          assert.ok(message.length > 5 && message.length < 2000, `unclear error: ${message.slice(0, 200)}`);
          assert.ok(!/TypeError|Cannot read prop|is not a function/.test(message), `a crash, not a clear error: ${message}`);
        }
        assert.deepEqual(crashes, []);
        assert.equal(await fs.readFile(path.join(sandbox, 'outside', 'keep.txt'), 'utf8'), 'must survive');
        assert.deepEqual(await fs.readdir(path.join(sandbox, 'outside')), ['keep.txt'], 'something was written outside');
        assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype was polluted');
      } catch (err) {
        error = err;
      }
      const label = `${c.node} ${JSON.stringify(c.msg, (_k, val) => (typeof val === 'string' && val.length > 30 ? `${val.slice(0, 10)}…(${val.length})` : val))?.slice(0, 120)}`;
      // The label shortens; the key is the exact message (NaN and null both print as null in JSON).
      const failure = tally('hostileInputs', `Node-RED ${c.node}`, label, error, inspect(c.msg, { depth: Infinity, maxStringLength: Infinity, breakLength: Infinity }));
      if (failure) failures.push(failure);
    }
    process.removeListener('uncaughtException', onCrash);
    process.removeListener('unhandledRejection', onCrash);

    // Still working: a good backup and a verify.
    const before = out.messages.length;
    (helper.getNode('create') as TestNode).receive({ volume: image, volumeId: 'v' });
    await waitUntil(() => out.messages.length > before, 20_000);
    (helper.getNode('restore') as TestNode).receive({ action: 'verify', backupId: good.id });
    await waitUntil(() => out.messages.length > before + 1, 20_000);
    // An answer that came after the node had finished would be a second one: none came since.
    for (const id of ids) if (answers(id) !== 1) failures.push(`${id}: ${answers(id)} answers in all`);
    assert.deepEqual(failures, []);
    assert.ok(caught.messages.length > cases.length / 2, `${caught.messages.length} of ${cases.length} refused`);
  });
});

async function waitUntil(condition: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`no answer within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
