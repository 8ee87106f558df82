/**
 * File extents (FIEMAP) and what changed between two snapshots of one file. Node has no FIEMAP binding,
 * so `filefrag -v -e` (e2fsprogs) is run and its table parsed. Two snapshots whose files map a range to
 * the same physical blocks hold the same bytes there: both are read-only copy-on-write snapshots (btrfs
 * subvolume snapshots, reflink clones), so a shared extent cannot change while either exists. Every range
 * where the mappings differ, or where an extent's location is not plain (delayed, inline, unknown), is
 * "changed": the caller reads it.
 */
import { spawn } from 'child_process';
import * as readline from 'readline';
import { VolumeBackupError, cancelled } from '../errors';
import type { Range } from '../io/sparse';

export interface Extent {
  /** Byte offset in the file. */
  logical: number;
  length: number;
  /** Byte address on the device (as the file system numbers it). */
  physical: number;
  /** Shared only if physical matches exactly, extent for extent (btrfs compressed extents). */
  encoded: boolean;
  /** Allocated but never written: reads as zeros. */
  unwritten: boolean;
  /** Its location cannot be compared (delayed allocation, inline data, unknown): always "changed". */
  opaque: boolean;
}

export interface FileExtents {
  size: number;
  /** In logical order, not overlapping. */
  extents: Extent[];
}

const OPAQUE_FLAGS = ['unknown_loc', 'delalloc', 'data_inline', 'data_tail', 'not_aligned', 'unknown'];
const HEADER = /^File size of .* is (\d+) \((\d+) blocks? of (\d+) bytes\)/;
const ROW = /^\s*\d+:\s*(\d+)\.\.\s*(\d+):\s*(\d+)\.\.\s*(\d+):\s*(\d+):\s*(?:\d+:)?\s*([a-z_,]*)\s*$/;

/** Parses `filefrag -v -e` output (block units from its header line). Exported for tests. */
export function parseFilefrag(text: string): FileExtents {
  let size = -1;
  let unit = 0;
  const extents: Extent[] = [];
  for (const line of text.split('\n')) {
    const h = HEADER.exec(line);
    if (h) {
      size = Number(h[1]);
      unit = Number(h[3]);
      continue;
    }
    const r = unit ? ROW.exec(line) : null;
    if (!r) continue;
    const flags = r[6].split(',');
    extents.push({
      logical: Number(r[1]) * unit,
      length: Number(r[5]) * unit,
      physical: Number(r[3]) * unit,
      encoded: flags.includes('encoded'),
      unwritten: flags.includes('unwritten'),
      opaque: flags.some((f) => OPAQUE_FLAGS.includes(f)),
    });
  }
  if (size < 0) throw new VolumeBackupError('SNAPSHOT', `filefrag printed no file size: ${text.split('\n').slice(0, 3).join(' ').slice(0, 200)}`);
  extents.sort((a, b) => a.logical - b.logical);
  return { size, extents };
}

/** The extents of `file`, or throws (filefrag missing, a file system without FIEMAP, …). */
export function readExtents(file: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<FileExtents> {
  if (options.signal?.aborted) return Promise.reject(cancelled(options.signal.reason));
  return new Promise((resolve, reject) => {
    // Streamed: a fragmented multi-TiB image has millions of rows, more than execFile's buffer holds.
    const child = spawn('filefrag', ['-v', '-e', file], { stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal });
    const lines: string[] = [];
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    readline.createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (options.signal?.aborted) return reject(cancelled(options.signal.reason));
      reject(new VolumeBackupError('SNAPSHOT', err.code === 'ENOENT' ? 'filefrag not found (install e2fsprogs)' : `filefrag: ${err.message}`));
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (options.signal?.aborted) return reject(cancelled(options.signal.reason));
      if (code !== 0) return reject(new VolumeBackupError('SNAPSHOT', `filefrag ${file} ${sig ? `was killed by ${sig}` : `exited with code ${code}`}: ${stderr.trim().split('\n').pop() ?? ''}`));
      try {
        resolve(parseFilefrag(lines.join('\n')));
      } catch (err) {
        reject(err);
      }
    });
  });
}

/** A cursor over one file's extents: what covers logical byte `pos`, and where that stops. */
class Mapping {
  private k = 0;
  constructor(private readonly extents: Extent[]) {}

  /** The extent covering `pos` (null: a hole) and the end of that extent or hole. */
  at(pos: number, end: number): { extent: Extent | null; until: number } {
    const e = this.extents;
    while (this.k < e.length && e[this.k].logical + e[this.k].length <= pos) this.k++;
    const next = e[this.k];
    if (!next || next.logical >= end) return { extent: null, until: end };
    if (next.logical > pos) return { extent: null, until: next.logical };
    return { extent: next, until: Math.min(end, next.logical + next.length) };
  }
}

function sameBytes(a: Extent, b: Extent, pos: number): boolean {
  if (a.opaque || b.opaque || a.unwritten !== b.unwritten || a.encoded !== b.encoded) return false;
  if (a.encoded) return a.logical === b.logical && a.length === b.length && a.physical === b.physical;
  return a.physical + (pos - a.logical) === b.physical + (pos - b.logical);
}

/**
 * The byte ranges of [0, size) where `after` may differ from `before`: merged, in order. Holes in both
 * are equal (zeros); a hole on one side only is a change.
 */
export function changedRanges(before: FileExtents, after: FileExtents): Range[] {
  const size = after.size;
  const a = new Mapping(before.extents);
  const b = new Mapping(after.extents);
  const out: Range[] = [];
  let pos = 0;
  while (pos < size) {
    const x = a.at(pos, size);
    const y = b.at(pos, size);
    const until = Math.min(x.until, y.until);
    const same = x.extent === null && y.extent === null ? true : x.extent !== null && y.extent !== null && sameBytes(x.extent, y.extent, pos);
    if (!same) {
      const last = out[out.length - 1];
      if (last && last[1] === pos) last[1] = until;
      else out.push([pos, until]);
    }
    pos = until;
  }
  return out;
}

/** Bytes in a list of ranges. */
export function rangeBytes(ranges: readonly Range[]): number {
  return ranges.reduce((n, [s, e]) => n + (e - s), 0);
}
