/**
 * Encrypted repositories: what is stored holds none of the volume's plaintext nor its block hashes;
 * restores work with the passphrase; without it, or with a wrong one, everything is refused before a
 * byte is read, written or restored; swapped, moved, altered objects and an edited repository.json fail.
 */
import { strict as assert } from 'assert';
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import {
  Repository, VolumeBackupError, createBackup, deleteBackup, initRepository, listBackups, openRepository, restoreBackup,
} from '../lib';
import { AesGcmCodec, ENCRYPTION_OVERHEAD, makeCodecFor } from '../lib/codec/encryption';
import { expectError } from './helpers/assert';
import { cliEnv, runCli } from './helpers/cli';
import { listFiles, makeImage, scatterWrites, sha256File, tempDir } from './helpers/volumes';

const KiB = 1024;
const MiB = 1024 * KiB;
const SMALL = { chunkSize: 64 * KiB, blockSize: 4 * KiB };
/** The cheapest scrypt the codec accepts: these tests are about the format, not the KDF's cost. */
const FAST_KDF = { N: 2 ** 14, r: 8, p: 1 };
const PASSPHRASE = 'correct horse battery staple';
const MARKER = 'CONFIDENTIAL-PAYROLL-RECORD-7f3a9c';

/** A volume with text, random and zero regions plus a distinctive marker written every 16 KiB. */
async function makeSecretVolume(file: string, size: number, seed: number): Promise<void> {
  await makeImage(file, size, seed);
  const handle = await fs.open(file, 'r+');
  try {
    for (let off = 512; off + MARKER.length < size; off += 16 * KiB) await handle.write(MARKER, off);
  } finally {
    await handle.close();
  }
}

/** Needles a leak would show: the marker, windows of the volume's non-zero bytes, block hashes (raw and hex). */
async function needlesOf(file: string, blockSize: number): Promise<{ label: string; bytes: Buffer }[]> {
  const data = await fs.readFile(file);
  const needles: { label: string; bytes: Buffer }[] = [{ label: 'marker', bytes: Buffer.from(MARKER) }];
  const blocks = Math.ceil(data.length / blockSize);
  for (let b = 0; b < blocks; b += 7) {
    const block = data.subarray(b * blockSize, Math.min((b + 1) * blockSize, data.length));
    if (block.every((x) => x === 0)) continue;
    const digest = createHash('sha256').update(block).digest();
    needles.push({ label: `block ${b} hash`, bytes: digest }, { label: `block ${b} hash (hex)`, bytes: Buffer.from(digest.toString('hex')) });
    const window = Buffer.from(block.subarray(1000, 1032));
    if (window.some((x) => x !== 0)) needles.push({ label: `block ${b} bytes 1000..1032`, bytes: window });
  }
  return needles;
}

/** Every needle found in any file under dir, as "needle in file". */
async function leaks(dir: string, needles: { label: string; bytes: Buffer }[]): Promise<string[]> {
  const found: string[] = [];
  for (const rel of await listFiles(dir)) {
    const content = await fs.readFile(path.join(dir, rel));
    for (const n of needles) if (content.includes(n.bytes)) found.push(`${n.label} in ${rel}`);
  }
  return found;
}

describe('encryption', function () {
  this.timeout(120_000);
  let dir: string;
  let repoDir: string;
  let repo: Repository;

  beforeEach(async () => {
    dir = await tempDir('encryption');
    repoDir = path.join(dir, 'repo');
    repo = await initRepository(repoDir, { encrypt: true, passphrase: PASSPHRASE, kdf: FAST_KDF });
  });
  afterEach(async () => {
    await repo.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('stores none of the plaintext or block hashes; full and incremental restore byte-identical with the key', async () => {
    const img = path.join(dir, 'disk.img');
    await makeSecretVolume(img, 3 * MiB + 777, 5);
    const full = await createBackup(repo, { volume: img, volumeId: 'secret', ...SMALL, compression: 'none' });
    const shaFull = await sha256File(img);
    const needles = await needlesOf(img, SMALL.blockSize);
    await scatterWrites(img, 0.05, 9);
    const incr = await createBackup(repo, { volume: img, volumeId: 'secret', mode: 'incremental' });
    const shaIncr = await sha256File(img);
    needles.push(...(await needlesOf(img, SMALL.blockSize)));
    assert.ok(needles.length > 300, `enough needles (${needles.length})`);

    // The repository states it is encrypted, and so do its records.
    const config = JSON.parse(await fs.readFile(path.join(repoDir, 'repository.json'), 'utf8'));
    assert.equal(config.encryption.algorithm, 'aes-256-gcm');
    assert.equal(config.encryption.kdf, 'scrypt');
    assert.ok(full.encrypted && incr.encrypted);
    // Incrementals still work: only the changed blocks were stored.
    assert.ok(incr.storedBytes < full.storedBytes / 3, `incremental stored ${incr.storedBytes} of full ${full.storedBytes}`);

    assert.deepEqual(await leaks(repoDir, needles), []);
    // Every data, metadata and hash-list object is in the sealed format.
    const objects = (await listFiles(repoDir)).filter((f) => f.startsWith('volume_'));
    assert.equal(objects.length, full.objectCount + incr.objectCount);
    for (const f of objects) assert.equal((await fs.readFile(path.join(repoDir, f))).subarray(0, 4).toString(), 'VBE1', f);

    for (const [rec, sha] of [[full, shaFull], [incr, shaIncr]] as const) {
      const target = path.join(dir, `${rec.kind}.img`);
      await restoreBackup(repo, { backupId: rec.id, target });
      assert.equal(await sha256File(target), sha, `${rec.kind} restore`);
    }
  });

  it('the leak check finds the plaintext in an unencrypted repository (it can fail)', async () => {
    const img = path.join(dir, 'disk.img');
    await makeSecretVolume(img, MiB, 5);
    const plainDir = path.join(dir, 'plain');
    const plain = await openRepository(plainDir, { create: true });
    try {
      await createBackup(plain, { volume: img, volumeId: 'secret', ...SMALL, compression: 'none' });
    } finally {
      await plain.close();
    }
    const found = await leaks(plainDir, await needlesOf(img, SMALL.blockSize));
    assert.ok(found.some((f) => f.startsWith('marker in volume_')), found.join('\n'));
    assert.ok(found.some((f) => /hash in .*_segment-\d{6}$/.test(f)), 'raw block hashes are visible in a plain segment object');
  });

  it('refuses without a passphrase and with a wrong one, before anything is read, written or restored', async () => {
    const img = path.join(dir, 'disk.img');
    await makeSecretVolume(img, MiB, 6);
    const rec = await createBackup(repo, { volume: img, volumeId: 'v', ...SMALL });
    const before = await snapshotTree(repoDir);

    await expectError(openRepository(repoDir), 'ENCRYPTION', /encrypted.*passphrase/);
    await expectError(openRepository(repoDir, { passphrase: 'wrong' }), 'ENCRYPTION', /wrong passphrase/);
    await expectError(openRepository(repoDir, { passphrase: 'wrong', create: true }), 'ENCRYPTION', /wrong passphrase/);

    // Through the CLI: a new target is not created, an existing one is left untouched.
    const fresh = path.join(dir, 'fresh.img');
    const existing = path.join(dir, 'existing.img');
    await fs.writeFile(existing, Buffer.alloc(2 * MiB, 0x5a));
    const existingSha = await sha256File(existing);
    for (const env of [cliEnv(), cliEnv({ VOLUME_BACKUP_PASSPHRASE: 'not it' })]) {
      for (const target of [fresh, existing]) {
        const r = await runCli(['restore', '--repo', repoDir, '--backup', rec.id, '--target', target], { env });
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, env.VOLUME_BACKUP_PASSPHRASE ? /wrong passphrase/ : /encrypted.*passphrase/);
        assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
      }
      const b = await runCli(['create', '--repo', repoDir, '--volume', img, '--volume-id', 'v'], { env });
      assert.equal(b.code, 1, b.stderr);
      const d = await runCli(['delete', '--repo', repoDir, '--backup', rec.id], { env });
      assert.equal(d.code, 1, d.stderr);
    }
    await assert.rejects(fs.stat(fresh), 'no target was created');
    assert.equal(await sha256File(existing), existingSha, 'the existing target is unchanged');
    assert.deepEqual(await snapshotTree(repoDir), before, 'the repository is unchanged');

    // With the passphrase (from a file) it restores.
    const keyFile = path.join(dir, 'key');
    await fs.writeFile(keyFile, PASSPHRASE + '\n', { mode: 0o600 });
    const ok = await runCli(['restore', '--repo', repoDir, '--backup', rec.id, '--target', fresh, '--passphrase-file', keyFile]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await sha256File(fresh), await sha256File(img));
  });

  it('detects objects that were swapped, moved, altered or replaced by unencrypted bytes, naming them', async () => {
    const img = path.join(dir, 'disk.img');
    await makeSecretVolume(img, MiB, 7);
    const rec = await createBackup(repo, { volume: img, volumeId: 'v', ...SMALL, compression: 'none' });
    const files = (await listFiles(repoDir)).filter((f) => f.includes(`backup_${rec.id}-`));
    const [a, b] = [path.join(repoDir, files[1]), path.join(repoDir, files[2])];
    const [aData, bData] = [await fs.readFile(a), await fs.readFile(b)];
    await fs.writeFile(a, bData);
    await fs.writeFile(b, aData);
    const err = await expectError(restoreBackup(repo, { backupId: rec.id, verifyOnly: true }), 'CORRUPT', new RegExp(path.basename(files[1]) + '|' + path.basename(files[2])));
    assert.match(err.message, new RegExp(rec.id));
    await fs.writeFile(a, aData);
    await fs.writeFile(b, bData);
    await restoreBackup(repo, { backupId: rec.id, verifyOnly: true });

    // The codec itself: the object name is authenticated, so a moved object does not open even when
    // its digest in the metadata were made to match.
    const codec = repo.codec;
    const sealed = codec.seal(Buffer.from('block data'), 'volume_v/x/backup_1-00001');
    assert.equal(codec.open(sealed, 'volume_v/x/backup_1-00001').toString(), 'block data');
    assert.throws(() => codec.open(sealed, 'volume_v/x/backup_1-00002'), /authentication failed/);
    for (let i = 0; i < sealed.length; i++) {
      const flipped = Buffer.from(sealed);
      flipped[i] ^= 0x10;
      assert.throws(() => codec.open(flipped, 'volume_v/x/backup_1-00001'), /authentication failed|not an encrypted object/, `flip at ${i}`);
    }
    assert.throws(() => codec.open(sealed.subarray(0, sealed.length - 1), 'volume_v/x/backup_1-00001'), /authentication failed/);
    assert.throws(() => codec.open(sealed.subarray(0, ENCRYPTION_OVERHEAD - 1), 'volume_v/x/backup_1-00001'), /too short/);
    assert.throws(() => codec.open(Buffer.from('{"plain":"json", "more": "bytes than the overhead"}'), 'n'), /not an encrypted object/);
    // Two seals of the same bytes differ (fresh nonce), so equal blocks are not visible as equal objects.
    assert.notDeepEqual(codec.seal(Buffer.alloc(64), 'n'), codec.seal(Buffer.alloc(64), 'n'));
    assert.ok(codec instanceof AesGcmCodec);
  });

  it('an edited repository.json (salt, parameters, id, wrapped key) fails clearly; hostile parameters are refused', async () => {
    await repo.close();
    const file = path.join(repoDir, 'repository.json');
    const original = JSON.parse(await fs.readFile(file, 'utf8'));
    const edits: [string, (c: any) => void, RegExp][] = [
      ['salt', (c) => (c.encryption.salt = Buffer.alloc(32, 1).toString('base64')), /wrong passphrase.*altered/],
      ['N', (c) => (c.encryption.N = 2 ** 15), /wrong passphrase.*altered/],
      ['id', (c) => (c.id = '00000000-0000-4000-8000-000000000000'), /wrong passphrase.*altered/],
      ['wrapped key', (c) => (c.encryption.wrappedKey = Buffer.alloc(60, 7).toString('base64')), /damaged|altered/],
      ['huge N', (c) => (c.encryption.N = 2 ** 40), /unsupported scrypt parameters/],
      ['N not a power of two', (c) => (c.encryption.N = 20000), /unsupported scrypt parameters/],
      ['huge r', (c) => (c.encryption.r = 100000), /unsupported scrypt parameters/],
      ['weak N', (c) => (c.encryption.N = 2), /unsupported scrypt parameters/],
    ];
    for (const [label, edit, pattern] of edits) {
      const copy = structuredClone(original);
      edit(copy);
      await fs.writeFile(file, JSON.stringify(copy));
      const started = Date.now();
      await assert.rejects(openRepository(repoDir, { passphrase: PASSPHRASE }), (err: VolumeBackupError) => {
        assert.match(err.message, pattern, label);
        assert.ok(!err.message.includes(PASSPHRASE), 'the passphrase is not in the message');
        return true;
      });
      assert.ok(Date.now() - started < 20_000, `${label}: refused without a long computation`);
    }
    await fs.writeFile(file, JSON.stringify(original));
    repo = await openRepository(repoDir, { passphrase: PASSPHRASE });
    assert.ok(repo.encrypted);
  });

  it('CLI: init --encrypt with the default KDF, every later command needs the passphrase, which never shows', async () => {
    const r2 = path.join(dir, 'cli-repo');
    const img = path.join(dir, 'disk.img');
    await makeSecretVolume(img, 512 * KiB, 8);
    const secret = 'Sup3r-Secr3t-Passphrase-For-Grep';
    const env = cliEnv({ VOLUME_BACKUP_PASSPHRASE: secret });

    const noKey = await runCli(['init', '--repo', r2, '--encrypt']);
    assert.equal(noKey.code, 2, noKey.stderr);
    assert.match(noKey.stderr, /--encrypt needs a passphrase/);
    const asArgument = await runCli(['init', '--repo', r2, '--encrypt', '--passphrase', secret]);
    assert.equal(asArgument.code, 2, 'a passphrase is never taken from the command line');
    await assert.rejects(fs.stat(r2), 'nothing was made');

    const outputs: string[] = [];
    const run = async (args: string[], expected = 0, e = env) => {
      const r = await runCli(args, { env: e });
      outputs.push(r.stdout, r.stderr);
      assert.equal(r.code, expected, `${args.join(' ')}: ${r.stderr}`);
      return r;
    };
    await run(['init', '--repo', r2, '--encrypt']);
    const again = await run(['init', '--repo', r2, '--encrypt'], 1);
    assert.match(again.stderr, /already a volume-backup repository/);
    const config = JSON.parse(await fs.readFile(path.join(r2, 'repository.json'), 'utf8'));
    assert.equal(config.encryption.N, 2 ** 17, 'the default scrypt cost is 128 MiB');
    const created = JSON.parse((await run(['create', '--repo', r2, '--volume', img, '--volume-id', 'v', '--json'])).stdout);
    assert.equal(created.encrypted, true);
    await run(['list', '--repo', r2]);
    await run(['show', '--repo', r2, '--backup', created.id]);
    await run(['restore', '--repo', r2, '--backup', created.id, '--verify-only']);
    await run(['export', '--repo', r2, '--backup', created.id]);
    for (const cmd of [['list', '--repo', r2], ['show', '--repo', r2, '--backup', created.id], ['restore', '--repo', r2, '--backup', created.id, '--verify-only']]) {
      const r = await run(cmd, 1, cliEnv());
      assert.match(r.stderr, /encrypted/);
    }
    await run(['delete', '--repo', r2, '--backup', created.id]);
    const everything = outputs.join('\n') + (await Promise.all((await listFiles(r2)).map((f) => fs.readFile(path.join(r2, f), 'latin1')))).join('\n');
    assert.ok(!everything.includes(secret), 'the passphrase appears in no output and no stored file');
  });

  it('a repository made on first use with a passphrase is encrypted; an unencrypted repository\'s codec is the identity', async () => {
    const auto = path.join(dir, 'auto');
    const r = await openRepository(auto, { create: true, passphrase: PASSPHRASE });
    try {
      assert.ok(r.encrypted);
      const img = path.join(dir, 'disk.img');
      await makeSecretVolume(img, 256 * KiB, 9);
      const rec = await createBackup(r, { volume: img, volumeId: 'v', ...SMALL });
      assert.ok(rec.encrypted);
      assert.equal((await listBackups(r)).length, 1);
      await deleteBackup(r, { backupId: rec.id });
    } finally {
      await r.close();
    }
    await expectError(openRepository(auto), 'ENCRYPTION', /encrypted/);
    // makeCodecFor with an unencrypted config is the identity, whatever passphrase.
    const plain = await makeCodecFor({ ...repo.config, encryption: null }, 'anything');
    assert.equal(plain.encrypted, false);
    // A passphrase given for an unencrypted repository is not silently taken as "encrypted".
    const plainDir = path.join(dir, 'plain');
    await (await initRepository(plainDir)).close();
    const r2 = await runCli(['list', '--repo', plainDir], { env: cliEnv({ VOLUME_BACKUP_PASSPHRASE: PASSPHRASE }) });
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stderr, /warning: a passphrase was given, but the repository .* is not encrypted/);
  });
});

/** Every file under dir with its SHA-256: to prove nothing changed. */
async function snapshotTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of await listFiles(dir)) out[f] = await sha256File(path.join(dir, f));
  return out;
}
