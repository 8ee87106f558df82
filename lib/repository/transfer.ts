import type { Repository } from './repository';
import type { BackupRecord } from './records';
export async function exportRecord(repo: Repository, backupId: string): Promise<string> {
  void repo; void backupId;
  throw new Error('exportRecord: being written');
}
export async function importRecord(repo: Repository, text: string): Promise<BackupRecord> {
  void repo; void text;
  throw new Error('importRecord: being written');
}
