/**
 * Validation of the identifiers that end up in object names. Anything that could escape the
 * repository root or confuse a listing ("../", "/", NUL, absolute paths) is refused, not rewritten.
 */
import { createHash, randomUUID } from 'crypto';
import * as path from 'path';
import { invalid } from '../errors';
import { CONTROL_CHARACTERS_MESSAGE, hasControlCharacters } from '../text';

const VOLUME_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const BACKUP_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True when `value` is a valid volume id (checkVolumeId without the error). */
export function isVolumeId(value: unknown): value is string {
  return typeof value === 'string' && VOLUME_ID.test(value) && !value.includes('..');
}

export function checkVolumeId(value: unknown): string {
  if (!isVolumeId(value)) {
    throw invalid(
      `invalid volume id ${JSON.stringify(String(value)).slice(0, 80)}: use 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit`,
    );
  }
  return value;
}

export function checkBackupId(value: unknown): string {
  if (typeof value !== 'string' || !BACKUP_ID.test(value)) {
    throw invalid(`invalid backup id ${JSON.stringify(String(value)).slice(0, 80)}: expected a UUID such as 0b5c7f1e-8a5e-4a57-9d43-2f8ad0c1e0a7`);
  }
  return value;
}

export function newBackupId(): string {
  return randomUUID();
}

/** A stable volume id for a path: its base name (made safe) and a short hash of the absolute path. */
export function volumeIdForPath(volumePath: string): string {
  const abs = path.resolve(volumePath);
  const base = path.basename(abs).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[^A-Za-z0-9]+/, '').slice(0, 100) || 'volume';
  const hash = createHash('sha256').update(abs).digest('hex').slice(0, 10);
  return `${base}-${hash}`;
}

/** Free text (names, descriptions): bounded length, no control characters. */
export function checkText(label: string, value: unknown, max = 1024): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw invalid(`${label} must be text`);
  if (value.length > max) throw invalid(`${label} is longer than ${max} characters`);
  if (hasControlCharacters(value)) throw invalid(`${label} ${CONTROL_CHARACTERS_MESSAGE}: they could forge what a terminal shows`);
  return value;
}

/** A host name as recorded in records; defaults are the machine's name. */
export function checkHost(value: unknown): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$/.test(value)) {
    throw invalid(`invalid host name ${JSON.stringify(String(value)).slice(0, 80)}: use letters, digits, ".", "_", ":" or "-"`);
  }
  return value;
}
