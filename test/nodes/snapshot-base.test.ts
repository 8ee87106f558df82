/**
 * The snapshot-backup node's "keep a base snapshot for fast incrementals" (issue 16 item 5) on a real XFS
 * file system (loop device): ticked (and in flows from before the checkbox), the second backup reads only
 * the changed extents and the status says so; unticked, no base is left and the status says "full read".
 */
import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as path from 'path';
import type { BackupRecord } from '../../lib/repository/records';
import { scatterWrites } from '../helpers/volumes';
import { LoopFsVolume, setUpLoopFsVolume } from '../snapshot-loopfs';
import { helper, loadTestFlow, loggedTexts, statusTexts } from './support';

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
});
