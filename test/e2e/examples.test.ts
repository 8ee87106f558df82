/**
 * End to end: a real Node-RED process with this package, every example flow deployed through the admin
 * API and triggered as a user would (POST /inject/:id, HTTP requests, MQTT messages through mosquitto);
 * checked through the repository on disk, the HTTP and MQTT answers, and the debug sidebar's messages.
 * No VOLUME_BACKUP_* environment, as after Import > Examples (issue 19 item 4): the repository is the
 * default one in the user directory and the volume the demo image the examples make in the temporary
 * folder (TMPDIR and HOME point into the test's directory only to keep runs apart).
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { BackupRecord } from '../../lib/repository/records';
import { backupsIn } from '../helpers/repository';
import { sha256File, tempDir } from '../helpers/volumes';
import { Mosquitto, NodeRedProcess, nodeRedEnv, startMosquitto } from './node-red-process';

const NODE_TYPES = ['volume-driver-config', 'volume-backup-create', 'volume-backup-incremental', 'volume-snapshot-backup', 'volume-restore', 'volume-prune'];

// eslint-disable-next-line @typescript-eslint/no-require-imports -- the version of the Node-RED under test (NODE_RED_PATH), found at run time
const NODE_RED_VERSION = require(require.resolve('node-red/package.json', { paths: [path.dirname(require.resolve(process.env.NODE_RED_PATH ?? 'node-red'))] })).version;

describe(`end to end: the example flows in a real Node-RED ${NODE_RED_VERSION}`, function () {
  this.timeout(120_000);
  let work: string;
  let volume: string;
  let repoDir: string;
  let restoreDir: string;
  let red: NodeRedProcess;
  let mosquitto: Mosquitto | null = null;
  let mqttSkipped = '';

  before(async () => {
    work = await tempDir('e2e');
    // Made by the examples' "demo volume" node on the first inject.
    restoreDir = path.join(work, 'tmp', 'volume-backup-demo');
    volume = path.join(restoreDir, 'demo-disk.img');
    repoDir = path.join(work, 'user-dir', 'volume-backups');
    const broker = await startMosquitto(work);
    if ('skipped' in broker) mqttSkipped = broker.skipped;
    else mosquitto = broker;
    const unset = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('VOLUME_BACKUP_') || k.startsWith('MQTT_')).map((k) => [k, '']));
    await fs.mkdir(path.join(work, 'home'));
    red = new NodeRedProcess(path.join(work, 'user-dir'), { ...unset, TMPDIR: path.join(work, 'tmp'), HOME: path.join(work, 'home') });
    await red.start();
  });
  after(async () => {
    await red?.stop();
    await mosquitto?.stop();
    await fs.rm(work, { recursive: true, force: true });
  });

  const records = () => backupsIn(repoDir);

  async function inject(id: string): Promise<void> {
    // 404 while the deployed flows are still starting on a busy machine: ask again, for a while.
    let res = await red.request('POST', `/inject/${id}`);
    for (let i = 0; res.status === 404 && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 200));
      res = await red.request('POST', `/inject/${id}`);
    }
    assert.strictEqual(res.status, 200, `inject ${id}: ${res.text}`);
  }

  it('loads the six node types under "backup" and deploys every example flow without errors', async () => {
    const nodes = await red.request('GET', '/nodes', undefined, { Accept: 'application/json' });
    const sets = (nodes.body as { module: string; types: string[]; enabled: boolean; err?: string }[]).filter((s) => s.module === 'node-red-contrib-volume-backup');
    assert.deepStrictEqual(sets.flatMap((s) => s.types).sort(), [...NODE_TYPES].sort());
    assert.ok(sets.every((s) => s.enabled && !s.err), JSON.stringify(sets));

    // The top-level examples (examples/scale-out/ is for several instances: test/scale-mqtt.test.ts).
    const flows = nodeRedEnv.exampleTabs().filter((n) => !String(n.id).startsWith('vb-so-'));
    assert.ok(flows.some((n) => n.type === 'mqtt-broker'));
    if (mosquitto) {
      // The broker's settings are in one place, the mqtt-broker node, as a user would change them.
      for (const node of flows) if (node.type === 'mqtt-broker') Object.assign(node, { broker: '127.0.0.1', port: String(mosquitto.port) });
    }
    const logBefore = red.log().length;
    await nodeRedEnv.deployFlows(red.port, flows);
    const deployed = await red.request('GET', '/flows', undefined, { 'Node-RED-API-Version': 'v2' });
    const ids = new Set((deployed.body as { flows: { id: string }[] }).flows.map((n) => n.id));
    assert.ok(flows.every((n) => ids.has(n.id as string)));
    // Every non-config node type of the package appears in some example (the Flow Library's N02).
    const used = new Set(nodeRedEnv.readExamples().flatMap((e) => e.nodes.map((n) => n.type)));
    assert.deepStrictEqual(NODE_TYPES.filter((t) => !used.has(t)), []);
    // Nodes report errors while the flows start, before the runtime says they started.
    while (!/Started flows/.test(red.log().slice(logBefore))) await new Promise((r) => setTimeout(r, 50));
    const newLog = red.log().slice(logBefore);
    assert.ok(!/\[error\]|\[warn\]/.test(newLog), newLog);
  });

  it('01 nightly full and hourly incremental: "back up now" makes a full backup, "every hour" an incremental on it', async () => {
    await inject('vb-ex1-now');
    const [full] = (await red.debugFrom('vb-ex1-record', 1)) as BackupRecord[];
    assert.strictEqual(full.status, 'available');
    assert.strictEqual(full.kind, 'full');
    assert.strictEqual(full.name, 'nightly');
    await inject('vb-ex1-hourly');
    const [, incremental] = (await red.debugFrom('vb-ex1-record', 2)) as BackupRecord[];
    assert.strictEqual(incremental.kind, 'incremental');
    assert.strictEqual(incremental.parentId, full.id);
    assert.ok(incremental.storedBytes < full.storedBytes / 20, `nothing changed: only the hash list and metadata are stored, not ${incremental.storedBytes} bytes`);
    const stored = await records();
    assert.deepStrictEqual(stored.filter((r) => r.status === 'available').map((r) => r.id).sort(), [full.id, incremental.id].sort());
  });

  it('02 progress to debug: one progress line per chunk, then the record', async () => {
    await inject('vb-ex2-now');
    const [record] = (await red.debugFrom('vb-ex2-record', 1)) as BackupRecord[];
    const chunks = Math.ceil(record.size / record.chunkSize);
    const lines = (await red.debugFrom('vb-ex2-progress', chunks)) as string[];
    assert.strictEqual(lines.length, chunks);
    assert.ok(lines.every((l) => /^chunk \d+\/4 {2}[\d.]+ % {2}[\d.]+ MiB\/s$/.test(l)), lines.join('\n'));
    // Chunks finish in any order, but the lines read forward: 1/4 … 4/4, a percent that never goes back, 100 % last.
    assert.deepStrictEqual(lines.map((l) => Number(/^chunk (\d+)/.exec(l)![1])), [1, 2, 3, 4], lines.join('\n'));
    const percents = lines.map((l) => Number(/ {2}([\d.]+) %/.exec(l)![1]));
    assert.deepStrictEqual(percents, [...percents].sort((a, b) => a - b), lines.join('\n'));
    assert.match(lines[3], / 100 % /);
  });

  it('03 HTTP: POST /backup answers with the record, GET /backups lists it, POST /restore restores the bytes', async () => {
    const made = await red.request('POST', '/backup', { name: 'over http' });
    assert.strictEqual(made.status, 200, made.text);
    const record = made.body as BackupRecord;
    assert.strictEqual(record.status, 'available');
    assert.strictEqual(record.name, 'over http');

    const listed = await red.request('GET', `/backups?volumeId=${encodeURIComponent(record.volumeId)}`);
    assert.strictEqual(listed.status, 200);
    assert.ok((listed.body as BackupRecord[]).some((r) => r.id === record.id));

    const restored = await red.request('POST', '/restore', { backupId: record.id });
    assert.strictEqual(restored.status, 200, restored.text);
    assert.strictEqual((restored.body as { target: string }).target, path.join(restoreDir, 'restored.img'));
    assert.strictEqual(await sha256File(path.join(restoreDir, 'restored.img')), await sha256File(volume));

    const verified = await red.request('POST', '/restore', { backupId: record.id, verifyOnly: true });
    assert.strictEqual(verified.status, 200, verified.text);
    assert.strictEqual((verified.body as { verifyOnly: boolean }).verifyOnly, true);
  });

  it('03 HTTP: a missing volume reaches the Catch node, which answers 400 with what is wrong; Node-RED stays up', async () => {
    // The demo node makes a missing image again: a directory in its place is a volume that cannot be read.
    const moved = `${volume}.away`;
    await fs.rename(volume, moved);
    await fs.mkdir(volume);
    try {
      const res = await red.request('POST', '/backup', {});
      assert.strictEqual(res.status, 400, res.text);
      assert.match((res.body as { error: string }).error, /demo-disk\.img/);
    } finally {
      await fs.rmdir(volume);
      await fs.rename(moved, volume);
    }
    const bad = await red.request('POST', '/restore', { backupId: '../../etc/passwd' });
    assert.strictEqual(bad.status, 400);
    assert.match((bad.body as { error: string }).error, /invalid backup id/);
    assert.ok(red.running);
    assert.strictEqual((await red.request('GET', '/settings')).status, 200);
    assert.ok((await records()).every((r) => r.status === 'available' || r.status === 'error'));
  });

  it('04 MQTT: a request on volume-backup/request publishes the record (or the error) on volume-backup/result', async function () {
    if (!mosquitto) {
      console.log(`      MQTT example skipped: ${mqttSkipped}`);
      this.skip();
    }
    const mqtt = await import('mqtt');
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mosquitto!.port}`);
    try {
      const results: unknown[] = [];
      client.on('message', (_topic: string, payload: Buffer) => results.push(JSON.parse(payload.toString())));
      await client.subscribeAsync('volume-backup/result', { qos: 1 });
      // The mqtt in node subscribes once connected: the broker says when. One request, one answer, however long it takes.
      await mosquitto!.subscribed('volume-backup/request');
      await client.publishAsync('volume-backup/request', JSON.stringify({ mode: 'differential' }), { qos: 1 });
      while (results.length === 0) await new Promise((r) => setTimeout(r, 100));
      const record = results[0] as BackupRecord;
      assert.strictEqual(record.kind, 'differential', JSON.stringify(results));
      assert.strictEqual(record.status, 'available');
      const before = results.length;
      await client.publishAsync('volume-backup/request', JSON.stringify({ mode: 'sideways' }), { qos: 1 });
      while (results.length === before) await new Promise((r) => setTimeout(r, 100));
      assert.match((results[before] as { error: string }).error, /mode \(from msg\.payload\.mode\): must be "incremental" or "differential"/);
      // Malformed requests get an error reply too: not JSON, and JSON that is not a request object.
      for (const [request, error] of [['not json {', /JSON/i], ['[1, 2]', /a request is a JSON object such as \{"mode": "incremental"\}/]] as const) {
        const n = results.length;
        await client.publishAsync('volume-backup/request', request, { qos: 1 });
        while (results.length === n) await new Promise((r) => setTimeout(r, 100));
        assert.match((results[n] as { error: string }).error, error, JSON.stringify(results[n]));
      }
    } finally {
      await client.endAsync();
    }
  });

  it('05 weekly prune and verify: dry run reports, prune deletes what the policy drops, the newest backup still verifies', async () => {
    const before = (await records()).filter((r) => r.status === 'available');
    await inject('vb-ex5-dry');
    const [dry] = (await red.debugFrom('vb-ex5-report', 1)) as { dryRun: boolean; backupsDeleted: number }[];
    assert.strictEqual(dry.dryRun, true);
    assert.ok(dry.backupsDeleted > 0, 'several backups of today: keepDaily keeps only the newest (and what it needs)');
    assert.strictEqual((await records()).filter((r) => r.status === 'available').length, before.length);
    await inject('vb-ex5-weekly');
    const [, report] = (await red.debugFrom('vb-ex5-report', 2)) as { dryRun: boolean; backupsDeleted: number }[];
    assert.strictEqual(report.dryRun, false);
    assert.strictEqual(report.backupsDeleted, dry.backupsDeleted);
    const after = (await records()).filter((r) => r.status === 'available');
    assert.strictEqual(after.length, before.length - report.backupsDeleted);
    await inject('vb-ex5-verify-time');
    const [verified] = (await red.debugFrom('vb-ex5-verified', 1)) as { verifyOnly: boolean; backupId: string }[];
    assert.strictEqual(verified.verifyOnly, true);
    assert.ok(after.some((r) => r.id === verified.backupId));
  });

  it('06 snapshot backup: a temporary snapshot is taken, backed up and removed', async () => {
    await inject('vb-ex6-now');
    const [record] = (await red.debugFrom('vb-ex6-record', 1)) as BackupRecord[];
    assert.strictEqual(record.status, 'available');
    assert.ok(record.snapshotProvider, 'the record names the provider');
    assert.strictEqual(record.sourcePath, volume);
    const leftovers = (await fs.readdir(restoreDir)).filter((f) => f.startsWith('volume-backup-tmp-'));
    assert.deepStrictEqual(leftovers, []);
  });

  it('secrets given in the editor stay out of the flow file and the admin API', async () => {
    const flows = nodeRedEnv.exampleTabs(['01-']);
    const secret = 'e2e-secret-4b1d9e77';
    flows.push({
      id: 'e2e-s3-config', type: 'volume-driver-config', name: 's3', backend: 's3', bucket: 'somewhere', region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDE2E', secretAccessKey: secret, passphrase: secret },
    });
    await nodeRedEnv.deployFlows(red.port, flows);
    const flowFile = await fs.readFile(path.join(red.userDir, 'flows.json'), 'utf8');
    assert.ok(flowFile.includes('e2e-s3-config') && !flowFile.includes(secret));
    const api = await red.request('GET', '/flows', undefined, { 'Node-RED-API-Version': 'v2' });
    assert.ok(!api.text.includes(secret));
    const credentials = await red.request('GET', '/credentials/volume-driver-config/e2e-s3-config');
    assert.strictEqual((credentials.body as Record<string, unknown>).has_secretAccessKey, true);
    assert.strictEqual((credentials.body as Record<string, unknown>).accessKeyId, 'AKIDE2E');
    assert.ok(!credentials.text.includes(secret));
  });
});
