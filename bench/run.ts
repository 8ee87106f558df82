/**
 * `npm run bench`: this project against borg and restic on the same generated volume image, in one run.
 * Options:
 *   --size 1G|4G|BYTES   image size (default 1G)
 *   --quick              64 MiB image, one run, no peers/trade-offs/S3 unless asked (a CI smoke run)
 *   --no-peers           skip borg and restic        --no-tradeoffs   skip the chunk/block/compression table
 *   --no-s3              skip the S3 part            --no-loop        skip the in-process event-loop probe
 *   --repeat N           run the comparison N times and report each step's median run (default 3; quick: 1)
 *   --warm               `sync` and read each input before its step   --cold   `sync` and drop the cache (root)
 *                        default: the page cache as it is, as when a user runs the commands one after another
 *   --scale / --no-scale the scale part (bench/scale.ts: 64 GiB sparse, 1 TiB thin, catalog); default on, not quick
 *   --extents / --no-extents  changed-extent incrementals on loop-mounted btrfs and XFS, 2 GiB (bench/extents.ts;
 *                        root); default on, not quick; results in extents.md / extents.json
 *   --work DIR           scratch directory (default $TMPDIR/volume-backup-bench)
 *   --results DIR        where latest.md / latest.svg / latest.json go (default bench/results; quick: DIR/results)
 *   --seed N             image seed (default 1)           --no-install   never apt-get install missing peers
 */
import { spawnSync } from 'child_process';
import { existsSync, promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MIB, applyChange, fileSha256, generateImage } from './image';
import { measureLimits, measureRestoreLimits } from './limits';
import { Measured, PageCache, commandExists, dirBytes, measure } from './measure';
import { LoopRow, OpResult, Report, Variant, toMarkdown, toSvg } from './report';
import { runS3Bench } from './s3';
import { runScale } from './scale';
import { OursSettings, Tool, borg, ours, restic } from './tools';

interface Options {
  size: number;
  quick: boolean;
  peers: boolean;
  tradeoffs: boolean;
  s3: boolean;
  loop: boolean;
  repeat: number;
  cache: 'as-is' | 'warm' | 'cold';
  scale: boolean;
  extents: boolean;
  work: string;
  results: string | null;
  seed: number;
  install: boolean;
}

export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(text.trim());
  if (!m) throw new Error(`--size ${text}: use e.g. 1G, 4G, 64M or a number of bytes`);
  const unit = { '': 1, k: 1024, m: MIB, g: 1024 * MIB, t: 1024 * 1024 * MIB }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * unit);
}

export function parseOptions(argv: string[]): Options {
  const has = (flag: string) => argv.includes(flag);
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    if (i < 0) return undefined;
    if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
    return argv[i + 1];
  };
  const known = new Set(['--size', '--quick', '--no-peers', '--peers', '--no-tradeoffs', '--tradeoffs', '--no-s3', '--s3', '--no-loop', '--repeat', '--cold', '--warm', '--scale', '--no-scale', '--extents', '--no-extents', '--work', '--results', '--seed', '--no-install']);
  for (let i = 0; i < argv.length; i++) {
    if (!known.has(argv[i])) throw new Error(`unknown option ${argv[i]} (see the header of bench/run.ts)`);
    if (['--size', '--repeat', '--work', '--results', '--seed'].includes(argv[i])) i++;
  }
  const quick = has('--quick');
  const size = parseSize(value('--size') ?? (quick ? '64M' : '1G'));
  const work = path.resolve(value('--work') ?? path.join(os.tmpdir(), 'volume-backup-bench'));
  return {
    size,
    quick,
    peers: has('--peers') || (!quick && !has('--no-peers')),
    tradeoffs: has('--tradeoffs') || (!quick && !has('--no-tradeoffs')),
    s3: has('--s3') || (!quick && !has('--no-s3')),
    loop: !has('--no-loop'),
    repeat: Math.max(1, Number(value('--repeat') ?? (quick ? 1 : 3))),
    cache: has('--cold') ? 'cold' : has('--warm') ? 'warm' : 'as-is',
    scale: has('--scale') || (!quick && !has('--no-scale')),
    extents: has('--extents') || (!quick && !has('--no-extents')),
    work,
    results: value('--results') ?? (quick ? path.join(work, 'results') : null),
    seed: Number(value('--seed') ?? 1),
    install: !has('--no-install'),
  };
}

function repoRoot(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'bench'))) return dir;
  }
  return process.cwd();
}

const log = (line: string): void => { process.stderr.write(`[bench] ${line}\n`); };

/** borg, restic, zstd and GNU time come from Debian; install what is missing when we may. */
function ensurePackages(options: Options): void {
  const wanted: [string, string][] = [['zstd', 'zstd'], ['/usr/bin/time', 'time']];
  if (options.peers) wanted.push(['borg', 'borgbackup'], ['restic', 'restic']);
  const missing = wanted.filter(([cmd]) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status !== 0).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  if (!options.install || process.getuid?.() !== 0) {
    log(`missing Debian packages ${missing.join(' ')}: run apt-get install ${missing.join(' ')} as root (they are skipped)`);
    return;
  }
  log(`installing ${missing.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    r = spawnSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env });
  }
  if (r.status !== 0) log('apt-get install failed: the missing tools are skipped');
}

interface Image {
  dir: string;
  base: string;
  changed: string;
  baseSha: string;
  changedSha: string;
  changedBytes: number;
}

/** The base image and its changed copy, generated once per size and seed and reused by later runs. */
async function prepareImages(options: Options): Promise<Image> {
  const dir = path.join(options.work, 'images');
  await fs.mkdir(dir, { recursive: true });
  const tag = `${options.size}-s${options.seed}`;
  const base = path.join(dir, `base-${tag}.img`);
  const changed = path.join(dir, `changed-${tag}.img`);
  const sidecar = path.join(dir, `${tag}.json`);
  const known = await fs.readFile(sidecar, 'utf8').then((s) => JSON.parse(s) as Omit<Image, 'dir' | 'base' | 'changed'>, () => null);
  if (known && existsSync(base) && existsSync(changed) && (await fs.stat(base)).size === options.size) {
    return { dir, base, changed, ...known };
  }
  log(`generating the ${(options.size / MIB).toFixed(0)} MiB image (seed ${options.seed})`);
  const baseSha = await generateImage(base, options.size, options.seed);
  await fs.copyFile(base, changed);
  const changedBytes = await applyChange(changed, options.size, options.seed);
  const changedSha = await fileSha256(changed);
  await fs.writeFile(sidecar, JSON.stringify({ baseSha, changedSha, changedBytes }));
  return { dir, base, changed, baseSha, changedSha, changedBytes };
}

/** Every run of a step, by tool and operation: the report takes the median run (the middle one of 3). */
const collect = (runs: Map<string, OpResult[]>, r: OpResult): void => {
  const key = `${r.tool}/${r.operation}`;
  runs.set(key, [...(runs.get(key) ?? []), r]);
};

function medianRuns(runs: Map<string, OpResult[]>): OpResult[] {
  return [...runs.values()].map((list) => {
    const sorted = [...list].sort((a, b) => a.wallSeconds - b.wallSeconds);
    const median = sorted[(sorted.length - 1) >> 1];
    // A restore counts as verified only when every run of it was.
    const range: [number, number] | undefined = list.length > 1 ? [sorted[0].wallSeconds, sorted[sorted.length - 1].wallSeconds] : undefined;
    return { ...median, verified: median.verified !== undefined ? list.every((r) => r.verified) : undefined, range };
  });
}

const asResult = (tool: string, operation: OpResult['operation'], m: Measured): OpResult => ({
  tool, operation, wallSeconds: m.wallSeconds, cpuSeconds: m.cpuSeconds, peakRssBytes: m.peakRssBytes,
  diskReadBytes: m.diskReadBytes, diskWriteBytes: m.diskWriteBytes,
});

/**
 * Full, incremental (after the 1% change, in place) and restore for every tool, as a user runs them:
 * one tool's three commands one after another, then the next tool's, each on a fresh copy of the base
 * image (written just before, so cached as a user's freshly made image is, and flushed with the
 * previous tool's leftovers before the first step). The tools also take turns at going first.
 */
async function compare(tools: Tool[], image: Image, options: Options, cache: PageCache): Promise<OpResult[]> {
  const runs = new Map<string, OpResult[]>();
  for (let rep = 0; rep < options.repeat; rep++) {
    const runDir = path.join(options.work, 'run');
    await fs.rm(runDir, { recursive: true, force: true });
    const order = tools.map((_, i) => tools[(i + rep) % tools.length]);
    for (const t of order) {
      const dataDir = path.join(runDir, `data-${t.name}`);
      await fs.mkdir(dataDir, { recursive: true });
      const volume = path.join(dataDir, 'vol.img');
      await fs.copyFile(image.base, volume);
      const repo = path.join(runDir, `repo-${t.name}`);
      await t.init(repo);
      // The bench's own copy of the image and what the previous tool left dirty (borg and restic write
      // their restores through the page cache without fsync: a GiB each) are written back before this
      // tool starts: otherwise whichever tool runs when the kernel flushes them pays for it (a restore
      // here took 2.5 s instead of 1.4 s while 2 GiB of another's write-back went to the same disk).
      // Within the tool's three steps nothing is flushed: each pays for what its own steps left.
      spawnSync('sync');
      await cache.prepare([volume]);
      log(`${t.name}: full backup`);
      const full = await t.full(repo, dataDir, 'vol.img');
      const stored = await dirBytes(repo);
      log(`${t.name}: full backup took ${full.wallSeconds.toFixed(2)} s`);
      collect(runs, { ...asResult(t.name, 'full', full), storedBytes: stored });
      await applyChange(volume, options.size, options.seed);
      await cache.prepare([volume]);
      log(`${t.name}: incremental backup`);
      const incr = await t.incremental(repo, dataDir, 'vol.img');
      const after = await dirBytes(repo);
      log(`${t.name}: incremental backup took ${incr.wallSeconds.toFixed(2)} s`);
      collect(runs, { ...asResult(t.name, 'incremental', incr), storedBytes: after, addedBytes: after - stored });
      const out = path.join(runDir, `out-${t.name}`);
      await fs.mkdir(out, { recursive: true });
      await cache.prepare([repo]);
      log(`${t.name}: restore`);
      const { measured, file } = await t.restore(repo, out, dataDir, 'vol.img');
      const sha = await fileSha256(file).catch(() => 'missing');
      if (sha !== image.changedSha) log(`${t.name}: the restored image ${file} does NOT match the source (${sha})`);
      log(`${t.name}: restore took ${measured.wallSeconds.toFixed(2)} s`);
      collect(runs, { ...asResult(t.name, 'restore', measured), verified: sha === image.changedSha });
      // What a tool leaves behind stays (its repository, its restored file) until the round ends.
    }
  }
  return medianRuns(runs);
}

/** The same three steps for this project only, with other chunk/block/compression settings. */
async function tradeoffs(bin: string, image: Image, options: Options, cache: PageCache): Promise<Variant[]> {
  const variants: [string, OursSettings][] = [
    ['default (chunk 8M, block 32K, zstd)', {}],
    ['chunk 4M', { chunkSize: '4M' }],
    ['chunk 16M', { chunkSize: '16M' }],
    ['block 16K', { blockSize: '16K' }],
    ['block 64K', { blockSize: '64K' }],
    ['zstd level 3', { compression: 'zstd', level: 3 }],
    ['zstd level -5 (fast)', { compression: 'zstd', level: -5 }],
    ['zlib level 1', { compression: 'zlib', level: 1 }],
    ['no compression', { compression: 'none' }],
  ];
  const out: Variant[] = [];
  for (const [label, settings] of variants) {
    const tool = ours(bin, settings);
    const repo = path.join(options.work, 'variant-repo');
    const target = path.join(options.work, 'variant-out', 'vol.img');
    await fs.rm(repo, { recursive: true, force: true });
    await fs.rm(path.dirname(target), { recursive: true, force: true });
    await fs.mkdir(path.dirname(target), { recursive: true });
    log(`trade-off: ${label}`);
    try {
      await cache.prepare([image.base]);
      const full = await tool.full(repo, image.dir, path.basename(image.base));
      const stored = await dirBytes(repo);
      await cache.prepare([image.changed]);
      const incr = await tool.incremental(repo, image.dir, path.basename(image.changed));
      const after = await dirBytes(repo);
      await cache.prepare([repo]);
      const { measured, file } = await tool.restore(repo, path.dirname(target), image.dir, 'vol.img');
      const ok = (await fileSha256(file)) === image.changedSha;
      out.push({
        label,
        full: { ...asResult('volume-backup', 'full', full), storedBytes: stored },
        incremental: { ...asResult('volume-backup', 'incremental', incr), addedBytes: after - stored },
        restore: { ...asResult('volume-backup', 'restore', measured), verified: ok },
      });
      if (!ok) log(`trade-off ${label}: restore does NOT match`);
    } catch (err) {
      log(`trade-off ${label} failed: ${(err as Error).message}`);
    }
  }
  await fs.rm(path.join(options.work, 'variant-repo'), { recursive: true, force: true });
  await fs.rm(path.join(options.work, 'variant-out'), { recursive: true, force: true });
  return out;
}

async function loopProbe(image: Image, options: Options): Promise<LoopRow[]> {
  const dir = path.join(options.work, 'loop');
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  try {
    const m = await measure(process.execPath, [path.join(__dirname, 'loop-probe.js'), path.join(dir, 'repo'), image.base, path.join(dir, 'restored.img')]);
    return JSON.parse(m.stdout) as LoopRow[];
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.cpus().length} x ${cpu.trim()}, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}, load average ${os.loadavg()[0].toFixed(1)} at start`;
}

export async function runBench(argv: string[]): Promise<Report> {
  const options = parseOptions(argv);
  await fs.mkdir(options.work, { recursive: true });
  ensurePackages(options);
  const cache = new PageCache(options.cache);
  const bin = path.join(repoRoot(), 'bin', 'volume-backup.js');
  const started = machine();
  const image = await prepareImages(options);

  const candidates: Tool[] = [ours(bin)];
  if (options.peers) candidates.push(borg(path.join(options.work, 'borg-home')), restic(path.join(options.work, 'restic-cache')));
  const skipped: string[] = [];
  const tools = candidates.filter((t) => {
    const why = t.unavailable();
    if (why) skipped.push(why);
    return !why;
  });

  log('machine limits');
  const limits = await measureLimits(image.base, options.work);
  const results = await compare(tools, image, options, cache);
  if (tools.some((t) => t.name === 'volume-backup')) Object.assign(limits, await measureRestoreLimits(bin, path.join(options.work, 'run'), log));
  const loop = options.loop ? await loopProbe(image, options) : [];
  const variants = options.tradeoffs ? await tradeoffs(bin, image, options, cache) : [];
  const s3 = options.s3 ? await runS3Bench(repoRoot(), options.work, Math.min(options.size, 256 * MIB), log, options.repeat) : { rows: [], note: undefined };
  await fs.rm(path.join(options.work, 'run'), { recursive: true, force: true });
  const scale = options.scale ? await runScale({ bin, work: options.work, borg: options.peers && commandExists('borg'), log }) : undefined;

  const report: Report = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    machine: started,
    imageBytes: options.size,
    imageDescription: `seed ${options.seed}, MiB regions 25% zero / 35% random / 40% text-like`,
    changedBytes: image.changedBytes,
    cache: { 'as-is': 'as it is (nothing between the commands but the 1% change, as a user runs them)', cold: 'dropped before every step (cold), `sync` before every step', warm: 'warm (each input read just before its step), `sync` before every step' }[cache.mode],
    repeat: options.repeat,
    tools: tools.map((t) => ({ name: t.name, description: t.describe() })),
    skipped,
    results,
    limits,
    variants,
    loop,
    s3: s3.rows,
    s3Note: s3.note,
    scale,
  };
  const markdown = toMarkdown(report);
  process.stdout.write(markdown + '\n');
  const resultsDir = options.results ?? path.join(repoRoot(), 'bench', 'results');
  await fs.mkdir(resultsDir, { recursive: true });
  await fs.writeFile(path.join(resultsDir, 'latest.md'), markdown);
  await fs.writeFile(path.join(resultsDir, 'latest.svg'), toSvg(report));
  await fs.writeFile(path.join(resultsDir, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
  log(`results written to ${resultsDir}`);
  if (!options.quick) await (await import('./catalog')).writeCatalogResults(options.work, resultsDir, options.s3, log);
  if (options.extents) {
    const { runExtentsBench, extentsMarkdown } = await import('./extents');
    const extents = await runExtentsBench({ size: 2048 * MIB, work: options.work, seed: options.seed, log });
    await fs.writeFile(path.join(resultsDir, 'extents.md'), extentsMarkdown(extents.rows, extents.note));
    await fs.writeFile(path.join(resultsDir, 'extents.json'), JSON.stringify({ date: report.date, ...extents }, null, 2) + '\n');
  }
  return report;
}

if (require.main === module) {
  runBench(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  });
}
