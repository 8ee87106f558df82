/**
 * A driver-config that holds an OpenStack Cinder backup store (issue 20): backups made by Cinder's own
 * PosixBackupDriver, listed, verified and restored by the restore node; a backup node on it is refused
 * with the read-only message (through Catch), and nothing is written to the store.
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { RestoreResult } from '../../lib/engine/types';
import type { BackupRecord } from '../../lib/repository/records';
import { cinderBackup, cinderMissing, storeFiles } from '../helpers/cinder';
import { sha256File } from '../helpers/volumes';
import { loadTestFlow, nodeRedVersion, nodeTestSuite } from './support';

const MiB = 1024 * 1024;
const VOLUME = '3a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d';
const FULL = '4b5c6d7e-0000-4000-8000-0000000000f1';
const INC = '4b5c6d7e-0000-4000-8000-0000000000f2';

describe(`Node-RED nodes on a Cinder store (node-red ${nodeRedVersion()})`, function () {
  this.timeout(120_000);
  const suite = nodeTestSuite('cinder-nodes', { size: 2 * MiB + 5000, seed: 31 });
  let store: string;
  let changed: string;

  before(async function () {
    if (cinderMissing()) this.skip(); // CI installs python3-cinder: there this never skips
    store = path.join(suite.work, 'cinder');
    changed = path.join(suite.work, 'changed.img');
    await cinderBackup({ store, volumeFile: suite.image, volumeId: VOLUME, backupId: FULL, chunkSize: MiB, name: 'full' });
    await fs.copyFile(suite.image, changed);
    const handle = await fs.open(changed, 'r+');
    await handle.write(Buffer.alloc(70_000, 0x5a), 0, 70_000, MiB - 1000);
    await handle.close();
    await cinderBackup({ store, volumeFile: changed, volumeId: VOLUME, backupId: INC, parent: FULL, compression: 'bz2', chunkSize: MiB, name: 'incremental' });
  });

  const cinderConfig = () => ({ path: store, layout: 'cinder' });

  it('the restore node lists, verifies and restores the Cinder chain byte-identical', async () => {
    const target = path.join(suite.work, 'restored.img');
    const t = await loadTestFlow(
      suite.repoDir,
      [
        { id: 'list', type: 'volume-restore', action: 'list', actionType: 'action' },
        { id: 'verify', type: 'volume-restore', action: 'verify', actionType: 'action', backupId: INC, backupIdType: 'str' },
        { id: 'restore', type: 'volume-restore', action: 'restore', actionType: 'action', volumeId: VOLUME, volumeIdType: 'str', target, targetType: 'str' },
      ],
      cinderConfig(),
    );
    t.node('list').receive({});
    const [listed] = await t.out.waitFor(1);
    const records = listed.payload as BackupRecord[];
    assert.deepStrictEqual(records.map((r) => [r.id, r.parentId, r.name, r.kind]), [[FULL, null, 'full', 'full'], [INC, FULL, 'incremental', 'incremental']]);
    t.node('verify').receive({});
    const [, verified] = await t.out.waitFor(2);
    assert.strictEqual((verified.payload as RestoreResult).verifyOnly, true);
    assert.deepStrictEqual((verified.payload as RestoreResult).chain, [FULL, INC]);
    // No backup id: the volume's newest backup.
    t.node('restore').receive({});
    const [, , restored] = await t.out.waitFor(3);
    assert.strictEqual((restored.payload as RestoreResult).backupId, INC);
    assert.strictEqual(await sha256File(target), await sha256File(changed));
    assert.strictEqual(t.caught.messages.length, 0, JSON.stringify(t.caught.messages.map((m) => m.error)));
  });

  it('a restore from a Cinder store onto an existing file is refused (Catch says why, file untouched); msg.overwrite allows it', async () => {
    const target = path.join(suite.work, 'existing.img');
    await fs.writeFile(target, Buffer.alloc(3 * MiB, 0x5a));
    const before = await sha256File(target);
    const t = await loadTestFlow(suite.repoDir, [{ id: 'r', type: 'volume-restore', action: 'restore', actionType: 'action', target: 'target', targetType: 'msg' }], cinderConfig());
    t.node('r').receive({ backupId: INC, target });
    const [refused] = await t.caught.waitFor(1);
    assert.match(refused.error?.message ?? '', /restore target .*existing\.img exists \(3145728 bytes\): a restore would overwrite it; choose a new file, or allow overwriting \(.*msg\.overwrite = true\)/);
    assert.strictEqual(await sha256File(target), before, 'the existing file is untouched');
    t.node('r').receive({ backupId: INC, target, overwrite: true });
    const [done] = await t.out.waitFor(1);
    assert.strictEqual((done.payload as RestoreResult).backupId, INC);
    assert.strictEqual(await sha256File(target), await sha256File(changed), 'overwritten and cut to the image size');
  });

  it('a restore onto a base is refused for a Cinder store (as the CLI\'s --base), the target untouched', async () => {
    const target = path.join(suite.work, 'holds-full.img');
    await fs.copyFile(suite.image, target);
    const before = await sha256File(target);
    const t = await loadTestFlow(suite.repoDir, [{ id: 'r', type: 'volume-restore', action: 'restore', actionType: 'action', target: 'target', targetType: 'msg' }], cinderConfig());
    t.node('r').receive({ backupId: INC, target, baseBackupId: FULL });
    const [refused] = await t.caught.waitFor(1);
    assert.strictEqual(refused.error?.message, 'a base backup (from msg.baseBackupId) works with this project\'s repositories, not with a Cinder store: restore without one');
    assert.strictEqual(await sha256File(target), before);
  });

  it('msg.cancel on a Cinder store stops only an operation running here: with none, Catch says so', async () => {
    const t = await loadTestFlow(suite.repoDir, [{ id: 'r', type: 'volume-restore', action: 'verify', actionType: 'action' }], cinderConfig());
    t.node('r').receive({ cancel: true, backupId: INC });
    const [caught] = await t.caught.waitFor(1);
    assert.match(caught.error?.message ?? '', new RegExp(`msg.cancel: no operation on backup ${INC} runs in this Node-RED`));
  });

  it('a backup node on a Cinder store is refused as read-only (Catch gets it) and the store is unchanged', async () => {
    const before = await storeFiles(store);
    const t = await loadTestFlow(suite.repoDir, [{ id: 'b', type: 'volume-backup-create', volume: suite.image, volumeType: 'str' }], cinderConfig());
    t.node('b').receive({});
    const [caught] = await t.caught.waitFor(1);
    assert.match(caught.error?.message ?? '', /Cinder store .* is read-only/);
    assert.deepStrictEqual(await storeFiles(store), before);
  });
});
