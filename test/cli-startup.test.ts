/**
 * CLI start-up: a command loads only what it runs. `--help` (and bad usage) must not load the
 * repository code with zod, the worker pool or the progress bar, which cost ~0.12 s of CPU on every
 * run; a backup loads the engine but not the snapshot providers it is not asked for.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CLI } from './helpers/cli';

/** Runs the CLI in a real process; returns the packages and project modules it had loaded at exit. */
function loadedBy(args: string[]): { status: number | null; packages: string[]; modules: string[] } {
  const probe = `
    process.on('exit', () => {
      const files = Object.keys(require.cache);
      const packages = [...new Set(files.map((f) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(f)?.[1]).filter(Boolean))];
      const modules = files.filter((f) => !f.includes('node_modules')).map((f) => f.replace(/.*\\/dist\\//, ''));
      require('fs').writeSync(3, JSON.stringify({ packages, modules }));
    });
    process.argv.splice(1, 0, ${JSON.stringify(CLI)});
    require(${JSON.stringify(CLI)});
  `;
  const r = spawnSync(process.execPath, ['-e', probe, '--', ...args], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], encoding: 'utf8' });
  const out = JSON.parse((r.output[3] as string) || '{"packages":[],"modules":[]}') as { packages: string[]; modules: string[] };
  return { status: r.status, ...out };
}

describe('CLI start-up loads only what a command runs', function () {
  this.timeout(60_000);

  it('--help loads neither zod nor piscina nor cli-progress nor the engine', () => {
    const r = loadedBy(['--help']);
    assert.equal(r.status, 0);
    assert.deepEqual(r.packages, []);
    // The light modules main needs (hash-pool's close, prune's duration parser) may load; the engine may not.
    const heavy = ['lib/open.js', 'lib/repository/repository.js', 'lib/repository/format.js', 'lib/engine/backup.js', 'lib/engine/restore.js', 'lib/engine/verify.js'];
    assert.deepEqual(r.modules.filter((m) => heavy.includes(m)), []);
  });

  it('a usage error (create --help, unknown option) loads no engine either', () => {
    for (const args of [['create', '--help'], ['restore', '--bogus']]) {
      const r = loadedBy(args);
      assert.ok(r.status === 0 || r.status === 2, `${args.join(' ')} exited with ${r.status}`);
      assert.deepEqual(r.packages, [], args.join(' '));
    }
  });

  it('a backup loads the engine and the worker pool, not the snapshot providers nor the progress bar', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cli-startup-'));
    try {
      await fs.writeFile(path.join(dir, 'vol.img'), Buffer.alloc(64 * 1024, 7));
      const r = loadedBy(['create', '--repo', path.join(dir, 'repo'), '--volume', path.join(dir, 'vol.img'), '--volume-id', 'v', '--json']);
      assert.equal(r.status, 0);
      assert.ok(r.packages.includes('zod') && r.packages.includes('piscina'), r.packages.join(', '));
      assert.ok(!r.packages.includes('cli-progress'), 'cli-progress is loaded without a terminal');
      assert.deepEqual(r.modules.filter((m) => m.includes('lib/snapshot') || m.includes('snapshot-backup')), []);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
