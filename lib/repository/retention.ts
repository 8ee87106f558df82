/**
 * Retention: which backups a policy keeps, and why. Pure functions over record arrays (no I/O);
 * lib/engine/prune.ts executes the plan.
 *
 * The keep rules are restic's `forget` rules, applied per volume to the complete backups
 * (available, or being restored), newest first by dataTimestamp:
 *   keep-last N       the N newest;
 *   keep-hourly/daily/weekly/monthly/yearly N
 *                     for the N newest hours/days/ISO weeks/months/years that have backups, the newest
 *                     backup of each; while a rule still has count left, the oldest backup is kept too
 *                     (restic's "oldest" rule, which makes the history as long as the counts allow);
 *   keep-within D     every backup newer than (newest backup not in the future) − D;
 *   keep-within-hourly…yearly D
 *                     the newest backup of each hour…year within D of the newest backup.
 * "unlimited" (−1) keeps every period. A backup is kept if any rule keeps it.
 *
 * Then the chains: a kept backup keeps all of its ancestors ("parent of <id>"); a backup being created
 * or restored is kept with its ancestors; failed backups are deleted (or kept for keep-failed-for);
 * a backup whose writer stopped (expired lease) is deleted as failed; a deletion left unfinished
 * (status deleting) is finished — unless a live backup still depends on it, then it is given back.
 * Deletions are ordered children first, so that no backup ever exists without its parent.
 */
import { z } from 'zod';
import { invalid } from '../errors';
import { BackupRecord, leaseExpired } from './records';
import { ancestorsOf, parentLoopError } from './catalog';
import { CalendarDuration, formatDuration, isZeroDuration, parseDuration, subtractDuration } from './durations';

// ---- the policy ----------------------------------------------------------------------------------

export const PERIODS = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export type Period = (typeof PERIODS)[number];

// One message for every way a count can be wrong: zod's own would be "Invalid input" or "Too small".
const countError = { error: (issue: { input?: unknown }) => `must be a whole number from 0 to 1000000, or "unlimited" (got ${typeof issue.input === 'number' ? String(issue.input) : JSON.stringify(issue.input)?.slice(0, 40)})` };
const count = z.union(
  [
    z.literal('unlimited'),
    z.number().int(countError).min(0, countError).max(1_000_000, countError),
    z
      .string()
      .regex(/^\s*\d{1,7}\s*$/)
      .transform((s) => Number(s)),
  ],
  countError,
);
const duration = z.string().max(64);

export const RetentionPolicySchema = z
  .object({
    keepLast: count.optional(),
    keepHourly: count.optional(),
    keepDaily: count.optional(),
    keepWeekly: count.optional(),
    keepMonthly: count.optional(),
    keepYearly: count.optional(),
    keepWithin: duration.optional(),
    keepWithinHourly: duration.optional(),
    keepWithinDaily: duration.optional(),
    keepWithinWeekly: duration.optional(),
    keepWithinMonthly: duration.optional(),
    keepWithinYearly: duration.optional(),
    /** Keep failed backups (status error) this long after they failed, e.g. to look at them. */
    keepFailedFor: duration.optional(),
    /** IANA time zone whose hours, days, weeks… the calendar rules use (default UTC). */
    timeZone: z.string().max(64).optional(),
  })
  .strict();
export type RetentionPolicy = z.input<typeof RetentionPolicySchema>;

/** The policy with every rule resolved: counts are −1 (unlimited), 0 (off) or N. */
export interface ResolvedPolicy {
  last: number;
  counts: Record<Period, number>;
  within: CalendarDuration | null;
  withinPeriods: Record<Period, CalendarDuration | null>;
  keepFailedFor: CalendarDuration | null;
  timeZone: string;
}

const COUNT_KEYS: Record<Period, 'keepHourly' | 'keepDaily' | 'keepWeekly' | 'keepMonthly' | 'keepYearly'> = {
  hourly: 'keepHourly',
  daily: 'keepDaily',
  weekly: 'keepWeekly',
  monthly: 'keepMonthly',
  yearly: 'keepYearly',
};
const WITHIN_KEYS: Record<Period, 'keepWithinHourly' | 'keepWithinDaily' | 'keepWithinWeekly' | 'keepWithinMonthly' | 'keepWithinYearly'> = {
  hourly: 'keepWithinHourly',
  daily: 'keepWithinDaily',
  weekly: 'keepWithinWeekly',
  monthly: 'keepWithinMonthly',
  yearly: 'keepWithinYearly',
};

/** kebab-case option name of a policy key, as the CLI spells it (keepWithinDaily → keep-within-daily). */
export function ruleName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Validate a policy from a user (node config, msg.policy, CLI); throws INVALID_ARGUMENT. */
export function resolvePolicy(input: unknown): ResolvedPolicy {
  const parsed = RetentionPolicySchema.safeParse(input ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length ? ruleName(String(issue.path[0])) : 'policy';
    const what = issue.code === 'unrecognized_keys' ? `unknown rule ${issue.keys.map(ruleName).join(', ')}` : `${where}: ${issue.message}`;
    throw invalid(`invalid retention policy: ${what}`);
  }
  const p = parsed.data;
  const toCount = (v: number | 'unlimited' | undefined) => (v === undefined ? 0 : v === 'unlimited' ? -1 : v);
  const toDuration = (key: keyof typeof p) => {
    const v = p[key];
    if (v === undefined) return null;
    const d = parseDuration(v, ruleName(key));
    return isZeroDuration(d) ? null : d;
  };
  const timeZone = p.timeZone ?? 'UTC';
  checkTimeZone(timeZone);
  const counts = {} as Record<Period, number>;
  const withinPeriods = {} as Record<Period, CalendarDuration | null>;
  for (const period of PERIODS) {
    counts[period] = toCount(p[COUNT_KEYS[period]] as number | 'unlimited' | undefined);
    withinPeriods[period] = toDuration(WITHIN_KEYS[period]);
  }
  return {
    last: toCount(p.keepLast as number | 'unlimited' | undefined),
    counts,
    within: toDuration('keepWithin'),
    withinPeriods,
    keepFailedFor: toDuration('keepFailedFor'),
    timeZone,
  };
}

/** True when no keep rule is set: then every complete backup is kept (restic refuses to act, too). */
export function keepsEverything(policy: ResolvedPolicy): boolean {
  return (
    policy.last === 0 &&
    PERIODS.every((p) => policy.counts[p] === 0 && policy.withinPeriods[p] === null) &&
    policy.within === null
  );
}

/** One line saying what the policy keeps, for logs and reports. */
export function describePolicy(policy: ResolvedPolicy): string {
  if (keepsEverything(policy)) return 'no keep rule given: keep every complete backup';
  const n = (c: number) => (c === -1 ? 'all' : String(c));
  const parts: string[] = [];
  if (policy.last !== 0) parts.push(`the ${n(policy.last)} newest`);
  for (const period of PERIODS) if (policy.counts[period] !== 0) parts.push(`${n(policy.counts[period])} ${period}`);
  for (const period of PERIODS) {
    const d = policy.withinPeriods[period];
    if (d) parts.push(`${period} within ${formatDuration(d)}`);
  }
  if (policy.within) parts.push(`all within ${formatDuration(policy.within)} of the newest`);
  const zone = policy.timeZone === 'UTC' ? '' : ` (calendar of ${policy.timeZone})`;
  return `keep ${parts.join(', ')}${zone}`;
}

// ---- calendar periods ----------------------------------------------------------------------------

const formatters = new Map<string, Intl.DateTimeFormat>();

function checkTimeZone(timeZone: string): void {
  try {
    zoneFormatter(timeZone);
  } catch {
    throw invalid(`invalid retention policy: unknown time zone ${JSON.stringify(timeZone)} (use an IANA name such as Europe/Berlin, or UTC)`);
  }
}

function zoneFormatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  return f;
}

interface CalendarTime {
  year: number;
  month: number; // 1-12
  day: number;
  hour: number;
}

function calendarTime(ms: number, timeZone: string): CalendarTime {
  if (timeZone === 'UTC') {
    const d = new Date(ms);
    return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours() };
  }
  const out: Record<string, number> = {};
  for (const part of zoneFormatter(timeZone).formatToParts(ms)) {
    if (part.type !== 'literal') out[part.type] = Number(part.value);
  }
  return { year: out.year, month: out.month, day: out.day, hour: out.hour % 24 };
}

/** ISO 8601 week (weeks start on Monday; week 1 holds the year's first Thursday) as year*100+week. */
export function isoWeekKey(year: number, month: number, day: number): number {
  const date = Date.UTC(year, month - 1, day);
  const weekday = (new Date(date).getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const thursday = date + (3 - weekday) * 86_400_000;
  const isoYear = new Date(thursday).getUTCFullYear();
  const week = 1 + Math.floor((thursday - Date.UTC(isoYear, 0, 1)) / (7 * 86_400_000));
  return isoYear * 100 + week;
}

function periodKey(period: Period, t: CalendarTime): number {
  switch (period) {
    case 'hourly':
      return ((t.year * 100 + t.month) * 100 + t.day) * 100 + t.hour;
    case 'daily':
      return (t.year * 100 + t.month) * 100 + t.day;
    case 'weekly':
      return isoWeekKey(t.year, t.month, t.day);
    case 'monthly':
      return t.year * 100 + t.month;
    case 'yearly':
      return t.year;
  }
}

// ---- applying the keep rules to one list of complete backups ------------------------------------

export interface Dated {
  id: string;
  dataTimestamp: string;
  createdAt: string;
}

/** Newest first: by dataTimestamp, then createdAt, then id (so the order never depends on listing). */
export function newestFirst<T extends Dated>(a: T, b: T): number {
  return (
    Date.parse(b.dataTimestamp) - Date.parse(a.dataTimestamp) ||
    Date.parse(b.createdAt) - Date.parse(a.createdAt) ||
    (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)
  );
}

/**
 * restic's forget rules over one group of backups. Returns the reasons for each kept id (ids absent
 * from the map are not kept). `now` only decides which backups are "in the future" for keep-within.
 */
export function applyKeepRules<T extends Dated>(items: readonly T[], policy: ResolvedPolicy, now: Date): Map<string, string[]> {
  const list = [...items].sort(newestFirst);
  const kept = new Map<string, string[]>();
  if (list.length === 0) return kept;
  if (keepsEverything(policy)) {
    for (const item of list) kept.set(item.id, ['no keep rule given']);
    return kept;
  }
  // The reference point of the duration rules: the newest backup that is not in the future.
  let latest = -Infinity;
  for (const item of list) {
    const t = Date.parse(item.dataTimestamp);
    if (t <= now.getTime() && t > latest) latest = t;
  }
  const threshold = (d: CalendarDuration) => (latest === -Infinity ? -Infinity : subtractDuration(new Date(latest), d).getTime());

  interface Bucket {
    rule: string;
    remaining: number; // −1: unlimited
    key: (t: CalendarTime, index: number) => number;
    last: number | null;
  }
  const buckets: Bucket[] = [];
  if (policy.last !== 0) buckets.push({ rule: 'keep-last', remaining: policy.last, key: (_t, i) => i, last: null });
  for (const period of PERIODS) {
    if (policy.counts[period] !== 0) {
      buckets.push({ rule: `keep-${period}`, remaining: policy.counts[period], key: (t) => periodKey(period, t), last: null });
    }
  }
  const withinBuckets = PERIODS.flatMap((period) => {
    const d = policy.withinPeriods[period];
    return d ? [{ rule: `keep-within-${period} ${formatDuration(d)}`, since: threshold(d), period, last: null as number | null }] : [];
  });
  const withinAll = policy.within ? { rule: `keep-within ${formatDuration(policy.within)}`, since: threshold(policy.within) } : null;

  list.forEach((item, index) => {
    const ms = Date.parse(item.dataTimestamp);
    const cal = calendarTime(ms, policy.timeZone);
    const isOldest = index === list.length - 1;
    const reasons: string[] = [];
    if (withinAll && ms > withinAll.since) reasons.push(withinAll.rule);
    for (const b of buckets) {
      if (b.remaining === 0) continue;
      const key = b.key(cal, index);
      if (key !== b.last || isOldest) {
        reasons.push(key === b.last ? `${b.rule} (oldest)` : b.rule);
        b.last = key;
        if (b.remaining > 0) b.remaining--;
      }
    }
    for (const b of withinBuckets) {
      if (!(ms > b.since)) continue;
      const key = periodKey(b.period, cal);
      if (key !== b.last || isOldest) {
        reasons.push(key === b.last ? `${b.rule} (oldest)` : b.rule);
        b.last = key;
      }
    }
    if (reasons.length) kept.set(item.id, reasons);
  });
  return kept;
}

// ---- chains and statuses: the plan for one repository --------------------------------------------

export interface PlannedKeep {
  record: BackupRecord;
  /** Which rules keep it: "keep-daily", "parent of <id>", "being created", "in use by <id>"… */
  reasons: string[];
  /** A deletion left unfinished that a live backup still needs: prune gives it back (deleting → available). */
  giveBack?: boolean;
}

export interface PlannedDelete {
  record: BackupRecord;
  /** Why it goes: "no keep rule matches", "failed: …", "abandoned: …", "unfinished deletion". */
  reason: string;
}

export interface VolumePlan {
  volumeId: string;
  /** Newest first. */
  keep: PlannedKeep[];
  /** In the order to delete them: every backup before its parent. */
  delete: PlannedDelete[];
  /** The stored bytes the deletions free, as the records state them. */
  bytesFreed: number;
  /** Things prune cannot fix and the user should know (a kept backup whose chain is broken…). */
  problems: string[];
}

export interface RetentionPlan {
  policy: string;
  volumes: VolumePlan[];
}

export interface PlanOptions {
  /** The time the plan is for (keep-within, keep-failed-for, lease expiry). */
  now: Date;
  /** Only this volume. */
  volumeId?: string;
}

/** A backup being created by a writer that is still alive (or whose liveness cannot be told). */
function isLiveCreating(record: BackupRecord, now: Date): boolean {
  return record.status === 'creating' && !leaseExpired(record, now);
}

/** The status a record is treated as: stale operations count as what they would end as. */
function effectiveStatus(record: BackupRecord, now: Date): BackupRecord['status'] {
  if (record.status === 'restoring' && leaseExpired(record, now)) return 'available';
  if (record.status === 'creating' && leaseExpired(record, now)) return 'error';
  return record.status;
}

/** The ids of a record's ancestors, nearest first; stops at a missing parent or a loop (see catalog.ts). */
export const ancestorIds = ancestorsOf;

/**
 * The backups that still need `backupId`: those available, being restored, or being created by a
 * live writer whose chain contains it. Stale writers (expired lease) are returned apart: prune must
 * fence them (creating → error) before it may treat them as gone.
 */
export function backupsNeeding(records: readonly BackupRecord[], backupId: string, now: Date): { live: BackupRecord[]; stale: BackupRecord[] } {
  const byId = new Map(records.map((r) => [r.id, r]));
  const live: BackupRecord[] = [];
  const stale: BackupRecord[] = [];
  for (const r of records) {
    if (r.id === backupId) continue;
    const needs = r.status === 'available' || r.status === 'restoring' || r.status === 'creating';
    if (!needs || !ancestorIds(byId, r).ids.includes(backupId)) continue;
    if (r.status === 'creating' && !isLiveCreating(r, now)) stale.push(r);
    else live.push(r);
  }
  return { live, stale };
}

/** The plan for every volume (or one): what to keep and why, what to delete in which order. */
export function planRetention(records: readonly BackupRecord[], policyInput: unknown /* a ResolvedPolicy, or a policy to resolve */, options: PlanOptions): RetentionPlan {
  const policy = isResolved(policyInput) ? policyInput : resolvePolicy(policyInput);
  const byVolume = new Map<string, BackupRecord[]>();
  for (const r of records) {
    if (options.volumeId !== undefined && r.volumeId !== options.volumeId) continue;
    let list = byVolume.get(r.volumeId);
    if (!list) byVolume.set(r.volumeId, (list = []));
    list.push(r);
  }
  const volumes = [...byVolume.keys()].sort().map((volumeId) => planVolume(volumeId, byVolume.get(volumeId)!, policy, options.now));
  return { policy: describePolicy(policy), volumes };
}

function isResolved(p: unknown): p is ResolvedPolicy {
  return typeof p === 'object' && p !== null && 'counts' in p && 'withinPeriods' in p;
}

function planVolume(volumeId: string, records: BackupRecord[], policy: ResolvedPolicy, now: Date): VolumePlan {
  const byId = new Map(records.map((r) => [r.id, r]));
  const reasons = new Map<string, string[]>();
  const addReason = (id: string, reason: string) => {
    const list = reasons.get(id);
    if (!list) reasons.set(id, [reason]);
    else if (!list.includes(reason)) list.push(reason);
  };
  const problems: string[] = [];

  // 1. The keep rules, over the complete backups.
  const complete = records.filter((r) => effectiveStatus(r, now) === 'available' || effectiveStatus(r, now) === 'restoring');
  for (const [id, why] of applyKeepRules(complete, policy, now)) for (const reason of why) addReason(id, reason);

  // 2. Running operations are never touched.
  for (const r of records) {
    if (effectiveStatus(r, now) === 'restoring') addReason(r.id, 'being restored');
    if (isLiveCreating(r, now)) addReason(r.id, 'being created');
  }

  // 3. Failed backups kept for a while, if asked.
  const failedSince = policy.keepFailedFor ? subtractDuration(now, policy.keepFailedFor).getTime() : null;
  for (const r of records) {
    if (r.status === 'error' && failedSince !== null && Date.parse(r.updatedAt) > failedSince) {
      addReason(r.id, `keep-failed-for ${formatDuration(policy.keepFailedFor!)}`);
    }
  }

  // 4. Chains: everything kept keeps its ancestors (a kept failed backup too: deleting refuses to
  // leave any record, whatever its status, naming a parent that is gone).
  const giveBack = new Set<string>();
  const pinning = [...reasons.keys()].map((id) => byId.get(id)!);
  for (const r of pinning) {
    const { ids, missing, loop } = ancestorIds(byId, r);
    let child = r;
    for (const ancestorId of ids) {
      const ancestor = byId.get(ancestorId)!;
      const status = effectiveStatus(ancestor, now);
      addReason(ancestorId, `parent of ${child.id}`);
      if (status === 'deleting') {
        // Its deletion never got past the check (a live backup depends on it): give it back.
        giveBack.add(ancestorId);
        addReason(ancestorId, `in use by ${r.id}`);
      } else if ((status === 'error' || status === 'creating') && effectiveStatus(r, now) !== 'error') {
        problems.push(`backup ${r.id} depends on backup ${ancestorId}, which is ${ancestor.status}: ${r.id} cannot be restored`);
      }
      child = ancestor;
    }
    if (missing) problems.push(`backup ${r.id} depends on backup ${missing}, which is missing from the repository: it cannot be restored`);
    if (loop) problems.push(parentLoopError(r.id, loop).message);
  }

  // 5. Everything else goes.
  const keep: PlannedKeep[] = [];
  const doomed: PlannedDelete[] = [];
  for (const r of records) {
    const why = reasons.get(r.id);
    if (why) {
      keep.push(giveBack.has(r.id) ? { record: r, reasons: why, giveBack: true } : { record: r, reasons: why });
      continue;
    }
    doomed.push({ record: r, reason: deleteReason(r) });
  }
  keep.sort((a, b) => newestFirst(a.record, b.record));
  const order = childrenFirst(doomed.map((d) => d.record), byId);
  const rank = new Map(order.map((r, i) => [r.id, i]));
  doomed.sort((a, b) => rank.get(a.record.id)! - rank.get(b.record.id)!);
  return { volumeId, keep, delete: doomed, bytesFreed: doomed.reduce((sum, d) => sum + d.record.storedBytes, 0), problems };
}

function deleteReason(r: BackupRecord): string {
  switch (r.status) {
    case 'error':
      return `failed${r.failReason ? `: ${r.failReason}` : ''}`;
    case 'deleting':
      return 'unfinished deletion';
    case 'creating':
      return `abandoned: its writer stopped renewing its lease (expired ${r.leaseExpiresAt})`;
    default:
      return 'no keep rule matches';
  }
}

/** Records ordered so that every one comes before its parent (deepest first, then newest first). */
export function childrenFirst(records: readonly BackupRecord[], byId: ReadonlyMap<string, BackupRecord>): BackupRecord[] {
  const depth = new Map<string, number>();
  const depthOf = (r: BackupRecord): number => {
    const known = depth.get(r.id);
    if (known !== undefined) return known;
    const d = ancestorIds(byId, r).ids.length;
    depth.set(r.id, d);
    return d;
  };
  return [...records].sort((a, b) => depthOf(b) - depthOf(a) || newestFirst(a, b));
}
