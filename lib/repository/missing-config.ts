/**
 * A location that holds a repository's content (records, locks, data objects) but no repository.json
 * lost its description, not never had one. Making a fresh repository.json there would give it a new
 * id and, when encrypted, a new master key: every old backup would become unrestorable. So only a
 * location without such content is ever initialised, and the error says what is missing and what to do.
 */
import type { Driver } from '../drivers/driver';
import { VolumeBackupError } from '../errors';
import { DATA_ROOT, LOCKS_PREFIX, RECORDS_PREFIX } from './layout';

/** What repository.json describes: these names belong to a repository (stale temporaries do not count). */
const CONTENT_PREFIXES = [RECORDS_PREFIX, LOCKS_PREFIX, DATA_ROOT] as const;

/** What of a repository's content is at the location (counts by kind). */
export interface RepositoryContent {
  records: number;
  locks: number;
  objects: number;
}

/** The repository content at the location, or null when there is none. */
export async function repositoryContentAt(driver: Driver, container: string): Promise<RepositoryContent | null> {
  const [records, locks, objects] = await Promise.all(CONTENT_PREFIXES.map(async (prefix) => (await driver.listEntries(container, prefix)).length));
  return records + locks + objects === 0 ? null : { records, locks, objects };
}

/** The error for a location whose repository.json is missing while `found` (its content) is there. */
export function missingConfigError(driver: Driver, container: string, found: RepositoryContent): VolumeBackupError {
  const where = `${driver.location}${container ? ` (container ${container})` : ''}`;
  const parts = [[found.records, 'record'], [found.locks, 'lock'], [found.objects, 'backup object']] as const;
  const what = parts.filter(([n]) => n > 0).map(([n, name]) => `${n} ${name}${n === 1 ? '' : 's'}`).join(', ');
  // Objects alone may have been copied in for an import: the repository must exist before them.
  // An encrypted source's objects open only with its key: that repository needs a copy of the source's repository.json, not init.
  const forImport = found.records + found.locks === 0 ? " (to import copied objects, make the repository with init before copying them in; for objects of an encrypted repository, copy that repository's repository.json instead)" : '';
  return new VolumeBackupError(
    'CORRUPT',
    `repository.json is missing at ${where}, which holds a repository's backups (${what}): ` +
      'restore repository.json from a copy (for an encrypted repository it holds the key, without which nothing can be restored), ' +
      `or use an empty location for a new repository${forImport}; nothing was written`,
    { missing: 'repository.json', location: where },
  );
}

/** Whether an error is the one above (the CLI's verify reports it as a problem). */
export function isMissingConfigError(err: unknown): err is VolumeBackupError {
  return err instanceof VolumeBackupError && err.details?.missing === 'repository.json';
}
