/**
 * Memory bench (issue 15): peak RSS and repository growth of this project's CLI on a large thin
 * (sparse) image: full, incremental after 640 KiB changed, differential, restore, verify --read-data.
 *
 *   node dist/bench/memory.js [--size 64G] [--data 256M] [--work DIR] [--results DIR]
 *
 * The image is a sparse file (truncate) with `--data` bytes of random data in 1 MiB pieces spread over
 * it; the change is ten 64 KiB writes at 4 KiB-aligned offsets spread over the volume. Every step is a
 * child process measured by bench/measure.ts (GNU time's maximum RSS). Writes bench/results/scale-<size>.md
 * and .json. Not a unit test: it reads the whole volume (until sparse files are read with SEEK_DATA).
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Prng } from '../test/helpers/volumes';
import { Measured, dirBytes, measure } from './measure';

const KiB = 1024;
const MiB = 1024 * KiB;

function parseSize(text: string): number {
  const m = /^(\d+)([KMGT]?)$/i.exec(text);
  if (!m) throw new Error(`not a size: ${text} (e.g. 64G)`);
  return Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
}

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

interface Step {
  step: string;
  wallSeconds: number;
  peakRssMiB: number | null;
  repoAddedBytes: number;
}

async function main(): Promise<void> {
  const sizeText = option('--size', '64G');
  const size = parseSize(sizeText);
  const data = parseSize(option('--data', '256M'));
  const work = option('--work', path.join(os.tmpdir(), 'volume-backup-scale'));
  const results = option('--results', path.join(__dirname, '../../bench/results'));
  const cli = path.join(__dirname, 'cli-entry.js');
  await fs.rm(work, { recursive: true, force: true });
  await fs.mkdir(work, { recursive: true });
  const img = path.join(work, 'thin.img');
  const repo = path.join(work, 'repo');
  const prng = new Prng(15);

  const pieces = Math.max(1, Math.round(data / MiB));
  const stride = Math.floor(size / pieces / MiB) * MiB;
  const h = await fs.open(img, 'w');
  try {
    await h.truncate(size);
    for (let k = 0; k < pieces; k++) await h.write(prng.fill(Buffer.alloc(MiB)), 0, MiB, k * stride);
  } finally {
    await h.close();
  }

  const steps: Step[] = [];
  const run = async (step: string, args: string[]): Promise<Measured> => {
    const before = await dirBytes(repo);
    const m = await measure(process.execPath, [cli, ...args, '--repo', repo, '--progress', 'none', '--json']);
    steps.push({ step, wallSeconds: m.wallSeconds, peakRssMiB: m.peakRssBytes === null ? null : Math.round((m.peakRssBytes / MiB) * 10) / 10, repoAddedBytes: (await dirBytes(repo)) - before });
    console.log(JSON.stringify(steps[steps.length - 1]));
    return m;
  };
  await measure(process.execPath, [cli, 'init', '--repo', repo]);
  await run('full', ['create', '--volume', img, '--volume-id', 'scale']);
  const change = async (seed: number): Promise<void> => {
    const p = new Prng(seed);
    const f = await fs.open(img, 'r+');
    try {
      for (let k = 0; k < 10; k++) await f.write(p.fill(Buffer.alloc(64 * KiB)), 0, 64 * KiB, Math.floor((k * size) / 10 / (4 * KiB)) * 4 * KiB + 4 * KiB * (1 + p.int(1024)));
    } finally {
      await f.close();
    }
  };
  await change(1);
  const incr = await run('incremental (640 KiB changed)', ['create', '--volume', img, '--volume-id', 'scale', '--incremental']);
  await change(2);
  await run('differential (1280 KiB changed)', ['create', '--volume', img, '--volume-id', 'scale', '--differential']);
  const target = path.join(work, 'restored.img');
  await run('restore (incremental, new sparse target)', ['restore', '--backup', (JSON.parse(incr.stdout) as { id: string }).id, '--target', target]);
  await fs.rm(target, { force: true });
  await run('verify --read-data (3 backups)', ['verify', '--read-data']);

  const md = [
    `# Scale bench: ${sizeText} thin image, ${pieces} MiB of data`,
    '',
    `${new Date().toISOString()}, ${os.cpus().length} cores, node ${process.version}. Default chunk (8 MiB) and block (32 KiB) sizes, zstd, posix repository.`,
    '',
    '| step | wall s | peak RSS MiB | repository grew by |',
    '|---|---:|---:|---:|',
    ...steps.map((s) => `| ${s.step} | ${s.wallSeconds.toFixed(1)} | ${s.peakRssMiB ?? '?'} | ${s.repoAddedBytes.toLocaleString('en')} B |`),
    '',
  ].join('\n');
  await fs.mkdir(results, { recursive: true });
  await fs.writeFile(path.join(results, `scale-${sizeText}.md`), md);
  await fs.writeFile(path.join(results, `scale-${sizeText}.json`), JSON.stringify({ size, data: pieces * MiB, steps }, null, 2) + '\n');
  console.log(md);
  await fs.rm(work, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
