/**
 * A location that holds a repository's content (records, locks, data objects) but no repository.json
 * lost its description, not never had one. Making a fresh repository.json there would give it a new
 * id and, when encrypted, a new master key: every old backup would become unrestorable. So only a
 * location without such content is ever initialised, and the error says what is missing and what to do.
 */
import type { Driver } from '../drivers/driver';
import { VolumeBackupError } from '../errors';

/** What repository.json describes: these names belong to a repository (stale temporaries do not count). */
const CONTENT_PREFIXES = ['records/', 'locks/', 'volume_'] as const;

/** The repository content at the location, as "N records, M data objects…", or null when there is none. */
export async function repositoryContentAt(driver: Driver, container: string): Promise<string | null> {
  const counts = await Promise.all(CONTENT_PREFIXES.map(async (prefix) => (await driver.listEntries(container, prefix)).length));
  const [records, locks, objects] = counts;
  if (records + locks + objects === 0) return null;
  const parts = [[records, 'record'], [locks, 'lock'], [objects, 'backup object']] as const;
  return parts.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}${n === 1 ? '' : 's'}`).join(', ');
}

/** The error for a location whose repository.json is missing while `found` (its content) is there. */
export function missingConfigError(driver: Driver, container: string, found: string): VolumeBackupError {
  const where = `${driver.location}${container ? ` (container ${container})` : ''}`;
  return new VolumeBackupError(
    'CORRUPT',
    `repository.json is missing at ${where}, which holds a repository's backups (${found}): ` +
      'restore repository.json from a copy (for an encrypted repository it holds the key, without which nothing can be restored), ' +
      'or use an empty location for a new repository; nothing was written',
    { missing: 'repository.json', location: where },
  );
}

/** Whether an error is the one above (the CLI's verify reports it as a problem). */
export function isMissingConfigError(err: unknown): err is VolumeBackupError {
  return err instanceof VolumeBackupError && err.details?.missing === 'repository.json';
}
