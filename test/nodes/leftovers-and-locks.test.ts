/**
 * Two things several Node-RED instances sharing a repository rely on, seen from a real Node-RED runtime:
 * - a driver-config cleans up its own host's leftovers (a backup killed mid-way) when it first opens the
 *   repository, and never another host's;
 * - two backups of the same volume never run at once: the second fails with BUSY, or waits when told to.
 */
import * as assert from 'assert';
import type { Repository } from '../../lib/repository/repository';
import type { BackupRecord } from '../../lib/repository/records';
import { spawnCli } from '../helpers/cli';
import { withRepository } from '../helpers/repository';
import { helper, loadTestFlow, nodeTestSuite, loggedTexts, nodeRedVersion, statusTexts } from './support';

const MiB = 1024 * 1024;
const THIS_HOST = 'node-red-a';
const OTHER_HOST = 'node-red-b';

/**
 * Start a CLI backup and SIGKILL it a few chunks in (the first chunks of the image may be zeros, which
 * store no object): it leaves a `creating` record and partial objects.
 */
function killedBackup(repoDir: string, volume: string, volumeId: string, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(['create', '--repo', repoDir, '--volume', volume, '--volume-id', volumeId, '--host', host, '--chunk-size', '1M', '--progress', 'json']);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if ((stderr.match(/"type":"chunk"/g) ?? []).length >= 4) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('close', (_code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`the CLI was not killed mid-backup: ${stderr.slice(-500)}`))));
  });
}

const objectsOf = (repo: Repository, record: BackupRecord) => repo.driver.listEntries(repo.container, record.objectPrefix);

describe(`Node-RED nodes: start-up cleanup and volume locks (node-red ${nodeRedVersion()})`, function () {
  this.timeout(120_000);
  // Big enough that a backup is still writing when it is killed, or when a second one starts.
  const suite = nodeTestSuite('nodes-leftovers', { size: 48 * MiB, seed: 5 });

  it("driver-config: before the first operation, this host's interrupted backup becomes error with its objects removed; another host's is untouched", async () => {
    await killedBackup(suite.repoDir, suite.image, 'vol-mine', THIS_HOST);
    await killedBackup(suite.repoDir, suite.image, 'vol-theirs', OTHER_HOST);
    const [mine, theirs] = await withRepository(suite.repoDir, async (repo) => {
      const records = await repo.listRecords();
      const find = (volumeId: string) => records.find((r) => r.volumeId === volumeId)!;
      for (const r of [find('vol-mine'), find('vol-theirs')]) {
        assert.strictEqual(r?.status, 'creating', `the killed backup left a creating record: ${JSON.stringify(r)}`);
        assert.ok((await objectsOf(repo, r)).length > 0, 'and partial objects');
      }
      return [find('vol-mine'), find('vol-theirs')];
    });

    const t = await loadTestFlow(suite.repoDir, [{ id: 'n1', type: 'volume-backup-create', volume: 'volume', volumeType: 'msg' }], { host: THIS_HOST });
    t.node('n1').receive({ volume: suite.image, volumeId: 'vol-new' });
    const [result] = await t.out.waitFor(1, 60_000);
    assert.strictEqual((result.payload as BackupRecord).status, 'available');
    assert.strictEqual((result.payload as BackupRecord).host, THIS_HOST);

    await withRepository(suite.repoDir, async (repo) => {
      const cleaned = await repo.getRecord(mine.id);
      assert.strictEqual(cleaned.status, 'error');
      assert.match(cleaned.failReason ?? '', /interrupted/);
      assert.deepStrictEqual(await objectsOf(repo, cleaned), [], "this host's partial objects are gone");
      const untouched = await repo.getRecord(theirs.id);
      assert.strictEqual(untouched.status, 'creating', "another host's record is left alone");
      assert.ok((await objectsOf(repo, untouched)).length > 0, "and so are its objects");
    });
    const logged = loggedTexts(t.node('cfg'), 'log');
    assert.ok(logged.some((line) => line.includes(`start-up cleanup of host ${THIS_HOST}`) && line.includes(mine.id)), `the summary names the cleaned backup: ${JSON.stringify(logged)}`);
  });

  it('driver-config with "clean up at start" off leaves the leftovers alone', async () => {
    await killedBackup(suite.repoDir, suite.image, 'vol-mine', THIS_HOST);
    const t = await loadTestFlow(suite.repoDir, [{ id: 'n1', type: 'volume-backup-create', volume: 'volume', volumeType: 'msg' }], { host: THIS_HOST, cleanupAtStart: false });
    t.node('n1').receive({ volume: suite.image, volumeId: 'vol-new' });
    await t.out.waitFor(1, 60_000);
    await withRepository(suite.repoDir, async (repo) => {
      const left = (await repo.listRecords('vol-mine'))[0];
      assert.strictEqual(left.status, 'creating');
    });
  });

  /** n1 starts a backup of the image; at its first stored chunk, n2 gets a backup of the same volume. */
  async function overlappingBackups(n2: Record<string, unknown>, second: Record<string, unknown> = {}) {
    const t = await loadTestFlow(suite.repoDir, [
      { id: 'n1', type: 'volume-backup-create', volume: 'volume', volumeType: 'msg' },
      { id: 'n2', type: 'volume-backup-create', volume: 'volume', volumeType: 'msg', ...n2 },
    ]);
    t.node('n1').receive({ volume: suite.image, topic: 'first' });
    await t.progress.waitFor(1, 60_000);
    t.node('n2').receive({ volume: suite.image, topic: 'second', ...second });
    return t;
  }

  it('two backups of the same volume with no wait: the second fails through Catch with BUSY, the first completes', async () => {
    const t = await overlappingBackups({});
    const [caught] = await t.caught.waitFor(1, 60_000);
    assert.strictEqual(caught.topic, 'second');
    assert.strictEqual(caught.error?.source?.id, 'n2');
    assert.match(caught.error?.message ?? '', /volume \S+ is busy: host \S+ \(pid \d+\) is running backup/);
    const [done] = await t.out.waitFor(1, 60_000);
    assert.strictEqual(done.topic, 'first');
    const records = await withRepository(suite.repoDir, (repo) => repo.listRecords());
    assert.deepStrictEqual(records.map((r) => r.status), ['available'], 'the refused backup made no record');
    assert.strictEqual(statusTexts(t.node('n2')).at(-1)?.fill, 'red');
  });

  it('two backups of the same volume with a wait (node setting or msg.lockWait): both succeed, one after the other, "waiting" in the status', async () => {
    for (const [n2, second] of [
      [{ lockWait: '60', lockWaitType: 'num' }, {}],
      [{}, { lockWait: 60 }],
    ] as const) {
      const t = await overlappingBackups(n2, second);
      // Both results, or the first Catch (its error is the reason): no time limit of our own, a slow machine only waits.
      const caughtFirst = t.caught.waitFor(1, 3_600_000).then((c) => c);
      const outcome = await Promise.race([t.out.waitFor(2, 3_600_000), caughtFirst]);
      caughtFirst.catch(() => undefined);
      assert.deepStrictEqual(t.caught.messages.map((m) => m.error?.message), []);
      const out = outcome;
      assert.deepStrictEqual(out.map((m) => m.topic), ['first', 'second']);
      const [first, next] = out.map((m) => m.payload as BackupRecord);
      assert.strictEqual(first.status, 'available');
      assert.strictEqual(next.status, 'available');
      assert.ok(Date.parse(next.createdAt) >= Date.parse(first.updatedAt), `the second started after the first finished: ${next.createdAt} < ${first.updatedAt}`);
      const statuses = statusTexts(t.node('n2'));
      assert.ok(statuses.some((s) => s.fill === 'yellow' && /^waiting: volume busy \(host \S+\)$/.test(s.text ?? '')), `waiting status: ${JSON.stringify(statuses)}`);
      assert.strictEqual(statuses.at(-1)?.fill, 'green');
      await helper.unload();
      suite.repoDir = `${suite.repoDir}-msg`;
    }
  });

  it('a lock wait that is not a number of seconds is a clear error', async () => {
    const t = await loadTestFlow(suite.repoDir, [{ id: 'n1', type: 'volume-backup-create', volume: 'volume', volumeType: 'msg' }]);
    t.node('n1').receive({ volume: suite.image, lockWait: 'soon' });
    t.node('n1').receive({ volume: suite.image, lockWait: -1 });
    const caught = await t.caught.waitFor(2);
    for (const m of caught) assert.match(m.error?.message ?? '', /lock wait \(from msg\.lockWait\) must be a number of seconds from 0 to 86400/);
    assert.deepStrictEqual(t.out.messages, []);
  });
});
