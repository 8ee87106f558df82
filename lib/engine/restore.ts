import type { Repository } from '../repository/repository';
import type { RestoreOptions, RestoreResult } from './types';
export async function restoreBackup(repo: Repository, options: RestoreOptions): Promise<RestoreResult> {
  void repo; void options;
  throw new Error('restoreBackup: being written');
}
