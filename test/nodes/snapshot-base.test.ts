/**
 * The snapshot-backup node's "keep a base snapshot for fast incrementals" (issue 16 item 5) on a real XFS
 * file system (loop device): ticked (and in flows from before the checkbox), the second backup reads only
 * the changed extents and the status says so; unticked, no base is left and the status says "full read".
 * "Full read every N" (the node's setting or msg.fullReadEvery): after N changed-extent incrementals, the
 * next one reads everything; a bad N is refused (Catch) before anything is read.
 */
import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as path from 'path';
import type { BackupRecord } from '../../lib/repository/records';
import { backupsIn } from '../helpers/repository';
import { scatterWrites } from '../helpers/volumes';
import { LoopFsVolume, setUpLoopFsVolume } from '../snapshot-loopfs';
import { helper, loadTestFlow, loggedTexts, nodeTestSuite, statusTexts } from './support';

describe('snapshot-backup node: base snapshots on XFS (loop device)', function () {
  this.timeout(180_000);
  let fx: LoopFsVolume | undefined;

  before(async function () {
    fx = await setUpLoopFsVolume(this, 'xfs', { size: 24 * 1024 * 1024, seed: 5 });
    process.env.VOLUME_BACKUP_STATE_DIR = fx.stateDir;
  });
  after(async () => {
    delete process.env.VOLUME_BACKUP_STATE_DIR;
    await fx?.remove();
  });
  beforeEach(() => helper.startServer());
  afterEach(async () => {
    await helper.unload();
    await helper.stopServer();
  });

  const clones = async () => (await fsp.readdir(fx!.volumeDir)).filter((n) => n.startsWith('volume-backup-tmp-'));
  const node = (extra: Record<string, unknown>) => ({
    id: 's', type: 'volume-snapshot-backup', source: 'provider', sourceType: 'source', volume: 'volume', volumeType: 'msg', mode: 'incremental', modeType: 'mode', provider: 'reflink', ...extra,
  });

  it('keeps a base by default (a flow without the setting), reads changed extents next time, and says so in the status and the log', async () => {
    const t = await loadTestFlow(path.join(fx!.work, 'repo-on'), [node({})]);
    t.node('s').receive({ volume: fx!.volume });
    await t.out.waitFor(1);
    assert.strictEqual((await clones()).length, 1, 'the base clone is kept');
    await scatterWrites(fx!.volume, 0.01, 8);
    t.node('s').receive({ volume: fx!.volume });
    const [, second] = await t.out.waitFor(2);
    const record = second.payload as BackupRecord;
    assert.strictEqual(record.readStats?.method, 'changed-extents');
    assert.match(statusTexts(t.node('s')).pop()?.text ?? '', /^\d+(\.\d+)? [KM]iB read \(extents\), [\d.]+ [KM]iB stored, [\d.]+ s$/);
    assert.strictEqual((await clones()).length, 1, 'one base per volume');
    assert.ok(loggedTexts(t.node('s'), 'log').some((l) => /changed extents: reading \d+ of \d+ bytes/.test(l)));
  });

  it('unticked: no base is left, and the status says it was a full read', async () => {
    const t = await loadTestFlow(path.join(fx!.work, 'repo-off'), [node({ keepBase: false })]);
    t.node('s').receive({ volume: fx!.volume });
    const [first] = await t.out.waitFor(1);
    assert.strictEqual((first.payload as BackupRecord).readStats?.method, 'full');
    assert.ok(loggedTexts(t.node('s'), 'log').every((l) => !/changed extents/.test(l)));
    assert.match(statusTexts(t.node('s')).pop()?.text ?? '', /^\d+(\.\d+)? MiB read \(full\), [\d.]+ [KM]iB stored, [\d.]+ s$/);
    // The base the first test's repository keeps is another repository's: only this volume's bases in this one go.
    assert.strictEqual((await clones()).length, 1);
  });

  // The node's setting (a number field), or msg.fullReadEvery when the field is empty.
  for (const [how, setting, fromMsg] of [['the node\'s setting', { fullReadEvery: '1', fullReadEveryType: 'num' }, {}], ['msg.fullReadEvery', {}, { fullReadEvery: 1 }]] as const) {
    it(`full read every 1 (${how}): the incremental after a changed-extent one reads everything, and says why`, async () => {
      const t = await loadTestFlow(path.join(fx!.work, `repo-every-${fromMsg.fullReadEvery ? 'msg' : 'node'}`), [node(setting)]);
      const send = () => t.node('s').receive({ volume: fx!.volume, ...fromMsg });
      send();
      await t.out.waitFor(1);
      await scatterWrites(fx!.volume, 0.01, 9);
      send();
      await t.out.waitFor(2);
      await scatterWrites(fx!.volume, 0.01, 10);
      send();
      const [, second, third] = await t.out.waitFor(3);
      assert.deepStrictEqual(t.caught.messages, []);
      const [extents, reread] = [second.payload as BackupRecord, third.payload as BackupRecord];
      assert.strictEqual(extents.readStats?.method, 'changed-extents', 'the first incremental reads changed extents');
      assert.ok(extents.readStats!.bytesRead < extents.size / 4, `${extents.readStats!.bytesRead} bytes read of ${extents.size}`);
      assert.strictEqual(reread.readStats?.method, 'full', 'the second reads everything');
      // Everything: the image's data, holes aside (the first incremental read a fraction of it).
      assert.ok(reread.readStats!.bytesRead > 10 * extents.readStats!.bytesRead, `${reread.readStats!.bytesRead} bytes re-read`);
      assert.match(reread.readStats?.reason ?? '', /^1 changed-extent incremental\(s\) in a row before this one \(fullReadEvery\)/);
      assert.strictEqual(reread.kind, 'incremental');
      assert.match(statusTexts(t.node('s')).pop()?.text ?? '', /^[\d.]+ MiB read \(full\), /);
    });
  }
});

describe('snapshot-backup node: a bad "full read every"', function () {
  this.timeout(60_000);
  const suite = nodeTestSuite('full-read-every', { size: 2 * 1024 * 1024, seed: 6 });

  it('is refused through Catch, saying what is wrong, and nothing is backed up', async () => {
    const t = await loadTestFlow(suite.repoDir, [
      { id: 's', type: 'volume-snapshot-backup', source: 'provider', sourceType: 'source', volume: 'volume', volumeType: 'msg', provider: 'copy' },
      { id: 'n', type: 'volume-snapshot-backup', source: 'provider', sourceType: 'source', volume: 'volume', volumeType: 'msg', provider: 'copy', fullReadEvery: '2.5', fullReadEveryType: 'num' },
    ]);
    t.node('s').receive({ volume: suite.image, fullReadEvery: -1 });
    t.node('s').receive({ volume: suite.image, fullReadEvery: 'x' });
    t.node('n').receive({ volume: suite.image });
    const caught = await t.caught.waitFor(3);
    const texts = caught.map((m) => m.error?.message ?? '').sort();
    const what = 'must be a whole number of changed-extent incrementals \\(0: never re-read everything\\)';
    assert.match(texts[0], new RegExp(`^invalid input: fullReadEvery \\(from msg\\.fullReadEvery\\): ${what}, not "x"$`));
    assert.match(texts[1], new RegExp(`^invalid input: fullReadEvery \\(from msg\\.fullReadEvery\\): ${what}, not -1$`));
    assert.match(texts[2], new RegExp(`^invalid input: fullReadEvery \\(from the node's "fullReadEvery" setting\\): ${what}, not 2\\.5$`));
    assert.deepStrictEqual(t.out.messages, []);
    assert.deepStrictEqual(await backupsIn(suite.repoDir).catch(() => []), [], 'no backup was made');
  });
});
