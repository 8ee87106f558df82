/**
 * The scale part of `npm run bench` (issue 15 part 5): this project's CLI on a 64 GiB sparse image
 * (256 MiB of data) and a 1 TiB thin image (256 MiB of data), full backup, incremental after a small
 * change, restore; borg on the 64 GiB image in the same run. Every step is a whole CLI process (wall,
 * CPU, peak RSS, disk bytes). The 10,000-record catalog is bench/catalog.ts, which run.ts runs beside it.
 */
import { existsSync, promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MIB, RandomBytes, generateImage } from './image';
import { Measured, dirBytes } from './measure';
import { borg, ours } from './tools';

const GIB = 1024 * MIB;
/** Data regions of this size, spread evenly over the image (the rest is holes). */
const REGION = 4 * MIB;
const DATA_BYTES = 256 * MIB;
/** The small change: 64 KiB writes, half inside data regions, half into holes (new data). */
const CHANGE_WRITE = 64 * 1024;
const CHANGE_WRITES = 32;

export interface ScaleStep {
  wallSeconds: number;
  cpuSeconds: number | null;
  peakRssBytes: number | null;
  diskReadBytes?: number;
}

export interface ScaleRow {
  image: string;
  tool: string;
  full?: ScaleStep & { storedBytes: number };
  incremental?: ScaleStep & { addedBytes: number; changedBytes: number };
  restore?: ScaleStep & { allocatedBytes: number; dataEqual: boolean };
  /** Why a step did not run or failed. */
  note?: string;
}

export interface ScaleReport {
  rows: ScaleRow[];
}

export interface ScaleOptions {
  bin: string;
  work: string;
  borg: boolean;
  log: (line: string) => void;
  /** Image sizes to run (default 64 GiB and 1 TiB). */
  sizes?: number[];
  /** Set when the 64 GiB restore filled its holes: the 1 TiB restore would write a terabyte. */
  skipHugeRestore?: boolean;
}

const step = (m: Measured): ScaleStep => ({ wallSeconds: m.wallSeconds, cpuSeconds: m.cpuSeconds, peakRssBytes: m.peakRssBytes, diskReadBytes: m.diskReadBytes });

/** Offsets of the data regions of an image of `size` bytes (evenly spread, MiB-aligned). */
export function regionOffsets(size: number): number[] {
  const count = DATA_BYTES / REGION;
  const stride = Math.floor(size / count / MIB) * MIB;
  return Array.from({ length: count }, (_, i) => i * stride);
}

/** Offsets of the change's writes: one inside each of the first regions, one in the hole after each. */
function changeOffsets(size: number): number[] {
  const regions = regionOffsets(size);
  const half = CHANGE_WRITES / 2;
  const out: number[] = [];
  for (let i = 0; i < half; i++) {
    const r = regions[Math.floor((i * regions.length) / half)];
    out.push(r + MIB, r + REGION + 16 * MIB);
  }
  return out;
}

/** A sparse image: `size` bytes of holes with DATA_BYTES of the bench's data (256 MiB image) in regions. */
async function makeSparseImage(file: string, size: number, source: string): Promise<void> {
  const src = await fs.open(source, 'r');
  const dst = await fs.open(file, 'w');
  try {
    await dst.truncate(size);
    const buf = Buffer.allocUnsafe(REGION);
    let from = 0;
    for (const offset of regionOffsets(size)) {
      await src.read(buf, 0, REGION, from);
      await dst.write(buf, 0, REGION, offset);
      from += REGION;
    }
  } finally {
    await src.close();
    await dst.close();
  }
}

async function applySmallChange(file: string, size: number): Promise<number> {
  const random = new RandomBytes(`scale-change:${size}`);
  const handle = await fs.open(file, 'r+');
  try {
    for (const offset of changeOffsets(size)) await handle.write(random.next(CHANGE_WRITE), 0, CHANGE_WRITE, offset);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return CHANGE_WRITES * CHANGE_WRITE;
}

/**
 * The restored image equals the source where the source has data (its regions and the change) and
 * is no larger on disk than they are, so the holes stayed holes (or zeros the restore checked).
 * Reading 64 GiB of holes twice to hash them would take longer than the backups measured.
 */
async function sameData(a: string, b: string, size: number): Promise<boolean> {
  const [ha, hb] = [await fs.open(a, 'r'), await fs.open(b, 'r')];
  try {
    if ((await hb.stat()).size !== size) return false;
    const ba = Buffer.allocUnsafe(REGION);
    const bb = Buffer.allocUnsafe(REGION);
    const spans = [...regionOffsets(size).map((o) => [o, REGION]), ...changeOffsets(size).map((o) => [o, CHANGE_WRITE])];
    for (const [offset, length] of spans) {
      await ha.read(ba, 0, length, offset);
      await hb.read(bb, 0, length, offset);
      if (!ba.subarray(0, length).equals(bb.subarray(0, length))) return false;
    }
    return true;
  } finally {
    await ha.close();
    await hb.close();
  }
}

async function allocated(file: string): Promise<number> {
  return (await fs.stat(file)).blocks * 512;
}

async function runOne(label: string, size: number, opts: ScaleOptions, source: string): Promise<ScaleRow[]> {
  const dir = path.join(opts.work, 'scale', label.replace(/\W+/g, '-'));
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  const volume = path.join(dir, 'vol.img');
  await makeSparseImage(volume, size, source);
  const tools = [ours(opts.bin), ...(opts.borg && size <= 64 * GIB ? [borg(path.join(opts.work, 'borg-home'))] : [])];
  const rows: ScaleRow[] = tools.map((t) => ({ image: label, tool: t.name }));
  // Every tool backs up the same base image, then the same changed image (changed once, after all fulls).
  const repos = tools.map((t) => path.join(dir, `repo-${t.name}`));
  for (const [i, t] of tools.entries()) {
    try {
      await t.init(repos[i]);
      opts.log(`scale ${label}: ${t.name} full backup`);
      const m = await t.full(repos[i], dir, 'vol.img');
      rows[i].full = { ...step(m), storedBytes: await dirBytes(repos[i]) };
    } catch (err) {
      rows[i].note = `full failed: ${(err as Error).message.slice(0, 300)}`;
    }
  }
  const changedBytes = await applySmallChange(volume, size);
  for (const [i, t] of tools.entries()) {
    if (!rows[i].full) continue;
    try {
      opts.log(`scale ${label}: ${t.name} incremental backup`);
      const m = await t.incremental(repos[i], dir, 'vol.img');
      rows[i].incremental = { ...step(m), addedBytes: (await dirBytes(repos[i])) - rows[i].full!.storedBytes, changedBytes };
    } catch (err) {
      rows[i].note = `incremental failed: ${(err as Error).message.slice(0, 300)}`;
    }
  }
  for (const [i, t] of tools.entries()) {
    if (!rows[i].incremental) continue;
    const out = path.join(dir, `out-${t.name}`);
    if (size > 64 * GIB && opts.skipHugeRestore) {
      rows[i].note = 'restore skipped: the 64 GiB restore filled its holes, this one would write the whole image';
      continue;
    }
    await fs.mkdir(out, { recursive: true });
    try {
      opts.log(`scale ${label}: ${t.name} restore`);
      const { measured, file } = await t.restore(repos[i], out, dir, 'vol.img');
      rows[i].restore = { ...step(measured), allocatedBytes: await allocated(file), dataEqual: await sameData(volume, file, size) };
      await fs.rm(out, { recursive: true, force: true });
      // A restore that filled the holes would fill the 1 TiB image too: stop before that one.
      if (t.name === 'volume-backup' && rows[i].restore!.allocatedBytes > 4 * DATA_BYTES) opts.skipHugeRestore = true;
    } catch (err) {
      rows[i].note = `restore failed: ${(err as Error).message.slice(0, 300)}`;
    }
  }
  await fs.rm(dir, { recursive: true, force: true });
  return rows;
}

export async function runScale(opts: ScaleOptions): Promise<ScaleReport> {
  const images = path.join(opts.work, 'images');
  await fs.mkdir(images, { recursive: true });
  const source = path.join(images, 'scale-data-256m.img');
  if (!existsSync(source) || (await fs.stat(source)).size !== DATA_BYTES) await generateImage(source, DATA_BYTES, 5);
  const rows: ScaleRow[] = [];
  for (const size of opts.sizes ?? [64 * GIB, 1024 * GIB]) {
    const label = size >= 1024 * GIB ? `${size / (1024 * GIB)} TiB thin` : `${size / GIB} GiB sparse`;
    rows.push(...(await runOne(label, size, opts, source)));
  }
  return { rows };
}

/** `node dist/bench/scale.js [--size 64G] [--no-peers] [--work DIR]`: the scale part alone. */
if (require.main === module) {
  const argv = process.argv.slice(2);
  const value = (flag: string) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined);
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- bench/run imports this module: required here, when it runs, to avoid an import cycle
  const { parseSize } = require('./run') as typeof import('./run');
  const bin = path.resolve(__dirname, '..', '..', 'bin', 'volume-backup.js');
  const work = path.resolve(value('--work') ?? path.join(os.tmpdir(), 'volume-backup-bench'));
  const sizes = value('--size') ? [parseSize(value('--size')!)] : undefined;
  const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  runScale({ bin, work, borg: !argv.includes('--no-peers'), log, sizes }).then(
    (r) => process.stdout.write(JSON.stringify(r, null, 2) + '\n'),
    (err) => {
      process.stderr.write(`scale bench failed: ${(err as Error).stack ?? err}\n`);
      process.exitCode = 1;
    },
  );
}
