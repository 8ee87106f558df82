/**
 * The layers under the engine (issue 18 items 3-4): prune and verify call the same objects orphans on
 * one damaged repository; prune's state is sealed like every object of an encrypted repository;
 * reset-status keeps to the status machine; and a backend written without any retry code gets the
 * retry layer (a backup and restore through a store whose every first attempt fails).
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import {
  BackupRecord, Repository, createBackup, initRepository, openRepository, pruneRepository, resetStatus, restoreBackup, verifyRepository,
} from '../lib';
import { CinderNaming, Driver, ObjectEntry, ObjectOptions, StoredObject } from '../lib/drivers/driver';
import { ObjectNotFoundError, PreconditionFailedError, VolumeBackupError } from '../lib/errors';
import { ORPHAN_STATE_PREFIX } from '../lib/engine/prune';
import { parseObjectName } from '../lib/repository/layout';
import { openRepositoryIn } from '../lib/repository/repository';
import { createDriver } from '../lib/drivers';
import { withRetries } from '../lib/drivers/retrying-driver';
import { runCli } from './helpers/cli';
import { makeImage, sha256File, tempDir } from './helpers/volumes';

const KiB = 1024;
const SMALL = { chunkSize: 64 * KiB, blockSize: 4 * KiB, compression: 'none' as const };
const FAST_KDF = { N: 2 ** 14, r: 8, p: 1 };
const PASSPHRASE = 'correct horse battery staple';
const KEEP_ALL = { keepLast: 'unlimited' };

describe('layers: one orphan classifier, one door to the driver, retries as a layer', function () {
  this.timeout(120_000);
  let dir: string;
  let repoDir: string;
  let img: string;
  const repos: Repository[] = [];

  beforeEach(async () => {
    dir = await tempDir('layering');
    repoDir = path.join(dir, 'repo');
    img = path.join(dir, 'disk.img');
    await makeImage(img, 320 * KiB, 3, 64 * KiB);
  });
  afterEach(async () => {
    for (const r of repos.splice(0)) await r.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const track = (repo: Repository) => (repos.push(repo), repo);
  const backup = (repo: Repository, volumeId: string, mode: 'full' | 'incremental' = 'full') => createBackup(repo, { volume: img, volumeId, mode, ...SMALL });
  const recordFile = (r: BackupRecord) => path.join(repoDir, 'records', r.volumeId, `${r.id}.json`);

  it('prune and verify report the same orphans on one damaged repository (names outside every volume\'s directory included)', async () => {
    const repo = track(await openRepository(repoDir, { create: true }));
    await backup(repo, 'disk');
    await backup(repo, 'disk', 'incremental');
    const lost = await backup(repo, 'other');
    // Damage: a record removed by hand, a file in a volume's directory that is no backup object, and
    // a name under volume_ outside every volume's directory (no volume-backup process makes one).
    await fs.rm(recordFile(lost));
    await fs.writeFile(path.join(repoDir, 'volume_disk', 'junk'), 'junk');
    await fs.writeFile(path.join(repoDir, 'volume_stray'), 'stray');
    await fs.mkdir(path.join(repoDir, 'volume_no id'));
    await fs.writeFile(path.join(repoDir, 'volume_no id', 'x'), 'not a volume');

    const pruned = await pruneRepository(repo, { policy: KEEP_ALL, dryRun: true, orphanGracePeriodMs: 0 });
    const byPrune = new Set(pruned.volumes.flatMap((v) => v.orphans).map((o) => parseObjectName(o.name)?.prefix ?? o.name));
    const verified = await verifyRepository(repo);
    const byVerify = new Set(verified.problems.filter((p) => p.kind === 'orphaned-objects').map((p) => p.objectName ?? '(none)'));

    assert.deepEqual([...byVerify].sort(), [...byPrune].sort(), 'verify reports as orphans exactly what prune would delete');
    assert.deepEqual([...byPrune].sort(), [lost.objectPrefix, 'volume_disk/junk'].sort());
    assert.ok(verified.notes.some((n) => /volume_no id\/x, volume_stray\) are under volume_ but in no volume's directory/.test(n.message)), JSON.stringify(verified.notes));
    // And a real prune deletes exactly those, leaving the stray name alone.
    await pruneRepository(repo, { policy: KEEP_ALL, orphanGracePeriodMs: 0 });
    assert.deepEqual((await verifyRepository(repo)).problems, []);
    assert.equal(await fs.readFile(path.join(repoDir, 'volume_stray'), 'utf8'), 'stray');
    assert.equal(await fs.readFile(path.join(repoDir, 'volume_no id', 'x'), 'utf8'), 'not a volume');
  });

  it('prune keeps its orphan state sealed on an encrypted repository, and reads it back', async () => {
    const repo = track(await initRepository(repoDir, { encrypt: true, passphrase: PASSPHRASE, kdf: FAST_KDF }));
    const lost = await backup(repo, 'disk');
    await fs.rm(recordFile(lost));

    const first = await pruneRepository(repo, { policy: KEEP_ALL });
    assert.ok(first.volumes[0].orphans.length > 0 && first.volumes[0].orphans.every((o) => o.action === 'kept for the grace period' && o.firstSeen === null));
    const stored = await fs.readFile(path.join(repoDir, `${ORPHAN_STATE_PREFIX}disk.json`));
    assert.ok(!stored.includes(Buffer.from(lost.objectPrefix)), 'the object names in the state are not readable without the key');
    assert.throws(() => JSON.parse(stored.toString('utf8')), SyntaxError);

    const second = await pruneRepository(repo, { policy: KEEP_ALL });
    assert.ok(second.volumes[0].orphans.every((o) => o.firstSeen !== null), 'the second prune remembers when it first saw them');
  });

  it('reset-status refuses a transition the status machine forbids (error → available), through the library and the CLI', async () => {
    const repo = track(await openRepository(repoDir, { create: true }));
    const failed = await backup(repo, 'disk');
    await repo.updateRecord(failed.id, () => ({ status: 'error', failReason: 'failed on purpose' }));

    await assert.rejects(resetStatus(repo, { backupId: failed.id, status: 'available' }), (err: VolumeBackupError) => {
      assert.equal(err.code, 'CONFLICT');
      assert.match(err.message, /is error and cannot become available/);
      return true;
    });
    const cli = await runCli(['reset-status', '--repo', repoDir, '--backup', failed.id, '--status', 'available']);
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stderr, /is error and cannot become available/);
    assert.equal((await repo.getRecord(failed.id)).status, 'error');
  });

  it('a backend written without any retry code gets retries: backup and restore through a store whose every first attempt fails', async () => {
    const store = new FlakyMemoryDriver();
    const repo = track(await openRepositoryIn(store, { create: true }));
    const record = await backup(repo, 'disk');
    const target = path.join(dir, 'restored.img');
    await restoreBackup(repo, { backupId: record.id, target });
    assert.equal(await sha256File(target), await sha256File(img));
    assert.ok(store.failures > 10, `failures injected: ${store.failures}`);

    // What the backend says retrying cannot fix fails at once.
    store.permanent = true;
    const before = store.failures;
    await assert.rejects(repo.listObjects('volume_'), /connection reset/);
    assert.equal(store.failures - before, 1);

    // Applied once: a driver that has the layer is not wrapped again (the attempts would multiply).
    const wrapped = withRetries(store);
    assert.equal(withRetries(wrapped), wrapped);
    const made = createDriver({ backend: 'posix', path: repoDir });
    assert.equal(withRetries(made), made, 'createDriver applies the layer itself');
  });
});

/**
 * A third party's backend, the smallest there is: objects in a Map, Cinder's names, no retries of its own. The first
 * attempt of every operation on a name fails as a dropped connection does.
 */
class FlakyMemoryDriver extends CinderNaming implements Driver {
  readonly kind = 'flaky-memory';
  readonly location = 'memory:flaky';
  readonly conditionalWrites = true;
  failures = 0;
  /** Say that no error is worth another attempt. */
  permanent = false;
  private readonly objects = new Map<string, { data: Buffer; etag: string }>();
  private readonly tried = new Set<string>();
  private version = 0;

  transientReason(err: unknown): string | null {
    return !this.permanent && (err as { code?: string }).code === 'ECONNRESET' ? 'connection reset' : null;
  }

  private flaky(op: string, name: string): void {
    const key = `${op} ${name}`;
    if (this.permanent || !this.tried.has(key)) {
      this.tried.add(key);
      this.failures++;
      throw Object.assign(new Error(`connection reset during ${key}`), { code: 'ECONNRESET' });
    }
  }

  async putContainer(): Promise<void> {}
  async listEntries(_c: string, prefix: string): Promise<ObjectEntry[]> {
    this.flaky('list', prefix);
    return [...this.objects].filter(([n]) => n.startsWith(prefix)).map(([name, o]) => ({ name, size: o.data.length }));
  }
  async readObject(_c: string, name: string): Promise<StoredObject> {
    this.flaky('read', name);
    const o = this.objects.get(name);
    if (!o) throw new ObjectNotFoundError('', name);
    return { data: Buffer.from(o.data), etag: o.etag };
  }
  async writeObject(_c: string, name: string, data: Buffer, _o?: ObjectOptions): Promise<string> {
    this.flaky('write', name);
    return this.store(name, data);
  }
  async deleteObject(_c: string, name: string): Promise<void> {
    this.flaky('delete', name);
    this.objects.delete(name);
  }
  async putIfAbsent(_c: string, name: string, data: Buffer): Promise<string> {
    this.flaky('create', name);
    if (this.objects.has(name)) throw new PreconditionFailedError(name, `object ${name} already exists`);
    return this.store(name, data);
  }
  async replaceIfMatch(_c: string, name: string, data: Buffer, etag: string): Promise<string> {
    this.flaky(`replace ${etag}`, name);
    if (this.objects.get(name)?.etag !== etag) throw new PreconditionFailedError(name);
    return this.store(name, data);
  }
  private store(name: string, data: Buffer): string {
    const etag = `v${++this.version}`;
    this.objects.set(name, { data: Buffer.from(data), etag });
    return etag;
  }
}
