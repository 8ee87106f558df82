import type { Repository } from '../repository/repository';
import type { BackupRecord } from '../repository/records';
import type { CreateBackupOptions } from './types';
export async function createBackup(repo: Repository, options: CreateBackupOptions): Promise<BackupRecord> {
  void repo; void options;
  throw new Error('createBackup: being written');
}
