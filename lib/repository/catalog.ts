/**
 * Questions about the set of records: parent selection, dependents, chains. The functions over record
 * arrays are pure; listBackups/getBackup read them from a repository.
 */
import { VolumeBackupError } from '../errors';
import { checkVolumeId } from './names';
import type { BackupKind, BackupRecord } from './records';
import type { Repository } from './repository';

export async function listBackups(repo: Repository, filter: { volumeId?: string } = {}, onInvalid?: (name: string, reason: string) => void): Promise<BackupRecord[]> {
  return repo.listRecords(filter.volumeId ? checkVolumeId(filter.volumeId) : undefined, onInvalid);
}

export async function getBackup(repo: Repository, backupId: string): Promise<BackupRecord> {
  return repo.getRecord(backupId);
}

/**
 * Why `r` cannot be the parent of a new `kind` backup of `volumeId` whose data time is `before` (a
 * snapshot's), or null when it can. The rules of the automatic choice, which an explicit parent must
 * meet as well: the same volume; for a differential, a full backup; for a snapshot backup, data
 * earlier than the snapshot's (seed 002). Status is the caller's business.
 */
export function parentMismatch(r: BackupRecord, volumeId: string, kind: BackupKind, before?: Date): string | null {
  if (r.volumeId !== volumeId) return `it is a backup of volume ${r.volumeId}, not of ${volumeId}`;
  if (kind === 'differential' && r.kind !== 'full') return `it is ${r.kind === 'incremental' ? 'an' : 'a'} ${r.kind} backup, and a differential backup is based on a full one`;
  if (before && !(Date.parse(r.dataTimestamp) < before.getTime())) {
    return `its data time ${r.dataTimestamp} is not earlier than the snapshot's ${before.toISOString()}, so it cannot be what the snapshot changed`;
  }
  return null;
}

/**
 * The parent of a new incremental (Cinder's rule): the newest `available` backup of the volume by
 * dataTimestamp that parentMismatch allows: for a differential, the newest available full backup;
 * for a snapshot backup only backups whose dataTimestamp is earlier than the snapshot's. null when there is none.
 */
export function findParent(records: BackupRecord[], volumeId: string, kind: BackupKind, before?: Date): BackupRecord | null {
  const candidates = records.filter((r) => r.status === 'available' && parentMismatch(r, volumeId, kind, before) === null);
  candidates.sort((a, b) => Date.parse(b.dataTimestamp) - Date.parse(a.dataTimestamp) || b.createdAt.localeCompare(a.createdAt));
  return candidates[0] ?? null;
}

/** Backups that name this one as their parent. */
export function dependentsOf(records: BackupRecord[], backupId: string): BackupRecord[] {
  return records.filter((r) => r.parentId === backupId);
}

/** Every backup that depends on this one, directly or not, children before their parents. */
export function descendantsOf(records: BackupRecord[], backupId: string): BackupRecord[] {
  const out: BackupRecord[] = [];
  const visit = (id: string, seen: Set<string>) => {
    for (const child of dependentsOf(records, id)) {
      if (seen.has(child.id)) continue;
      seen.add(child.id);
      visit(child.id, seen);
      out.push(child);
    }
  };
  visit(backupId, new Set([backupId]));
  return out;
}

/** The chain from the full backup to `backupId`, full first. Throws when a link is missing or loops. */
export function chainOf(records: readonly BackupRecord[] | ReadonlyMap<string, BackupRecord>, backupId: string): BackupRecord[] {
  // A map by id may be passed in: verify asks for the chain of every backup of a big catalog.
  const byId: ReadonlyMap<string, BackupRecord> = records instanceof Map ? records : new Map((records as readonly BackupRecord[]).map((r) => [r.id, r]));
  const chain: BackupRecord[] = [];
  let current = byId.get(backupId);
  if (!current) throw new VolumeBackupError('NOT_FOUND', `backup ${backupId} not found`, { backupId });
  const seen = new Set<string>();
  while (current) {
    if (seen.has(current.id)) throw new VolumeBackupError('CORRUPT', `the parent chain of backup ${backupId} loops at ${current.id}`, { backupId });
    seen.add(current.id);
    chain.unshift(current);
    if (!current.parentId) break;
    const parent = byId.get(current.parentId);
    if (!parent) {
      throw new VolumeBackupError(
        'CORRUPT',
        `backup ${current.id} needs its parent ${current.parentId}, which is missing from the repository`,
        { backupId, missing: current.parentId },
      );
    }
    current = parent;
  }
  if (chain[0].kind !== 'full') throw new VolumeBackupError('CORRUPT', `the chain of backup ${backupId} does not start with a full backup`, { backupId });
  return chain;
}
