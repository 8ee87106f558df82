/**
 * The Backups sidebar on a driver-config that holds a Cinder store (issue 20), on a started Node-RED:
 * the chain Cinder's own PosixBackupDriver made is listed, verified and restored byte-identical; delete
 * is refused as read-only and the store is left as it was.
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { cinderBackup, cinderMissing, storeFiles } from './helpers/cinder';
import { makeImage, sha256File, tempDir } from './helpers/volumes';
import { NodeRed } from './browser/sidebar-node-red';

const API = '/volume-backup/sidebar';
const MiB = 1024 * 1024;
const VOLUME = '6d7e8f90-1a2b-4c3d-8e4f-5a6b7c8d9e0f';
const FULL = '8f9e0d1c-0000-4000-8000-0000000000a1';
const INC = '8f9e0d1c-0000-4000-8000-0000000000a2';
const CONFIG = 'c1d0000000000001';

describe('Backups sidebar on a Cinder store (a started Node-RED)', function () {
  this.timeout(120_000);
  let dir: string;
  let store: string;
  let changed: string;
  let red: NodeRed | null = null;

  before(async function () {
    if (cinderMissing()) this.skip(); // CI installs python3-cinder: there this never skips
    dir = await tempDir('sidebar-cinder');
    store = path.join(dir, 'cinder');
    const image = path.join(dir, 'disk.img');
    changed = path.join(dir, 'changed.img');
    await makeImage(image, 2 * MiB + 999, 41, 256 * 1024);
    await cinderBackup({ store, volumeFile: image, volumeId: VOLUME, backupId: FULL, chunkSize: MiB, name: 'cinder full' });
    await fs.copyFile(image, changed);
    const handle = await fs.open(changed, 'r+');
    await handle.write(Buffer.alloc(50_000, 7), 0, 50_000, 300_000);
    await handle.close();
    await cinderBackup({ store, volumeFile: changed, volumeId: VOLUME, backupId: INC, parent: FULL, compression: 'zstd', chunkSize: MiB, name: 'cinder incremental' });
    red = await NodeRed.start();
    await red.deploy([{ id: CONFIG, type: 'volume-driver-config', name: 'Cinder', backend: 'posix', path: store, layout: 'cinder' }]);
  });

  after(async () => {
    await red?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('lists the chain, verifies it, restores it byte-identical, refuses delete', async () => {
    const listing = await red!.request('GET', `${API}/configs/${CONFIG}/backups`);
    assert.strictEqual(listing.status, 200, listing.text);
    assert.strictEqual(listing.body.readOnly, true);
    assert.match(listing.body.location, /cinder posix layout/);
    const ids = listing.body.volumes.flatMap((v: any) => v.chains.flatMap((c: any) => c.backups.map((x: any) => x.id)));
    assert.deepStrictEqual(ids.sort(), [FULL, INC].sort());

    const verified = await red!.request('POST', `${API}/configs/${CONFIG}/operations`, { action: 'verify', backupId: INC, wait: true });
    assert.strictEqual(verified.status, 200, verified.text);
    assert.deepStrictEqual(verified.body.operation.result.chain, [FULL, INC]);

    const target = path.join(dir, 'restored.img');
    const restored = await red!.request('POST', `${API}/configs/${CONFIG}/operations`, { action: 'restore', backupId: INC, target, wait: true });
    assert.strictEqual(restored.status, 200, restored.text);
    assert.strictEqual(await sha256File(target), await sha256File(changed));

    const before = await storeFiles(store);
    const refused = await red!.request('POST', `${API}/configs/${CONFIG}/operations`, { action: 'delete', backupId: INC, wait: true });
    assert.notStrictEqual(refused.status, 200, refused.text);
    assert.match(refused.body.error, /Cinder store .* is read-only/);
    assert.deepStrictEqual(await storeFiles(store), before);
  });
});
