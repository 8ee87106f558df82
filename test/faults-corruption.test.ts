/**
 * Corruption: bit flips, truncations, zeroed, extended, deleted and swapped objects; edited metadata
 * and segment objects (also with the digests that name them "fixed up" to match); records edited to point at other
 * objects, another parent, other sizes. In a plain and in an encrypted repository, for each one:
 * - `verify --read-data` reports a problem that names the object or the backup;
 * - restoring the affected backup fails with an error naming the object or the backup, and a new
 *   target file is not left behind (where the damage may lie only in what that restore does not write —
 *   an object's forged digest, an old object whose blocks newer backups partly replaced — the restore
 *   may instead succeed, byte-identical: it checks the content it writes, verify checks every object);
 * - every backup restores either byte-identical or with an error: nothing is ever restored wrong.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { BackupRecord, VolumeBackupError, createBackup, initRepository, openRepository, restoreBackup, verifyRepository } from '../lib';
import { sha256 } from '../lib/repository/format';
import { tryCase } from './helpers/fault-report';
import { runCli, cliEnv } from './helpers/cli';
import { listFiles, makeImage, scatterWrites, sha256File, tempDir } from './helpers/volumes';

const KiB = 1024;
const MiB = 1024 * KiB;
const SIZES = { chunkSize: 64 * KiB, blockSize: 4 * KiB };
const PASSPHRASE = 'corruption suite passphrase';
const FAST_KDF = { N: 2 ** 14, r: 8, p: 1 };

interface Fixture {
  dir: string;
  encrypted: boolean;
  backups: Record<'F0' | 'I1' | 'I2', BackupRecord>;
  shas: Map<string, string>;
}

type Mutate = (repoDir: string, fx: Fixture) => Promise<void>;
interface Corruption {
  name: string;
  /** The backup whose restore must fail. */
  victim: keyof Fixture['backups'];
  /** What the errors must name (any of): an object's base name, a backup id, a record's path. */
  names: (fx: Fixture, repoDir: string) => Promise<string[]>;
  mutate: Mutate;
  /** The damage may lie only in what the victim's restore does not write: it may succeed, with the exact bytes. */
  bytesIntact?: boolean;
}

async function objectsOf(repoDir: string, record: BackupRecord): Promise<string[]> {
  const dir = path.join(repoDir, path.dirname(record.objectPrefix));
  const base = path.basename(record.objectPrefix);
  return (await fs.readdir(dir)).filter((f) => f.startsWith(base + '-')).sort().map((f) => path.join(dir, f));
}
const metadataFile = (repoDir: string, r: BackupRecord) => path.join(repoDir, `${r.objectPrefix}_metadata`);
const segmentFile = (repoDir: string, r: BackupRecord) => path.join(repoDir, `${r.objectPrefix}_segment-000000`);
const recordFile = (repoDir: string, r: BackupRecord) => path.join(repoDir, `records/${r.volumeId}/${r.id}.json`);

/** Every file of the repository and its content, as one digest: what a corruption left behind. */
async function treeDigest(dir: string): Promise<string> {
  const files = (await listFiles(dir)).sort();
  const parts = await Promise.all(files.map(async (f) => `${f}\0${sha256(await fs.readFile(path.join(dir, f)))}`));
  return sha256(Buffer.from(parts.join('\n')));
}

async function edit(file: string, change: (data: Buffer) => Buffer): Promise<void> {
  await fs.writeFile(file, change(await fs.readFile(file)));
}
async function editJson(file: string, change: (json: any) => void): Promise<void> {
  const json = JSON.parse(await fs.readFile(file, 'utf8'));
  change(json);
  await fs.writeFile(file, JSON.stringify(json, null, 2));
}
function flip(at: (len: number) => number): (data: Buffer) => Buffer {
  return (data) => {
    const out = Buffer.from(data);
    out[at(out.length)] ^= 0x04;
    return out;
  };
}

/** Corruptions of one stored object (data, metadata or segment), by a picker of the file. */
function objectCorruptions(label: string, victim: keyof Fixture['backups'], pick: (repoDir: string, fx: Fixture) => Promise<string>, bytesIntact = false): Corruption[] {
  const cases: [string, (file: string) => Promise<void>][] = [
    ['bit flip at the start', (f) => edit(f, flip(() => 0))],
    ['bit flip in the middle', (f) => edit(f, flip((n) => n >> 1))],
    ['bit flip in the last byte', (f) => edit(f, flip((n) => n - 1))],
    ['truncated to half', (f) => edit(f, (d) => d.subarray(0, d.length >> 1))],
    ['one byte cut off', (f) => edit(f, (d) => d.subarray(0, d.length - 1))],
    ['emptied', (f) => fs.writeFile(f, Buffer.alloc(0))],
    ['overwritten with zeros', (f) => edit(f, (d) => Buffer.alloc(d.length))],
    ['bytes appended', (f) => edit(f, (d) => Buffer.concat([d, Buffer.from('tail')]))],
    ['deleted', (f) => fs.rm(f)],
  ];
  return cases.map(([how, mutate]) => ({
    name: `${label}: ${how}`,
    victim,
    // Only where the bytes stay readable: a missing, emptied or cut object always fails the restore.
    bytesIntact: bytesIntact && how.startsWith('bit flip'),
    // The object itself, or the backup that owns it.
    names: async (fx, repoDir) => {
      const file = await pick(repoDir, fx);
      const owner = Object.values(fx.backups).find((b) => path.basename(file).startsWith(path.basename(b.objectPrefix)));
      return [path.basename(file), owner!.id];
    },
    mutate: async (repoDir, fx) => mutate(await pick(repoDir, fx)),
  }));
}

function corruptions(): Corruption[] {
  const dataObject = (which: 'first' | 'middle' | 'last', b: keyof Fixture['backups']) => async (repoDir: string, fx: Fixture) => {
    const all = await objectsOf(repoDir, fx.backups[b]);
    return all[which === 'first' ? 0 : which === 'last' ? all.length - 1 : all.length >> 1];
  };
  const list: Corruption[] = [
    // I2 uses only the blocks of F0's object that I1 and I2 did not replace.
    ...objectCorruptions('first data object of the full backup', 'I2', dataObject('first', 'F0'), true),
    ...objectCorruptions('middle data object of the newest incremental', 'I2', dataObject('middle', 'I2')),
    ...objectCorruptions('last data object of the middle incremental', 'I1', dataObject('last', 'I1')),
    ...objectCorruptions('segment object of the newest incremental', 'I2', async (d, fx) => segmentFile(d, fx.backups.I2)),
    ...objectCorruptions('segment object of the full backup', 'F0', async (d, fx) => segmentFile(d, fx.backups.F0)),
    ...objectCorruptions('metadata of the full backup', 'F0', async (d, fx) => metadataFile(d, fx.backups.F0)),
  ];
  const swap = (b: keyof Fixture['backups'], other?: keyof Fixture['backups']): Mutate => async (repoDir, fx) => {
    const mine = await objectsOf(repoDir, fx.backups[b]);
    const theirs = other ? await objectsOf(repoDir, fx.backups[other]) : mine;
    const [x, y] = [mine[0], other ? theirs[0] : mine[1]];
    const [dx, dy] = [await fs.readFile(x), await fs.readFile(y)];
    await fs.writeFile(x, dy);
    if (!other) await fs.writeFile(y, dx);
  };
  /** Edit the metadata and fix up the record's digest to match, as a careful forger would. */
  const consistentMetadataEdit = (b: keyof Fixture['backups'], change: (m: any) => void): Mutate => async (repoDir, fx) => {
    const file = metadataFile(repoDir, fx.backups[b]);
    if (fx.encrypted) {
      // Without the key the metadata cannot be rewritten; a forger can only replace it with other bytes.
      await fs.writeFile(file, Buffer.concat([Buffer.from('VBE1'), Buffer.alloc(200, 1)]));
    } else {
      const m = JSON.parse(await fs.readFile(file, 'utf8'));
      change(m);
      await fs.writeFile(file, JSON.stringify(m));
    }
    const digest = sha256(await fs.readFile(file));
    await editJson(recordFile(repoDir, fx.backups[b]), (r) => (r.metadataSha256 = digest));
  };
  /**
   * Edit a backup's segment object (its JSON entries, or its hashes) and fix up its digest and length in
   * the metadata and the metadata's digest in the record, as a careful forger would.
   */
  const consistentSegmentEdit = (b: keyof Fixture['backups'], change: (json: any, hashes: Buffer) => void): Mutate => async (repoDir, fx) => {
    const file = segmentFile(repoDir, fx.backups[b]);
    if (fx.encrypted) {
      // Without the key neither can be rewritten: the segment can only be replaced with other bytes.
      await fs.writeFile(file, Buffer.concat([Buffer.from('VBE1'), Buffer.alloc(200, 1)]));
    } else {
      const data = await fs.readFile(file);
      const end = 4 + data.readUInt32BE(0);
      const json = JSON.parse(data.subarray(4, end).toString('utf8'));
      const hashes = Buffer.from(data.subarray(end));
      change(json, hashes);
      const text = Buffer.from(JSON.stringify(json));
      const head = Buffer.alloc(4);
      head.writeUInt32BE(text.length);
      await fs.writeFile(file, Buffer.concat([head, text, hashes]));
    }
    const stored = await fs.readFile(file);
    await consistentMetadataEdit(b, (m) => { m.segments[0].sha256 = sha256(stored); m.segments[0].length = stored.length; })(repoDir, fx);
  };
  /** Remove a backup's segment object and its entry in the metadata; the record's digest fixed up or removed. */
  const dropSegment = (b: keyof Fixture['backups'], digest: 'fixed' | 'removed'): Mutate => async (repoDir, fx) => {
    await consistentMetadataEdit(b, (m) => (m.segments = []))(repoDir, fx);
    await fs.rm(segmentFile(repoDir, fx.backups[b]));
    if (digest === 'removed') await editJson(recordFile(repoDir, fx.backups[b]), (r) => (r.metadataSha256 = null));
  };
  const byBackup = (b: keyof Fixture['backups']) => async (fx: Fixture) => [fx.backups[b].id];
  list.push(
    { name: 'two data objects of one backup swapped', victim: 'I2', names: byBackup('I2'), mutate: swap('I2') },
    { name: "a data object replaced by another backup's object", victim: 'I1', names: byBackup('I1'), mutate: swap('I1', 'F0') },
    { name: 'segment: an extent moved (digests fixed up)', victim: 'F0', names: byBackup('F0'), mutate: consistentSegmentEdit('F0', (s) => (s.chunks[1].object.extents[0][0] += 4096)) },
    { name: 'segment: an object dropped (digests fixed up)', victim: 'F0', names: byBackup('F0'), mutate: consistentSegmentEdit('F0', (s) => (s.chunks[1].object = null)) },
    { name: "segment: an object's digest changed (digests fixed up)", victim: 'I2', names: byBackup('I2'), mutate: consistentSegmentEdit('I2', (s) => (s.chunks[0].object.sha256 = '0'.repeat(64))), bytesIntact: true },
    { name: 'segment: a data extent declared zeros (digests fixed up)', victim: 'F0', names: byBackup('F0'), mutate: consistentSegmentEdit('F0', (s) => { s.chunks[0].zeroExtents.push(s.chunks[0].object.extents[0]); s.chunks[0].object = null; }) },
    { name: 'segment: compression changed (digests fixed up)', victim: 'F0', names: byBackup('F0'), mutate: consistentSegmentEdit('F0', (s) => { for (const c of s.chunks) if (c.object) c.object.compression = c.object.compression === 'none' ? 'zstd' : 'none'; }) },
    { name: 'segment: a chunk entry moved to another chunk (digests fixed up)', victim: 'I1', names: byBackup('I1'), mutate: consistentSegmentEdit('I1', (s) => (s.chunks[0].chunk = 16)) },
    // A forger pointing a backup at another backup's objects (which a delete of it would then remove).
    { name: "segment: an entry names another backup's data object (digests fixed up)", victim: 'I2', names: byBackup('I2'), mutate: async (d, fx) => consistentSegmentEdit('I2', (s) => (s.chunks[0].object.name = s.chunks[0].object.name.replace(fx.backups.I2.id, fx.backups.I1.id)))(d, fx) },
    { name: "metadata: lists another backup's segment (record digest fixed up)", victim: 'I2', names: byBackup('I2'), mutate: async (d, fx) => consistentMetadataEdit('I2', (m) => (m.segments[0].name = m.segments[0].name.replace(fx.backups.I2.id, fx.backups.I1.id)))(d, fx) },
    // A segment dropped with its object and its entry in the metadata: the full would restore its chunks as zeros.
    { name: 'metadata: its segment dropped with the segment object (record digest fixed up)', victim: 'F0', names: byBackup('F0'), mutate: dropSegment('F0', 'fixed') },
    { name: 'metadata: its segment dropped with the segment object (record digest removed)', victim: 'F0', names: byBackup('F0'), mutate: dropSegment('F0', 'removed') },
    { name: 'segment: block hashes edited (digests fixed up)', victim: 'I2', names: byBackup('I2'), mutate: consistentSegmentEdit('I2', (_s, hashes) => (hashes[40] ^= 0x04)) },
    { name: "segment replaced by another backup's (digests fixed up)", victim: 'I2', names: byBackup('I2'), mutate: async (repoDir, fx) => { await fs.copyFile(segmentFile(repoDir, fx.backups.I1), segmentFile(repoDir, fx.backups.I2)); await consistentSegmentEdit('I2', () => undefined)(repoDir, fx); } },
    { name: "record: objectPrefix of another backup", victim: 'I1', names: byBackup('I1'), mutate: async (d, fx) => editJson(recordFile(d, fx.backups.I1), (r) => (r.objectPrefix = fx.backups.I2.objectPrefix)) },
    { name: 'record: objectPrefix and metadata digest of another backup', victim: 'I1', names: byBackup('I1'), mutate: async (d, fx) => editJson(recordFile(d, fx.backups.I1), (r) => { r.objectPrefix = fx.backups.I2.objectPrefix; r.metadataSha256 = fx.backups.I2.metadataSha256; }) },
    { name: 'record: metadata digest changed', victim: 'F0', names: byBackup('F0'), mutate: async (d, fx) => editJson(recordFile(d, fx.backups.F0), (r) => (r.metadataSha256 = 'f'.repeat(64))) },
    { name: 'record: parent changed to skip a link', victim: 'I2', names: byBackup('I2'), mutate: async (d, fx) => editJson(recordFile(d, fx.backups.I2), (r) => (r.parentId = fx.backups.F0.id)) },
    { name: 'record: an incremental relabelled full', victim: 'I2', names: byBackup('I2'), mutate: async (d, fx) => editJson(recordFile(d, fx.backups.I2), (r) => { r.kind = 'full'; r.parentId = null; }) },
    { name: 'record: size changed', victim: 'I1', names: byBackup('I1'), mutate: async (d, fx) => editJson(recordFile(d, fx.backups.I1), (r) => (r.size -= 4096)) },
    { name: 'record: chunk size changed', victim: 'F0', names: byBackup('F0'), mutate: async (d, fx) => editJson(recordFile(d, fx.backups.F0), (r) => (r.chunkSize *= 2)) },
    { name: 'record: id changed inside the file', victim: 'I1', names: async () => ['records/v/'], mutate: async (d, fx) => editJson(recordFile(d, fx.backups.I1), (r) => (r.id = fx.backups.F0.id)) },
    { name: 'record: not JSON', victim: 'I1', names: async () => ['records/v/'], mutate: async (d, fx) => fs.writeFile(recordFile(d, fx.backups.I1), '{"formatVersion": 1, "id": ') },
    { name: 'record of the parent deleted', victim: 'I2', names: byBackup('I2'), mutate: async (d, fx) => fs.rm(recordFile(d, fx.backups.I1)) },
  );
  return list;
}

async function makeFixture(base: string, encrypted: boolean): Promise<Fixture> {
  const dir = path.join(base, encrypted ? 'encrypted' : 'plain');
  await fs.mkdir(base, { recursive: true });
  const vol = path.join(base, `vol-${encrypted}.img`);
  await makeImage(vol, MiB + 5000, 77, 64 * KiB);
  const repo = await initRepository(dir, encrypted ? { encrypt: true, passphrase: PASSPHRASE, kdf: FAST_KDF } : {});
  const shas = new Map<string, string>();
  try {
    const F0 = await createBackup(repo, { volume: vol, volumeId: 'v', ...SIZES, compression: 'zstd' });
    shas.set(F0.id, await sha256File(vol));
    await scatterWrites(vol, 0.2, 78, 8 * KiB);
    const I1 = await createBackup(repo, { volume: vol, volumeId: 'v', mode: 'incremental' });
    shas.set(I1.id, await sha256File(vol));
    await scatterWrites(vol, 0.2, 79, 8 * KiB);
    const I2 = await createBackup(repo, { volume: vol, volumeId: 'v', mode: 'incremental' });
    shas.set(I2.id, await sha256File(vol));
    return { dir, encrypted, backups: { F0, I1, I2 }, shas };
  } finally {
    await repo.close();
  }
}

describe('fault suite: corruption', function () {
  this.timeout(300_000);
  let base: string;

  before(async () => {
    base = await tempDir('corruption');
  });
  after(async () => {
    await fs.rm(base, { recursive: true, force: true });
  });

  for (const encrypted of [false, true]) {
    it(`${encrypted ? 'encrypted' : 'plain'} repository: every corruption is detected by verify and restore, and named; nothing restores wrong`, async () => {
      const fx = await makeFixture(base, encrypted);
      const failures: string[] = [];
      for (const c of corruptions()) {
        const work = path.join(base, 'work');
        await fs.rm(work, { recursive: true, force: true });
        await fs.cp(fx.dir, work, { recursive: true });
        const names = await c.names(fx, work);
        let damage = c.name;
        const failure = await tryCase('corruptions', encrypted ? 'encrypted repository' : 'plain repository', c.name, async () => {
          await c.mutate(work, fx);
          damage = await treeDigest(work);
          const repo = await openRepository(work, encrypted ? { passphrase: PASSPHRASE } : {});
          try {
            const verified = await verifyRepository(repo, { readData: true });
            assert.ok(!verified.ok, 'verify --read-data found nothing wrong');
            const text = verified.problems.map((p) => p.message).join('; ');
            assert.ok(names.some((n) => text.includes(n)), `verify does not name ${names.join(' or ')}: ${text}`);

            const victim = fx.backups[c.victim];
            const target = path.join(base, 'restored.img');
            await fs.rm(target, { force: true });
            try {
              await restoreBackup(repo, { backupId: victim.id, target });
              if (!c.bytesIntact) assert.fail(`restore of ${c.victim} succeeded`);
              assert.equal(await sha256File(target), fx.shas.get(victim.id), `restore of ${c.victim} succeeded with WRONG bytes`);
              await fs.rm(target);
            } catch (err) {
              if (err instanceof assert.AssertionError) throw err;
              assert.ok(err instanceof VolumeBackupError, `not a clear error: ${String(err)}`);
              assert.ok(names.some((n) => err.message.includes(n)), `the restore error does not name ${names.join(' or ')}: ${err.message}`);
            }
            await assert.rejects(fs.stat(target), 'a failed restore leaves no new target');

            // Nothing is ever restored wrong without an error.
            for (const b of Object.values(fx.backups)) {
              await fs.rm(target, { force: true });
              const ok = await restoreBackup(repo, { backupId: b.id, target }).then(() => true, () => false);
              if (ok) assert.equal(await sha256File(target), fx.shas.get(b.id), `backup ${b.id} restored WRONG without an error`);
            }
          } finally {
            await repo.close();
          }
          // Counted by the damage done: two corruptions that leave the same bytes are one (in an encrypted
          // repository every forged metadata edit is the same replacement).
        }, () => damage);
        if (failure) failures.push(failure);
      }
      assert.deepEqual(failures, []);
    });
  }

  it('CLI: verify --read-data exits 1 with the problem on stdout; restore exits 1 with one line naming the object', async () => {
    const fx = await makeFixture(path.join(base, 'cli'), false);
    const victim = (await objectsOf(fx.dir, fx.backups.I1))[0];
    await edit(victim, flip((n) => n >> 1));
    const env = cliEnv();
    const verify = await runCli(['verify', '--repo', fx.dir, '--read-data'], { env });
    assert.equal(verify.code, 1, verify.stdout + verify.stderr);
    assert.match(verify.stdout, new RegExp(`problem .*${path.basename(victim)}`));
    const restore = await runCli(['restore', '--repo', fx.dir, '--backup', fx.backups.I1.id, '--target', path.join(base, 'cli-out.img')], { env });
    assert.equal(restore.code, 1, restore.stdout + restore.stderr);
    assert.equal(restore.stderr.trim().split('\n').length, 1, restore.stderr);
    assert.match(restore.stderr, new RegExp(path.basename(victim)));
    await assert.rejects(fs.stat(path.join(base, 'cli-out.img')));
  });
});
