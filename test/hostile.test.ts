/**
 * Hostile input: every CLI command fed wrong types, huge values, negative sizes, "../" and absolute
 * paths in ids, volume ids, names and containers, malformed imported records; the library API (what
 * the nodes call) fed arbitrary values; name validation and the posix driver's path resolution checked
 * property-based (fast-check). Each input gets a clear error — exit code 1 or 2 and one line from the
 * CLI, a VolumeBackupError from the library, never a TypeError or a stack — nothing is created outside
 * the repository, and nothing is changed or overwritten that was not asked for.
 */
import { strict as assert } from 'assert';
import fc from 'fast-check';
import { promises as fs } from 'fs';
import * as path from 'path';
import { inspect } from 'util';
import { PassThrough } from 'stream';
import {
  BackupRecord, Repository, VolumeBackupError, checkBackupId, checkVolumeId, createBackup, deleteBackup, initRepository, openRepository,
  pruneRepository, restoreBackup, volumeIdForPath,
} from '../lib';
import { main } from '../lib/cli/main';
import { PosixDriver } from '../lib/drivers/posix';
import { checkHost, checkText } from '../lib/repository/names';
import { cliEnv } from './helpers/cli';
import { tally } from './helpers/fault-report';
import { makeImage, tempDir } from './helpers/volumes';

const KiB = 1024;

/** Strings built from the fragments that break path handling, plus arbitrary unicode and binary. */
const hostileString = fc.oneof(
  fc.array(fc.constantFrom('..', '.', '/', '\\', '\0', 'a', 'Z', '9', '-', '_', '%2e', '\u202e', 'é', ' ', '\n', ':', '~', '$(id)', 'C:'), { maxLength: 12 }).map((parts) => parts.join('')),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ maxLength: 300 }),
);

/** Everything under dir (files and directories) with each file's size, change time and inode: to prove nothing changed. */
async function treeState(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    const full = path.join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name);
    const st = await fs.lstat(full);
    out[path.relative(dir, full)] = entry.isDirectory() ? 'dir' : `${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}`;
  }
  return out;
}

function diffTrees(before: Record<string, string>, after: Record<string, string>): string[] {
  const changes: string[] = [];
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (before[k] !== after[k]) changes.push(`${k}: ${before[k] ? (after[k] ? 'changed' : 'removed') : 'created'}`);
  }
  return changes;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real CLI entry point in this process (fast): arguments, stdin, captured output. */
async function cli(args: string[], input = '', env: NodeJS.ProcessEnv = cliEnv()): Promise<Run> {
  const capture = () => {
    const s = new PassThrough();
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('utf8')));
    return { s, text: () => text };
  };
  const out = capture();
  const err = capture();
  const code = await main(args, { stdout: out.s, stderr: err.s, env, readStdin: async () => input });
  await new Promise((r) => setImmediate(r));
  return { code, stdout: out.text(), stderr: err.text() };
}

/** What an input is, exactly (util.inspect tells NaN from null and -0 from 0, and shows symbols). */
function inputKey(value: unknown): string {
  return inspect(value, { depth: Infinity, maxArrayLength: Infinity, maxStringLength: Infinity, breakLength: Infinity });
}

describe('hostile input', function () {
  this.timeout(300_000);
  let sandbox: string;
  let repoDir: string;
  let outside: string;
  let volume: string;
  let backup: BackupRecord;
  const cwd = process.cwd();

  before(async () => {
    sandbox = await tempDir('hostile');
    repoDir = path.join(sandbox, 'repo');
    outside = path.join(sandbox, 'outside');
    await fs.mkdir(outside);
    await fs.writeFile(path.join(outside, 'keep.txt'), 'must survive');
    await fs.mkdir(path.join(sandbox, 'cwd'));
    volume = path.join(sandbox, 'vol.img');
    await makeImage(volume, 256 * KiB, 3, 64 * KiB);
    const repo = await initRepository(repoDir);
    try {
      backup = await createBackup(repo, { volume, volumeId: 'v', chunkSize: 64 * KiB, blockSize: 4 * KiB });
    } finally {
      await repo.close();
    }
    // Relative hostile paths resolve here, inside the sandbox.
    process.chdir(path.join(sandbox, 'cwd'));
  });
  after(async () => {
    process.chdir(cwd);
    await fs.rm(sandbox, { recursive: true, force: true });
  });

  it('names: what validation accepts can never leave the repository; everything else is a clear INVALID_ARGUMENT', () => {
    // Counted once per distinct input: the generators may produce the same value more than once.
    const tried = new Set<string>();
    const root = '/repo';
    fc.assert(
      fc.property(fc.oneof(hostileString, fc.anything()), (value) => {
        tried.add(`name ${inputKey(value)}`);
        for (const [check, label] of [[checkVolumeId, 'volume id'], [checkBackupId, 'backup id'], [checkHost, 'host']] as const) {
          let accepted: string;
          try {
            accepted = check(value);
          } catch (err) {
            assert.ok(err instanceof VolumeBackupError && err.code === 'INVALID_ARGUMENT', `${label}: ${String(err)}`);
            assert.ok(err.message.length < 400, 'a short message even for huge input');
            continue;
          }
          assert.equal(accepted, value);
          assert.ok(!/[/\\\0\n]/.test(accepted) && accepted !== '.' && accepted !== '..' && accepted.length <= 253, `${label} accepted ${JSON.stringify(accepted)}`);
          const resolved = path.posix.resolve(root, 'records', accepted, 'x.json');
          assert.ok(resolved.startsWith(`${root}/records/${accepted}/`), `${label} ${JSON.stringify(accepted)} escapes`);
        }
        try {
          const text = checkText('name', value, 255);
          assert.ok(typeof text === 'string' && text.length <= 255 && !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text));
        } catch (err) {
          assert.ok(err instanceof VolumeBackupError && err.code === 'INVALID_ARGUMENT', String(err));
        }
      }),
      { numRuns: 2000, seed: 9 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 300 }).filter((s) => !s.includes('\0')), (p) => {
        tried.add(`path ${inputKey(p)}`);
        assert.equal(checkVolumeId(volumeIdForPath(p)), volumeIdForPath(p), 'a derived volume id is always valid');
      }),
      { numRuns: 500, seed: 10 },
    );
    for (const input of tried) tally('hostileInputs', 'names (property-based)', input);
  });

  it('posix driver: no container or object name reaches outside its base directory', async () => {
    const base = path.join(sandbox, 'driver-base');
    await fs.mkdir(base);
    const driver = new PosixDriver({ path: base });
    const keep = path.join(outside, 'keep.txt');
    const before = await treeState(sandbox);
    const tried = new Set<string>();
    await fc.assert(
      fc.asyncProperty(hostileString, hostileString, fc.constantFrom('write', 'create', 'replace', 'read', 'delete', 'list', 'container'), async (container, name, op) => {
        tried.add(`${op} ${inputKey([container, name])}`);
        try {
          if (op === 'write') await driver.writeObject(container, name, Buffer.from('x'));
          if (op === 'create') await driver.putIfAbsent(container, name, Buffer.from('x'));
          if (op === 'replace') await driver.replaceIfMatch(container, name, Buffer.from('x'), 'etag');
          if (op === 'read') assert.notEqual((await driver.readObject(container, name)).data.toString(), 'must survive', 'read a file outside');
          if (op === 'delete') await driver.deleteObject(container, name);
          if (op === 'list') for (const e of await driver.listEntries(container, name)) assert.ok(!e.name.includes('keep.txt'));
          if (op === 'container') await driver.putContainer(container);
        } catch (err) {
          if (err instanceof assert.AssertionError) throw err;
          // Refused, or an ordinary file-system error inside the base (a name that is a directory…).
        }
        assert.equal(await fs.readFile(keep, 'utf8'), 'must survive');
      }),
      { numRuns: 1500, seed: 11 },
    );
    // Only the driver's base may have changed.
    const after = await treeState(sandbox);
    const escaped = diffTrees(before, after).filter((c) => !c.startsWith('driver-base/'));
    assert.deepEqual(escaped, [], 'files were created or changed outside the base directory');
    for (const input of tried) tally('hostileInputs', 'posix path resolution (property-based)', input);
  });

  it('CLI: every command refuses bad values with exit 1 or 2 and one line, and changes nothing', async () => {
    const R = () => repoDir;
    const id = () => backup.id;
    const badIds = ['../../outside/keep.txt', '/etc/passwd', '..', '.', '', 'not-a-uuid', 'a'.repeat(100_000), `${'0b5c7f1e-8a5e-4a57-9d43-2f8ad0c1e0a7'}/../x`,
      '0B5C7F1E-8A5E-4A57-9D43-2F8AD0C1E0A7', '%2e%2e%2f', 'C:\\Windows', '\u202eevil', '$(touch pwned)', '`id`', 'x;rm -rf /', '-1', '{}'];
    const badVolumeIds = ['../outside', '/abs', '..', '.', 'a/b', 'a\\b', '-rf', '.hidden', 'a'.repeat(129), 'x..y', ' ', 'é', 'a b', '$(id)', '%2e%2e', ''];
    const badContainers = ['../outside', '/abs/path', 'a/../../outside', '..', '.', 'x\\..\\..\\y', '../../../../../../tmp'];
    const badSizes = ['-1', '0', '-64K', '1e9', '99999999999999999999', 'abc', '4.5K', '1T', '64KK', '0x10', ' ', '300M', '1G', 'NaN', 'Infinity'];
    const cases: { args: string[]; input?: string; mayPass?: boolean }[] = [];
    for (const b of badIds) {
      cases.push(
        { args: ['restore', '--repo', R(), '--backup', b, '--verify-only'] },
        { args: ['restore', '--repo', R(), '--backup', b, '--target', path.join(outside, 'x.img')] },
        { args: ['show', '--repo', R(), '--backup', b] },
        { args: ['delete', '--repo', R(), '--backup', b] },
        { args: ['export', '--repo', R(), '--backup', b] },
        { args: ['verify', '--repo', R(), '--backup', b], mayPass: b === '' },
        { args: ['reset-status', '--repo', R(), '--backup', b, '--status', 'error'] },
        { args: ['create', '--repo', R(), '--volume', volume, '--volume-id', 'v', '--parent', b], mayPass: b === '' },
      );
    }
    for (const v of badVolumeIds) {
      cases.push(
        { args: ['create', '--repo', R(), '--volume', volume, '--volume-id', v], mayPass: v === '' },
        { args: ['list', '--repo', R(), '--volume-id', v], mayPass: v === '' },
        { args: ['prune', '--repo', R(), '--volume-id', v, '--keep-last', '1', '--dry-run'], mayPass: v === '' },
      );
    }
    for (const c of badContainers) {
      cases.push(
        { args: ['create', '--repo', R(), '--container', c, '--volume', volume, '--volume-id', 'v'] },
        { args: ['list', '--repo', R(), '--container', c] },
        { args: ['init', '--repo', R(), '--container', c] },
        { args: ['import', '--repo', R(), '--container', c], input: 'x' },
      );
    }
    for (const s of badSizes) {
      cases.push(
        { args: ['create', '--repo', R(), '--volume', volume, '--volume-id', 'v', '--chunk-size', s] },
        { args: ['create', '--repo', R(), '--volume', volume, '--volume-id', 'v', '--block-size', s] },
      );
    }
    const create = (...extra: string[]) => ['create', '--repo', R(), '--volume', volume, '--volume-id', 'v', ...extra];
    cases.push(
      { args: create('--block-size', '100') }, { args: create('--block-size', '3000') }, { args: create('--chunk-size', '96K', '--block-size', '64K') },
      { args: create('--compression', 'lz4') }, { args: create('--compression', '') }, { args: create('--compression', 'ZSTD') },
      { args: create('--compression-level', 'x') }, { args: create('--compression-level', '1.5') }, { args: create('--compression-level', '99999') },
      { args: create('--compression-level', '-99999999999') }, { args: create('--progress', 'xml') },
      { args: create('--name', 'bell\u0007') }, { args: create('--name', 'x'.repeat(5000)) }, { args: create('--description', 'esc\u001b[2J') },
      { args: create('--description', 'd'.repeat(10_000)) }, { args: create('--incremental', '--differential') },
      { args: create('--parent', '0b5c7f1e-8a5e-4a57-9d43-2f8ad0c1e0a7') },
      { args: ['create', '--repo', R(), '--volume', ''] }, { args: ['create', '--repo', R(), '--volume', path.join(sandbox, 'missing.img')] },
      { args: ['create', '--repo', R(), '--volume', sandbox] }, { args: ['create', '--repo', R(), '--volume', '/dev/null'] },
      { args: ['create', '--repo', R(), '--volume', path.join(outside, '..', 'outside')] },
      { args: ['create', '--repo', R()] },
      { args: ['list', '--repo', ''] }, { args: ['list', '--repo', 'ftp://host/x'] }, { args: ['list', '--repo', 'gopher://x'] },
      { args: ['list', '--repo', 'file://'] }, { args: ['list', '--repo', path.join(outside, 'keep.txt')] }, { args: ['list', '--repo', path.join(sandbox, 'no-repo-here')] },
      { args: ['list', '--repo', 's3://'] }, { args: ['list', '--repo', 's3://ab'] }, { args: ['list', '--repo', 'gs://'] },
      { args: ['list', '--repo', 's3://bucket/x?endpoint=not a url'] }, { args: ['list', '--repo', 'http://127.0.0.1:1/x'] },
      { args: ['list', '--repo', R(), '--host', '../evil'] }, { args: ['list', '--repo', R(), '--host', 'a b'] },
      { args: ['list', '--repo', R(), '--passphrase-file', path.join(sandbox, 'missing-key')] },
      { args: ['list', '--repo', R(), '--passphrase', 'secret'] }, { args: ['list', '--repo', R(), 'positional'] }, { args: ['list', '--repo'] },
      { args: ['list', '--repo', R(), '--json=maybe'] }, { args: ['list', '--bogus'] }, { args: ['bogus-command'] }, { args: ['list'] },
      { args: ['restore', '--repo', R(), '--backup', id()] }, { args: ['restore', '--repo', R(), '--backup', id(), '--verify-only', '--target', 'x.img'] },
      { args: ['restore', '--repo', R(), '--backup', id(), '--progress', 'loud', '--verify-only'] },
      { args: ['delete', '--repo', R()] }, { args: ['reset-status', '--repo', R(), '--backup', id(), '--status', 'bogus'] },
      { args: ['reset-status', '--repo', R(), '--backup', id()] },
      { args: ['prune', '--repo', R()], mayPass: true }, // no rule: keeps everything
      { args: ['prune', '--repo', R(), '--keep-last', '-1'] }, { args: ['prune', '--repo', R(), '--keep-last', 'abc'] },
      { args: ['prune', '--repo', R(), '--keep-last', '1e309'] }, { args: ['prune', '--repo', R(), '--keep-last', '1.5'] },
      { args: ['prune', '--repo', R(), '--keep-within', 'forever'] }, { args: ['prune', '--repo', R(), '--keep-within', '-1d'] },
      { args: ['prune', '--repo', R(), '--keep-daily', '1', '--time-zone', 'Mars/Olympus_Mons'] },
      { args: ['prune', '--repo', R(), '--keep-daily', '1', '--time-zone', '../../etc/passwd'] },
      { args: ['prune', '--repo', R(), '--keep-last', '1', '--orphan-grace', '-1h'] }, { args: ['prune', '--repo', R(), '--keep-last', '1', '--orphan-grace', 'soon'] },
      { args: ['verify', '--repo', R(), '--progress', 'xml'] }, { args: ['cleanup', '--repo', R(), '--host', '../other'] },
      { args: ['init', '--repo', R()] }, { args: ['init', '--repo', R(), '--encrypt'] },
    );
    // Imported records: malformed, hostile, or describing objects that are not there.
    const exported = JSON.parse(Buffer.from((await cli(['export', '--repo', R(), '--backup', id()])).stdout.trim(), 'base64').toString('utf8'));
    const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64');
    const withRecord = (patch: Record<string, unknown>) => b64({ ...exported, record: { ...exported.record, id: '1b5c7f1e-8a5e-4a57-9d43-2f8ad0c1e0a7', ...patch } });
    for (const input of [
      '', 'not base64 !!!', b64('not json'), b64('{"kind":"x"}'), b64({ kind: exported.kind }), b64({ kind: exported.kind, record: null }),
      b64(exported), // the same backup again: already there
      withRecord({ volumeId: '../outside' }), withRecord({ volumeId: '/abs' }), withRecord({ objectPrefix: '../../outside/keep.txt' }),
      withRecord({ objectPrefix: '/etc/passwd' }), withRecord({ objectPrefix: 'volume_v/../../outside/keep' }), withRecord({}),
      withRecord({ objectPrefix: backup.objectPrefix }), withRecord({ status: 'creating' }), withRecord({ encrypted: true }),
      withRecord({ size: -1 }), withRecord({ size: 2 ** 60 }), withRecord({ chunkSize: 0 }), withRecord({ parentId: '2b5c7f1e-8a5e-4a57-9d43-2f8ad0c1e0a7' }),
      b64(`{"kind":"${exported.kind}","record":{"__proto__":{"polluted":1}}}`), b64({ ...exported, record: { ...exported.record, name: 'nul\0byte' } }),
      'A'.repeat(5 * 1024 * 1024), b64('\0\0\0'),
    ]) {
      cases.push({ args: ['import', '--repo', R()], input });
    }

    const failures: string[] = [];
    for (const c of cases) {
      const before = await treeState(sandbox);
      const label = `${c.args.map((a) => (a.length > 40 ? `${a.slice(0, 20)}…(${a.length})` : a)).join(' ')}${c.input !== undefined ? ` < ${c.input.slice(0, 30)}…(${c.input.length})` : ''}`;
      let error: unknown;
      try {
        const r = await cli(c.args, c.input);
        const lines = r.stderr.trim().split('\n');
        if (!(c.mayPass && r.code === 0)) {
          assert.ok(r.code === 1 || r.code === 2, `exit code ${r.code}: ${r.stderr}${r.stdout.slice(0, 200)}`);
          assert.equal(lines.length, 1, `not one line: ${r.stderr.slice(0, 500)}`);
          assert.ok(lines[0].length > 10 && lines[0].length < 1200, `message length ${lines[0].length}: ${lines[0].slice(0, 200)}`);
          assert.ok(!/\n\s+at /.test(r.stderr) && !/TypeError|ReferenceError|Cannot read prop/.test(r.stderr), `a crash, not a clear error: ${r.stderr}`);
        }
        // A restore marks its record restoring and back (updatedAt changes); a harmless input that was
        // accepted may add a backup to the repository. Nothing else may change, nothing outside ever.
        const allowed = (change: string) =>
          (c.args[0] === 'restore' && change.startsWith('repo/records/')) || (c.mayPass && r.code === 0 && change.startsWith('repo/'));
        const changes = diffTrees(before, await treeState(sandbox)).filter((change) => !allowed(change));
        assert.deepEqual(changes, [], 'files were created or changed');
        assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype was polluted');
      } catch (err) {
        error = err;
      }
      const failure = tally('hostileInputs', `CLI ${c.args[0]}`, label, error, inputKey([c.args, c.input]));
      if (failure) failures.push(failure);
    }
    assert.deepEqual(failures, []);
  });

  it('CLI restore never overwrites what was not asked for: smaller files, directories, devices, the repository itself', async () => {
    const failures: string[] = [];
    const small = path.join(sandbox, 'small-target.img');
    await fs.writeFile(small, Buffer.alloc(4096, 7));
    const aDir = path.join(sandbox, 'a-dir');
    await fs.mkdir(aDir, { recursive: true });
    const link = path.join(sandbox, 'link-to-small');
    await fs.symlink(small, link).catch(() => undefined);
    const before = await treeState(sandbox);
    for (const target of [small, aDir, link, '/dev/null', path.join(repoDir, 'repository.json'), path.join(repoDir, 'records'), sandbox, '']) {
      let error: unknown;
      try {
        const r = await cli(['restore', '--repo', repoDir, '--backup', backup.id, '--target', target]);
        assert.ok(r.code === 1 || r.code === 2, `exit ${r.code}: ${r.stdout}${r.stderr}`);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        const changes = diffTrees(before, await treeState(sandbox)).filter((change) => !change.startsWith('repo/records/'));
        assert.deepEqual(changes, [], 'something was overwritten');
        const repo = await openRepository(repoDir);
        try {
          assert.equal((await repo.getRecord(backup.id)).status, 'available', 'the backup is left restoring');
        } finally {
          await repo.close();
        }
      } catch (err) {
        error = err;
      }
      const failure = tally('hostileInputs', 'CLI restore target', target || '(empty)', error);
      if (failure) failures.push(failure);
    }
    assert.deepEqual(failures, []);
  });

  it('library API (what the nodes call): arbitrary values in every option give a VolumeBackupError, never a crash', async () => {
    const scratchDir = path.join(sandbox, 'scratch');
    const scratch: Repository = await initRepository(scratchDir);
    const failures: string[] = [];
    let runs = 0;
    const check = async (kind: string, value: unknown, call: () => Promise<unknown>) => {
      runs++;
      let error: unknown;
      try {
        await call();
      } catch (err) {
        if (!(err instanceof VolumeBackupError)) error = new Error(`not a VolumeBackupError: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
        else if (err.message.length > 2000 || err.message.includes('\n    at ')) error = new Error(`unclear message: ${err.message.slice(0, 300)}`);
      }
      const failure = tally('hostileInputs', `API ${kind}`, JSON.stringify(value)?.slice(0, 80) ?? String(value), error, inputKey(value));
      if (failure) failures.push(failure);
    };
    const anyValue = fc.oneof(fc.anything(), hostileString, fc.integer(), fc.double(), fc.constantFrom(-1, 0, 2 ** 53, 2 ** 31, NaN, Infinity, -Infinity, null, undefined, [], {}, '64K', true));
    const valid = { volume, volumeId: 'fuzz', chunkSize: 64 * KiB, blockSize: 4 * KiB };
    try {
      for (const field of ['volume', 'volumeId', 'name', 'description', 'mode', 'parentId', 'chunkSize', 'blockSize', 'compression', 'compressionLevel', 'snapshot', 'sourcePath']) {
        const values = fc.sample(anyValue, { numRuns: 30, seed: field.length });
        for (const v of values) await check(`createBackup.${field}`, v, () => createBackup(scratch, { ...valid, [field]: v } as never));
      }
      for (const compression of ['zlib', 'zstd', 'none']) {
        for (const v of fc.sample(anyValue, { numRuns: 20, seed: 5 })) await check(`createBackup.compressionLevel (${compression})`, v, () => createBackup(scratch, { ...valid, compression, compressionLevel: v } as never));
      }
      for (const v of fc.sample(anyValue, { numRuns: 40, seed: 3 })) {
        await check('restoreBackup.backupId', v, () => restoreBackup(scratch, { backupId: v, verifyOnly: true } as never));
        // (Fuzzed restore targets could name any file on this machine: the CLI cases above cover targets.)
        await check('deleteBackup.backupId', v, () => deleteBackup(scratch, { backupId: v } as never));
        await check('pruneRepository.policy', v, () => pruneRepository(scratch, { policy: v, dryRun: true }));
        await check('pruneRepository.volumeId', v, () => pruneRepository(scratch, { policy: { keepLast: 1 }, volumeId: v, dryRun: true } as never));
        await check('openRepository.where', v, async () => (await openRepository(v as never)).close());
        await check('openRepository.container', v, async () => (await openRepository(repoDir, { container: v } as never)).close());
        await check('openRepository.passphrase', v, async () => (await openRepository(repoDir, { passphrase: v } as never)).close());
      }
      for (const policy of fc.sample(fc.dictionary(fc.constantFrom('keepLast', 'keepDaily', 'keepWithin', 'keepFailedFor', 'timeZone', '__proto__', 'constructor', 'bogus'), anyValue), { numRuns: 60, seed: 4 })) {
        await check('pruneRepository.policy rules', policy, () => pruneRepository(scratch, { policy, dryRun: true }));
      }
    } finally {
      await scratch.close();
    }
    assert.ok(runs > 500, `${runs} runs`);
    assert.deepEqual(failures, []);
    // The sandbox's own repository was never touched by any of it.
    const repo = await openRepository(repoDir);
    try {
      assert.equal((await repo.getRecord(backup.id)).status, 'available');
      await restoreBackup(repo, { backupId: backup.id, verifyOnly: true });
    } finally {
      await repo.close();
    }
  });

});
