/**
 * Start-up cleanup of temporary snapshots: what a process of this host left when it died is removed;
 * what a running process or another host owns is left alone; owner files that could have been forged are
 * not acted on.
 */
import * as assert from 'assert';
import { spawn } from 'child_process';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { cleanupTemporarySnapshots } from '../lib/snapshot';
import { OwnerRecord, ownerFilePath, writeOwnerFile } from '../lib/snapshot/owners';
import { processStartTime } from '../lib/util/process';
import { makeImage, tempDir } from './helpers/volumes';

const HOST = 'backup-host-1';

/** A process that takes a copy-provider temporary, says where, and waits to be killed. */
const HOLDER = `
const snapshot = require(process.argv[1]);
const ctx = { runner: snapshot.runCommand, log: { info() {}, warn() {} } };
snapshot.takeTemporarySnapshot(snapshot.createProvider('copy', {}), process.argv[2], { host: process.argv[3], stateDir: process.argv[4] }, ctx)
  .then((t) => { process.stdout.write(JSON.stringify(t) + '\\n'); setInterval(() => undefined, 1000); })
  .catch((err) => { console.error(err); process.exit(1); });
`;

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

function owner(name: string, pid: number, handle: OwnerRecord['handle'], host = HOST): OwnerRecord {
  return { formatVersion: 1, name, provider: handle.provider, host, pid, pidStart: null, volume: '/vols/disk.img', createdAt: new Date().toISOString(), handle };
}

describe('start-up cleanup of temporary snapshots', function () {
  this.timeout(60_000);
  let work: string;
  let stateDir: string;
  let volume: string;

  beforeEach(async () => {
    work = await tempDir('snapclean');
    stateDir = path.join(work, 'state');
    volume = path.join(work, 'disk.img');
    await makeImage(volume, 2 * 1024 * 1024, 31);
  });

  let stopHolder: (() => void) | null = null;

  afterEach(async () => {
    stopHolder?.();
    stopHolder = null;
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('removes the temporary of a process that was killed while holding it, and not while it ran', async () => {
    const holder = spawn(process.execPath, ['-e', HOLDER, path.join(__dirname, '..', 'lib', 'snapshot'), volume, HOST, stateDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    stopHolder = () => holder.kill('SIGKILL');
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    const taken = JSON.parse(await new Promise<string>((resolve) => holder.stdout!.once('data', (d) => resolve(String(d)))));
    await fsp.stat(taken.path);

    const whileRunning = await cleanupTemporarySnapshots({ host: HOST, stateDir });
    assert.deepStrictEqual(whileRunning.removed, []);
    assert.match(whileRunning.kept[0].reason, new RegExp(`process ${holder.pid}, is running`));
    await fsp.stat(taken.path);

    holder.kill('SIGKILL');
    await exited;
    const lines: string[] = [];
    const after = await cleanupTemporarySnapshots({ host: HOST, stateDir, log: { info: (m) => lines.push(m), warn: (m) => lines.push(m) } });
    assert.deepStrictEqual(after.removed.map((r) => r.name), [taken.name]);
    assert.strictEqual(await fsp.stat(taken.path).then(() => true, () => false), false, 'the temporary copy is gone');
    assert.deepStrictEqual(await fsp.readdir(stateDir), []);
    assert.match(lines.join('\n'), /removed copy temporary volume-backup-tmp-.* left by process/);
  });

  it('leaves other hosts\' temporaries, and does not trust owner files others could write or that name foreign paths', async () => {
    const pid = await deadPid();
    const otherHost = path.join(work, 'volume-backup-tmp-1-0000000a');
    const forgedFile = path.join(work, 'volume-backup-tmp-1-0000000b');
    const precious = path.join(work, 'precious.img');
    for (const f of [otherHost, forgedFile, precious]) await fsp.writeFile(f, 'x');
    await writeOwnerFile(stateDir, owner('volume-backup-tmp-1-0000000a', pid, { provider: 'copy', file: otherHost }, 'another-host'));
    await writeOwnerFile(stateDir, owner('volume-backup-tmp-1-0000000b', pid, { provider: 'copy', file: forgedFile }));
    await fsp.chmod(ownerFilePath(stateDir, 'volume-backup-tmp-1-0000000b'), 0o666);
    await writeOwnerFile(stateDir, owner('volume-backup-tmp-1-0000000c', pid, { provider: 'reflink', file: precious }));

    const result = await cleanupTemporarySnapshots({ host: HOST, stateDir });
    assert.deepStrictEqual(result.removed, []);
    const reasons = Object.fromEntries(result.kept.map((k) => [path.basename(k.file), k.reason]));
    assert.match(reasons['volume-backup-tmp-1-0000000a.owner.json'], /owned by host another-host/);
    assert.match(reasons['volume-backup-tmp-1-0000000b.owner.json'], /writable by other users/);
    assert.match(reasons['volume-backup-tmp-1-0000000c.owner.json'], /refusing to remove .*precious.img: it is not a volume-backup temporary/);
    for (const f of [otherHost, forgedFile, precious]) await fsp.stat(f);
  });

  it('runs the recorded delete command of a command-provider temporary, and keeps the owner file if it fails', async () => {
    const pid = await deadPid();
    const snap = path.join(work, 'zvol-snap');
    await fsp.writeFile(snap, 'x');
    await writeOwnerFile(stateDir, owner('volume-backup-tmp-1-0000000d', pid, { provider: 'command', argv: ['rm', '--', snap], timeoutMs: 10_000 }));
    await writeOwnerFile(stateDir, owner('volume-backup-tmp-1-0000000e', pid, { provider: 'command', argv: ['false'], timeoutMs: 10_000 }));
    const result = await cleanupTemporarySnapshots({ host: HOST, stateDir });
    assert.deepStrictEqual(result.removed.map((r) => r.name), ['volume-backup-tmp-1-0000000d']);
    assert.strictEqual(await fsp.stat(snap).then(() => true, () => false), false);
    assert.deepStrictEqual(result.kept.map((k) => k.name), ['volume-backup-tmp-1-0000000e']);
    assert.match(result.kept[0].reason, /false: exited with code 1/);
    assert.deepStrictEqual(await fsp.readdir(stateDir), ['volume-backup-tmp-1-0000000e.owner.json']);
  });

  it('tells a reused pid from the owner by its start time', async () => {
    const file = path.join(work, 'volume-backup-tmp-1-0000000f');
    await fsp.writeFile(file, 'x');
    // Our own pid, but a start time that is not ours: the owner was an earlier process with this pid.
    const start = processStartTime(process.pid);
    if (start === null) return assert.fail('this test needs /proc');
    await writeOwnerFile(stateDir, { ...owner('volume-backup-tmp-1-0000000f', process.pid, { provider: 'copy', file }), pidStart: start + 1 });
    const result = await cleanupTemporarySnapshots({ host: HOST, stateDir });
    assert.deepStrictEqual(result.removed.map((r) => r.name), ['volume-backup-tmp-1-0000000f']);
    assert.strictEqual(await fsp.stat(file).then(() => true, () => false), false);
  });
});
