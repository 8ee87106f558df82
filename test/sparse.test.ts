/**
 * Sparse disk images: a backup finds the holes with SEEK_DATA/SEEK_HOLE and neither reads nor hashes
 * them, yet writes exactly the backup that reading every byte writes (same segments: entries and hashes),
 * in full and incremental backups, after writing into a hole and after punching one; and where the
 * seek cannot be made (no addon, a file system that refuses it) it reads everything, as before.
 */
import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import { promises as fs, readFileSync, truncateSync } from 'fs';
import * as path from 'path';
import { BackupRecord, Repository, createBackup, openRepository, restoreBackup } from '../lib';
import { loadMetadata, loadSegment } from '../lib/repository/backup-objects';
import type { ChunkEntry } from '../lib/repository/format';
import { cliEnv, runCli } from './helpers/cli';
import { Prng, sha256File, tempDir } from './helpers/volumes';

const KiB = 1024;
const MiB = 1024 * KiB;
// 8 KiB blocks: the file system's 4 KiB data ranges then end inside blocks, which must be read whole.
const SIZES = { chunkSize: 1 * MiB, blockSize: 8 * KiB };
const IMAGE_SIZE = 256 * MiB + 1234; // a partial last block

/** Bytes this process has read through read(2)/pread(2), its worker threads included. */
function bytesRead(): number {
  return Number(/^rchar:\s*(\d+)/m.exec(readFileSync('/proc/self/io', 'utf8'))![1]);
}

/** A backup's chunk entries (format 2 segments, in order) with the hashes of each. */
async function chunkEntries(repo: Repository, record: BackupRecord): Promise<{ entry: ChunkEntry; hashes: Buffer }[]> {
  const metadata = await loadMetadata(repo, record);
  assert.equal(metadata.formatVersion, 2);
  if (metadata.formatVersion !== 2) return [];
  const out: { entry: ChunkEntry; hashes: Buffer }[] = [];
  for (const ref of metadata.segments) {
    const segment = await loadSegment(repo, record, metadata, ref);
    segment.entries.forEach((entry, k) => out.push({ entry, hashes: segment.hashes[k] }));
  }
  return out;
}

/** What a backup holds, without what names it (ids, times, object names). */
async function content(repo: Repository, record: BackupRecord): Promise<unknown> {
  const metadata = await loadMetadata(repo, record);
  return {
    kind: metadata.kind, size: metadata.size, chunkSize: metadata.chunkSize, blockSize: metadata.blockSize,
    chunks: (await chunkEntries(repo, record)).map(({ entry, hashes }) => ({
      chunk: entry.chunk,
      zeroExtents: entry.zeroExtents,
      object: entry.object && (({ name: _name, ...object }) => object)(entry.object),
      hashes: hashes.toString('base64'),
    })),
  };
}

describe('sparse images (SEEK_DATA / SEEK_HOLE)', function () {
  this.timeout(180_000);
  let dir: string;
  let repo: Repository;
  let img: string;
  const prng = new Prng(15);

  async function writeAt(offset: number, length: number): Promise<void> {
    const handle = await fs.open(img, 'r+');
    try {
      await handle.write(prng.fill(Buffer.alloc(length)), 0, length, offset);
    } finally {
      await handle.close();
    }
  }

  beforeEach(async () => {
    dir = await tempDir('sparse');
    repo = await openRepository(path.join(dir, 'repo'), { create: true });
    img = path.join(dir, 'disk.img');
    // A sparse image: data at 4 KiB granularity inside blocks, across a chunk boundary, whole chunks, the last bytes.
    await (await fs.open(img, 'w')).close();
    await fs.truncate(img, IMAGE_SIZE);
    await writeAt(5 * MiB + 4 * KiB, 4 * KiB);
    await writeAt(20 * MiB - 100, 3000);
    await writeAt(100 * MiB, 2 * MiB + 12 * KiB);
    await writeAt(IMAGE_SIZE - 10, 10);
    // More separate data ranges in one chunk than are asked for one by one (the rest is read as one span).
    for (let k = 0; k < 40; k++) await writeAt(30 * MiB + k * 16 * KiB, 4 * KiB);
  });
  afterEach(async () => {
    await repo.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function backup(volumeId: string, sparse: boolean, mode: 'full' | 'incremental'): Promise<{ record: BackupRecord; read: number }> {
    const before = bytesRead();
    // A fixed level: with none, zstd adapts to how busy the workers are (lib/codec/adaptive-level.ts), and
    // the two backups compared here would differ in their stored bytes whenever the machine's load did.
    const record = await createBackup(repo, { volume: img, volumeId, mode, sparse, ...SIZES, compressionLevel: 1 });
    return { record, read: bytesRead() - before };
  }

  async function restoresTo(record: BackupRecord, sha: string): Promise<void> {
    const target = path.join(dir, `restored-${record.id}.img`);
    await restoreBackup(repo, { backupId: record.id, target });
    assert.equal(await sha256File(target), sha, `the restore of ${record.kind} backup ${record.id} differs from the image`);
    await fs.rm(target);
  }

  /** Backs the image up with and without hole detection: the same backup, restoring to the image. */
  async function sameBothWays(mode: 'full' | 'incremental'): Promise<{ sparseRead: number; denseRead: number }> {
    const sha = await sha256File(img);
    const sparse = await backup('sparse', true, mode);
    const dense = await backup('dense', false, mode);
    assert.deepEqual(await content(repo, sparse.record), await content(repo, dense.record), `a ${mode} backup that skips holes must equal one that reads them`);
    await restoresTo(sparse.record, sha);
    await restoresTo(dense.record, sha);
    return { sparseRead: sparse.read, denseRead: dense.read };
  }

  it('the fs-ext addon that asks for holes is built (npm ci builds it: package.json allowScripts)', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- an optional native dependency: its absence must fail this test, not the compile
    assert.equal(typeof (require('fs-ext') as { seek?: unknown }).seek, 'function');
  });

  it('a full backup reads only the data ranges of a sparse image and equals one that reads every byte', async () => {
    const { sparseRead, denseRead } = await sameBothWays('full');
    assert.ok(denseRead >= IMAGE_SIZE, `the backup without hole detection read ${denseRead} bytes`);
    // The data is ~2.1 MiB; the repository's own small reads (records, leases) come on top.
    assert.ok(sparseRead < 8 * MiB, `the backup of a 256 MiB image holding ~2 MiB read ${sparseRead} bytes: the holes were read`);
  });

  it('incrementals after writing into a hole and after punching a hole equal those that read every byte', async () => {
    await sameBothWays('full');
    await writeAt(50 * MiB + 4 * KiB, 70 * KiB); // into a hole: new data, across blocks
    await writeAt(5 * MiB, 4 * KiB); // beside data, in the same block
    const written = await sameBothWays('incremental');
    assert.ok(written.sparseRead < 8 * MiB, `the incremental read ${written.sparseRead} bytes`);

    const blocksBefore = (await fs.stat(img)).blocks;
    execFileSync('fallocate', ['--punch-hole', '--offset', String(100 * MiB + 64 * KiB), '--length', String(256 * KiB), img]);
    assert.ok((await fs.stat(img)).blocks < blocksBefore, 'fallocate --punch-hole freed nothing: the test needs a real hole');
    const punched = await sameBothWays('incremental');
    assert.ok(punched.sparseRead < 8 * MiB, `the incremental read ${punched.sparseRead} bytes`);
    // The punched blocks were data in the parent: now zeros, in the zero map.
    const records = (await repo.listRecords('sparse')).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    // Only chunk 100 changed: its zero map is the hole (the rest of it is data), and nothing was stored.
    const last = await chunkEntries(repo, records[records.length - 1]);
    assert.deepEqual(last.map(({ entry }) => [entry.chunk, entry.zeroExtents, entry.object]), [[100, [[100 * MiB + 64 * KiB, 256 * KiB]], null]]);
  });

  it('an image that shrinks during the backup fails it, though its lost end was never read', async () => {
    let truncated = false;
    await assert.rejects(
      createBackup(repo, {
        volume: img, volumeId: 'shrinking', sparse: true, ...SIZES,
        onProgress: (e) => {
          if (e.type === 'chunk' && !truncated) {
            truncated = true;
            truncateSync(img, 200 * MiB);
          }
        },
      }),
      /became shorter while it was read/,
    );
    const [record] = await repo.listRecords('shrinking');
    assert.equal(record.status, 'error');
  });

  describe('where holes cannot be found, the backup reads everything', () => {
    const cli = async (env: NodeJS.ProcessEnv, volumeId: string): Promise<string> => {
      // A fixed level, as in backup() above: the backups compared here must not differ by the machine's load.
      const r = await runCli(['create', '--repo', path.join(dir, 'repo'), '--volume', img, '--volume-id', volumeId, '--chunk-size', '1M', '--block-size', '8K', '--compression-level=1', '--progress', 'none', '--json'], { env: cliEnv(env) });
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as BackupRecord).id;
    };
    const faulty = (fault: string, log: string): NodeJS.ProcessEnv => ({
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} -r ${path.join(__dirname, 'helpers', 'seek-faults.js')}`.trim(),
      SEEK_FAULT: fault,
      SEEK_FAULT_LOG: log,
    });

    for (const fault of ['missing', 'einval']) {
      it(`${fault === 'missing' ? 'without the fs-ext addon' : 'when lseek(SEEK_DATA) fails with EINVAL'}: the same backup as with hole detection`, async () => {
        const log = path.join(dir, 'faults.log');
        const sha = await sha256File(img);
        const withFault = await cli(faulty(fault, log), 'faulty');
        const normal = await cli({}, 'normal');
        assert.match(await fs.readFile(log, 'utf8'), new RegExp(`^${fault}$`, 'm'), 'the fault was never hit');
        const records = await repo.listRecords();
        const byId = (id: string) => records.find((r) => r.id === id)!;
        assert.deepEqual(await content(repo, byId(withFault)), await content(repo, byId(normal)));
        await restoresTo(byId(withFault), sha);
      });
    }

    it('VOLUME_BACKUP_SPARSE=off: no seek at all, and the same backup', async () => {
      const offLog = path.join(dir, 'off.log');
      const onLog = path.join(dir, 'on.log');
      const off = await cli({ ...faulty('count', offLog), VOLUME_BACKUP_SPARSE: 'off' }, 'off');
      const on = await cli(faulty('count', onLog), 'on');
      assert.equal(await fs.readFile(offLog, 'utf8').catch(() => ''), '', 'VOLUME_BACKUP_SPARSE=off still seeks');
      assert.match(await fs.readFile(onLog, 'utf8'), /^count$/m, 'by default the backup does not seek');
      const records = await repo.listRecords();
      const byId = (id: string) => records.find((r) => r.id === id)!;
      assert.deepEqual(await content(repo, byId(off)), await content(repo, byId(on)));
    });
  });
});
