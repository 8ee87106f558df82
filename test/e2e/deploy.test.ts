/**
 * Running work and deploys, in a real Node-RED process driven through its admin API as the editor does
 * (POST /flows, Node-RED-Deployment-Type: full). The backup is held at its third data object by a
 * stalled-storage preload (test/helpers/gate-preload.ts), so the deploy lands mid-backup on any machine:
 * - a full deploy that keeps the backup node unchanged: the backup goes on, ends `available`, and its
 *   result and Complete come out of the re-created nodes (the debug node was renamed by the deploy);
 * - a Restart Flows (deployment type "reload"): the same as a full deploy that keeps the node;
 * - a deploy that changes or removes the backup node: the backup is cancelled, ends `error`, and the log
 *   warns naming it.
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { BackupRecord } from '../../lib/repository/records';
import { backupsIn } from '../helpers/repository';
import { sparseChunkedImage, tempDir } from '../helpers/volumes';
import { NodeRedProcess, nodeRedEnv } from './node-red-process';

const GIB = 1024 ** 3;

function flows(repoDir: string, volume: string, options: { resultName: string; withBackup?: boolean; backupName?: string; description?: string }): Record<string, unknown>[] {
  const tab = { id: 'tab-deploy', type: 'tab', label: 'deploy test' };
  const config = { id: 'repo-deploy', type: 'volume-driver-config', name: 'repo', backend: 'posix', path: repoDir, host: 'deploy-host', maxConcurrent: 2, progress: true };
  const nodes: Record<string, unknown>[] = [
    tab,
    config,
    { id: 'inject-deploy', type: 'inject', z: tab.id, name: 'go', props: [{ p: 'payload' }], payload: '', payloadType: 'date', wires: [['backup-deploy']] },
    { id: 'result-debug', type: 'debug', z: tab.id, name: options.resultName, active: true, complete: 'payload', targetType: 'msg', wires: [] },
    { id: 'progress-debug', type: 'debug', z: tab.id, name: 'progress', active: true, complete: 'payload', targetType: 'msg', wires: [] },
    { id: 'complete-deploy', type: 'complete', z: tab.id, name: '', scope: ['backup-deploy'], uncaught: false, wires: [['complete-debug']] },
    { id: 'complete-debug', type: 'debug', z: tab.id, name: `complete ${options.resultName}`, active: true, complete: '_msgid', targetType: 'msg', wires: [] },
    { id: 'catch-deploy', type: 'catch', z: tab.id, name: '', scope: null, uncaught: false, wires: [['catch-debug']] },
    { id: 'catch-debug', type: 'debug', z: tab.id, name: 'caught', active: true, complete: 'error', targetType: 'msg', wires: [] },
  ];
  if (options.withBackup !== false) {
    nodes.push({
      id: 'backup-deploy', type: 'volume-backup-create', z: tab.id, name: 'nightly', repository: config.id,
      volume: volume, volumeType: 'str', volumeId: 'deploy-vol', volumeIdType: 'str', queueSize: 10,
      description: options.description ?? '', descriptionType: 'str',
      wires: [['result-debug'], ['progress-debug']],
    });
  }
  return nodes;
}

describe('deploys during a running backup (real Node-RED process)', function () {
  this.timeout(180_000);
  let work: string;
  let repoDir: string;
  let volume: string;
  let gate: string;
  let red: NodeRedProcess;

  before(async () => {
    work = await tempDir('deploy');
    repoDir = path.join(work, 'repository');
    volume = path.join(work, 'disk.img');
    gate = path.join(work, 'storage-flowing');
    await sparseChunkedImage(volume, GIB);
    red = new NodeRedProcess(path.join(work, 'user-dir'), {
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${path.join(__dirname, '..', 'helpers', 'gate-preload.js')}`,
      VB_GATE_FILE: gate,
      VB_GATE_AT: '3',
      VOLUME_BACKUP_STATE_DIR: path.join(work, 'state'),
    });
    await red.start();
  });
  after(async () => {
    await red?.stop();
    await fs.rm(work, { recursive: true, force: true });
  });

  const recordOf = async (id: string): Promise<BackupRecord | undefined> => (await backupsIn(repoDir)).find((r) => r.id === id);

  async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 90_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${red.log().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function inject(): Promise<void> {
    let res = await red.request('POST', '/inject/inject-deploy');
    for (let i = 0; res.status === 404 && i < 300; i++) {
      await new Promise((r) => setTimeout(r, 200));
      res = await red.request('POST', '/inject/inject-deploy');
    }
    assert.strictEqual(res.status, 200, res.text);
  }

  /** The backup id of the first progress message after `skip` earlier ones. */
  async function runningBackup(skip: number): Promise<string> {
    const progress = await red.debugFrom('progress-debug', skip + 1, 60_000);
    return (progress[skip] as { backupId: string }).backupId;
  }

  it('a full deploy that keeps the node: the backup ends available and its result and Complete come from the re-created nodes', async () => {
    await nodeRedEnv.deployFlows(red.port, flows(repoDir, volume, { resultName: 'before deploy' }));
    await inject();
    const backupId = await runningBackup(0);
    assert.strictEqual((await recordOf(backupId))?.status, 'creating');

    // An unrelated change (the debug node's name), deployed in full: every node is stopped and re-created.
    const logBefore = red.log().length;
    await nodeRedEnv.deployFlows(red.port, flows(repoDir, volume, { resultName: 'after deploy' }));
    await waitFor('the take-over line in the log', async () => red.log().slice(logBefore).includes(`took over the running backup of backup ${backupId}`));
    assert.strictEqual((await recordOf(backupId))?.status, 'creating', 'the deploy landed while the backup was held: it must still be running');

    await fs.writeFile(gate, '');
    const [result] = await red.debugFrom('result-debug', 1, 120_000);
    assert.strictEqual((result as BackupRecord).id, backupId);
    assert.strictEqual((result as BackupRecord).status, 'available');
    const delivered = red.debug.filter((d) => d.id === 'result-debug');
    assert.deepStrictEqual(delivered.map((d) => d.name), ['after deploy'], 'the result comes out of the re-created debug node');
    const completes = await red.debugFrom('complete-debug', 1);
    assert.strictEqual(completes.length, 1);
    assert.strictEqual(red.debug.find((d) => d.id === 'complete-debug')?.name, 'complete after deploy');
    assert.strictEqual((await recordOf(backupId))?.status, 'available');
    assert.ok(!/cancelled/.test(red.log().slice(logBefore)), red.log().slice(logBefore));
  });

  it('a flow restart (Restart Flows) during a backup: the re-created node takes it over and delivers the result', async () => {
    await fs.rm(gate, { force: true });
    const progressBefore = red.debug.filter((d) => d.id === 'progress-debug').length;
    const resultsBefore = red.debug.filter((d) => d.id === 'result-debug').length;
    await inject();
    const backupId = await runningBackup(progressBefore);
    const logBefore = red.log().length;
    const restarted = await red.request('POST', '/flows', {}, { 'Node-RED-API-Version': 'v2', 'Node-RED-Deployment-Type': 'reload' });
    assert.strictEqual(restarted.status, 200, restarted.text);
    await waitFor('the take-over line in the log', async () => red.log().slice(logBefore).includes(`took over the running backup of backup ${backupId}`));
    assert.strictEqual((await recordOf(backupId))?.status, 'creating');
    await fs.writeFile(gate, '');
    const results = await red.debugFrom('result-debug', resultsBefore + 1, 120_000);
    assert.strictEqual((results[resultsBefore] as BackupRecord).id, backupId);
    assert.strictEqual((await recordOf(backupId))?.status, 'available');
  });

  it('a deploy that changes the node\'s settings: its backup is cancelled with a warning naming it', async () => {
    await fs.rm(gate, { force: true });
    const progressBefore = red.debug.filter((d) => d.id === 'progress-debug').length;
    await inject();
    const backupId = await runningBackup(progressBefore);
    const logBefore = red.log().length;
    await nodeRedEnv.deployFlows(red.port, flows(repoDir, volume, { resultName: 'after deploy', description: 'changed' }));
    const failed = await waitFor('the backup to end in error', async () => {
      const record = await recordOf(backupId);
      return record && record.status !== 'creating' ? record : undefined;
    });
    assert.strictEqual(failed.status, 'error');
    assert.match(red.log().slice(logBefore), new RegExp(`\\[warn\\].*its node's settings changed in a deploy: cancelling the running backup of backup ${backupId}`));
  });

  it('a deploy that removes the node: its backup is cancelled, ends error, and the log warns naming it', async () => {
    await fs.rm(gate, { force: true });
    const progressBefore = red.debug.filter((d) => d.id === 'progress-debug').length;
    await inject();
    const backupId = await runningBackup(progressBefore);
    assert.strictEqual((await recordOf(backupId))?.status, 'creating');

    const logBefore = red.log().length;
    await nodeRedEnv.deployFlows(red.port, flows(repoDir, volume, { resultName: 'after deploy', withBackup: false }));
    const failed = await waitFor('the backup to end in error', async () => {
      const record = await recordOf(backupId);
      return record && record.status !== 'creating' ? record : undefined;
    });
    assert.strictEqual(failed.status, 'error');
    assert.match(failed.failReason ?? '', /removed by a deploy/);
    const log = red.log().slice(logBefore);
    assert.match(log, new RegExp(`\\[warn\\].*its node was removed by a deploy: cancelling the running backup of backup ${backupId}`), log);
    // Its objects are gone with it.
    const leftovers = (await fs.readdir(repoDir, { recursive: true })).filter((f) => String(f).includes(`backup_${backupId}-`));
    assert.deepStrictEqual(leftovers, []);
  });
});
