/**
 * The restore node onto a base (issue 16 item 4): the target already holds backup A's bytes, so restoring
 * B with base A writes only the blocks that differ; the result is B's volume, byte for byte, and says how
 * much was written. As the CLI's --base, naming the target's content allows writing over it (no
 * Overwrite needed), but a target that does not hold the base, or does not exist, is refused and left as it was.
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { RestoreResult } from '../../lib/engine/types';
import type { BackupRecord } from '../../lib/repository/records';
import { backupsIn } from '../helpers/repository';
import { scatterWrites, sha256File } from '../helpers/volumes';
import { Msg, helper, loadTestFlow, nodeTestSuite, statusTexts } from './support';

const MiB = 1024 * 1024;
const SIZE = 8 * MiB;

describe('Node-RED nodes: restore onto a base backup', function () {
  this.timeout(60_000);
  const suite = nodeTestSuite('restore-base', { size: SIZE, seed: 23 });
  const restoreNode = (id: string, extra: Record<string, unknown> = {}) => ({ id, type: 'volume-restore', action: 'restore', actionType: 'action', target: 'target', targetType: 'msg', ...extra });

  /** Backups A (of the image) and B (an incremental after 3% changed), the image's hash at each, and a flow with restore nodes. */
  async function twoBackups(nodes: Record<string, unknown>[]) {
    const t = await loadTestFlow(suite.repoDir, [
      { id: 'inc', type: 'volume-backup-incremental', volume: 'volume', volumeType: 'msg', mode: 'incremental', modeType: 'mode' },
      ...nodes,
    ]);
    const backup = async (count: number) => {
      t.node('inc').receive({ volume: suite.image });
      const messages = await Promise.race([t.out.waitFor(count), t.caught.waitFor(1).then((m) => assert.fail(m[0].error?.message))]);
      return messages[count - 1].payload as BackupRecord;
    };
    const a = await backup(1);
    const hashA = await sha256File(suite.image);
    await scatterWrites(suite.image, 0.03, 41);
    const b = await backup(2);
    assert.strictEqual(b.parentId, a.id);
    return { t, a, b, hashA, hashB: await sha256File(suite.image) };
  }

  /** Sends msg to node `id` and waits for its answer on output 1 or Catch. */
  async function answer(t: Awaited<ReturnType<typeof twoBackups>>['t'], id: string, msg: Msg): Promise<Msg> {
    const [outs, caught] = [t.out.messages.length, t.caught.messages.length];
    t.node(id).receive(msg);
    const [out] = await Promise.race([t.out.waitFor(outs + 1).then((m) => m.slice(outs)), t.caught.waitFor(caught + 1).then((m) => m.slice(caught))]);
    return out;
  }

  it('msg.baseBackupId: writes only what differs, without Overwrite; the result is B byte for byte and says what was written', async () => {
    const { t, a, b, hashA, hashB } = await twoBackups([restoreNode('r')]);
    const target = path.join(suite.work, 'drill.img');
    await fs.rm(target, { force: true });
    const first = await answer(t, 'r', { backupId: a.id, target });
    assert.strictEqual(first.error, undefined, first.error?.message);
    assert.strictEqual(await sha256File(target), hashA);

    const onBase = await answer(t, 'r', { backupId: b.id, target, baseBackupId: a.id });
    assert.strictEqual(onBase.error, undefined, onBase.error?.message);
    assert.strictEqual(await sha256File(target), hashB, 'the target holds B');
    const result = onBase.payload as RestoreResult;
    assert.strictEqual(result.size, SIZE);
    assert.ok(result.bytesWritten > 0 && result.bytesWritten < SIZE / 4, `${result.bytesWritten} bytes written of ${SIZE}`);
    assert.strictEqual(result.base?.backupId, a.id);
    assert.ok(result.base!.blocksSampled > 0, 'the target was sampled against the base');
    assert.strictEqual(result.base!.bytesUnchanged + result.bytesVerified, SIZE);
    assert.match(statusTexts(t.node('r')).pop()?.text ?? '', /^[\d.]+ [KM]iB written \(on base\), [\d.]+ s$/);
  });

  it('the node\'s base setting and "trust the base" checkbox: no sampling; the same bytes', async () => {
    const { a, b, hashB } = await twoBackups([]);
    // Deployed again, with the base as the node's setting (fixed text), trusted.
    await helper.unload();
    const again = await loadTestFlow(suite.repoDir, [restoreNode('r'), restoreNode('trusting', { baseBackupId: a.id, baseBackupIdType: 'str', trustBase: true })]);
    const target = path.join(suite.work, 'trusted.img');
    await fs.rm(target, { force: true });
    assert.strictEqual((await answer(again, 'r', { backupId: a.id, target })).error, undefined);
    const onBase = await answer(again, 'trusting', { backupId: b.id, target });
    assert.strictEqual(onBase.error, undefined, onBase.error?.message);
    assert.strictEqual(await sha256File(target), hashB);
    const result = onBase.payload as RestoreResult;
    assert.deepStrictEqual(result.base, { backupId: a.id, blocksSampled: 0, bytesUnchanged: SIZE - result.bytesVerified });
    assert.ok(result.bytesWritten < SIZE / 4);
  });

  it('a target that does not hold the base, or does not exist, is refused through Catch and left as it was', async () => {
    const { t, a, b } = await twoBackups([restoreNode('r')]);
    const other = path.join(suite.work, 'other.img');
    await fs.writeFile(other, Buffer.alloc(SIZE, 0x5a));
    const before = await sha256File(other);
    const refused = await answer(t, 'r', { backupId: b.id, target: other, baseBackupId: a.id });
    assert.match(refused.error?.message ?? '', /^restore target .*other\.img does not hold base backup [0-9a-f-]{36}: its block at offset 0 differs; restore without a base \(or, if you are sure, trust it: CLI --trust-base; restore node: the "Trust the base" checkbox or msg\.trustBase = true\)$/);
    assert.strictEqual(await sha256File(other), before, 'the target is untouched');

    const missing = path.join(suite.work, 'missing.img');
    const notThere = await answer(t, 'r', { backupId: b.id, target: missing, baseBackupId: a.id });
    assert.match(notThere.error?.message ?? '', /^restore target .*missing\.img did not exist, so it cannot hold base backup [0-9a-f-]{36}: restore without a base$/);
    await assert.rejects(fs.stat(missing), { code: 'ENOENT' }, 'no half-restored file is left');
    assert.deepStrictEqual((await backupsIn(suite.repoDir)).map((r) => r.status), ['available', 'available']);
  });
});
