/**
 * The six nodes in a real Node-RED runtime (node-red-node-test-helper): what a flow author sees on the
 * outputs, in Catch and Complete nodes, in the status, and in the repository afterwards.
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { volumeIdForPath } from '../../lib/repository/names';
import type { BackupRecord } from '../../lib/repository/records';
import type { ProgressEvent, RestoreResult } from '../../lib/engine/types';
import { backupsIn } from '../helpers/repository';
import { makeImage, sha256File } from '../helpers/volumes';
import { Msg, helper, loadTestFlow, nodeRedVersion, nodeTestSuite, statusTexts } from './support';

const MiB = 1024 * 1024;

describe(`Node-RED nodes (node-red ${nodeRedVersion()})`, function () {
  this.timeout(60_000);
  const IMAGE_SIZE = 5 * MiB + 300 * 1024; // 6 chunks of 1 MiB, the last one short
  const suite = nodeTestSuite('nodes', { size: IMAGE_SIZE, seed: 11 });
  let imageHash: string;

  before(async () => {
    imageHash = await sha256File(suite.image);
  });

  const load = (nodes: Record<string, unknown>[], config: Record<string, unknown> = {}, credentials: Record<string, unknown> = {}) =>
    loadTestFlow(suite.repoDir, nodes, config, credentials);

  const backupNode = (id = 'n1', extra: Record<string, unknown> = {}) => ({ id, type: 'volume-backup-create', volume: 'volume', volumeType: 'msg', ...extra });

  const records = () => backupsIn(suite.repoDir);

  it('backup-create: the record on output 1 with the other msg properties kept, one progress message per chunk, Complete fires', async () => {
    const t = await load([backupNode()]);
    t.node('n1').receive({ volume: suite.image, keep: 'kept', topic: 'nightly' });
    const [result] = await t.out.waitFor(1);
    const record = result.payload as BackupRecord;
    assert.strictEqual(record.status, 'available');
    assert.strictEqual(record.kind, 'full');
    assert.strictEqual(record.size, IMAGE_SIZE);
    assert.strictEqual(record.volumeId, volumeIdForPath(suite.image));
    assert.strictEqual(result.keep, 'kept');
    assert.strictEqual(result.topic, 'nightly');
    assert.strictEqual(result.volume, suite.image);

    const progress = t.progress.messages;
    assert.deepStrictEqual(progress.map((m) => (m.payload as ProgressEvent).chunkIndex).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5]);
    // Chunks finish in any order; what a user reads goes forward.
    assert.deepStrictEqual(progress.map((m) => (m.payload as ProgressEvent).chunksDone), [1, 2, 3, 4, 5, 6]);
    const percents = progress.map((m) => (m.payload as ProgressEvent).percent);
    assert.deepStrictEqual(percents, [...percents].sort((a, b) => a - b), `percent never goes back: ${percents}`);
    assert.ok(progress.every((m) => m.topic === 'progress' && (m.payload as ProgressEvent).type === 'chunk' && (m.payload as ProgressEvent).chunkCount === 6));
    assert.ok(progress.every((m) => m.keep === undefined), 'progress messages are new messages');

    await t.completed.waitFor(1);
    assert.strictEqual(t.caught.messages.length, 0);
    const statuses = statusTexts(t.node('n1'));
    assert.ok(statuses.some((s) => s.fill === 'blue' && /^\d+%, [1-6]\/6 chunks$/.test(s.text ?? '')), `a blue percent status: ${JSON.stringify(statuses)}`);
    const last = statuses[statuses.length - 1];
    assert.strictEqual(last.fill, 'green');
    assert.match(last.text ?? '', /^5\.3 MiB read, [\d.]+ [KM]iB stored, [\d.]+ s$/);

    const stored = await records();
    assert.deepStrictEqual(stored.map((r) => [r.id, r.status]), [[record.id, 'available']]);
  });

  it('driver-config with progress off: no message on output 2 of backup or restore, the status still shows the percentage', async () => {
    const t = await load(
      [
        backupNode('n1', { wires: [['restore'], ['progress']] }),
        { id: 'restore', type: 'volume-restore', action: 'restore', actionType: 'action', backupId: 'payload.id', backupIdType: 'msg', target: 'target', targetType: 'msg', wires: [['out'], ['progress']] },
      ],
      { progress: false },
    );
    const target = path.join(suite.work, 'restored-quietly.img');
    t.node('n1').receive({ volume: suite.image, target });
    const [restored] = await Promise.race([t.out.waitFor(1), t.caught.waitFor(1).then((m) => assert.fail(m[0].error?.message))]);
    assert.strictEqual((restored.payload as RestoreResult).size, IMAGE_SIZE);
    assert.strictEqual(await sha256File(target), imageHash);
    await t.completed.waitFor(2); // both nodes have finished: nothing more can come out
    assert.deepStrictEqual(t.progress.messages, []);
    for (const id of ['n1', 'restore']) {
      const statuses = statusTexts(t.node(id));
      assert.ok(statuses.some((s) => s.fill === 'blue' && /%, \d+\/\d+ chunks$/.test(s.text ?? '')), `${id} still showed a percent status: ${JSON.stringify(statuses)}`);
    }
  });

  it('restore: restores the backup byte for byte, verifies it, lists it; the newest backup of msg.volumeId is the default', async () => {
    const t = await load([
      backupNode('n1', { wires: [['restore'], ['progress']] }),
      { id: 'restore', type: 'volume-restore', action: 'restore', actionType: 'action', backupId: 'payload.id', backupIdType: 'msg', target: 'target', targetType: 'msg', wires: [['verify'], ['progress']] },
      { id: 'verify', type: 'volume-restore', action: 'verify', actionType: 'action', wires: [['list'], []] },
      { id: 'list', type: 'volume-restore', action: 'list', actionType: 'action' },
    ]);
    const target = path.join(suite.work, 'restored.img');
    // verify has no backupId setting: it falls back to msg.backupId, then to the newest backup of msg.volumeId.
    t.node('n1').receive({ volume: suite.image, target, volumeId: 'disk-one' });
    const [listed] = await t.out.waitFor(1);
    assert.strictEqual(t.caught.messages.length, 0, JSON.stringify(t.caught.messages.map((m) => m.error)));
    assert.strictEqual(await sha256File(target), imageHash);
    const backups = listed.payload as BackupRecord[];
    assert.strictEqual(backups.length, 1);
    assert.strictEqual(backups[0].volumeId, 'disk-one');
    assert.match(statusTexts(t.node('verify')).pop()?.text ?? '', /^5\.3 MiB verified, [\d.]+ s$/);
    assert.match(statusTexts(t.node('list')).pop()?.text ?? '', /^1 backup$/);
    // restore and verify each sent 6 progress messages as well as the backup.
    await t.progress.waitFor(12);
    assert.strictEqual(t.progress.messages.filter((m) => (m.payload as ProgressEvent).operation === 'restore').length, 6);
  });

  it('restore with verify only: the result says what was checked and nothing is written', async () => {
    const t = await load([backupNode('n1', { wires: [['verify'], []] }), { id: 'verify', type: 'volume-restore', action: 'restore', actionType: 'action', backupId: 'payload.id', backupIdType: 'msg' }]);
    t.node('n1').receive({ volume: suite.image, verifyOnly: true });
    const [result] = await t.out.waitFor(1);
    const restored = result.payload as RestoreResult;
    assert.strictEqual(restored.verifyOnly, true);
    assert.strictEqual(restored.target, null);
    assert.strictEqual(restored.bytesVerified > 0, true);
    assert.strictEqual(restored.size, IMAGE_SIZE);
  });

  it('backup-incremental: the automatic parent is the newest backup; msg.parentId chooses another; restore of the chain is exact', async () => {
    const t = await load([
      backupNode('full'),
      { id: 'inc', type: 'volume-backup-incremental', volume: 'volume', volumeType: 'msg', mode: 'incremental', modeType: 'mode' },
    ]);
    t.node('full').receive({ volume: suite.image });
    const [full] = await t.out.waitFor(1);
    const changed = path.join(suite.work, 'disk.img');
    const handle = await fs.open(changed, 'r+');
    await handle.write(Buffer.alloc(64 * 1024, 0x5a), 0, 64 * 1024, 2 * MiB + 4096);
    await handle.close();
    t.node('inc').receive({ volume: suite.image });
    const [, inc1] = await t.out.waitFor(2);
    t.node('inc').receive({ volume: suite.image, parentId: (full.payload as BackupRecord).id });
    const [, , inc2] = await t.out.waitFor(3);
    const r1 = inc1.payload as BackupRecord;
    const r2 = inc2.payload as BackupRecord;
    assert.strictEqual(r1.kind, 'incremental');
    assert.strictEqual(r1.parentId, (full.payload as BackupRecord).id);
    assert.ok(r1.storedBytes < 200 * 1024, `an incremental stores about what changed, not ${r1.storedBytes} bytes`);
    assert.strictEqual(r2.parentId, (full.payload as BackupRecord).id);
    assert.strictEqual(t.caught.messages.length, 0);

    imageHash = await sha256File(suite.image);
    await helper.unload();
    const r = await load([{ id: 'restore', type: 'volume-restore', action: 'restore', actionType: 'action' }]);
    const target = path.join(suite.work, 'chain-restored.img');
    r.node('restore').receive({ backupId: r1.id, target });
    const [restored] = await r.out.waitFor(1);
    assert.deepStrictEqual((restored.payload as RestoreResult).chain, [(full.payload as BackupRecord).id, r1.id]);
    assert.strictEqual(await sha256File(target), imageHash);
  });

  it('backup-incremental: the first backup of a new volume is full; with "full when no parent" off it fails clearly', async () => {
    const t = await load([
      { id: 'inc', type: 'volume-backup-incremental', volume: 'volume', volumeType: 'msg', mode: 'incremental', modeType: 'mode' },
      { id: 'strict', type: 'volume-backup-incremental', volume: 'volume', volumeType: 'msg', mode: 'differential', modeType: 'mode', fullIfNoParent: false },
    ]);
    t.node('strict').receive({ volume: suite.image, volumeId: 'fresh-volume' });
    const [caught] = await t.caught.waitFor(1);
    assert.match(caught.error?.message ?? '', /no available full backup of volume fresh-volume/);
    t.node('inc').receive({ volume: suite.image, volumeId: 'fresh-volume' });
    const [first] = await t.out.waitFor(1);
    assert.strictEqual((first.payload as BackupRecord).kind, 'full');
    t.node('strict').receive({ volume: suite.image, volumeId: 'fresh-volume' });
    const [, second] = await t.out.waitFor(2);
    assert.strictEqual((second.payload as BackupRecord).kind, 'differential');
    assert.strictEqual((second.payload as BackupRecord).parentId, (first.payload as BackupRecord).id);
  });

  it('a missing volume reaches Catch with the message and a clear error; the node stays usable', async () => {
    const t = await load([backupNode()]);
    const missing = path.join(suite.work, 'no-such-disk.img');
    t.node('n1').receive({ volume: missing, requestId: 42 });
    const [caught] = await t.caught.waitFor(1);
    assert.strictEqual(caught.requestId, 42);
    assert.strictEqual(caught.error?.source?.id, 'n1');
    assert.match(caught.error?.message ?? '', /no-such-disk\.img/);
    assert.strictEqual(t.completed.messages.length, 0);
    assert.strictEqual(t.out.messages.length, 0);
    assert.strictEqual(statusTexts(t.node('n1')).pop()?.fill, 'red');
    assert.ok((await records()).every((r) => r.status !== 'available'));

    t.node('n1').receive({ volume: suite.image });
    await t.out.waitFor(1);
    await t.completed.waitFor(1);
  });

  it('bad messages get errors that name the property and where it came from', async () => {
    const t = await load([
      backupNode(),
      { id: 'restore', type: 'volume-restore', action: 'restore', actionType: 'action' },
      { id: 'inc', type: 'volume-backup-incremental', volume: 'volume', volumeType: 'msg', mode: 'mode', modeType: 'msg' },
    ]);
    t.node('n1').receive({ volume: 12 } as Msg);
    t.node('n1').receive({ volume: suite.image, chunkSize: 'huge' } as Msg);
    t.node('restore').receive({ backupId: 'not-a-uuid', target: path.join(suite.work, 'x.img') });
    t.node('restore').receive({});
    t.node('inc').receive({ volume: suite.image, mode: 'sideways' });
    const caught = await t.caught.waitFor(5);
    const bySource = (id: string) => caught.filter((m) => m.error?.source?.id === id).map((m) => m.error?.message ?? '');
    const backupErrors = bySource('n1');
    assert.ok(backupErrors.some((e) => /volume \(from msg\.volume\): must be text/.test(e)), backupErrors.join(' | '));
    assert.ok(backupErrors.some((e) => /chunk size \(from msg\.chunkSize\) "huge" is not a size/.test(e)), backupErrors.join(' | '));
    const restoreErrors = bySource('restore');
    assert.ok(restoreErrors.some((e) => /invalid backup id "not-a-uuid"/.test(e)), restoreErrors.join(' | '));
    assert.ok(restoreErrors.some((e) => /msg\.backupId/.test(e) && /msg\.volumeId/.test(e)), restoreErrors.join(' | '));
    assert.match(bySource('inc')[0], /mode \(from msg\.mode\): must be "incremental" or "differential"/);
    assert.strictEqual(t.out.messages.length, 0);
  });

  it('queueing: one runs, the next waits ("queued 1"), one more than the queue holds is refused', async () => {
    const t = await load([backupNode('n1', { queueSize: 1 })]);
    const n1 = t.node('n1');
    n1.receive({ volume: suite.image, n: 1 });
    n1.receive({ volume: suite.image, n: 2 });
    n1.receive({ volume: suite.image, n: 3 });
    const [refused] = await t.caught.waitFor(1);
    assert.strictEqual(refused.n, 3);
    assert.match(refused.error?.message ?? '', /queue is full \(1 waiting\)/);
    const done = await t.out.waitFor(2);
    assert.deepStrictEqual(done.map((m) => m.n), [1, 2]);
    assert.ok(statusTexts(n1).some((s) => s.fill === 'yellow' && s.text === 'queued 1'));
    await t.completed.waitFor(2);
  });

  it('the driver-config limit is shared: with max concurrent 1 a second node waits as "queued"', async () => {
    const t = await load([backupNode('a'), backupNode('b')], { maxConcurrent: 1 });
    t.node('a').receive({ volume: suite.image, volumeId: 'va' });
    t.node('b').receive({ volume: suite.image, volumeId: 'vb' });
    await t.out.waitFor(2);
    const waited = ['a', 'b'].filter((id) => statusTexts(t.node(id)).some((s) => s.fill === 'yellow' && s.text === 'queued 1'));
    assert.strictEqual(waited.length, 1, 'exactly one of the two waited for the shared slot');
    assert.strictEqual((await records()).filter((r) => r.status === 'available').length, 2);
  });

  it('closing (redeploy) during a backup aborts it, cleans up, and leaves no available record', async () => {
    const big = path.join(suite.work, 'big.img');
    await makeImage(big, 64 * MiB, 5);
    const t = await load([backupNode()]);
    t.node('n1').receive({ volume: big });
    await t.progress.waitFor(1);
    await helper.unload();
    assert.strictEqual(t.out.messages.length, 0);
    const [caught] = t.caught.messages;
    assert.ok(!caught || /cancelled/.test(caught.error?.message ?? ''));
    const stored = await records();
    assert.ok(stored.length <= 1);
    assert.ok(stored.every((r) => r.status === 'error'), JSON.stringify(stored.map((r) => r.status)));
    await fs.rm(big);
  });

  it('snapshot-backup of an existing snapshot: snapshot id and time go into the record, the volume id follows the live volume', async () => {
    const snap = path.join(suite.work, 'disk-snap-1.img');
    await fs.copyFile(suite.image, snap);
    const t = await load([{ id: 's', type: 'volume-snapshot-backup', source: 'existing', sourceType: 'source', snapshot: 'snapshot', snapshotType: 'msg', volume: 'volume', volumeType: 'msg', mode: 'incremental', modeType: 'mode' }]);
    const createdAt = new Date(Date.now() - 60_000).toISOString();
    t.node('s').receive({ volume: suite.image, snapshot: { path: snap, id: 'snap-1', createdAt } });
    const [result] = await Promise.race([t.out.waitFor(1), t.caught.waitFor(1).then((m) => assert.fail(m[0].error?.message))]);
    const record = result.payload as BackupRecord;
    assert.strictEqual(record.kind, 'full', 'the first backup of the volume is full: there is no parent yet');
    assert.strictEqual(record.snapshotId, 'snap-1');
    assert.strictEqual(record.dataTimestamp, createdAt);
    assert.strictEqual(record.volumeId, volumeIdForPath(suite.image));
    t.node('s').receive({ snapshot: { path: snap, id: 'snap-1', createdAt } });
    const [err] = await t.caught.waitFor(1);
    assert.match(err.error?.message ?? '', /needs the live volume \(msg\.volume\) or a volume id/);
  });

  it('snapshot-backup through a temporary snapshot (copy provider): recorded provider, temporary removed', async () => {
    const snapshotDir = path.join(suite.work, 'temporaries');
    await fs.mkdir(snapshotDir, { recursive: true });
    const t = await load([{ id: 's', type: 'volume-snapshot-backup', source: 'provider', sourceType: 'source', volume: 'volume', volumeType: 'msg', mode: 'full', modeType: 'mode', provider: 'copy', snapshotDir }]);
    t.node('s').receive({ volume: suite.image });
    const [result] = await t.out.waitFor(1);
    const record = result.payload as BackupRecord;
    assert.strictEqual(record.snapshotProvider, 'copy');
    assert.strictEqual(record.volumeId, volumeIdForPath(suite.image));
    assert.deepStrictEqual(await fs.readdir(snapshotDir), []);
  });

  it('prune: dry run reports and deletes nothing; then keepLast 1 deletes the older backup; a bad policy is refused', async () => {
    const t = await load([
      backupNode('n1'),
      { id: 'prune', type: 'volume-prune', policy: '{"keepLast": 1}', policyType: 'json', dryRun: 'dryRun', dryRunType: 'msg' },
      { id: 'prune-msg', type: 'volume-prune', policy: '', policyType: 'json' },
    ]);
    t.node('n1').receive({ volume: suite.image });
    await t.out.waitFor(1);
    t.node('n1').receive({ volume: suite.image });
    const [first, second] = (await t.out.waitFor(2)).map((m) => m.payload as BackupRecord);
    t.node('prune').receive({ dryRun: true, keep: 'me' });
    const [, , dry] = await t.out.waitFor(3);
    const dryReport = dry.payload as { dryRun: boolean; backupsDeleted: number };
    assert.strictEqual(dry.keep, 'me');
    assert.strictEqual(dryReport.dryRun, true);
    assert.strictEqual(dryReport.backupsDeleted, 1);
    assert.strictEqual((await records()).length, 2);

    t.node('prune').receive({});
    const [, , , real] = await t.out.waitFor(4);
    assert.strictEqual((real.payload as { backupsDeleted: number }).backupsDeleted, 1);
    assert.deepStrictEqual((await records()).map((r) => r.id), [second.id]);
    assert.notStrictEqual(first.id, second.id);
    assert.match(statusTexts(t.node('prune')).pop()?.text ?? '', /^deleted 1, /);

    t.node('prune-msg').receive({});
    t.node('prune-msg').receive({ policy: { keepEverything: true } });
    const caught = await t.caught.waitFor(2);
    assert.match(caught[0].error?.message ?? '', /policy \(from msg\.policy\): is missing/);
    assert.match(caught[1].error?.message ?? "", /invalid retention policy: unknown rule/);
    assert.strictEqual((await records()).length, 1);
  });

  it('prune: records that form a parent loop reach Catch naming the loop; every backup of the volume is kept', async () => {
    const t = await load([backupNode('n1'), { id: 'prune', type: 'volume-prune', policy: '{"keepLast": 1}', policyType: 'json' }]);
    t.node('n1').receive({ volume: suite.image });
    await t.out.waitFor(1);
    t.node('n1').receive({ volume: suite.image });
    const [first, second] = (await t.out.waitFor(2)).map((m) => m.payload as BackupRecord);
    // The two records edited to name each other as parents: a loop of two.
    for (const [record, parentId] of [[first, second.id], [second, first.id]] as const) {
      const file = path.join(suite.repoDir, 'records', record.volumeId, `${record.id}.json`);
      await fs.writeFile(file, JSON.stringify({ ...JSON.parse(await fs.readFile(file, 'utf8')), parentId }));
    }
    t.node('prune').receive({ keep: 'me' });
    const [caught] = await t.caught.waitFor(1);
    assert.match(caught.error?.message ?? '', /loops: backups .* name each other as parents in a loop/);
    assert.ok([first.id, second.id].every((id) => caught.error?.message.includes(id)), caught.error?.message);
    assert.strictEqual(caught.keep, 'me');
    assert.strictEqual(t.out.messages.length, 2, 'no report on output 1: the prune failed');
    assert.deepStrictEqual((await records()).map((r) => r.id).sort(), [first.id, second.id].sort());
  });

  it('driver-config: an unset environment variable or a missing path is reported to every message, not a crash', async () => {
    // eslint-disable-next-line no-template-curly-in-string -- Node-RED's ${ENV_VAR} syntax in a setting, on purpose
    const t = await load([backupNode()], { path: '${VOLUME_BACKUP_TEST_UNSET_VARIABLE}' });
    t.node('n1').receive({ volume: suite.image });
    const [caught] = await t.caught.waitFor(1);
    assert.match(caught.error?.message ?? '', /environment variable VOLUME_BACKUP_TEST_UNSET_VARIABLE, which is not set/);
  });

  it('a node without a driver-config answers with an error that says so', async () => {
    const t = await load([backupNode('n1', { repository: '' })]);
    t.node('n1').receive({ volume: suite.image });
    const [caught] = await t.caught.waitFor(1);
    assert.match(caught.error?.message ?? '', /no repository configured/);
  });
});
