/** Short human-readable figures for node status texts (a status should stay under ~20 characters). */
import { oneLine } from '../../lib/text';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '?';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits).replace(/\.0$/, '')} ${UNITS[unit]}`;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1).replace(/\.0$/, '')} s`;
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1).replace(/\.0$/, '')} h`;
}

/** "64 MiB written, 3 s": each size says what it is. */
export function sizeAndTime(bytes: number, what: string, durationMs: number): string {
  return `${formatBytes(bytes)} ${what}, ${formatDuration(durationMs)}`;
}

/** A backup's status: "64 MiB read, 64 KiB stored, 3 s" (read: the volume's size; stored: what it added). */
export function backupSummary(record: { size: number; storedBytes: number }, durationMs: number): string {
  return `${formatBytes(record.size)} read, ${formatBytes(record.storedBytes)} stored, ${formatDuration(durationMs)}`;
}

/** Cut a text to the length a node status can show (one line, control characters escaped). */
export function shorten(text: string, max = 32): string {
  const line = oneLine(text.replace(/\s+/g, ' '));
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}
