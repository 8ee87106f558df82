/**
 * The fault suite's report: how many kill points, storage faults, corruptions and hostile inputs were
 * tried, and how many of them failed. Test files add to it; after the whole run it is printed as one
 * line and written to test-output/fault-report.json (git-ignored).
 */
import { mkdirSync, writeFileSync } from 'fs';
import * as path from 'path';
import { describeValue } from '../../lib/text';

export type FaultCategory = 'killPoints' | 'storageFaults' | 'corruptions' | 'hostileInputs';

const LABELS: Record<FaultCategory, string> = {
  killPoints: 'kill points',
  storageFaults: 'storage faults',
  corruptions: 'corruptions',
  hostileInputs: 'hostile inputs',
};

interface Report {
  counts: Record<FaultCategory, number>;
  /** Per category, what was tried (e.g. "backup": 14). */
  breakdown: Record<FaultCategory, Record<string, number>>;
  failures: { category: FaultCategory; kind: string; case: string; message: string }[];
  skipped: { what: string; reason: string }[];
  /** Cases that did what an earlier case did: tried, not counted. */
  duplicates: { category: FaultCategory; kind: string; case: string; sameAs: string }[];
  notes: string[];
}

const report: Report = {
  counts: { killPoints: 0, storageFaults: 0, corruptions: 0, hostileInputs: 0 },
  breakdown: { killPoints: {}, storageFaults: {}, corruptions: {}, hostileInputs: {} },
  failures: [],
  skipped: [],
  duplicates: [],
  notes: [],
};

/** What each counted case was, per category and kind: a case that does the same again is not counted twice. */
const seen = new Map<string, string>();

/**
 * Count one tried case; with an error, count it as a failure too. Returns the failure message or null.
 * `key` says what the case did (default: its name); a second case with the same key as one already
 * counted in the category and kind is not counted again (its failure still is), and the report lists it.
 */
export function tally(category: FaultCategory, kind: string, caseName: string, error?: unknown, key: string = caseName): string | null {
  const id = `${category}\0${kind}\0${key}`;
  const first = seen.get(id);
  if (first === undefined) {
    seen.set(id, caseName);
    report.counts[category]++;
    report.breakdown[category][kind] = (report.breakdown[category][kind] ?? 0) + 1;
  } else {
    report.duplicates.push({ category, kind, case: caseName, sameAs: first });
  }
  if (error === undefined) return null;
  const message = error instanceof Error ? error.message : describeValue(error);
  report.failures.push({ category, kind, case: caseName, message });
  return `${kind} / ${caseName}: ${message}`;
}

/**
 * Run one case, count it, and keep going whatever it does: the caller asserts on the failures at the end.
 * `key`, if given, is asked after the run for what the case did (see tally).
 */
export async function tryCase(category: FaultCategory, kind: string, caseName: string, run: () => Promise<void>, key?: () => string): Promise<string | null> {
  let error: unknown;
  try {
    await run();
  } catch (err) {
    error = err ?? new Error('failed');
  }
  return tally(category, kind, caseName, error, key?.());
}

/** Cases not counted because an earlier one of the same category and kind did the same. */
export function duplicates(): readonly Report['duplicates'][number][] {
  return report.duplicates;
}

export function skipped(what: string, reason: string): void {
  report.skipped.push({ what, reason });
}

export function note(text: string): void {
  report.notes.push(text);
}

export function summaryLine(): string {
  const parts = (Object.keys(LABELS) as FaultCategory[]).map((c) => `${report.counts[c]} ${LABELS[c]}`);
  return `fault suite: ${parts.join(', ')}, failures: ${report.failures.length}`;
}

function writeReport(): void {
  const total = Object.values(report.counts).reduce((a, b) => a + b, 0);
  if (total === 0) return;
  const dir = path.resolve(__dirname, '..', '..', ...(path.basename(path.resolve(__dirname, '..', '..')) === 'dist' ? ['..'] : []), 'test-output');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'fault-report.json');
  writeFileSync(file, JSON.stringify({ summary: summaryLine(), ...report, writtenAt: new Date().toISOString() }, null, 2) + '\n');
  process.stdout.write(`\n${summaryLine()}\n(report: ${path.relative(process.cwd(), file)})\n`);
  for (const s of report.skipped) process.stdout.write(`  skipped: ${s.what}: ${s.reason}\n`);
  for (const d of report.duplicates) process.stdout.write(`  not counted twice: ${d.kind} / ${d.case} (the same as ${d.sameAs})\n`);
  for (const n of report.notes) process.stdout.write(`  note: ${n}\n`);
}

// A root-level hook: runs once after every test file of the run.
after(writeReport);
