/**
 * Property: whatever damage a repository's records, metadata and segment objects carry (random edits of
 * prefixes, parent ids, sizes, statuses, ids, digests, segment lists and the chunk entries of segments:
 * data object names, extents, lengths, zero maps, hashes; with the digests that name them recomputed as
 * a crafted repository would), every operation — restore, verify, delete, prune, cleanup, export + import —
 *   (a) ends within a bound (run as a CLI child process with a kill timer: a hang with the event loop
 *       blocked can only be seen from outside),
 *   (b) leaves every object and record a still-valid backup needs byte-identical, and repository.json too
 *       (valid: its record and metadata and those of every backup up its chain are unedited),
 *   (c) never reports success for bytes that differ from the volume the backup was taken of.
 *
 * Runs:  PROPERTY_RUNS (default 12), PROPERTY_SEED (default fixed; "random" for a new one each time),
 * PROPERTY_PATH (fast-check's replay path from a failure report), PROPERTY_OP_TIMEOUT_MS (default 60000),
 * PROPERTY_SHRINK=1 (shrink a failure to a minimal case: slow, every candidate runs the CLI again),
 * PROPERTY_COLLECT=file (exploration: append every failing case to file instead of stopping at the first).
 */
import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import fc from 'fast-check';
import { promises as fs } from 'fs';
import * as path from 'path';
import { createBackup, initRepository } from '../lib';
import type { BackupKind } from '../lib';
import { CliResult, runCli } from './helpers/cli';
import { BaseBackup, Edit, applyEdits, decodeSegmentFile, descendantsOf, describeEdits, editArb, sha256Hex } from './helpers/damage';
import { makeImage, scatterWrites, sha256File, tempDir } from './helpers/volumes';

const KiB = 1024;
const RUNS = Number(process.env.PROPERTY_RUNS ?? 12);
const SEED = process.env.PROPERTY_SEED === 'random' ? Date.now() % 2 ** 31 : Number(process.env.PROPERTY_SEED ?? 1414);
const REPLAY_PATH = process.env.PROPERTY_PATH;
const OP_TIMEOUT_MS = Number(process.env.PROPERTY_OP_TIMEOUT_MS ?? 60_000);
const COLLECT = process.env.PROPERTY_COLLECT;

/** Volumes of the base repository: each a full, incrementals and a differential, small chunks and blocks. */
const VOLUMES: { volumeId: string; size: number; chunkSize: number; blockSize: number; kinds: BackupKind[] }[] = [
  { volumeId: 'alpha', size: 512 * KiB, chunkSize: 64 * KiB, blockSize: 4 * KiB, kinds: ['full', 'incremental', 'incremental', 'differential'] },
  { volumeId: 'beta', size: 256 * KiB + 3 * KiB, chunkSize: 32 * KiB, blockSize: 4 * KiB, kinds: ['full', 'incremental', 'differential'] },
  { volumeId: 'gamma', size: 320 * KiB, chunkSize: 64 * KiB, blockSize: 8 * KiB, kinds: ['full', 'incremental'] },
];

type Operation =
  | { op: 'restore'; i: number; verifyOnly: boolean }
  | { op: 'verify'; i: number; one: boolean; readData: boolean }
  | { op: 'delete'; i: number; cascade: boolean }
  | { op: 'prune'; i: number; keepLast: number; oneVolume: boolean; orphanGrace: boolean; dryRun: boolean }
  | { op: 'cleanup' }
  | { op: 'transfer'; i: number; deleteAfter: boolean };

const idx = fc.nat({ max: 63 });
const operationArb: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ op: fc.constant('restore' as const), i: idx, verifyOnly: fc.boolean() }),
  fc.record({ op: fc.constant('verify' as const), i: idx, one: fc.boolean(), readData: fc.boolean() }),
  fc.record({ op: fc.constant('delete' as const), i: idx, cascade: fc.boolean() }),
  fc.record({ op: fc.constant('prune' as const), i: idx, keepLast: fc.integer({ min: 1, max: 3 }), oneVolume: fc.boolean(), orphanGrace: fc.boolean(), dryRun: fc.boolean() }),
  fc.constant({ op: 'cleanup' as const }),
  fc.record({ op: fc.constant('transfer' as const), i: idx, deleteAfter: fc.boolean() }),
);

/**
 * Cases found by this test, run first every time (base order: alpha 0-3 = full, incremental, incremental,
 * differential; beta 4-6 = full, incremental, differential; gamma 7-8 = full, incremental).
 */
const EXAMPLES: [Edit[], Operation, boolean][] = [
  // A record whose objectPrefix is its volume's directory: deleting it must not delete the volume's other backups.
  [[{ t: 'prefix', i: 3, j: 0, how: 'volumeDir', resync: false }], { op: 'delete', i: 3, cascade: false }, false],
  // … or the records/ directory: deleting it must not delete every record.
  [[{ t: 'prefix', i: 6, j: 0, how: 'records', resync: false }], { op: 'delete', i: 6, cascade: false }, false],
  // Segments naming another backup's objects, with its zero maps and hashes (format 1: metadata naming its
  // objects and hash list; digests recomputed up to the record): a restore must not succeed with the other
  // backup's bytes. And the metadata listing the other backup's segments too.
  [[{ t: 'borrow', i: 1, j: 0, what: 'entries', resync: true }], { op: 'restore', i: 1, verifyOnly: false }, false],
  [[{ t: 'borrow', i: 1, j: 0, what: 'all', resync: true }], { op: 'restore', i: 1, verifyOnly: false }, false],
  // A backup that is its own parent: verify must end (and say the chain is broken).
  [[{ t: 'parent', i: 0, j: 0, how: 'self', sync: false }], { op: 'verify', i: 2, one: false, readData: true }, false],
  // An undamaged chain exported and imported: the second repository restores it.
  [[{ t: 'status', i: 5, status: 'available' }], { op: 'transfer', i: 2, deleteAfter: true }, false],
];

/** A record's fields that say which bytes it is: they must not change for a backup someone still needs. */
const IDENTITY_FIELDS = ['id', 'volumeId', 'parentId', 'objectPrefix', 'metadataSha256', 'size', 'blockSize', 'chunkSize', 'kind'] as const;

interface Expectation {
  /** Files (relative) → SHA-256 that must be there unchanged afterwards. */
  files: Map<string, string>;
  /** Record files that must still exist, describe the same backup and be available. */
  records: BaseBackup[];
}

describe('property: operations on a damaged repository', function () {
  this.timeout(0);
  let sandbox: string;
  let baseRepo: string;
  const base: BaseBackup[] = [];
  /** Each base backup's own objects (metadata, segments, data objects) → SHA-256. */
  const ownFiles = new Map<string, Map<string, string>>();
  const baseRecords = new Map<string, Record<string, unknown>>();
  let repositoryJsonSha: string;

  before(async function () {
    this.timeout(300_000);
    sandbox = await tempDir('property');
    baseRepo = path.join(sandbox, 'base');
    const repo = await initRepository(baseRepo);
    try {
      for (const [v, vol] of VOLUMES.entries()) {
        const image = path.join(sandbox, `${vol.volumeId}.img`);
        await makeImage(image, vol.size, 10 + v, 32 * KiB);
        for (const [n, kind] of vol.kinds.entries()) {
          if (n > 0) await scatterWrites(image, 0.1, 100 * v + n, 8 * KiB);
          const record = await createBackup(repo, { volume: image, volumeId: vol.volumeId, mode: kind, chunkSize: vol.chunkSize, blockSize: vol.blockSize });
          base.push({
            id: record.id,
            volumeId: record.volumeId,
            parentId: record.parentId,
            objectPrefix: record.objectPrefix,
            recordFile: `records/${record.volumeId}/${record.id}.json`,
            metadataFile: `${record.objectPrefix}_metadata`,
            segmentFiles: new Map(),
            imageSha256: await sha256File(image),
          });
        }
      }
    } finally {
      await repo.close();
    }
    for (const b of base) {
      // Format 2: the metadata, its segments and the data objects they name.
      const metadata = JSON.parse(await fs.readFile(path.join(baseRepo, b.metadataFile), 'utf8'));
      assert.equal(metadata.formatVersion, 2);
      const names = [b.metadataFile];
      for (const ref of metadata.segments as { index: number; name: string }[]) {
        b.segmentFiles.set(ref.index, ref.name);
        names.push(ref.name);
        const { json } = decodeSegmentFile(await fs.readFile(path.join(baseRepo, ref.name)), metadata);
        for (const entry of json.chunks as { object: { name: string } | null }[]) if (entry.object) names.push(entry.object.name);
      }
      const files = new Map<string, string>();
      for (const name of names) {
        files.set(name, sha256Hex(await fs.readFile(path.join(baseRepo, name))));
      }
      ownFiles.set(b.id, files);
      baseRecords.set(b.id, JSON.parse(await fs.readFile(path.join(baseRepo, b.recordFile), 'utf8')) as Record<string, unknown>);
    }
    repositoryJsonSha = sha256Hex(await fs.readFile(path.join(baseRepo, 'repository.json')));
  });

  after(async () => {
    if (sandbox) await fs.rm(sandbox, { recursive: true, force: true });
  });

  const byId = (id: string) => base.find((b) => b.id === id)!;
  const chainOf = (b: BaseBackup): BaseBackup[] => (b.parentId ? [...chainOf(byId(b.parentId)), b] : [b]);
  const isValid = (b: BaseBackup, edited: Set<string>) => chainOf(b).every((c) => !edited.has(c.id));

  /** What `protectedBackups` need: their chains' objects and records. */
  function expect(protectedBackups: BaseBackup[]): Expectation {
    const files = new Map<string, string>();
    const records = new Set<BaseBackup>();
    for (const b of protectedBackups) {
      for (const c of chainOf(b)) {
        records.add(c);
        for (const [name, sha] of ownFiles.get(c.id)!) files.set(name, sha);
      }
    }
    return { files, records: [...records] };
  }

  async function checkKept(repoDir: string, expectation: Expectation, what: string): Promise<string[]> {
    const failures: string[] = [];
    const json = await fs.readFile(path.join(repoDir, 'repository.json')).catch(() => null);
    if (!json || sha256Hex(json) !== repositoryJsonSha) failures.push(`${what}: repository.json was ${json ? 'changed' : 'removed'}`);
    for (const [name, sha] of expectation.files) {
      const bytes = await fs.readFile(path.join(repoDir, name)).catch(() => null);
      if (!bytes || sha256Hex(bytes) !== sha) failures.push(`${what}: ${name}, needed by a valid backup, was ${bytes ? 'changed' : 'removed'}`);
    }
    for (const b of expectation.records) {
      const text = await fs.readFile(path.join(repoDir, b.recordFile), 'utf8').catch(() => null);
      if (text === null) {
        failures.push(`${what}: the record of ${b.volumeId}/${b.id}, needed by a valid backup, was removed`);
        continue;
      }
      const now = JSON.parse(text) as Record<string, unknown>;
      const was = baseRecords.get(b.id)!;
      const changed = IDENTITY_FIELDS.filter((f) => now[f] !== was[f]);
      if (changed.length || now.status !== 'available') {
        failures.push(`${what}: the record of ${b.volumeId}/${b.id}, needed by a valid backup, now has status ${String(now.status)}${changed.length ? `, ${changed.join(', ')} changed` : ''}`);
      }
    }
    return failures;
  }

  let runNo = 0;
  async function cli(args: string[], input?: string): Promise<CliResult> {
    const result = await runCli(args, { timeoutMs: OP_TIMEOUT_MS, input });
    if (result.signal === 'SIGKILL') throw new Bound(`volume-backup ${args.join(' ')} did not end within ${OP_TIMEOUT_MS} ms (killed)`);
    return result;
  }
  class Bound extends Error {}

  /** Restores backup b from repoDir to a new file; exit 0 must mean the bytes of b's volume. */
  async function restoreChecked(repoDir: string, b: BaseBackup, target: string, failures: string[], what: string): Promise<CliResult> {
    await fs.rm(target, { force: true });
    const result = await cli(['restore', '--repo', repoDir, '--backup', b.id, '--target', target]);
    if (result.code === 0) {
      const sha = await sha256File(target).catch(() => 'unreadable');
      if (sha !== b.imageSha256) failures.push(`${what}: restore of ${b.volumeId}/${b.id} exited 0 but wrote bytes that differ from the volume backed up (sha ${sha.slice(0, 12)} ≠ ${b.imageSha256.slice(0, 12)})`);
    }
    return result;
  }

  async function runOperation(operation: Operation, repoDir: string, runDir: string, edited: Set<string>): Promise<string[]> {
    const failures: string[] = [];
    const valid = base.filter((b) => isValid(b, edited));
    const target = 'i' in operation ? base[operation.i % base.length] : base[0];
    const what = `${operation.op} ${'i' in operation ? `${target.volumeId}/${target.id}` : ''}`;
    const out = path.join(runDir, 'restored.img');
    switch (operation.op) {
      case 'restore': {
        if (operation.verifyOnly) {
          const verified = await cli(['restore', '--repo', repoDir, '--backup', target.id, '--verify-only']);
          if (verified.code === 0) {
            // verify-only said the backup restores: a real restore must then give the volume's bytes.
            const restored = await restoreChecked(repoDir, target, out, failures, what);
            if (restored.code !== 0) failures.push(`${what}: --verify-only exited 0 but the restore failed: ${restored.stderr.trim()}`);
          }
        } else {
          await restoreChecked(repoDir, target, out, failures, what);
        }
        failures.push(...(await checkKept(repoDir, expect(valid), what)));
        break;
      }
      case 'verify': {
        const args = ['verify', '--repo', repoDir, '--json', ...(operation.one ? ['--backup', target.id] : []), ...(operation.readData ? ['--read-data'] : [])];
        const result = await cli(args);
        // Only an available backup is claimed restorable (verify skips failed and unfinished ones).
        const record = await fs.readFile(path.join(repoDir, target.recordFile), 'utf8').then((t) => JSON.parse(t) as { id?: string; status?: string }, () => null);
        let claimedOk = result.code === 0 && record?.id === target.id && record.status === 'available';
        if (!operation.one && result.code === 1) {
          try {
            const report = JSON.parse(result.stdout) as { problems: { backupIds: string[] }[] };
            claimedOk = record?.id === target.id && record.status === 'available' && !report.problems.some((p) => p.backupIds.includes(target.id));
          } catch {
            claimedOk = false;
          }
        }
        if (operation.readData && claimedOk) {
          // verify --read-data found nothing wrong with the backup: it must restore to its volume's bytes.
          const restored = await restoreChecked(repoDir, target, out, failures, what);
          if (restored.code !== 0) failures.push(`${what}: verify --read-data found no problem with the backup but its restore failed: ${restored.stderr.trim()}`);
        }
        failures.push(...(await checkKept(repoDir, expect(valid), what)));
        break;
      }
      case 'delete': {
        await cli(['delete', '--repo', repoDir, '--backup', target.id, ...(operation.cascade ? ['--cascade'] : [])]);
        const gone = new Set([target, ...(operation.cascade ? descendantsOf(base, target.id) : [])]);
        failures.push(...(await checkKept(repoDir, expect(valid.filter((b) => !gone.has(b))), what)));
        break;
      }
      case 'prune': {
        const args = ['prune', '--repo', repoDir, '--keep-last', String(operation.keepLast)];
        if (operation.oneVolume) args.push('--volume-id', target.volumeId);
        if (operation.orphanGrace) args.push('--orphan-grace', '0h');
        if (operation.dryRun) args.push('--dry-run');
        await cli(args);
        // A prune may delete valid backups its policy no longer keeps; every valid backup still listed
        // must keep its whole chain (a dry run keeps everything).
        const still = [];
        for (const b of valid) if (operation.dryRun || (await fs.stat(path.join(repoDir, b.recordFile)).then(() => true, () => false))) still.push(b);
        failures.push(...(await checkKept(repoDir, expect(still), `${what} ${args.slice(3).join(' ')}`)));
        break;
      }
      case 'cleanup':
        await cli(['cleanup', '--repo', repoDir]);
        failures.push(...(await checkKept(repoDir, expect(valid), what)));
        break;
      case 'transfer': {
        failures.push(...(await transfer(operation, target, repoDir, runDir)));
        failures.push(...(await checkKept(repoDir, expect(valid), `${what} (source)`)));
        break;
      }
    }
    return failures;
  }

  /**
   * Export the target's chain (as the damaged records describe it) and import it into a second repository
   * holding the other volumes' undamaged backups: copy each backup's objects by its record's prefix, then
   * import its record. An imported backup that restores must give its volume's bytes; importing (and
   * deleting what was imported) must leave the second repository's own backups alone.
   */
  async function transfer(operation: Extract<Operation, { op: 'transfer' }>, target: BaseBackup, repoDir: string, runDir: string): Promise<string[]> {
    const failures: string[] = [];
    const what = `export+import ${target.volumeId}/${target.id}`;
    const second = path.join(runDir, 'second');
    execFileSync('cp', ['-a', baseRepo, second]);
    await fs.rm(path.join(second, 'records', target.volumeId), { recursive: true, force: true });
    await fs.rm(path.join(second, `volume_${target.volumeId}`), { recursive: true, force: true });
    const others = base.filter((b) => b.volumeId !== target.volumeId);

    // The chain, root first, by the records as they are now (bounded: the records may loop).
    const chain: { id: string; prefix: string }[] = [];
    let id: string | null = target.id;
    while (id && chain.length < 8 && !chain.some((c) => c.id === id)) {
      const file = base.find((b) => b.id === id)?.recordFile;
      const text = file ? await fs.readFile(path.join(repoDir, file), 'utf8').catch(() => null) : null;
      if (!text) break;
      const record = JSON.parse(text) as { parentId: string | null; objectPrefix: string };
      chain.unshift({ id, prefix: String(record.objectPrefix) });
      id = record.parentId;
    }
    const imported: string[] = [];
    for (const c of chain) {
      const exported = await cli(['export', '--repo', repoDir, '--backup', c.id]);
      if (exported.code !== 0) break;
      // Copy the objects under the record's prefix, as a user following the export would (inside the repository only).
      const from = path.resolve(repoDir, c.prefix);
      if (from.startsWith(repoDir + path.sep)) {
        const dir = path.dirname(from);
        const entries = await fs.readdir(dir).catch(() => [] as string[]);
        for (const entry of entries) {
          const source = path.join(dir, entry);
          if (!source.startsWith(from) || !(await fs.stat(source)).isFile()) continue;
          const dest = path.join(second, path.relative(repoDir, source));
          await fs.mkdir(path.dirname(dest), { recursive: true });
          await fs.copyFile(source, dest);
        }
      }
      const result = await cli(['import', '--repo', second], exported.stdout);
      if (result.code !== 0) break;
      imported.push(c.id);
    }
    if (process.env.PROPERTY_DEBUG) console.log(`transfer ${target.id}: chain ${chain.map((c) => c.id.slice(0, 8)).join(' → ')}, imported ${imported.map((x) => x.slice(0, 8)).join(', ')}`);
    if (imported.includes(target.id)) {
      await restoreChecked(second, target, path.join(runDir, 'restored-second.img'), failures, `${what}, restore from the second repository`);
    }
    if (operation.deleteAfter && imported.length) await cli(['delete', '--repo', second, '--backup', imported[0], '--cascade']);
    failures.push(...(await checkKept(second, expect(others), `${what} (second repository)`)));
    return failures;
  }

  it(`every operation ends, keeps what valid backups need and never reports false success (${RUNS} runs, seed ${SEED})`, async () => {
    // Half the operations aim at a backup the first edit damaged: that is where the holes are.
    const property = fc.asyncProperty(fc.array(editArb, { minLength: 1, maxLength: 4 }), operationArb, fc.boolean(), async (edits: Edit[], chosen: Operation, aimAtEdit: boolean) => {
      const operation = aimAtEdit && 'i' in chosen ? { ...chosen, i: edits[0].i } : chosen;
      const runDir = path.join(sandbox, `run-${++runNo}`);
      await fs.mkdir(runDir);
      try {
        const repoDir = path.join(runDir, 'repo');
        execFileSync('cp', ['-a', baseRepo, repoDir]);
        const edited = await applyEdits(repoDir, base, edits);
        let failures: string[];
        try {
          failures = await runOperation(operation, repoDir, runDir, edited);
        } catch (err) {
          if (!(err instanceof Bound)) throw err;
          failures = [err.message];
        }
        if (failures.length && COLLECT) {
          // Exploration: note every failing case and go on (PROPERTY_COLLECT=file).
          await fs.appendFile(COLLECT, `${JSON.stringify({ edits, operation })}\n${failures.join('\n')}\n  ${describeEdits(edits, base)}\n\n`);
        } else if (failures.length) {
          throw new Error(`${[...failures.slice(0, 6), ...(failures.length > 6 ? [`… and ${failures.length - 6} more`] : [])].join('\n')}\nedits:\n  ${describeEdits(edits, base)}\noperation: ${JSON.stringify(operation)}\nedited backups: ${[...edited].map((e) => e.slice(0, 8)).join(', ') || 'none'}`);
        }
      } finally {
        await fs.rm(runDir, { recursive: true, force: true });
      }
    });
    const examples = EXAMPLES; // also when replaying: a path counts them
    await fc.assert(property, {
      numRuns: RUNS + examples.length, // the examples count among fast-check's runs
      seed: SEED,
      path: REPLAY_PATH,
      examples,
      // Shrinking runs the CLI again for every candidate (a hang costs the whole timeout each time): only
      // when asked; the report's seed and path replay the case.
      endOnFailure: !process.env.PROPERTY_SHRINK,
      interruptAfterTimeLimit: Number(process.env.PROPERTY_TIME_LIMIT_MS ?? 600_000),
      markInterruptAsFailure: false,
    });
    assert.ok(runNo >= RUNS, `only ${runNo} of ${RUNS} runs were made`);
  });
});
