/** Looking into a posix repository the way a user would after an operation: open it, read, close it. */
import { openRepository } from '../../lib/open';
import { listBackups } from '../../lib/repository/catalog';
import type { BackupRecord } from '../../lib/repository/records';
import type { Repository } from '../../lib/repository/repository';

/** Opens the posix repository at repoDir, runs fn on it and closes it again, also when fn fails. */
export async function withRepository<T>(repoDir: string, fn: (repo: Repository) => Promise<T>): Promise<T> {
  const repo = await openRepository({ backend: 'posix', path: repoDir });
  try {
    return await fn(repo);
  } finally {
    await repo.close();
  }
}

/** The backups listed in the posix repository at repoDir. */
export function backupsIn(repoDir: string): Promise<BackupRecord[]> {
  return withRepository(repoDir, (repo) => listBackups(repo));
}
