/**
 * The posix driver when other processes work in the same repository at the worst moment. Another
 * instance's deleteObject removes the directories it leaves empty (a lease's `locks/`, a backup's
 * directory); when that falls between this instance's mkdir and its create, the create failed with
 * ENOENT (seen in CI: three Node-RED workers sharing one repository, "open …/locks/….json.tmp-…"). The
 * moment cannot be hit on purpose across processes, so the directory is removed exactly there.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import * as sinon from 'sinon';
import { PreconditionFailedError } from '../lib/errors';
import { PosixDriver } from '../lib/drivers/posix';
import { tempDir } from './helpers/volumes';

describe('posix driver: a directory removed by another process between mkdir and create', () => {
  let dir: string;
  let driver: PosixDriver;

  beforeEach(async () => {
    dir = await tempDir('posix-race');
    driver = new PosixDriver({ path: dir });
  });

  afterEach(async () => {
    sinon.restore();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /**
   * Before the first create of a temporary file in `locks/` that finds the directory there, remove that
   * (empty) directory, as a delete elsewhere would: the create runs right after the driver made it.
   */
  function removeDirectoryBeforeFirstCreate(): sinon.SinonSpy {
    const open = fs.open.bind(fs);
    let removed = false;
    return sinon.stub(fs, 'open').callsFake(async (file, ...rest) => {
      const name = String(file);
      if (!removed && name.includes(`${path.sep}locks${path.sep}`) && name.includes('.tmp-')) {
        removed = await fs.rmdir(path.dirname(name)).then(() => true, () => false);
      }
      return open(file, ...(rest as [string]));
    });
  }

  it('putIfAbsent makes the directory again and creates the object', async () => {
    const open = removeDirectoryBeforeFirstCreate();
    await driver.putIfAbsent('', 'locks/vol.json', Buffer.from('lease'));
    assert.ok(open.callCount >= 3, 'created once without the directory, once after making it (removed), once after making it again');
    assert.strictEqual((await driver.readObject('', 'locks/vol.json')).data.toString(), 'lease');
    assert.deepStrictEqual(await driver.listEntries('', 'locks/'), [{ name: 'locks/vol.json', size: 5 }]);
  });

  it('writeObject makes the directory again and writes the object', async () => {
    const open = removeDirectoryBeforeFirstCreate();
    await driver.writeObject('', 'locks/vol.json', Buffer.from('lease'));
    assert.ok(open.callCount >= 3, 'created once without the directory, once after making it (removed), once after making it again');
    assert.strictEqual((await driver.readObject('', 'locks/vol.json')).data.toString(), 'lease');
  });

  it('replaceIfMatch of an object whose directory is gone is a precondition failure, not a storage error', async () => {
    const etag = await driver.putIfAbsent('', 'locks/vol.json', Buffer.from('lease'));
    await fs.rm(path.join(dir, 'locks'), { recursive: true });
    await assert.rejects(driver.replaceIfMatch('', 'locks/vol.json', Buffer.from('renewed'), etag), PreconditionFailedError);
  });
});
