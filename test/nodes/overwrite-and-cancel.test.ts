/**
 * The operation nodes in Node-RED (node-red-node-test-helper): the restore node never overwrites by
 * surprise (checkbox or msg.overwrite), msg.cancel stops a running backup and the record says who
 * cancelled, and Node-RED stopping cancels with a warning naming the backup. Running backups are held
 * at their third data object (test/helpers/gate-preload.ts, armed only while this suite runs), so a
 * cancel or a stop always lands mid-backup.
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { BackupRecord } from '../../lib/repository/records';
import { backupsIn } from '../helpers/repository';
import { sha256File, sparseChunkedImage } from '../helpers/volumes';
import { helper, loadTestFlow, nodeTestSuite } from './support';
import '../helpers/gate-preload';

const MiB = 1024 * 1024;

describe('Node-RED nodes: restore overwrite, msg.cancel, stopping', function () {
  this.timeout(60_000);
  const suite = nodeTestSuite('overwrite-cancel', { size: 4 * MiB, seed: 19 });
  const load = (nodes: Record<string, unknown>[]) => loadTestFlow(suite.repoDir, nodes);
  const backupNode = { id: 'b', type: 'volume-backup-create', volume: 'volume', volumeType: 'msg' };
  const restoreNode = (extra: Record<string, unknown> = {}) => ({ id: 'r', type: 'volume-restore', action: 'restore', actionType: 'action', target: 'target', targetType: 'msg', ...extra });

  before(() => {
    process.env.VB_GATE_FILE = path.join(suite.work, 'storage-flowing');
  });
  after(() => {
    delete process.env.VB_GATE_FILE;
  });

  async function backupOf(t: Awaited<ReturnType<typeof load>>, volume: string): Promise<BackupRecord> {
    t.node('b').receive({ volume });
    const [done] = await Promise.race([t.out.waitFor(1), t.caught.waitFor(1).then((m) => assert.fail(m[0].error?.message))]);
    return done.payload as BackupRecord;
  }

  it('restore without overwrite leaves an existing file untouched (Catch says why); msg.overwrite or the checkbox allow it', async () => {
    await fs.writeFile(process.env.VB_GATE_FILE!, ''); // small backups here: nothing is held
    const t = await load([backupNode, restoreNode(), restoreNode({ id: 'r2', overwrite: true })]);
    const record = await backupOf(t, suite.image);
    const target = path.join(suite.work, 'existing.img');
    await fs.writeFile(target, Buffer.alloc(4 * MiB, 0x5a));
    const before = await sha256File(target);

    t.node('r').receive({ backupId: record.id, target });
    const [refused] = await t.caught.waitFor(1);
    assert.match(refused.error?.message ?? '', /restore target .*existing\.img exists \(4194304 bytes\): a restore would overwrite it; choose a new file, or allow overwriting \(.*msg\.overwrite = true\)/);
    assert.strictEqual(await sha256File(target), before, 'the existing file is untouched');
    assert.strictEqual((await backupsIn(suite.repoDir)).find((r) => r.id === record.id)?.status, 'available');

    t.node('r').receive({ backupId: record.id, target, overwrite: true });
    await t.out.waitFor(2);
    assert.strictEqual(await sha256File(target), await sha256File(suite.image));

    await fs.writeFile(target, Buffer.alloc(4 * MiB, 0x5a));
    t.node('r2').receive({ backupId: record.id, target });
    await t.out.waitFor(3);
    assert.strictEqual(await sha256File(target), await sha256File(suite.image), 'the node\'s Overwrite checkbox allows it too');
    await fs.rm(process.env.VB_GATE_FILE!);
  });

  it('msg.cancel with msg.backupId stops the running backup: Catch gets the backup\'s message, the record ends error and names the node', async () => {
    const big = path.join(suite.work, 'big.img');
    await sparseChunkedImage(big, 256 * MiB, MiB);
    const t = await load([backupNode, restoreNode()]);
    t.node('b').receive({ volume: big, _msgid: 'the-backup' });
    const [first] = await t.progress.waitFor(1);
    const backupId = (first.payload as { backupId: string }).backupId;

    // Any operation node of the same repository can cancel it.
    t.node('r').receive({ cancel: true, backupId });
    const [answer] = await t.out.waitFor(1);
    assert.strictEqual((answer.payload as BackupRecord).cancelRequest?.source, 'node');
    const [caught] = await t.caught.waitFor(1);
    assert.match(caught.error?.message ?? '', /^cancelled by node r on host /);
    const record = (await backupsIn(suite.repoDir)).find((r) => r.id === backupId)!;
    assert.strictEqual(record.status, 'error');
    assert.match(record.failReason ?? '', /^cancelled by node r on host .* \(node\) at /);
    assert.strictEqual(t.out.messages.length, 1, 'no result for the cancelled backup');

    t.node('r').receive({ cancel: true, backupId });
    const [second] = await t.caught.waitFor(2).then((m) => m.slice(1));
    assert.match(second.error?.message ?? '', /is error: no operation on it is running, so there is nothing to cancel/);
  });

  it('Node-RED stopping cancels a running backup with a warning naming it; the record ends error', async () => {
    const big = path.join(suite.work, 'big-stop.img');
    await sparseChunkedImage(big, 256 * MiB, MiB);
    const t = await load([backupNode]);
    const node = t.node('b');
    node.receive({ volume: big });
    const [first] = await t.progress.waitFor(1);
    const backupId = (first.payload as { backupId: string }).backupId;
    // The helper resets its spies as it unloads: keep what the node warns on the way.
    const warnings: string[] = [];
    const warn = node.warn as unknown as (m: unknown) => void;
    (node as unknown as { warn: (m: unknown) => void }).warn = (m) => (warnings.push(String(m)), warn.call(node, m));
    await helper.unload();
    assert.ok(warnings.some((w) => w.startsWith(`Node-RED is stopping: cancelling the running backup of backup ${backupId}`)), JSON.stringify(warnings));
    const record = (await backupsIn(suite.repoDir)).find((r) => r.id === backupId)!;
    assert.strictEqual(record.status, 'error');
    assert.match(record.failReason ?? '', /Node-RED is stopping/);
  });
});
