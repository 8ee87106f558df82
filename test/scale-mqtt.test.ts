/**
 * Scale-out end to end, with the example flows as users deploy them: Debian's mosquitto (MQTT 5 shared
 * subscription), three real Node-RED workers running examples/scale-out/worker.json on one shared posix
 * repository, and a fourth running examples/scale-out/requester.json. Each worker gets work and results
 * come back; a worker SIGKILLed in the middle of a backup loses its requests, which the requester re-sends;
 * after the killed host's cleanup and restart, verify --read-data passes and every backup restores.
 * Also the HTTP worker (examples/scale-out/http-worker.json): a second backup of a busy volume gets 409.
 * Skipped, saying so, when /usr/sbin/mosquitto is not installed.
 */
import { strict as assert } from 'assert';
import { ChildProcess } from 'child_process';
import { promises as fs, readFileSync } from 'fs';
import * as path from 'path';
import { Repository, openRepository, restoreBackup } from '../lib';
import { mapLimit } from '../lib/util/concurrency';
import { cliEnv, runCli } from './helpers/cli';
import { makeImage, sha256File, tempDir } from './helpers/volumes';
import { Mosquitto, NodeRedProcess, nodeRedEnv, startMosquitto } from './e2e/node-red-process';

const MiB = 1024 * 1024;
const HOSTS = ['node-red-1', 'node-red-2', 'node-red-3'];
const EXAMPLES = path.join(nodeRedEnv.root, 'examples', 'scale-out');

interface RequestState {
  request: { requestId: string; volume: string; volumeId?: string };
  status: 'pending' | 'done' | 'failed';
  attempts: number;
  error?: string;
  backup?: { id: string; host: string; status: string; volumeId: string };
  results: { status: string; worker: string; code?: string }[];
}

/** Example files as one deployable flow: a tab each, shared config nodes once. */
function flowsFrom(files: string[], adjust: (node: Record<string, unknown>) => void = () => undefined): Record<string, unknown>[] {
  const flows: Record<string, unknown>[] = [];
  const configs = new Map<string, Record<string, unknown>>();
  for (const file of files) {
    const tab = `tab-${path.basename(file, '.json')}`;
    flows.push({ id: tab, type: 'tab', label: file });
    for (const node of JSON.parse(readFileSync(path.join(EXAMPLES, file), 'utf8')) as Record<string, unknown>[]) {
      adjust(node);
      if (node.type === 'mqtt-broker' || node.type === 'volume-driver-config') configs.set(node.id as string, node);
      else flows.push({ ...node, z: tab });
    }
  }
  return [...flows, ...configs.values()];
}

function childOf(instance: NodeRedProcess): ChildProcess {
  return (instance as unknown as { child: ChildProcess }).child;
}

describe('scale-out end to end: mosquitto, three Node-RED workers and a requester', function () {
  this.timeout(240_000);
  let dir: string;
  let repoDir: string;
  let repo: Repository;
  let broker: Mosquitto | null = null;
  const workers: NodeRedProcess[] = [];
  let requester: NodeRedProcess;
  const started: NodeRedProcess[] = [];

  const workerEnv = (host: string): Record<string, string> => ({
    MQTT_BROKER: '127.0.0.1',
    MQTT_PORT: String(broker!.port),
    VOLUME_BACKUP_REPO: repoDir,
    VOLUME_BACKUP_HOST: host,
    VOLUME_BACKUP_STATE_DIR: path.join(dir, 'state'),
  });
  // The examples' 8 MiB chunks, made 1 MiB here so that these small volumes back up in several chunks.
  const workerFlows = () => flowsFrom(['worker.json', 'http-worker.json'], (n) => {
    if (n.type === 'volume-driver-config') n.chunkSize = '1 MiB';
  });

  async function startWorker(i: number): Promise<NodeRedProcess> {
    const instance = new NodeRedProcess(path.join(dir, `userdir-${HOSTS[i]}`), workerEnv(HOSTS[i]));
    started.push(instance);
    await instance.start();
    return instance;
  }

  before(async function () {
    dir = await tempDir('scale-mqtt');
    const mosquitto = await startMosquitto(dir);
    if ('skipped' in mosquitto) {
      console.log(`      SKIPPED: ${mosquitto.skipped}`);
      this.skip();
    }
    broker = mosquitto;
    repoDir = path.join(dir, 'repo');
    repo = await openRepository(repoDir, { create: true, host: 'test-runner' });
    await Promise.all([
      ...HOSTS.map(async (_, i) => {
        workers[i] = await startWorker(i);
        await nodeRedEnv.deployFlows(workers[i].port, workerFlows());
      }),
      (async () => {
        requester = new NodeRedProcess(path.join(dir, 'userdir-requester'), {
          MQTT_BROKER: '127.0.0.1',
          MQTT_PORT: String(broker!.port),
          REQUEST_TIMEOUT_S: '8',
          RETRY_DELAY_S: '2',
          REQUEST_MAX_ATTEMPTS: '8',
        });
        started.push(requester);
        await requester.start();
        await nodeRedEnv.deployFlows(requester.port, flowsFrom(['requester.json']));
      })(),
    ]);
    await waitForSubscribers();
  });
  after(async () => {
    await Promise.all(started.map((p) => p.stop().catch(() => undefined)));
    await repo?.close();
    await broker?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  async function waitForSubscribers(): Promise<void> {
    // The broker says when each MQTT in node has subscribed: every worker on the shared requests, the requester on results.
    await broker!.subscribed('$share/backup-workers/backup/requests', workers.length);
    await broker!.subscribed('backup/results', 1);
  }

  async function requestBackups(volumes: string[]): Promise<string[]> {
    const res = await requester.request('POST', '/backup-requests', volumes.map((volume) => ({ volume, volumeId: path.basename(volume, '.img') })));
    assert.equal(res.status, 202, res.text);
    return (res.body as { requestIds: string[] }).requestIds;
  }

  async function settled(ids: string[], timeoutMs = 90_000): Promise<RequestState[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await requester.request('GET', '/backup-requests');
      const all = (res.body as { requests: RequestState[] }).requests;
      const mine = all.filter((r) => ids.includes(r.request.requestId));
      if (mine.length === ids.length && mine.every((r) => r.status !== 'pending')) return mine;
      if (Date.now() > deadline) {
        throw new Error(`requests still pending after ${timeoutMs / 1000} s: ${JSON.stringify(mine.filter((r) => r.status === 'pending'), null, 1)}\n` +
          workers.map((w) => w.log().slice(-1500)).join('\n----\n'));
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  it('spreads requests over all three workers and collects every result', async () => {
    const volumes: string[] = [];
    for (let i = 0; i < 6; i++) {
      volumes.push(path.join(dir, `round1-${i}.img`));
      await makeImage(volumes[i], 3 * MiB, 300 + i);
    }
    const states = await settled(await requestBackups(volumes));
    for (const s of states) assert.equal(s.status, 'done', JSON.stringify(s));
    assert.deepEqual([...new Set(states.map((s) => s.backup!.host))].sort(), HOSTS, 'each worker got work');
    for (const s of states) assert.equal(s.backup!.status, 'available');
  });

  it('a worker SIGKILLed mid-backup loses no request: the requester re-sends, the others (and its restart) do them', async () => {
    const volumes: string[] = [];
    for (let i = 0; i < 6; i++) {
      volumes.push(path.join(dir, `round2-${i}.img`));
      await makeImage(volumes[i], 24 * MiB, 400 + i);
    }
    // Watch progress; kill node-red-3 (its whole process group) at its first chunk.
    const mqtt = await import('mqtt');
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker!.port}`, { protocolVersion: 5 });
    let killedBackup: string | null = null;
    const killed = new Promise<void>((resolve) => {
      client.on('message', (_topic, payload) => {
        const event = JSON.parse(payload.toString()) as { worker: string; backupId: string; type: string };
        if (killedBackup || event.worker !== 'node-red-3' || event.type !== 'chunk') return;
        killedBackup = event.backupId;
        process.kill(-childOf(workers[2]).pid!, 'SIGKILL');
        resolve();
      });
    });
    await client.subscribeAsync('backup/progress');
    const ids = await requestBackups(volumes);
    await killed;
    await client.endAsync();
    await new Promise<void>((resolve) => (childOf(workers[2]).exitCode !== null || childOf(workers[2]).signalCode !== null ? resolve() : childOf(workers[2]).once('exit', () => resolve())));
    const left = await repo.getRecord(killedBackup!);
    assert.equal(left.status, 'creating', 'killed in the middle of the backup');
    assert.equal(left.host, 'node-red-3');

    // node-red-3 restarts: its start-up cleanup, then Node-RED with the flows it had.
    const cleanup = await runCli(['cleanup', '--repo', repoDir, '--host', 'node-red-3', '--json'], { env: cliEnv({ VOLUME_BACKUP_STATE_DIR: path.join(dir, 'state') }) });
    assert.equal(cleanup.code, 0, cleanup.stderr);
    assert.deepEqual(JSON.parse(cleanup.stdout).failedBackups.map((b: { backupId: string }) => b.backupId), [killedBackup]);
    workers[2] = await startWorker(2);

    const states = await settled(ids);
    for (const s of states) assert.equal(s.status, 'done', JSON.stringify(s));
    const retried = states.filter((s) => s.attempts > 1);
    assert.ok(retried.length >= 1, 'the lost request was re-sent');
    assert.ok(retried.every((s) => s.results.some((r) => r.status === 'ok')));

    const after = await repo.getRecord(killedBackup!);
    assert.equal(after.status, 'error');
    assert.deepEqual(await repo.listObjects(after.objectPrefix), []);

    const verified = await runCli(['verify', '--repo', repoDir, '--read-data', '--json'], { timeoutMs: 120_000 });
    assert.deepEqual(JSON.parse(verified.stdout).problems, []);
    assert.equal(verified.code, 0);
    const available = (await repo.listRecords()).filter((r) => r.status === 'available');
    assert.ok(available.length >= 12);
    await mapLimit(available, 4, async (record) => {
      const target = path.join(dir, `restored-${record.id}.img`);
      await restoreBackup(repo, { backupId: record.id, target });
      assert.equal(await sha256File(target), await sha256File(record.sourcePath!), `backup ${record.id} by ${record.host}`);
      await fs.rm(target);
    });
    console.log(`      ${states.length} requests, ${retried.length} re-sent after the kill; ${available.length} backups restored byte-identical`);
  });

  it('the HTTP worker answers 409 BUSY while another instance backs up the same volume', async () => {
    const volume = path.join(dir, 'http.img');
    await makeImage(volume, 24 * MiB, 500);
    const first = workers[0].request('POST', '/backup', { volume, volumeId: 'http-vol' });
    // Wait until the first instance holds the volume, then freeze it there while the second one tries.
    const deadline = Date.now() + 30_000;
    while (!(await repo.listRecords('http-vol')).some((r) => r.status === 'creating')) {
      if (Date.now() > deadline) throw new Error('the first HTTP backup did not start');
      await new Promise((r) => setTimeout(r, 10));
    }
    const frozen = childOf(workers[0]).pid!;
    process.kill(-frozen, 'SIGSTOP');
    let second;
    try {
      second = await workers[1].request('POST', '/backup', { volume, volumeId: 'http-vol' });
    } finally {
      process.kill(-frozen, 'SIGCONT');
    }
    assert.equal(second.status, 409, second.text);
    assert.equal((second.body as { code: string }).code, 'BUSY');
    assert.match((second.body as { error: string }).error, /volume http-vol is busy: host node-red-1/);
    const done = await first;
    assert.equal(done.status, 200, done.text);
    assert.equal((done.body as { backup: { status: string; host: string } }).backup.status, 'available');
  });
});
