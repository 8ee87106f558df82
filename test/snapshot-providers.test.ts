/**
 * The snapshot providers that need no special file system: command (with real scripts), copy, auto,
 * lvm (its exact commands, through a recording runner: there is no device-mapper here), and the
 * validation of createSnapshotBackup's options.
 */
import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as path from 'path';
import * as sinon from 'sinon';
import { openRepository } from '../lib/open';
import { Repository } from '../lib/repository/repository';
import { restoreBackup } from '../lib/engine/restore';
import { createSnapshotBackup } from '../lib/engine/snapshot-backup';
import { VolumeBackupError } from '../lib/errors';
import { CommandRunner, TemporarySnapshot, createProvider, removeTemporary, runCommand, selectProvider } from '../lib/snapshot';
import { fileSystemType } from '../lib/snapshot/files';
import { parseCreateOutput } from '../lib/snapshot/command';
import { isError } from './helpers/assert';
import { makeImage, sha256File, tempDir } from './helpers/volumes';
import { skipSuite } from './snapshot-loopfs';

const MiB = 1024 * 1024;

function recordingLog() {
  const lines: string[] = [];
  return { lines, log: { info: (m: string) => lines.push(`info: ${m}`), warn: (m: string) => lines.push(`warn: ${m}`) } };
}

async function temporariesIn(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((n) => n.startsWith('volume-backup-tmp-'));
}

describe('snapshot providers', function () {
  this.timeout(60_000);
  let work: string;
  let repo: Repository;
  let volume: string;
  let stateDir: string;

  before(async () => {
    work = await tempDir('snapprov');
    volume = path.join(work, 'vols', 'disk.img');
    await fsp.mkdir(path.dirname(volume));
    await makeImage(volume, 6 * MiB, 21);
    stateDir = path.join(work, 'state');
    repo = await openRepository(path.join(work, 'repo'), { create: true });
  });

  after(async () => {
    await repo?.close();
    await fsp.rm(work, { recursive: true, force: true });
  });

  describe('command', () => {
    let scripts: string;
    let deleteLog: string;

    before(async () => {
      scripts = path.join(work, 'scripts');
      await fsp.mkdir(scripts);
      deleteLog = path.join(work, 'deleted.log');
      // A stand-in for `zfs snapshot` and friends: the "snapshot" is a copy in {dir}; chatter, then JSON.
      await fsp.writeFile(
        path.join(scripts, 'create-json'),
        '#!/bin/sh\nset -e\ncp -- "$1" "$2/$3.snap"\necho "making snapshot of $1"\necho\nprintf \'{"path":"%s","id":"tank/vm@%s"}\\n\' "$2/$3.snap" "$3"\n',
        { mode: 0o755 },
      );
      await fsp.writeFile(path.join(scripts, 'create-plain'), '#!/bin/sh\nset -e\ncp -- "$1" "$2/$3.snap"\necho "$2/$3.snap"\n', { mode: 0o755 });
      await fsp.writeFile(path.join(scripts, 'delete'), `#!/bin/sh\nset -e\nrm -- "$1"\necho "$@" >> ${JSON.stringify(deleteLog)}\n`, { mode: 0o755 });
      await fsp.writeFile(path.join(scripts, 'delete-if-exists'), '#!/bin/sh\nrm -f -- "$1"\n', { mode: 0o755 });
      await fsp.writeFile(path.join(scripts, 'silent'), '#!/bin/sh\ntrue\n', { mode: 0o755 });
      await fsp.writeFile(path.join(scripts, 'slow'), '#!/bin/sh\nsleep 30\n', { mode: 0o755 });
    });

    beforeEach(() => fsp.rm(deleteLog, { force: true }));

    it('backs up through the user\'s create and delete scripts, passing the path, id, volume and name back', async () => {
      let taken = null as TemporarySnapshot | null;
      let snapshotHash = '';
      const record = await createSnapshotBackup(repo, {
        volume,
        volumeId: 'cmd-vol',
        temporarySnapshot: {
          provider: 'command',
          createCommand: [path.join(scripts, 'create-json'), '{volume}', '{dir}', '{name}'],
          deleteCommand: [path.join(scripts, 'delete'), '{path}', 'id={id}', 'volume={volume}', 'name={name}'],
        },
        stateDir,
        onSnapshot: async (snap) => {
          taken = snap;
          snapshotHash = await sha256File(snap.path);
        },
      });
      assert.ok(taken);
      assert.strictEqual(taken!.id, `tank/vm@${taken!.name}`);
      assert.strictEqual(taken!.path, path.join(path.dirname(volume), `${taken!.name}.snap`));
      assert.strictEqual(record.snapshotProvider, 'command');
      assert.strictEqual(record.sourcePath, volume);
      assert.strictEqual(
        (await fsp.readFile(deleteLog, 'utf8')).trim(),
        `${taken!.path} id=tank/vm@${taken!.name} volume=${volume} name=${taken!.name}`,
      );
      assert.deepStrictEqual((await fsp.readdir(path.dirname(volume))).sort(), ['disk.img']);
      assert.deepStrictEqual(await fsp.readdir(stateDir), []);
      const target = path.join(work, 'restored-cmd.img');
      await restoreBackup(repo, { backupId: record.id, target });
      assert.strictEqual(await sha256File(target), snapshotHash);
      assert.strictEqual(await sha256File(target), await sha256File(volume));
    });

    it('takes a plain path on the last line, and {dir} from the snapshot directory', async () => {
      const snapDir = path.join(work, 'cmd-snaps');
      await fsp.mkdir(snapDir);
      const record = await createSnapshotBackup(repo, {
        volume,
        volumeId: 'cmd-vol',
        mode: 'incremental',
        temporarySnapshot: {
          provider: 'command',
          snapshotDir: snapDir,
          createCommand: [path.join(scripts, 'create-plain'), '{volume}', '{dir}', '{name}'],
          deleteCommand: [path.join(scripts, 'delete'), '{path}'],
        },
        stateDir,
        onSnapshot: (snap) => assert.strictEqual(path.dirname(snap.path), snapDir),
      });
      assert.strictEqual(record.kind, 'incremental');
      assert.match(await fsp.readFile(deleteLog, 'utf8'), new RegExp(`^${snapDir}/volume-backup-tmp-`));
      assert.deepStrictEqual(await fsp.readdir(snapDir), []);
    });

    it('stops a create command at its timeout and says so; nothing is left', async () => {
      await assert.rejects(
        createSnapshotBackup(repo, {
          volume,
          temporarySnapshot: { provider: 'command', timeoutSeconds: 0.5, createCommand: [path.join(scripts, 'slow')], deleteCommand: [path.join(scripts, 'delete'), '{path}'] },
          stateDir,
        }),
        isError('SNAPSHOT', /slow: timed out after 1 s/),
      );
      assert.deepStrictEqual(await fsp.readdir(stateDir), []);
    });

    it('fails clearly when the create command prints no path', async () => {
      await assert.rejects(
        createSnapshotBackup(repo, {
          volume,
          temporarySnapshot: { provider: 'command', createCommand: [path.join(scripts, 'silent'), '{volume}'], deleteCommand: [path.join(scripts, 'delete-if-exists'), '{dir}/{name}'] },
          stateDir,
        }),
        isError('SNAPSHOT', /printed nothing/),
      );
      assert.deepStrictEqual(await fsp.readdir(stateDir), []);
    });

    it('refuses unknown placeholders and a missing delete command before running anything', async () => {
      const runner = sinon.spy(runCommand);
      await assert.rejects(
        createSnapshotBackup(repo, {
          volume,
          runner,
          temporarySnapshot: { provider: 'command', createCommand: ['zfs', 'snapshot', '{volum}'], deleteCommand: ['zfs', 'destroy', '{id}'] },
          stateDir,
        }),
        isError('INVALID_ARGUMENT', /uses \{volum\}/),
      );
      await assert.rejects(
        createSnapshotBackup(repo, { volume, runner, temporarySnapshot: { provider: 'command', createCommand: ['zfs', 'snapshot'] }, stateDir }),
        isError('INVALID_ARGUMENT', /needs both a create command and a delete command/),
      );
      sinon.assert.notCalled(runner);
    });

    it('parses the create output: last non-empty line, path or JSON', () => {
      assert.deepStrictEqual(parseCreateOutput('noise\n/dev/zvol/tank/a\n\n'), { path: '/dev/zvol/tank/a', id: null });
      assert.deepStrictEqual(parseCreateOutput('{"path":"/x/y","id":42}'), { path: '/x/y', id: '42' });
      assert.throws(() => parseCreateOutput('relative/path'), isError('SNAPSHOT', /not an absolute path/));
      assert.throws(() => parseCreateOutput('{"id":"a"}'), isError('SNAPSHOT', /no "path"/));
      assert.throws(() => parseCreateOutput('{oops'), isError('SNAPSHOT', /not valid JSON/));
    });
  });

  describe('copy and auto', () => {
    it('copy: warns that it is not point-in-time, backs up the copy and removes it', async () => {
      const { lines, log } = recordingLog();
      let taken = null as TemporarySnapshot | null;
      const record = await createSnapshotBackup(repo, { volume, volumeId: 'copy-vol', temporarySnapshot: { provider: 'copy' }, stateDir, log, onSnapshot: (s) => void (taken = s) });
      assert.strictEqual(record.snapshotProvider, 'copy');
      assert.ok(lines.some((l) => /^warn: copy: .*NOT a point-in-time snapshot/.test(l)), lines.join('\n'));
      assert.strictEqual(path.dirname(taken!.path), path.dirname(volume), 'default: beside the volume');
      assert.deepStrictEqual(await temporariesIn(path.dirname(volume)), []);
      const target = path.join(work, 'restored-copy.img');
      await restoreBackup(repo, { backupId: record.id, target });
      assert.strictEqual(await sha256File(target), await sha256File(volume));
    });

    it('copy: removes the partial copy when the backup fails on its first progress event', async () => {
      const controller = new AbortController();
      let taken = null as TemporarySnapshot | null;
      await assert.rejects(
        createSnapshotBackup(repo, {
          volume,
          volumeId: 'copy-vol',
          temporarySnapshot: { provider: 'copy' },
          stateDir,
          chunkSize: MiB,
          signal: controller.signal,
          onSnapshot: (s) => void (taken = s),
          onProgress: () => controller.abort(),
        }),
        isError('CANCELLED'),
      );
      assert.ok(taken);
      assert.deepStrictEqual(await temporariesIn(path.dirname(volume)), []);
      assert.deepStrictEqual(await fsp.readdir(stateDir), []);
    });

    it('removes the temporary when something fails between the snapshot and the backup', async () => {
      await assert.rejects(
        createSnapshotBackup(repo, {
          volume,
          temporarySnapshot: { provider: 'copy' },
          stateDir,
          onSnapshot: () => {
            throw new Error('injected failure');
          },
        }),
        /injected failure/,
      );
      assert.deepStrictEqual(await temporariesIn(path.dirname(volume)), []);
      assert.deepStrictEqual(await fsp.readdir(stateDir), []);
    });

    it('auto: picks the first provider that applies and says which and why not the others', async function () {
      const fsType = await fileSystemType(path.dirname(volume));
      if (fsType !== 'other') skipSuite(this, `the temporary directory is on ${fsType}, where auto picks a cloning provider (covered by the loop-device tests)`);
      const { lines, log } = recordingLog();
      const record = await createSnapshotBackup(repo, { volume, volumeId: 'auto-vol', temporarySnapshot: { provider: 'auto' }, stateDir, log });
      assert.strictEqual(record.snapshotProvider, 'copy');
      const choice = lines.find((l) => l.includes('snapshot provider auto'));
      assert.match(choice ?? '', /using copy for .*lvm: .*not a block device.*btrfs: the volume is not on btrfs.*reflink: /);
    });

    it('copy of a block device (a loop device) into a snapshot directory', async function () {
      if (process.getuid?.() !== 0) skipSuite(this, 'attaching a loop device needs root');
      const backing = path.join(work, 'lun.img');
      await makeImage(backing, 4 * MiB, 22);
      const device = (await runCommand('losetup', ['-f', '--show', backing], { timeoutMs: 10_000 })).stdout.trim();
      try {
        const snapDir = path.join(work, 'copies');
        await fsp.mkdir(snapDir);
        const record = await createSnapshotBackup(repo, { volume: device, volumeId: 'lun', temporarySnapshot: { provider: 'copy', snapshotDir: snapDir }, stateDir });
        assert.strictEqual(record.sourcePath, device);
        assert.deepStrictEqual(await fsp.readdir(snapDir), []);
        const target = path.join(work, 'restored-lun.img');
        await restoreBackup(repo, { backupId: record.id, target });
        assert.strictEqual(await sha256File(target), await sha256File(backing));
      } finally {
        await runCommand('losetup', ['-d', device], { timeoutMs: 10_000 });
      }
    });

    it('copy of a block device needs a snapshot directory', async function () {
      const device = await someBlockDevice();
      if (!device) skipSuite(this, 'no block device node under /dev');
      const provider = createProvider('copy', {});
      assert.match((await provider.applies(device!, { runner: runCommand, log: recordingLog().log })) ?? '', /block device: give a snapshot directory/);
    });
  });

  describe('lvm (commands checked through a recording runner; no device-mapper here)', () => {
    let device: string;

    before(async function () {
      const found = await someBlockDevice();
      if (!found) skipSuite(this, 'no block device node under /dev to stand for a logical volume');
      device = found!;
    });

    /** Answers lvs like LVM would for vg0/data; records every command. */
    function fakeLvm(attr = '-wi-ao----') {
      return sinon.stub<Parameters<CommandRunner>, ReturnType<CommandRunner>>().callsFake(async (file) => {
        if (file === 'lvs') return { stdout: `  vg0|data|${attr}\n`, stderr: '' };
        return { stdout: '', stderr: '' };
      });
    }
    const commands = (runner: sinon.SinonStub) => runner.getCalls().map((c) => [c.args[0], ...c.args[1]]);

    it('creates a classic snapshot with lvcreate --snapshot and removes it with lvremove -f', async () => {
      const runner = fakeLvm();
      const ctx = { runner, log: recordingLog().log };
      const provider = createProvider('lvm', {});
      const handles: unknown[] = [];
      const snap = await provider.create({ volume: device, name: 'volume-backup-tmp-1-0badcafe', register: async (h) => void handles.push(h) }, ctx);
      assert.strictEqual(snap.path, '/dev/vg0/volume-backup-tmp-1-0badcafe');
      assert.deepStrictEqual(handles, [{ provider: 'lvm', lv: 'vg0/volume-backup-tmp-1-0badcafe' }], 'registered before lvcreate ran');
      await removeTemporary(snap.handle, ctx);
      assert.deepStrictEqual(commands(runner), [
        ['lvs', '--noheadings', '--separator', '|', '-o', 'vg_name,lv_name,lv_attr', '--', device],
        ['lvcreate', '--snapshot', '--extents', '10%ORIGIN', '--name', 'volume-backup-tmp-1-0badcafe', 'vg0/data'],
        ['lvremove', '-f', 'vg0/volume-backup-tmp-1-0badcafe'],
      ]);
      assert.ok(runner.getCalls().every((c) => c.args[2].timeoutMs > 0), 'every command has a timeout');
    });

    it('takes the snapshot size as given, and thin volumes get an activated thin snapshot', async () => {
      const runner = fakeLvm();
      await createProvider('lvm', { lvmSize: '2G' }).create({ volume: device, name: 'volume-backup-tmp-1-00000001', register: async () => undefined }, { runner, log: recordingLog().log });
      assert.deepStrictEqual(commands(runner)[1], ['lvcreate', '--snapshot', '--size', '2G', '--name', 'volume-backup-tmp-1-00000001', 'vg0/data']);
      const thin = fakeLvm('Vwi-aotz--');
      await createProvider('lvm', {}).create({ volume: device, name: 'volume-backup-tmp-1-00000002', register: async () => undefined }, { runner: thin, log: recordingLog().log });
      assert.deepStrictEqual(commands(thin)[1], ['lvcreate', '--snapshot', '--setactivationskip', 'n', '--name', 'volume-backup-tmp-1-00000002', 'vg0/data']);
      assert.throws(() => createProvider('lvm', { lvmSize: '2 gigs' }), /size such as 2G/);
    });

    it('removes the snapshot LV when the backup fails after lvcreate', async () => {
      const runner = fakeLvm();
      await assert.rejects(
        createSnapshotBackup(repo, {
          volume: device,
          volumeId: 'lv-data',
          temporarySnapshot: { provider: 'lvm', lvmSize: '512M' },
          stateDir,
          runner,
          onSnapshot: () => {
            throw new Error('injected failure after lvcreate');
          },
        }),
        /injected failure after lvcreate/,
      );
      const cmds = commands(runner).map((c) => c.slice(0, 2).join(' '));
      assert.deepStrictEqual(cmds, ['lvs --noheadings', 'lvcreate --snapshot', 'lvremove -f']);
      assert.deepStrictEqual(await fsp.readdir(stateDir), []);
    });

    it('auto uses lvm for a logical volume, and not for a file', async () => {
      const runner = fakeLvm();
      const { lines, log } = recordingLog();
      const chosen = await selectProvider(device, { provider: 'auto' }, { runner, log });
      assert.strictEqual(chosen.name, 'lvm');
      assert.ok(lines.some((l) => l.includes('snapshot provider auto: using lvm')));
      assert.match((await createProvider('lvm', {}).applies(volume, { runner, log })) ?? '', /not a block device/);
    });

    it('treats an LV that is already gone as removed, and refuses to remove anything not ours', async () => {
      const ctx = { runner: sinon.stub().rejects(new VolumeBackupError('SNAPSHOT', 'lvremove -f vg0/x: exited with code 5: Failed to find logical volume "vg0/x"')), log: recordingLog().log };
      await removeTemporary({ provider: 'lvm', lv: 'vg0/volume-backup-tmp-1-00000003' }, ctx);
      await assert.rejects(removeTemporary({ provider: 'lvm', lv: 'vg0/root' }, ctx), isError('SNAPSHOT', /not a volume-backup temporary/));
      sinon.assert.calledOnce(ctx.runner);
    });
  });

  describe('options', () => {
    it('refuses unclear requests with clear errors', async () => {
      const snapshot = { path: volume, id: 'snap-1', createdAt: new Date().toISOString() };
      await assert.rejects(createSnapshotBackup(repo, { snapshot }), isError('INVALID_ARGUMENT', /volumeId is required when backing up an existing snapshot/));
      await assert.rejects(createSnapshotBackup(repo, { snapshot, volume, volumeId: 'v' }), isError('INVALID_ARGUMENT', /either snapshot .* or volume/));
      await assert.rejects(createSnapshotBackup(repo, {}), isError('INVALID_ARGUMENT', /either snapshot/));
      await assert.rejects(
        createSnapshotBackup(repo, { snapshot: { ...snapshot, createdAt: 'yesterday-ish' }, volumeId: 'v' }),
        isError('INVALID_ARGUMENT', /snapshot.createdAt must be an ISO 8601 date/),
      );
      await assert.rejects(
        createSnapshotBackup(repo, { snapshot: { ...snapshot, createdAt: new Date(Date.now() + 3600_000) }, volumeId: 'v' }),
        isError('INVALID_ARGUMENT', /snapshot.createdAt is in the future/),
      );
      await assert.rejects(
        createSnapshotBackup(repo, { volume, temporarySnapshot: { provider: 'zfs' as 'btrfs' } }),
        isError('INVALID_ARGUMENT', /temporarySnapshot.provider/),
      );
      await assert.rejects(createSnapshotBackup(repo, { volume, stateDir, temporarySnapshot: { provider: 'btrfs' } }), isError('SNAPSHOT', /not on a btrfs/));
    });
  });
});

/** A block device node to stand for a logical volume (only stat is done on it). */
async function someBlockDevice(): Promise<string | null> {
  for (const name of ['loop0', 'loop1', 'loop7', 'sda', 'vda', 'nvme0n1']) {
    const p = `/dev/${name}`;
    try {
      if ((await fsp.stat(p)).isBlockDevice()) return p;
    } catch {
      // try the next
    }
  }
  return null;
}
