/**
 * Direct I/O: a restore writes the volume, and a backup to a posix repository writes its data objects,
 * straight to the device (O_DIRECT) from page-aligned buffers, so neither sits in the page cache;
 * buffered where the filesystem or device refuses direct I/O; unaligned tails buffered or padded and
 * cut. Checked with fincore (util-linux), which reports how much of a file is in the page cache,
 * before anything reads the file.
 */
import { strict as assert } from 'assert';
import { execFile } from 'child_process';
import { constants as fsConstants, promises as fs, statSync } from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import * as sinon from 'sinon';
import { BackupRecord, Repository, createBackup, openRepository, restoreBackup, verifyRepository } from '../lib';
import { runCommand } from '../lib/snapshot';
import { listFiles, makeImage, sha256File, tempDir } from './helpers/volumes';
import { skipSuite } from './snapshot-loopfs';

const KiB = 1024;
const MiB = 1024 * KiB;
const SIZES = { chunkSize: 1 * MiB, blockSize: 32 * KiB };

/** Bytes of `file` in the page cache (fincore --bytes), or null without fincore. */
async function cachedBytes(file: string): Promise<number | null> {
  try {
    const { stdout } = await promisify(execFile)('fincore', ['--bytes', '--noheadings', '--output', 'RES', file]);
    return Number(stdout.trim());
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

describe('direct I/O (O_DIRECT) in restores and posix repositories', function () {
  this.timeout(60_000);
  let dir: string;
  let repo: Repository;
  let img: string;
  let sha: string;
  let record: BackupRecord;
  let repoDir: string;

  before(async function () {
    dir = await tempDir('direct');
    repoDir = path.join(dir, 'repo');
    repo = await openRepository(repoDir, { create: true });
    img = path.join(dir, 'disk.img');
    // An odd size: the last bytes cannot be written directly.
    await makeImage(img, 12 * MiB + 5000, 31, 256 * KiB);
    sha = await sha256File(img);
    record = await createBackup(repo, { volume: img, volumeId: 'disk', ...SIZES });
    if ((await cachedBytes(img)) === null) skipSuite(this, 'fincore (util-linux) is not installed: it is how these tests see the page cache');
    const probe = await fs.open(path.join(dir, 'probe'), fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_DIRECT).catch(() => null);
    await probe?.close();
    if (!probe) skipSuite(this, `the filesystem of ${dir} refuses O_DIRECT, so every restore there is buffered (covered by the fallback test below on other machines)`);
  });
  after(async () => {
    sinon.restore();
    await repo?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  afterEach(() => sinon.restore());

  it('a new target: restored bytes equal the source and, but for the unaligned tail, none of them is in the page cache', async () => {
    // The control: a file written the ordinary way is in the page cache, so fincore can see it.
    const control = path.join(dir, 'control.img');
    await fs.writeFile(control, Buffer.alloc(4 * MiB, 1));
    assert.ok((await cachedBytes(control))! >= 4 * MiB, 'fincore does not see a freshly written file');

    const target = path.join(dir, 'new.img');
    const result = await restoreBackup(repo, { backupId: record.id, target });
    assert.ok(result.bytesWritten > 0 && result.bytesWritten < record.size, 'zero regions are left as holes');
    assert.ok((await cachedBytes(target))! <= 8 * KiB, `restored file cached: ${await cachedBytes(target)} bytes`);
    assert.equal(await sha256File(target), sha);
  });

  it('an existing, larger target file: zeros are written, it ends at the volume\'s size, nothing stays cached', async () => {
    const target = path.join(dir, 'existing.img');
    await fs.writeFile(target, Buffer.alloc(record.size + 3 * MiB, 0xee));
    const handle = await fs.open(target, 'r');
    await handle.datasync();
    await handle.close();
    // Drop the file's cached pages: writes that go direct leave the page cache empty again.
    await promisify(execFile)('dd', [`of=${target}`, 'oflag=nocache', 'conv=notrunc,fdatasync', 'count=0', 'status=none']);
    const before = await cachedBytes(target);
    await restoreBackup(repo, { backupId: record.id, target });
    const after = await cachedBytes(target);
    assert.ok(after! <= Math.max(before!, 8 * KiB), `restore left ${after} bytes cached (before: ${before})`);
    assert.equal((await fs.stat(target)).size, record.size, 'the old tail is cut off');
    assert.equal(await sha256File(target), sha);
  });

  it('falls back to buffered writes when the kernel refuses a direct write (EINVAL), and the restore is still exact', async () => {
    const realOpen = fs.open.bind(fs);
    let refused = 0;
    sinon.stub(fs, 'open').callsFake(async (file: Parameters<typeof fs.open>[0], flags?: string | number, mode?: Parameters<typeof fs.open>[2]) => {
      const handle = await realOpen(file, flags, mode);
      if (typeof flags === 'number' && (flags & fsConstants.O_DIRECT) !== 0) {
        // A device whose sectors are larger than our alignment answers every direct write like this.
        sinon.stub(handle, 'write').callsFake(async () => {
          refused++;
          throw Object.assign(new Error('EINVAL: invalid argument, write'), { code: 'EINVAL' });
        });
      }
      return handle;
    });
    const target = path.join(dir, 'fallback.img');
    await restoreBackup(repo, { backupId: record.id, target });
    sinon.restore();
    // Turned off after the first refusal: only writes already in flight (one per chunk) see it too.
    assert.ok(refused >= 1 && refused <= 3, `direct writes refused: ${refused}`);
    assert.ok((await cachedBytes(target))! > MiB, 'the fallback writes through the page cache');
    assert.equal(await sha256File(target), sha);
  });

  it('falls back to buffered writes where O_DIRECT cannot be opened', async () => {
    const realOpen = fs.open.bind(fs);
    sinon.stub(fs, 'open').callsFake(async (file: Parameters<typeof fs.open>[0], flags?: string | number, mode?: Parameters<typeof fs.open>[2]) => {
      if (typeof flags === 'number' && (flags & fsConstants.O_DIRECT) !== 0) throw Object.assign(new Error('EINVAL: invalid argument, open'), { code: 'EINVAL' });
      return realOpen(file, flags, mode);
    });
    const target = path.join(dir, 'no-direct.img');
    await restoreBackup(repo, { backupId: record.id, target });
    sinon.restore();
    assert.equal(await sha256File(target), sha);
  });

  it("a backup's data objects are written around the page cache; they, its metadata and hash list read back exact", async () => {
    const fresh = await createBackup(repo, { volume: img, volumeId: 'disk-fresh', ...SIZES });
    const objects = (await listFiles(repoDir)).filter((f) => f.includes(`backup_${fresh.id}-`));
    assert.ok(objects.length >= 8, `data objects: ${objects.join(', ')}`);
    // Odd lengths (compressed): the padded tail was written directly and cut off.
    assert.ok(objects.some((f) => statSync(path.join(repoDir, f)).size % 4096 !== 0));
    let cached = 0;
    for (const f of objects) cached += (await cachedBytes(path.join(repoDir, f)))!;
    assert.ok(cached <= objects.length * 4096, `data objects cached: ${cached} bytes`);
    const verified = await verifyRepository(repo, { readData: true });
    assert.ok(verified.ok, JSON.stringify(verified.problems));
  });

  it("a restore reads a posix repository's data objects around the page cache too", async () => {
    const fresh = await createBackup(repo, { volume: img, volumeId: 'disk-read', ...SIZES });
    const objects = (await listFiles(repoDir)).filter((f) => /-\d{5}$/.test(f) && f.includes(`backup_${fresh.id}-`));
    assert.ok(objects.length >= 8, `data objects: ${objects.join(', ')}`);
    const target = path.join(dir, 'read-direct.img');
    await restoreBackup(repo, { backupId: fresh.id, target });
    assert.equal(await sha256File(target), sha);
    let cached = 0;
    for (const f of objects) cached += (await cachedBytes(path.join(repoDir, f)))!;
    assert.ok(cached <= objects.length * 4096, `data objects in the page cache after the restore read them: ${cached} bytes`);
  });

  it('a restore reads the objects buffered where a direct read is refused (EINVAL), and is still exact', async () => {
    const fresh = await createBackup(repo, { volume: img, volumeId: 'disk-read-refused', ...SIZES });
    const realOpen = fs.open.bind(fs);
    let refused = 0;
    sinon.stub(fs, 'open').callsFake(async (file: Parameters<typeof fs.open>[0], flags?: string | number, mode?: Parameters<typeof fs.open>[2]) => {
      if (typeof flags === 'number' && (flags & fsConstants.O_DIRECT) !== 0 && (flags & (fsConstants.O_WRONLY | fsConstants.O_RDWR)) === 0) {
        refused++;
        throw Object.assign(new Error('EINVAL: invalid argument, open'), { code: 'EINVAL' });
      }
      return realOpen(file, flags, mode);
    });
    const target = path.join(dir, 'read-refused.img');
    try {
      await restoreBackup(repo, { backupId: fresh.id, target });
    } finally {
      sinon.restore();
    }
    assert.ok(refused > 0, 'the restore did not try to read directly');
    assert.equal(await sha256File(target), sha);
  });

  it('a posix repository writes objects buffered where O_DIRECT is refused, and they read back exact', async () => {
    const realOpen = fs.open.bind(fs);
    let refused = 0;
    sinon.stub(fs, 'open').callsFake(async (file: Parameters<typeof fs.open>[0], flags?: string | number, mode?: Parameters<typeof fs.open>[2]) => {
      if (typeof flags === 'number' && (flags & fsConstants.O_DIRECT) !== 0) {
        refused++;
        // As Linux does on a file system without direct I/O: the file is created, then the open fails.
        if (flags & fsConstants.O_CREAT) await (await realOpen(file, flags & ~fsConstants.O_DIRECT, mode)).close();
        throw Object.assign(new Error('EINVAL: invalid argument, open'), { code: 'EINVAL' });
      }
      return realOpen(file, flags, mode);
    });
    const other = await createBackup(repo, { volume: img, volumeId: 'disk2', ...SIZES });
    sinon.restore();
    assert.ok(refused > 0, 'the backup did not try direct I/O');
    const objects = (await listFiles(repoDir)).filter((f) => f.includes(`backup_${other.id}-`));
    let cached = 0;
    for (const f of objects) cached += (await cachedBytes(path.join(repoDir, f)))!;
    assert.ok(cached > MiB, 'buffered objects are in the page cache');
    assert.deepEqual(await fs.readdir(path.dirname(path.join(repoDir, objects[0]))).then((n) => n.filter((x) => x.includes('.tmp-'))), [], 'no temporary files left');
    const target = path.join(dir, 'from-buffered.img');
    await restoreBackup(repo, { backupId: other.id, target });
    assert.equal(await sha256File(target), sha);
  });

  it('onto a block device (a loop device): exact, and nothing left in the page cache', async function () {
    if (process.getuid?.() !== 0) skipSuite(this, 'attaching a loop device needs root');
    const backing = path.join(dir, 'lun.img');
    await fs.writeFile(backing, Buffer.alloc(16 * MiB, 0x5a));
    const device = (await runCommand('losetup', ['-f', '--show', backing], { timeoutMs: 10_000 })).stdout.trim();
    try {
      await restoreBackup(repo, { backupId: record.id, target: device });
      assert.ok((await cachedBytes(device))! <= 8 * KiB, `device pages cached: ${await cachedBytes(device)}`);
      const handle = await fs.open(device, 'r');
      const data = Buffer.alloc(record.size);
      await handle.read(data, 0, data.length, 0);
      await handle.close();
      await fs.writeFile(path.join(dir, 'lun-prefix.img'), data);
      assert.equal(await sha256File(path.join(dir, 'lun-prefix.img')), sha);
    } finally {
      await runCommand('losetup', ['-d', device], { timeoutMs: 10_000 });
    }
  });
});
