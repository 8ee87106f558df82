/**
 * Examples and flows moved between machines say at deploy what they still need (issue 19 item 4):
 * a setting that reads an environment variable which is not set, or no driver-config, is a warning in
 * the log and on the node's status before any message; a posix driver-config with an empty path keeps
 * its backups in <userDir>/volume-backups.
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { BackupRecord } from '../../lib/repository/records';
import { backupsIn } from '../helpers/repository';
import { helper, loadTestFlow, loggedTexts, nodeTestSuite, statusTexts } from './support';

describe('settings a flow needs, checked at deploy', function () {
  this.timeout(60_000);
  const suite = nodeTestSuite('missing-settings', { size: 512 * 1024, seed: 31 });
  const UNSET = 'VOLUME_BACKUP_TEST_NEVER_SET';

  it('a setting that reads an unset environment variable: a warning naming it, and the status says so', async () => {
    delete process.env[UNSET];
    const t = await loadTestFlow(suite.repoDir, [
      { id: 'env', type: 'volume-backup-create', volume: UNSET, volumeType: 'env' },
      { id: 'literal', type: 'volume-restore', action: 'restore', actionType: 'action', target: `\${${UNSET}}`, targetType: 'str' },
      { id: 'norepo', type: 'volume-prune', repository: '' },
      { id: 'fine', type: 'volume-backup-incremental', volume: 'volume', volumeType: 'msg' },
    ]);
    assert.deepStrictEqual(loggedTexts(t.node('env'), 'warn'), [`not set up: "volume" reads the environment variable ${UNSET}, which is not set`]);
    assert.deepStrictEqual(loggedTexts(t.node('literal'), 'warn'), [`not set up: "target" refers to the environment variable ${UNSET}, which is not set`]);
    assert.deepStrictEqual(loggedTexts(t.node('norepo'), 'warn'), ['not set up: no repository: open the node and pick or add a driver-config']);
    assert.deepStrictEqual(loggedTexts(t.node('fine'), 'warn'), []);
    const first = statusTexts(t.node('env'))[0];
    assert.strictEqual(first.fill, 'red');
    assert.strictEqual(first.text, `env ${UNSET} not set`);
    assert.strictEqual(statusTexts(t.node('norepo'))[0].text, 'no repository');
    assert.deepStrictEqual(statusTexts(t.node('fine')), []);
  });

  it('the same setting with the variable set: no warning', async () => {
    process.env[UNSET] = suite.image;
    try {
      const t = await loadTestFlow(suite.repoDir, [{ id: 'env', type: 'volume-backup-create', volume: UNSET, volumeType: 'env' }]);
      assert.deepStrictEqual(loggedTexts(t.node('env'), 'warn'), []);
    } finally {
      delete process.env[UNSET];
    }
  });

  it('a driver-config host name from an unset environment variable: a warning naming it, and this machine\'s name', async () => {
    delete process.env[UNSET];
    const t = await loadTestFlow(suite.repoDir, [{ id: 'b', type: 'volume-backup-create', volume: 'volume', volumeType: 'msg' }], { host: `\${${UNSET}}` });
    assert.deepStrictEqual(loggedTexts(t.node('cfg'), 'warn'), [`the host name refers to the environment variable ${UNSET}, which is not set: using this machine's name, ${os.hostname()}`]);
    t.node('b').receive({ volume: suite.image });
    const [done] = await t.out.waitFor(1);
    assert.strictEqual((done.payload as BackupRecord).host, os.hostname());
  });

  it('a posix driver-config with an empty path keeps its backups in <userDir>/volume-backups', async () => {
    const userDir = path.join(suite.work, 'user-dir');
    await fs.mkdir(userDir, { recursive: true });
    helper.settings({ userDir });
    try {
      const t = await loadTestFlow(suite.repoDir, [{ id: 'b', type: 'volume-backup-create', volume: 'volume', volumeType: 'msg' }], { path: '' });
      assert.deepStrictEqual(loggedTexts(t.node('cfg'), 'warn'), []);
      t.node('b').receive({ volume: suite.image });
      const [done] = await t.out.waitFor(1);
      const record = done.payload as BackupRecord;
      assert.strictEqual(record.status, 'available');
      const stored = await backupsIn(path.join(userDir, 'volume-backups'));
      assert.deepStrictEqual(stored.map((r) => r.id), [record.id]);
      assert.ok(loggedTexts(t.node('cfg'), 'log').some((l) => l === `repository: ${path.join(userDir, 'volume-backups')} (the default for an empty path)`));
    } finally {
      helper.settings({});
    }
  });
});
