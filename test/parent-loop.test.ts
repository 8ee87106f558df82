/**
 * Records whose parents form a loop (a record naming itself, or two naming each other: hand-edited or
 * damaged records) once made restore --verify-only and verify --read-data spin forever with the event
 * loop blocked (issue 14, item 4). Every command must now end promptly: the ones that need the chain
 * fail naming the records of the loop, and nothing is deleted or created on top of it.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { CliResult, cliJson, runCli } from './helpers/cli';
import { backupsIn } from './helpers/repository';
import { makeImage, tempDir } from './helpers/volumes';

/** Far more than any of these commands takes; a hung process is SIGKILLed then (it ignores SIGTERM). */
const HANG_MS = 30_000;

describe('parent loops in the records (issue 14, item 4)', function () {
  this.timeout(300_000);
  let base: string;
  let volume: string;

  before(async () => {
    base = await tempDir('parent-loop');
    volume = path.join(base, 'vol.img');
    await makeImage(volume, 1024 * 1024 + 4096, 7);
  });

  after(async () => {
    await fs.rm(base, { recursive: true, force: true });
  });

  /** A repository with a full backup F and an incremental I on it, then F's parentId edited. */
  async function loopedRepository(label: string, loop: 'self' | 'pair'): Promise<{ repo: string; full: string; incr: string }> {
    const repo = path.join(base, label);
    const create = (extra: string[]) => cliJson<{ id: string }>(['create', '--repo', repo, '--volume', volume, '--volume-id', 'v', '--chunk-size', '256K', ...extra]);
    assert.equal((await runCli(['init', '--repo', repo])).code, 0);
    const full = (await create([])).id;
    const incr = (await create(['--incremental'])).id;
    const file = path.join(repo, 'records', 'v', `${full}.json`);
    const record = JSON.parse(await fs.readFile(file, 'utf8'));
    record.parentId = loop === 'self' ? full : incr;
    await fs.writeFile(file, JSON.stringify(record, null, 2));
    return { repo, full, incr };
  }

  async function run(args: string[]): Promise<CliResult> {
    const result = await runCli(args, { timeoutMs: HANG_MS });
    assert.equal(result.signal, null, `volume-backup ${args.join(' ')} hung (killed after ${HANG_MS} ms)`);
    return result;
  }

  const exists = (file: string) => fs.stat(file).then(() => true, () => false);

  function assertNamesLoop(result: CliResult, ids: string[], what: string): void {
    assert.equal(result.code, 1, `${what}: exit code (stderr: ${result.stderr})`);
    assert.match(result.stderr + result.stdout, /loops: backups? /, `${what}: says the parents loop`);
    for (const id of ids) assert.ok((result.stderr + result.stdout).includes(id), `${what}: names ${id}: ${result.stderr}`);
  }

  for (const loop of ['self', 'pair'] as const) {
    it(`${loop === 'self' ? 'a record that is its own parent' : 'two records that are each other\'s parent'}: every command ends promptly, and those that need the chain fail naming the loop`, async () => {
      const { repo, full, incr } = await loopedRepository(`repo-${loop}`, loop);
      const members = loop === 'self' ? [full] : [full, incr];
      const r = ['--repo', repo];

      assertNamesLoop(await run(['restore', ...r, '--backup', full, '--verify-only']), members, 'restore --verify-only of the looping backup');
      assertNamesLoop(await run(['restore', ...r, '--backup', incr, '--verify-only']), members, 'restore --verify-only of its child');
      const target = path.join(base, `restored-${loop}.img`);
      assertNamesLoop(await run(['restore', ...r, '--backup', incr, '--target', target]), members, 'restore --target');
      await assert.rejects(fs.stat(target), 'a failed restore leaves no target');
      assertNamesLoop(await run(['verify', ...r]), members, 'verify');
      assertNamesLoop(await run(['verify', ...r, '--read-data']), members, 'verify --read-data');
      assertNamesLoop(await run(['verify', ...r, '--backup', incr, '--read-data']), members, 'verify --backup --read-data');
      assertNamesLoop(await run(['create', ...r, '--volume', volume, '--volume-id', 'v', '--incremental']), members, 'an incremental on the loop');
      assertNamesLoop(await run(['delete', ...r, '--backup', full, '--cascade']), members, 'delete --cascade of a backup in the loop');

      // A newer full beside the loop: --keep-last 1 would keep only it. Prune keeps every backup of a
      // volume whose records loop (as for an unreadable record) and fails: a dry run too.
      const newer = (await cliJson<{ id: string }>(['create', ...r, '--volume', volume, '--volume-id', 'v', '--chunk-size', '256K'])).id;
      assertNamesLoop(await run(['prune', ...r, '--keep-last', '1', '--dry-run']), members, 'prune --dry-run');
      const pruned = await run(['prune', ...r, '--keep-last', '1']);
      assertNamesLoop(pruned, members, 'prune');
      assert.match(pruned.stderr, /kept every backup of volume v/, pruned.stderr);
      const listed = await run(['list', ...r]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.equal((await run(['show', ...r, '--backup', full])).code, 0);

      const left = await backupsIn(repo);
      assert.deepEqual(left.map((b) => b.id).sort(), [full, incr, newer].sort(), 'nothing was deleted and no backup was made on the loop');
      for (const b of left) assert.ok(await exists(path.join(repo, `${b.objectPrefix}_metadata`)), `the objects of ${b.id} are there`);
      assert.ok(left.every((b) => b.status === 'available'), 'no record is left restoring or deleting');
      for (const b of left) assert.ok(listed.stdout.includes(b.id), `list shows ${b.id}`);
    });
  }
});
