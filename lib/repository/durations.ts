/**
 * Calendar durations as restic writes them ("30d", "1y2m3d4h"): years, months, days and hours, applied
 * by calendar arithmetic (one month back from 31 March is 3 March, as Go's AddDate does), so that a
 * retention policy means here what it means in restic.
 */
import { invalid } from '../errors';

export interface CalendarDuration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

const PART = /(\d+)([ymdh])/g;
const UNIT_FIELD = { y: 'years', m: 'months', d: 'days', h: 'hours' } as const;

/** Parse "1y2m3d4h" (any subset, any order, each unit at most once). Throws INVALID_ARGUMENT. */
export function parseDuration(text: unknown, label = 'duration'): CalendarDuration {
  const fail = () =>
    invalid(`${label} ${JSON.stringify(String(text)).slice(0, 40)} is not a duration: write a number of years, months, days and hours such as 30d, 12h or 1y2m3d4h (no weeks: 7d)`);
  if (typeof text !== 'string') throw fail();
  const trimmed = text.trim();
  if (!/^(\d+[ymdh])+$/.test(trimmed)) throw fail();
  const out: CalendarDuration = { years: 0, months: 0, days: 0, hours: 0 };
  const seen = new Set<string>();
  for (const [, digits, unit] of trimmed.matchAll(PART)) {
    if (seen.has(unit)) throw fail();
    seen.add(unit);
    const value = Number(digits);
    if (!Number.isSafeInteger(value) || value > 100_000) throw fail();
    out[UNIT_FIELD[unit as keyof typeof UNIT_FIELD]] = value;
  }
  return out;
}

export function isZeroDuration(d: CalendarDuration): boolean {
  return d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0;
}

export function formatDuration(d: CalendarDuration): string {
  const parts = [
    [d.years, 'y'],
    [d.months, 'm'],
    [d.days, 'd'],
    [d.hours, 'h'],
  ].filter(([n]) => (n as number) > 0);
  return parts.length ? parts.map(([n, u]) => `${n}${u}`).join('') : '0h';
}

/** `at` minus the duration, by UTC calendar arithmetic. */
export function subtractDuration(at: Date, d: CalendarDuration): Date {
  return new Date(
    Date.UTC(
      at.getUTCFullYear() - d.years,
      at.getUTCMonth() - d.months,
      at.getUTCDate() - d.days,
      at.getUTCHours() - d.hours,
      at.getUTCMinutes(),
      at.getUTCSeconds(),
      at.getUTCMilliseconds(),
    ),
  );
}

/** A duration in milliseconds measured back from `at` (months and years vary in length). */
export function durationMsBefore(at: Date, d: CalendarDuration): number {
  return at.getTime() - subtractDuration(at, d).getTime();
}
