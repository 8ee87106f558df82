/**
 * Issue 14 (hardening), items 7-9, through the real `volume-backup` binary: control characters refused
 * on input (create, import) and escaped in every line the CLI prints; an option given twice is bad
 * usage; an explicit --parent must meet the rules of the automatic choice.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { CliResult, cliJson, runCli } from './helpers/cli';
import { listFiles, makeImage, tempDir } from './helpers/volumes';

const KiB = 1024;
/** What a terminal would act on: C0 controls (but the newline ending a line), DEL, C1, bidi overrides. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

interface Record {
  id: string;
  kind: string;
  parentId: string | null;
  dataTimestamp: string;
  name: string;
}

function assertPrintable(r: CliResult): void {
  assert.ok(!RAW_CONTROL.test(r.stdout), `raw control characters on stdout: ${JSON.stringify(r.stdout)}`);
  assert.ok(!RAW_CONTROL.test(r.stderr), `raw control characters on stderr: ${JSON.stringify(r.stderr)}`);
}

function usageError(r: CliResult, pattern: RegExp): void {
  assert.equal(r.code, 2, `exit code ${r.code}: ${r.stderr}${r.stdout}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], pattern);
}

describe('CLI hardening: control characters, repeated options, explicit parents', function () {
  this.timeout(120_000);
  let dir: string;
  let repo: string;
  let volume: string;
  const base = () => ['--chunk-size', '64K', '--block-size', '4K'];

  before(async () => {
    dir = await tempDir('cli-hardening');
    repo = path.join(dir, 'repo');
    volume = path.join(dir, 'vol.img');
    await makeImage(volume, 256 * KiB, 7, 64 * KiB);
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const records = async (r = repo) => cliJson<Record[]>(['list', '--repo', r]);

  describe('control characters', () => {
    it('create refuses C1 controls and bidi overrides in --name and --description (exit 2), and stores nothing', async () => {
      for (const [option, value] of [['--name', 'ok\u009b2Jfake'], ['--name', 'invoice\u202egnp.exe'], ['--description', 'line\u0085next'], ['--description', 'iso\u2066late'], ['--name', 'tab\there']]) {
        const r = await runCli(['create', '--repo', repo, '--volume', volume, '--volume-id', 'cc', option, value, ...base()]);
        usageError(r, new RegExp(`${option.slice(2)} contains control characters`));
        assertPrintable(r);
      }
      assert.deepEqual((await records().catch(() => [])).filter((b) => b.name !== ''), []);
    });

    it('import refuses a record whose name or host carries terminal escapes; nothing is adopted', async () => {
      const source = path.join(dir, 'import-source');
      const rec = await cliJson<Record>(['create', '--repo', source, '--volume', volume, '--volume-id', 'imp', ...base()]);
      const exported = JSON.parse(Buffer.from((await runCli(['export', '--repo', source, '--backup', rec.id])).stdout.trim(), 'base64').toString('utf8'));
      // The objects are there (a copy of the repository), only the record is missing: an import would adopt it.
      const copy = path.join(dir, 'import-copy');
      await fs.cp(source, copy, { recursive: true });
      for (const f of (await listFiles(copy)).filter((f) => f.includes('records/'))) await fs.rm(path.join(copy, f.slice(f.indexOf('records/'))), { force: true });
      for (const patch of [{ name: 'title\u001b]0;pwned\u0007' }, { description: 'clear\u009b2J' }, { host: 'h\u202eost' }, { failReason: null, sourcePath: '/dev/\u001b[2Jsda' }]) {
        const input = Buffer.from(JSON.stringify({ ...exported, record: { ...exported.record, ...patch } })).toString('base64');
        const r = await runCli(['import', '--repo', copy], { input });
        assert.ok(r.code === 1 || r.code === 2, `exit ${r.code}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /control characters/, r.stderr);
        assertPrintable(r);
        assert.deepEqual(await records(copy), [], `imported ${JSON.stringify(patch)}`);
      }
    });

    it('list, show and verify escape what a damaged or older record holds; list says it is not valid', async () => {
      const damaged = path.join(dir, 'damaged');
      const rec = await cliJson<Record>(['create', '--repo', damaged, '--volume', volume, '--volume-id', 'dmg', '--name', 'fine', ...base()]);
      const file = path.join(damaged, 'records', 'dmg', `${rec.id}.json`);
      const json = JSON.parse(await fs.readFile(file, 'utf8'));
      await fs.writeFile(file, JSON.stringify({ ...json, name: 'x\u001b[2J\u001b]0;pwned\u0007', description: '\u009b31m' }));
      const list = await runCli(['list', '--repo', damaged]);
      assertPrintable(list);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stderr, new RegExp(`warning: records/dmg/${rec.id}.json is not a valid record.*control characters`));
      for (const args of [['show', '--repo', damaged, '--backup', rec.id], ['verify', '--repo', damaged]]) {
        const r = await runCli(args);
        assertPrintable(r);
        assert.equal(r.code, 1, `${args[0]}: exit ${r.code}: ${r.stdout}${r.stderr}`);
        assert.match(r.stdout + r.stderr, /control characters/);
      }
    });

    it('an error quoting user input shows its control characters escaped, on one line', async () => {
      const r = await runCli(['create', '--repo', repo, '--volume', path.join(dir, 'no\u001b[2J\u001b]0;pwned\u0007such\u009b1m.img'), ...base()]);
      assert.equal(r.code, 1, r.stderr);
      assertPrintable(r);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.ok(r.stderr.includes('no\\u001b[2J\\u001b]0;pwned\\u0007such\\u009b1m.img'), r.stderr);
      assert.match(r.stderr, /^volume-backup create: error: volume .* does not exist/);
    });

    it('--json output stays the same JSON (escapes decode to the same text)', async () => {
      const r = await runCli(['list', '--repo', path.join(dir, 'import-source'), '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).length, 1);
    });
  });

  describe('options given twice', () => {
    for (const args of [
      ['create', '--volume-id', 'va', '--volume-id', 'vb'],
      ['create', '--volume', 'a.img', '--volume', 'b.img'],
      ['create', '--incremental', '--incremental'],
      ['list', '--json', '--json'],
      ['prune', '--keep-last', '3', '--keep-last', '1'],
      ['restore', '--backup', '0b5c7f1e-8a5e-4a57-9d43-2f8ad0c1e0a7', '--target', 'a.img', '--target=b.img'],
    ]) {
      it(`${args.join(' ')}: bad usage naming the option (exit 2), nothing written`, async () => {
        const fresh = path.join(dir, `twice-${args[0]}-${args[1]}`);
        const names = args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]);
        const option = names.find((n, i) => names.indexOf(n) !== i);
        const r = await runCli([args[0], '--repo', fresh, ...args.slice(1), ...(args[0] === 'create' && option !== '--volume' ? ['--volume', volume] : [])], { cwd: dir });
        usageError(r, new RegExp(`${option} is given more than once`));
        await assert.rejects(fs.stat(fresh), 'a repository was made');
      });
    }
    it('the repository option given twice does not pick one silently', async () => {
      const r = await runCli(['list', '--repo', repo, '--repo', path.join(dir, 'other')]);
      usageError(r, /--repo is given more than once/);
    });
  });

  describe('an explicit --parent meets the rules of the automatic choice', () => {
    let full: Record;
    let incremental: Record;
    const parentRepo = () => path.join(dir, 'parents');

    before(async () => {
      full = await cliJson<Record>(['create', '--repo', parentRepo(), '--volume', volume, '--volume-id', 'p', ...base()]);
      incremental = await cliJson<Record>(['create', '--repo', parentRepo(), '--volume', volume, '--volume-id', 'p', '--incremental']);
      assert.equal(incremental.parentId, full.id);
    });

    it('--differential --parent <an incremental> is refused; --parent <the full one> works', async () => {
      const r = await runCli(['create', '--repo', parentRepo(), '--volume', volume, '--volume-id', 'p', '--differential', '--parent', incremental.id]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`backup ${incremental.id} cannot be the parent of this differential backup: it is an incremental backup, and a differential backup is based on a full one`));
      const diff = await cliJson<Record>(['create', '--repo', parentRepo(), '--volume', volume, '--volume-id', 'p', '--differential', '--parent', full.id]);
      assert.equal(diff.kind, 'differential');
      assert.equal(diff.parentId, full.id);
      const kinds = (await records(parentRepo())).map((b) => `${b.kind}:${b.parentId ?? '-'}`);
      assert.deepEqual(kinds.sort(), [`differential:${full.id}`, 'full:-', `incremental:${full.id}`].sort(), 'the refused backup left a record');
    });

    it('--from-snapshot at 07:00 with --parent a backup of 07:30 is refused; with --parent one of 06:00 it works', async () => {
      const day = new Date(Date.now() - 24 * 3600_000).toISOString().slice(0, 10);
      const at = (hhmm: string) => `${day}T${hhmm}:00.000Z`;
      const snap = (time: string, id: string, ...extra: string[]) =>
        ['create', '--repo', parentRepo(), '--volume-id', 'snapvol', '--from-snapshot', volume, '--snapshot-id', id, '--snapshot-time', at(time), ...base(), ...extra];
      const six = await cliJson<Record>(snap('06:00', 's6'));
      const half = await cliJson<Record>(snap('07:30', 's730', '--incremental'));
      assert.equal(half.parentId, six.id);
      const r = await runCli(snap('07:00', 's7', '--incremental', '--parent', half.id));
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`backup ${half.id} cannot be the parent .*its data time ${at('07:30')} is not earlier than the snapshot's ${at('07:00')}`));
      const ok = await cliJson<Record>(snap('07:00', 's7', '--incremental', '--parent', six.id));
      assert.equal(ok.parentId, six.id);
      assert.equal(ok.dataTimestamp, at('07:00'));
    });

    it('--parent of another volume is refused', async () => {
      const r = await runCli(['create', '--repo', parentRepo(), '--volume', volume, '--volume-id', 'other', '--incremental', '--parent', full.id]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`parent ${full.id} is not a backup of volume other`));
    });
  });
});
