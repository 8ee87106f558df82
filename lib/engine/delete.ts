import type { Repository } from '../repository/repository';
import type { DeleteOptions, DeleteResult } from './types';
export async function deleteBackup(repo: Repository, options: DeleteOptions): Promise<DeleteResult> {
  void repo; void options;
  throw new Error('deleteBackup: being written');
}
