/** The benchmark's results as a markdown table (printed and written to bench/results/) and an SVG chart. */
import type { Limits } from './limits';
import type { ScaleReport } from './scale';

export type Operation = 'full' | 'incremental' | 'restore';

export interface OpResult {
  tool: string;
  operation: Operation;
  wallSeconds: number;
  cpuSeconds: number | null;
  peakRssBytes: number | null;
  /** Repository size after a backup. */
  storedBytes?: number;
  /** What the incremental added to the repository. */
  addedBytes?: number;
  /** Restore: the restored file's SHA-256 equals the source's. */
  verified?: boolean;
  /** Bytes read from / written to storage by the process (GNU time %I/%O; page-cache hits not counted). */
  diskReadBytes?: number;
  diskWriteBytes?: number;
  /** With --repeat: the fastest and slowest of the runs (this result is the median one). */
  range?: [number, number];
}

export interface Variant {
  label: string;
  full: OpResult;
  incremental: OpResult;
  restore?: OpResult;
}

export interface LoopRow {
  operation: string;
  wallSeconds: number;
  maxDelayMs: number;
  p99DelayMs: number;
  meanDelayMs: number;
  progressEvents: number;
  /** Time spent in the progress callback (turning each event into a message, as the nodes do). */
  progressMs?: number;
}

export interface S3Row {
  /** Which store: s3rver, Ceph RGW. */
  store?: string;
  label: string;
  /** The plain SDK's time for the same bytes (this row's ratio to it). */
  plainSeconds?: number;
  /** The plain SDK's time for the same bytes as a process of its own (node and the SDK starting). */
  processSeconds?: number;
  bytes: number;
  wallSeconds: number;
  note: string;
}

export interface Report {
  date: string;
  machine: string;
  imageBytes: number;
  imageDescription: string;
  changedBytes: number;
  cache: string;
  repeat: number;
  tools: { name: string; description: string }[];
  skipped: string[];
  results: OpResult[];
  limits: Limits;
  variants: Variant[];
  loop: LoopRow[];
  s3: S3Row[];
  s3Note?: string;
  scale?: ScaleReport;
}

const MB = 1e6;
const MIB = 1024 * 1024;
const OPS: Operation[] = ['full', 'incremental', 'restore'];

const f = (n: number | null | undefined, digits = 2): string => (n === null || n === undefined || !Number.isFinite(n) ? 'n/a' : n.toFixed(digits));
const mb = (bytes: number | undefined): string => (bytes === undefined ? '' : `${(bytes / MB).toFixed(1)} MB`);
const mib = (bytes: number | null): string => (bytes === null ? 'n/a' : `${(bytes / MIB).toFixed(0)} MiB`);

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function find(results: OpResult[], tool: string, op: Operation): OpResult | undefined {
  return results.find((r) => r.tool === tool && r.operation === op);
}

function ratio(a: number | undefined, b: number | undefined): number | null {
  return a === undefined || b === undefined || b === 0 ? null : a / b;
}

export function targets(report: Report): { name: string; measured: string; goal: string; met: boolean | null }[] {
  const r = report.results;
  const ours = (op: Operation) => find(r, 'volume-backup', op);
  const borg = (op: Operation) => find(r, 'borg', op);
  const rows: { name: string; measured: string; goal: string; met: boolean | null }[] = [];
  for (const [op, goal] of [['full', 0.5], ['incremental', 0.35], ['restore', 0.5]] as const) {
    const x = ratio(ours(op)?.wallSeconds, borg(op)?.wallSeconds);
    rows.push({ name: `${op} time / borg's`, measured: f(x), goal: `≤ ${goal}`, met: x === null ? null : x <= goal });
  }
  const added = ours('incremental')?.addedBytes;
  const addedRatio = added === undefined ? null : added / report.changedBytes;
  rows.push({ name: 'incremental bytes added / bytes changed', measured: f(addedRatio), goal: '≤ 1.5', met: addedRatio === null ? null : addedRatio <= 1.5 });
  const peak = Math.max(...OPS.map((op) => ours(op)?.peakRssBytes ?? 0));
  rows.push({ name: 'peak RSS (any operation)', measured: mib(peak), goal: '≤ 200 MiB', met: peak > 0 ? peak <= 200 * MIB : null });
  const restoresOk = r.filter((x) => x.operation === 'restore').every((x) => x.verified);
  rows.push({ name: 'every restore hash-equal to its source', measured: restoresOk ? 'yes' : 'NO', goal: 'yes', met: restoresOk });
  const loopMax = Math.max(0, ...report.loop.filter((l) => !l.operation.startsWith('idle')).map((l) => l.maxDelayMs));
  const scaleFull = (tool: string) => report.scale?.rows.find((x) => x.image === '64 GiB sparse' && x.tool === tool)?.full?.wallSeconds;
  const sx = ratio(scaleFull('volume-backup'), scaleFull('borg'));
  if (report.scale) rows.push({ name: "64 GiB sparse image: full time / borg's", measured: f(sx), goal: '≤ 0.1', met: sx === null ? null : sx <= 0.1 });
  // Issue 17: on a real S3 implementation (RGW), backup and restore within 1.3x the plain SDK's time.
  for (const s3 of report.s3.filter((x) => x.store === 'Ceph RGW' && x.plainSeconds)) {
    const x = s3.wallSeconds / s3.plainSeconds!;
    rows.push({ name: `RGW: ${s3.label} / plain SDK`, measured: f(x), goal: '≤ 1.3', met: x <= 1.3 });
    // Beside it, not a target: the same against the plain SDK started as a process, as our CLI is.
    if (s3.processSeconds) rows.push({ name: `RGW: ${s3.label} / plain SDK in a new process (for reference)`, measured: f(s3.wallSeconds / s3.processSeconds), goal: '—', met: null });
  }
  if (report.loop.length) rows.push({ name: 'max event-loop delay (in-process)', measured: `${f(loopMax, 1)} ms`, goal: 'responsive (< 100 ms)', met: loopMax < 100 });
  return rows;
}

export function toMarkdown(report: Report): string {
  const out: string[] = [];
  const { limits } = report;
  out.push(`## Benchmark: ${(report.imageBytes / MIB).toFixed(0)} MiB volume image, local repository`);
  out.push('');
  out.push(`${report.date} on ${report.machine}. Image: ${report.imageDescription}. Change: ${mb(report.changedBytes)} (${((report.changedBytes / report.imageBytes) * 100).toFixed(1)}%) in scattered 64 KiB writes. Page cache: ${report.cache}. Our CLI runs as installed: bin/volume-backup.js, one process per command. ${report.repeat > 1 ? `The comparison ran ${report.repeat} times; each step shows its median run (all tools alike).` : 'One run per step.'}`);
  out.push('');
  for (const t of report.tools) out.push(`- **${t.name}**: ${t.description}`);
  for (const s of report.skipped) out.push(`- skipped: ${s}`);
  out.push('');
  const rows: string[][] = [];
  for (const op of OPS) {
    for (const x of report.results.filter((y) => y.operation === op)) {
      const vsBorg = ratio(x.wallSeconds, find(report.results, 'borg', op)?.wallSeconds);
      const vsRestic = ratio(x.wallSeconds, find(report.results, 'restic', op)?.wallSeconds);
      rows.push([
        op,
        x.tool,
        x.range ? `${f(x.wallSeconds)} (${f(x.range[0])}–${f(x.range[1])})` : f(x.wallSeconds),
        f(report.imageBytes / MB / x.wallSeconds, 0),
        f(x.cpuSeconds),
        op === 'full' ? mb(x.storedBytes) : op === 'incremental' ? `+${mb(x.addedBytes)}` : x.verified ? 'hash equal' : 'MISMATCH',
        mib(x.peakRssBytes),
        x.diskReadBytes === undefined ? '' : mb(x.diskReadBytes),
        f(vsBorg),
        f(vsRestic),
      ]);
    }
  }
  out.push(table(['operation', 'tool', report.repeat > 1 ? 'wall s (median; range)' : 'wall s', 'MB/s', 'CPU s', 'stored / added / restore check', 'peak RSS', 'read from disk', 'x borg', 'x restic'], rows));
  out.push('');
  out.push('### Targets');
  out.push('');
  out.push(table(['target', 'measured', 'goal', 'met'], targets(report).map((t) => [t.name, t.measured, t.goal, t.met === null ? 'n/a' : t.met ? 'yes' : '**no**'])));
  out.push('');
  out.push('### Machine limits on the same image (same run)');
  out.push('');
  const ours = (op: Operation) => find(report.results, 'volume-backup', op)?.wallSeconds;
  out.push(table(['limit', 'seconds', 'this project', 'x limit'], [
    ['`zstd -1 -T2` over the image (compression, both cores)', f(limits.zstdSeconds), `full backup ${f(ours('full'))} s`, f(ratio(ours('full'), limits.zstdSeconds ?? undefined))],
    ['SHA-256 of the image, one core (`openssl dgst`)', f(limits.sha256Seconds), `incremental ${f(ours('incremental'))} s`, f(ratio(ours('incremental'), limits.sha256Seconds ?? undefined))],
    ['copy of the image (`dd conv=fdatasync`)', f(limits.copySeconds), `restore ${f(ours('restore'))} s`, f(ratio(ours('restore'), limits.copySeconds ?? undefined))],
    ...(limits.restoreIo ? [[
      `the restore's I/O alone: ${mb(limits.restoreIo.bytesRead)} of objects read and ${mb(limits.restoreIo.bytesWritten)} written (O_DIRECT, fsync), nothing decoded or verified (bench/restore-io.ts)`,
      f(limits.restoreIo.seconds), `restore ${f(ours('restore'))} s`, f(ratio(ours('restore'), limits.restoreIo.seconds)),
    ]] : []),
    ...(limits.cliListSeconds !== undefined ? [['our CLI starting and opening the repository (`volume-backup list`)', f(limits.cliListSeconds), '', '']] : []),
  ]));
  for (const n of limits.notes) out.push(`- ${n}`);
  if (report.loop.length) {
    out.push('');
    out.push('### Event loop during a backup and a restore (library in-process, `monitorEventLoopDelay`)');
    out.push('');
    out.push(table(['operation', 'wall s', 'max delay ms', 'p99 ms', 'mean ms', 'progress events', 'ms in progress callbacks'], report.loop.map((l) => [l.operation, f(l.wallSeconds), f(l.maxDelayMs, 1), f(l.p99DelayMs, 1), f(l.meanDelayMs, 1), String(l.progressEvents), l.progressMs === undefined ? '' : `${f(l.progressMs, 2)} (${f((l.progressMs / 10) / l.wallSeconds, 3)}%)`])));
  }
  if (report.variants.length) {
    out.push('');
    out.push('### Trade-offs: chunk size, block size, compression (this project, same image and change)');
    out.push('');
    out.push(table(['setting', 'full s', 'full stored', 'incremental s', 'incremental added', 'added / changed', 'restore s', 'peak RSS'], report.variants.map((v) => [
      v.label,
      f(v.full.wallSeconds),
      mb(v.full.storedBytes),
      f(v.incremental.wallSeconds),
      mb(v.incremental.addedBytes),
      f((v.incremental.addedBytes ?? 0) / report.changedBytes),
      v.restore ? f(v.restore.wallSeconds) : '',
      mib(Math.max(v.full.peakRssBytes ?? 0, v.incremental.peakRssBytes ?? 0, v.restore?.peakRssBytes ?? 0)),
    ])));
  }
  if (report.scale) out.push('', ...scaleMarkdown(report.scale));
  if (report.s3.length || report.s3Note) out.push('', ...s3Markdown(report.s3, report.s3Note));
  out.push('');
  return out.join('\n');
}

/** The S3 part's section: each store's backup and restore beside the plain SDK moving the same objects. */
export function s3Markdown(rows: S3Row[], note?: string): string[] {
  const out = ['### S3 driver against s3rver and Ceph RGW (loopback)', ''];
  if (rows.length) {
    out.push(table(['store', 'what', 'bytes', 'wall s', 'MB/s', 'x plain SDK', 'x plain SDK process', 'note'], rows.map((s) => [
      s.store ?? 's3rver', s.label, mb(s.bytes), f(s.wallSeconds), f(s.bytes / MB / s.wallSeconds, 0), s.plainSeconds ? f(s.wallSeconds / s.plainSeconds) : '',
      s.processSeconds ? f(s.wallSeconds / s.processSeconds) : '', s.note,
    ])));
  }
  if (note) out.push(`- ${note}`);
  return out;
}

const COLORS: Record<string, string> = { 'volume-backup': '#2b7bb9', borg: '#8a8a8a', restic: '#d08a2c' };
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** A grouped bar chart: seconds per operation and tool (left), peak RSS per tool (right). */
export function toSvg(report: Report): string {
  const tools = [...new Set(report.results.map((r) => r.tool))];
  const width = 760;
  const height = 320;
  const top = 50;
  const bottom = 260;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(`<text x="10" y="20" font-size="15" font-weight="bold">${esc(`${(report.imageBytes / MIB).toFixed(0)} MiB image, local repository: seconds (lower is better)`)}</text>`);
  const maxSec = Math.max(0.1, ...report.results.map((r) => r.wallSeconds));
  const panel = (x0: number, x1: number, groups: string[], value: (tool: string, g: string) => number | undefined, max: number, unit: string): void => {
    const groupW = (x1 - x0) / groups.length;
    const barW = Math.min(36, (groupW - 20) / Math.max(1, tools.length));
    parts.push(`<line x1="${x0}" y1="${bottom}" x2="${x1}" y2="${bottom}" stroke="#333"/>`);
    groups.forEach((g, gi) => {
      const gx = x0 + gi * groupW + (groupW - barW * tools.length) / 2;
      tools.forEach((tool, ti) => {
        const v = value(tool, g);
        if (v === undefined) return;
        const h = ((bottom - top) * v) / max;
        const x = gx + ti * barW;
        parts.push(`<rect x="${x.toFixed(1)}" y="${(bottom - h).toFixed(1)}" width="${(barW - 3).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[tool] ?? '#555'}"/>`);
        parts.push(`<text x="${(x + (barW - 3) / 2).toFixed(1)}" y="${(bottom - h - 4).toFixed(1)}" text-anchor="middle" font-size="10">${v.toFixed(unit === 's' ? 1 : 0)}</text>`);
      });
      parts.push(`<text x="${(x0 + gi * groupW + groupW / 2).toFixed(1)}" y="${bottom + 16}" text-anchor="middle">${esc(g)}</text>`);
    });
  };
  panel(20, 520, OPS, (tool, op) => find(report.results, tool, op as Operation)?.wallSeconds, maxSec * 1.15, 's');
  const rss = (tool: string) => Math.max(0, ...report.results.filter((r) => r.tool === tool).map((r) => r.peakRssBytes ?? 0)) / MIB;
  const maxRss = Math.max(1, ...tools.map(rss));
  parts.push(`<text x="560" y="42" font-size="12">peak RSS, MiB</text>`);
  panel(550, 740, ['peak RSS'], (tool) => rss(tool) || undefined, maxRss * 1.15, 'MiB');
  tools.forEach((tool, i) => {
    parts.push(`<rect x="${20 + i * 150}" y="${height - 30}" width="12" height="12" fill="${COLORS[tool] ?? '#555'}"/>`);
    parts.push(`<text x="${36 + i * 150}" y="${height - 20}">${esc(tool)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function scaleMarkdown(scale: ScaleReport): string[] {
  const out = ['### Scale: sparse and thin images (whole CLI processes; 256 MiB of data each)', ''];
  const cell = (x: { wallSeconds: number; cpuSeconds: number | null; peakRssBytes: number | null } | undefined): string =>
    x ? `${f(x.wallSeconds)} s, CPU ${f(x.cpuSeconds)} s, ${mib(x.peakRssBytes)}` : '';
  out.push(table(['image', 'tool', 'full', 'stored', 'incremental', 'added / changed', 'restore', 'restore on disk / equal', 'note'], scale.rows.map((r) => [
    r.image,
    r.tool,
    cell(r.full),
    r.full ? mb(r.full.storedBytes) : '',
    cell(r.incremental),
    r.incremental ? `${mb(r.incremental.addedBytes)} / ${mb(r.incremental.changedBytes)} (${f(r.incremental.addedBytes / r.incremental.changedBytes)}x)` : '',
    cell(r.restore),
    r.restore ? `${mb(r.restore.allocatedBytes)} / ${r.restore.dataEqual ? 'yes' : '**NO**'}` : '',
    r.note ?? '',
  ])));
  return out;
}
