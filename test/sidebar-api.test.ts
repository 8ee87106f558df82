/**
 * The Backups sidebar's admin endpoints on a real, started Node-RED that loaded this package the way
 * a user's install does: listing chains, verify with its progress over comms, restore to a file
 * (same bytes), delete refused while others depend on a backup, prune preview, parameter checks,
 * no secrets in any reply, and adminAuth/permissions.
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';
import { initRepository } from '../lib/open';
import { sha256File, tempDir } from './helpers/volumes';
import { NodeRed } from './browser/sidebar-node-red';
import { FIXTURE_HOST, SidebarFixture, makeSidebarRepository, sidebarFlow } from './browser/sidebar-repository';

const API = '/volume-backup/sidebar';
const SECRETS = ['AKIA-SIDEBAR-TEST-ID', 'sidebar-secret-access-key-42', 'correct horse sidebar staple', 'endpoint-password-7'];

describe('Backups sidebar endpoints (a started Node-RED)', function () {
  this.timeout(60_000);
  let dir: string;
  let fixture: SidebarFixture;
  let red: NodeRed;
  let configId: string;
  let deniedEndpoint: http.Server;
  const replies: string[] = [];

  async function call(method: string, route: string, body?: unknown) {
    const reply = await red.request(method, route, body);
    replies.push(reply.text);
    return reply;
  }

  before(async () => {
    dir = await tempDir('sidebar-api');
    fixture = await makeSidebarRepository(dir);
    // An encrypted repository, to have a passphrase among the credentials the endpoints must not leak.
    const encryptedDir = path.join(dir, 'encrypted');
    await (await initRepository({ backend: 'posix', path: encryptedDir }, { encrypt: true, passphrase: SECRETS[2], kdf: { N: 2 ** 14, r: 8, p: 1 } })).close();
    // An S3 endpoint that refuses every request at once: the error quotes the endpoint as configured.
    deniedEndpoint = http.createServer((_req, res) => {
      res.writeHead(403, { 'Content-Type': 'application/xml' }).end('<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
    });
    await new Promise<void>((resolve) => deniedEndpoint.listen(0, '127.0.0.1', resolve));
    const s3Port = (deniedEndpoint.address() as AddressInfo).port;
    red = await NodeRed.start();
    const flow = sidebarFlow(fixture.repoDir);
    configId = flow.configId;
    await red.deploy(
      [
        ...flow.flows,
        { id: 'c0ffee0000000001', type: 'volume-driver-config', name: 'Cloud', backend: 's3', bucket: 'backups', prefix: 'nodes', endpoint: `http://user:${SECRETS[3]}@127.0.0.1:${s3Port}/` },
        { id: 'c0ffee0000000002', type: 'volume-driver-config', name: 'Encrypted', backend: 'posix', path: encryptedDir },
      ],
      {
        c0ffee0000000001: { accessKeyId: SECRETS[0], secretAccessKey: SECRETS[1] },
        c0ffee0000000002: { passphrase: SECRETS[2] },
      },
    );
  });

  after(async () => {
    await red?.stop();
    deniedEndpoint?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('lists the deployed driver-configs with where they point, without credentials', async () => {
    const reply = await call('GET', `${API}/configs`);
    assert.strictEqual(reply.status, 200, reply.text);
    const byName = Object.fromEntries(reply.body.configs.map((c: { name: string }) => [c.name, c]));
    assert.deepStrictEqual(Object.keys(byName).sort(), ['Cloud', 'Demo repository', 'Encrypted']);
    assert.deepStrictEqual(byName['Demo repository'], { id: configId, name: 'Demo repository', backend: 'posix', location: fixture.repoDir });
    assert.match(byName.Cloud.location, /^s3:\/\/backups\/nodes at http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('shows each volume as chains, newest first, with status, sizes, snapshot ids, host and failures', async () => {
    const reply = await call('GET', `${API}/configs/${configId}/backups`);
    assert.strictEqual(reply.status, 200, reply.text);
    const { volumes } = reply.body;
    assert.deepStrictEqual(volumes.map((v: { volumeId: string }) => v.volumeId), ['db-disk', 'web-disk']);
    const db = volumes[0];
    const b = fixture.backups;
    const chainIds = db.chains.map((c: { backups: { id: string }[] }) => c.backups.map((x) => x.id));
    assert.deepStrictEqual(chainIds, [[b.dbFailed.id], [b.dbFull2.id, b.dbIncr2a.id], [b.dbFull1.id, b.dbIncr1a.id, b.dbIncr1b.id]]);
    const [failed, second, first] = db.chains;
    assert.strictEqual(failed.backups[0].status, 'error');
    assert.match(failed.backups[0].failReason, /operator stopped it/);
    assert.deepStrictEqual(first.backups.map((x: { kind: string; depth: number }) => [x.kind, x.depth]), [['full', 0], ['incremental', 1], ['incremental', 2]]);
    assert.strictEqual(second.broken, null);
    const incr = first.backups[1];
    assert.strictEqual(incr.status, 'available');
    assert.strictEqual(incr.parentId, b.dbFull1.id);
    assert.strictEqual(incr.host, FIXTURE_HOST);
    assert.strictEqual(incr.snapshotId, b.dbIncr1a.snapshotId);
    assert.strictEqual(incr.dataTimestamp, b.dbIncr1a.dataTimestamp);
    assert.strictEqual(incr.size, 6 * 1024 * 1024);
    assert.strictEqual(incr.storedBytes, b.dbIncr1a.storedBytes);
    assert.ok(incr.storedBytes < first.backups[0].storedBytes, 'an incremental stores less than its full backup');
    assert.strictEqual(db.backupCount, 6);
    // Object names and hashes stay on the server.
    assert.ok(!('objectPrefix' in incr) && !('metadataSha256' in incr), Object.keys(incr).join(','));
    assert.deepStrictEqual(volumes[1].chains.map((c: { backups: { id: string }[] }) => c.backups.map((x) => x.id)), [[b.webFull.id, b.webIncr.id]]);

    const one = await call('GET', `${API}/configs/${configId}/backups?volumeId=web-disk`);
    assert.deepStrictEqual(one.body.volumes.map((v: { volumeId: string }) => v.volumeId), ['web-disk']);
  });

  it('sends a big listing a page at a time: page/size pick the backups, totals stay whole', async () => {
    const whole = await call('GET', `${API}/configs/${configId}/backups`);
    const order = whole.body.volumes.flatMap((v: any) => v.chains.flatMap((c: any) => c.backups.map((x: any) => x.id)));
    assert.deepStrictEqual(whole.body.page, { page: 0, size: 50, total: order.length, pages: 1 });
    const seen: string[] = [];
    for (let page = 0; page * 3 < order.length; page++) {
      const reply = await call('GET', `${API}/configs/${configId}/backups?page=${page}&size=3`);
      assert.strictEqual(reply.status, 200, JSON.stringify(reply.body));
      assert.deepStrictEqual(reply.body.page, { page, size: 3, total: order.length, pages: Math.ceil(order.length / 3) });
      const ids = reply.body.volumes.flatMap((v: any) => v.chains.flatMap((c: any) => c.backups.map((x: any) => x.id)));
      assert.ok(ids.length <= 3 && ids.length > 0);
      for (const v of reply.body.volumes) assert.strictEqual(v.backupCount, whole.body.volumes.find((w: any) => w.volumeId === v.volumeId).backupCount);
      seen.push(...ids);
    }
    assert.deepStrictEqual(seen, order, 'the pages together are the whole listing, in its order');
    const bad = await call('GET', `${API}/configs/${configId}/backups?size=100000`);
    assert.strictEqual(bad.status, 400);
    assert.match(bad.body.error, /size/);
  });

  it('verifies a backup, with its progress and result published on the editor comms', async () => {
    const comms = await red.subscribe('volume-backup/progress');
    try {
      const reply = await call('POST', `${API}/configs/${configId}/operations`, { action: 'verify', backupId: fixture.backups.dbIncr1b.id });
      assert.strictEqual(reply.status, 202, reply.text);
      const id = reply.body.operation.id;
      const end = await comms.waitFor((m) => m.id === id && m.finishedAt);
      assert.strictEqual(end.state, 'done', JSON.stringify(end.error));
      const b = fixture.backups;
      assert.deepStrictEqual(end.result.chain, [b.dbFull1.id, b.dbIncr1a.id, b.dbIncr1b.id]);
      assert.strictEqual(end.result.verifyOnly, true);
      assert.strictEqual(end.result.bytesVerified, 6 * 1024 * 1024);
      const states = comms.messages.filter((m: any) => m.id === id).map((m: any) => m.state);
      assert.ok(states.includes('running'), states.join(','));
      assert.ok(comms.messages.some((m: any) => m.id === id && m.progress && m.progress.bytesTotal > 0), 'progress went out');
      const polled = await call('GET', `${API}/operations/${id}`);
      assert.strictEqual(polled.body.operation.state, 'done');
      const late = await call('POST', `${API}/operations/${id}/cancel`);
      assert.strictEqual(late.status, 200, late.text);
      assert.strictEqual(late.body.cancelled, false, 'a finished operation cannot be cancelled');
      assert.strictEqual(late.body.operation.state, 'done');
    } finally {
      comms.close();
    }
  });

  it('restores a backup to a new file with the bytes the volume had, and will not overwrite it unasked', async () => {
    const target = path.join(dir, 'restored-db.img');
    const reply = await call('POST', `${API}/configs/${configId}/operations`, { action: 'restore', backupId: fixture.backups.dbIncr1a.id, target, wait: true });
    assert.strictEqual(reply.status, 200, reply.text);
    assert.strictEqual(reply.body.operation.state, 'done');
    assert.strictEqual(await sha256File(target), fixture.hashes.dbIncr1a);

    const again = await call('POST', `${API}/configs/${configId}/operations`, { action: 'restore', backupId: fixture.backups.dbIncr2a.id, target, wait: true });
    assert.strictEqual(again.status, 409, again.text);
    assert.strictEqual(again.body.code, 'CONFLICT');
    assert.match(again.body.error, /exists/);
    assert.strictEqual(await sha256File(target), fixture.hashes.dbIncr1a, 'the refused restore left the file alone');

    const confirmed = await call('POST', `${API}/configs/${configId}/operations`, { action: 'restore', backupId: fixture.backups.dbIncr2a.id, target, overwrite: true, wait: true });
    assert.strictEqual(confirmed.status, 200, confirmed.text);
    assert.strictEqual(await sha256File(target), fixture.hashes.dbIncr2a);
  });

  it('refuses to delete a backup others depend on, with the engine\'s reason, and deletes a leaf', async () => {
    const b = fixture.backups;
    const refused = await call('POST', `${API}/configs/${configId}/operations`, { action: 'delete', backupId: b.dbFull1.id, wait: true });
    assert.strictEqual(refused.status, 409, refused.text);
    assert.strictEqual(refused.body.code, 'HAS_DEPENDENTS');
    assert.match(refused.body.error, new RegExp(`${b.dbIncr1a.id}.*depends on it`));
    assert.deepStrictEqual([...(refused.body.details.dependents as string[])].sort(), [b.dbIncr1a.id, b.dbIncr1b.id].sort());
    assert.strictEqual(refused.body.operation.state, 'failed');

    const deleted = await call('POST', `${API}/configs/${configId}/operations`, { action: 'delete', backupId: b.webIncr.id, wait: true });
    assert.strictEqual(deleted.status, 200, deleted.text);
    assert.deepStrictEqual(deleted.body.operation.result.deleted.map((d: { id: string }) => d.id), [b.webIncr.id]);

    const listing = await call('GET', `${API}/configs/${configId}/backups`);
    const ids = listing.body.volumes.flatMap((v: any) => v.chains.flatMap((c: any) => c.backups.map((x: any) => x.id)));
    assert.ok(ids.includes(b.dbFull1.id), 'the refused delete kept the backup');
    assert.ok(!ids.includes(b.webIncr.id), 'the deleted backup is gone');
  });

  it('previews a prune without deleting anything', async () => {
    const b = fixture.backups;
    const before = await call('GET', `${API}/configs/${configId}/backups?volumeId=db-disk`);
    const reply = await call('POST', `${API}/configs/${configId}/operations`, { action: 'prune', policy: { keepLast: 1 }, volumeId: 'db-disk', dryRun: true, wait: true });
    assert.strictEqual(reply.status, 200, reply.text);
    const report = reply.body.operation.result;
    assert.strictEqual(report.dryRun, true);
    const wouldDelete = report.volumes[0].deleted.map((d: { id: string }) => d.id).sort();
    assert.deepStrictEqual(wouldDelete, [b.dbFull1.id, b.dbIncr1a.id, b.dbIncr1b.id, b.dbFailed.id].sort());
    const after = await call('GET', `${API}/configs/${configId}/backups?volumeId=db-disk`);
    assert.deepStrictEqual(after.body.volumes, before.body.volumes, 'a preview changes nothing');

    const bad = await call('POST', `${API}/configs/${configId}/operations`, { action: 'prune', policy: { keepBananas: 2 }, dryRun: true });
    assert.strictEqual(bad.status, 400, bad.text);
    assert.match(bad.body.error, /keep-bananas/);
  });

  it('answers bad parameters with 400 and a reason, unknown things with 404, and touches nothing', async () => {
    const backupId = fixture.backups.dbIncr1a.id;
    const post = (body: unknown, config = configId) => call('POST', `${API}/configs/${config}/operations`, body);
    const cases: [string, Promise<{ status: number; body: any; text: string }>, number, RegExp][] = [
      ['config id with ../', call('GET', `${API}/configs/..%2F..%2Fetc/backups`), 400, /driver-config id/],
      ['unknown config', call('GET', `${API}/configs/ffffffffffffffff/backups`), 404, /no driver-config ffffffffffffffff/],
      ['volume id with ..', call('GET', `${API}/configs/${configId}/backups?volumeId=..`), 400, /volumeId/],
      ['unknown query', call('GET', `${API}/configs/${configId}/backups?evil=1`), 400, /evil/],
      ['bad backup id', post({ action: 'verify', backupId: '../../records' }), 400, /backupId/],
      ['unknown backup', post({ action: 'verify', backupId: '00000000-0000-4000-8000-000000000000', wait: true }), 404, /not found/],
      ['unknown action', post({ action: 'format', backupId }), 400, /action must be/],
      ['extra field', post({ action: 'verify', backupId, cascade: true }), 400, /cascade/],
      ['relative target', post({ action: 'restore', backupId, target: 'restored.img' }), 400, /absolute/],
      ['target with ../', post({ action: 'restore', backupId, target: `${dir}/../escape.img` }), 400, /\.\./],
      ['target in a missing directory', post({ action: 'restore', backupId, target: `${dir}/no/such/dir.img` }), 400, /does not exist/],
      ['target a directory', post({ action: 'restore', backupId, target: dir, overwrite: true }), 400, /directory/],
      ['wait not boolean', post({ action: 'verify', backupId, wait: 'yes' }), 400, /wait/],
      ['operation id', call('GET', `${API}/operations/..%2Fx`), 400, /operation id/],
      ['unknown operation', call('POST', `${API}/operations/00000000-0000-4000-8000-000000000000/cancel`), 404, /no operation/],
      ['unknown config on POST', post({ action: 'verify', backupId }, 'ffffffffffffffff'), 404, /no driver-config/],
    ];
    for (const [label, pending, status, pattern] of cases) {
      const reply = await pending;
      assert.strictEqual(reply.status, status, `${label}: ${reply.text}`);
      assert.match(reply.body.error, pattern, label);
    }
    await assert.rejects(fs.stat(path.join(path.dirname(dir), 'escape.img')), /ENOENT/);
  });

  it('never returns a secret in any reply', async () => {
    await call('GET', `${API}/configs/c0ffee0000000002/backups`); // encrypted: opened with the passphrase
    const denied = await call('GET', `${API}/configs/c0ffee0000000001/backups`); // s3 endpoint that says no
    assert.strictEqual(denied.status, 502, denied.text);
    assert.match(denied.body.error, /http:\/\/user:\*\*\*@127\.0\.0\.1|http:\/\/\*\*\*@127\.0\.0\.1/, 'the endpoint is quoted without its password');
    await call('GET', `${API}/operations`);
    assert.ok(replies.length > 20);
    for (const text of replies) for (const secret of SECRETS) assert.ok(!text.includes(secret), `a reply contains ${secret}: ${text.slice(0, 300)}`);
  });
});

describe('Backups sidebar endpoints behind adminAuth', function () {
  this.timeout(60_000);
  let red: NodeRed;
  let dir: string;
  let fixture: SidebarFixture;
  let configId: string;
  let admin: string;
  let viewer: string;

  before(async () => {
    dir = await tempDir('sidebar-auth');
    fixture = await makeSidebarRepository(dir);
    red = await NodeRed.start({
      users: [
        { username: 'admin', password: 'admin-password', permissions: '*' },
        { username: 'viewer', password: 'viewer-password', permissions: 'read' },
      ],
    });
    admin = await red.token('admin', 'admin-password');
    viewer = await red.token('viewer', 'viewer-password', 'read');
    const flow = sidebarFlow(fixture.repoDir);
    configId = flow.configId;
    await red.deploy(flow.flows, {}, admin);
  });

  after(async () => {
    await red?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('answers 401 without a token, for reading and for actions', async () => {
    for (const [method, route, body] of [
      ['GET', `${API}/configs`, undefined],
      ['GET', `${API}/configs/${configId}/backups`, undefined],
      ['POST', `${API}/configs/${configId}/operations`, { action: 'delete', backupId: fixture.backups.webIncr.id, wait: true }],
      ['GET', `${API}/operations`, undefined],
    ] as const) {
      const reply = await red.request(method, route, body);
      assert.strictEqual(reply.status, 401, `${method} ${route}: ${reply.text}`);
    }
    const still = await red.request('GET', `${API}/configs/${configId}/backups?volumeId=web-disk`, undefined, admin);
    assert.strictEqual(still.body.volumes[0].backupCount, 2, 'the unauthenticated delete did nothing');
  });

  it('lets a read-only user look but not act (Node-RED refuses a missing permission with 401), and an admin act', async () => {
    const look = await red.request('GET', `${API}/configs/${configId}/backups`, undefined, viewer);
    assert.strictEqual(look.status, 200, look.text);
    const act = await red.request('POST', `${API}/configs/${configId}/operations`, { action: 'delete', backupId: fixture.backups.webIncr.id, wait: true }, viewer);
    assert.strictEqual(act.status, 401, act.text);
    const still = await red.request('GET', `${API}/configs/${configId}/backups?volumeId=web-disk`, undefined, viewer);
    assert.strictEqual(still.body.volumes[0].backupCount, 2, 'the read-only user deleted nothing');
    const ok = await red.request('POST', `${API}/configs/${configId}/operations`, { action: 'verify', backupId: fixture.backups.webIncr.id, wait: true }, admin);
    assert.strictEqual(ok.status, 200, ok.text);
    assert.strictEqual(ok.body.operation.result.bytesVerified, 3 * 1024 * 1024);
  });
});
