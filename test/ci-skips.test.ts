/**
 * The CI skip check (test/helpers/ci-skips.ts): mocha, run as CI runs it, on a fixture with one kind of
 * skipped test each, must fail the run and name the test; allowlisted skips and runs outside CI pass.
 */
import { strict as assert } from 'assert';
import { execFile } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import { tempDir } from './helpers/volumes';

const MOCHA = require.resolve('mocha/bin/mocha.js');
const HOOK = path.join(__dirname, 'helpers', 'ci-skips.js');
const FIXTURE = path.join(__dirname, 'fixtures', 'ci-skips', 'skips.fixture.js');

interface Run {
  code: number;
  output: string;
}

function mocha(env: NodeJS.ProcessEnv): Promise<Run> {
  const clean = { ...process.env };
  delete clean.CI;
  delete clean.CI_SKIP_ALLOWLIST_FILE;
  return new Promise((resolve) => {
    execFile(process.execPath, [MOCHA, '--no-config', '--reporter', 'spec', '--require', HOOK, FIXTURE], { env: { ...clean, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, output: stdout + stderr });
    });
  });
}

describe('CI fails on skipped tests that are not allowlisted', function () {
  this.timeout(60_000);

  const cases: [string, string[]][] = [
    ['it.skip', ['fixture is skipped with it.skip']],
    ['pending', ['fixture is pending (no function)']],
    ['this.skip', ['fixture skips itself']],
    ['before', ['fixture a suite whose before hook skips never runs', 'fixture a suite whose before hook skips nested never runs either']],
    ['describe.skip', ['fixture a skipped suite never runs']],
  ];
  for (const [kind, titles] of cases) {
    it(`${kind}: the run fails and names every skipped test`, async () => {
      const run = await mocha({ CI: 'true', FIXTURE_SKIP: kind });
      assert.notEqual(run.code, 0, run.output);
      assert.match(run.output, new RegExp(`CI=true, and ${titles.length} test\\(s\\) were skipped or pending`), run.output);
      for (const title of titles) assert.ok(run.output.includes(`  - ${title}\n`), `${title} is not listed:\n${run.output}`);
    });
  }

  it('nothing skipped: the run passes', async () => {
    const run = await mocha({ CI: 'true', FIXTURE_SKIP: 'none' });
    assert.equal(run.code, 0, run.output);
  });

  it('outside CI a skip passes (a developer may lack a tool)', async () => {
    const run = await mocha({ FIXTURE_SKIP: 'before' });
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /2 pending/);
  });

  it('an allowlisted skip passes in CI; the allowlist matches whole titles only', async () => {
    const dir = await tempDir('ci-skips');
    try {
      const file = path.join(dir, 'allow.json');
      await fs.writeFile(file, JSON.stringify([{ title: 'fixture is skipped with it.skip', reason: 'the fixture' }]));
      assert.equal((await mocha({ CI: 'true', FIXTURE_SKIP: 'it.skip', CI_SKIP_ALLOWLIST_FILE: file })).code, 0);
      await fs.writeFile(file, JSON.stringify([{ title: 'fixture is skipped', reason: 'a prefix is not the title' }]));
      assert.notEqual((await mocha({ CI: 'true', FIXTURE_SKIP: 'it.skip', CI_SKIP_ALLOWLIST_FILE: file })).code, 0);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('every allowlist entry gives a reason', async () => {
    const { CI_SKIP_ALLOWLIST } = await import('./ci-skip-allowlist');
    for (const entry of CI_SKIP_ALLOWLIST) assert.ok(entry.reason.length > 10, `no reason for ${String(entry.title)}`);
  });
});
