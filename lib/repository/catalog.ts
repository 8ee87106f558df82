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

/**
 * The ancestors of `record` by parentId, nearest first. Every walk over parents goes through here: it
 * stops at the first missing parent or at the first id seen twice (a loop, which hand-edited or
 * damaged records can make): so it takes at most one step per record.
 */
export function ancestorsOf(byId: ReadonlyMap<string, BackupRecord>, record: BackupRecord): { ids: string[]; missing: string | null; loop: string[] | null } {
  const ids: string[] = [];
  const path = [record.id];
  const seen = new Set(path);
  let parentId = record.parentId;
  while (parentId) {
    if (seen.has(parentId)) return { ids, missing: null, loop: path.slice(path.indexOf(parentId)) };
    const parent = byId.get(parentId);
    if (!parent) return { ids, missing: parentId, loop: null };
    path.push(parentId);
    seen.add(parentId);
    ids.push(parentId);
    parentId = parent.parentId;
  }
  return { ids, missing: null, loop: null };
}

/** The error for a parent loop: which records form it, and what to do. */
export function parentLoopError(backupId: string, loop: readonly string[]): VolumeBackupError {
  const through = loop.length === 1 ? `backup ${loop[0]} names itself as its parent` : `backups ${loop.join(' → ')} name each other as parents in a loop`;
  return new VolumeBackupError(
    'CORRUPT',
    `the parent chain of backup ${backupId} loops: ${through}. ${loop.length === 1 ? 'Its record was' : 'Their records were'} edited or damaged; nothing was changed. Each backup's metadata names its real parent (\`volume-backup verify\` shows which records differ): repair the parentId in those records`,
    { backupId, loop: [...loop] },
  );
}

/** Every backup that depends on this one, directly or not, children before their parents. CORRUPT when `backupId` is in a parent loop. */
export function descendantsOf(records: BackupRecord[], backupId: string): BackupRecord[] {
  const byId = new Map(records.map((r) => [r.id, r]));
  const self = byId.get(backupId);
  const loop = self ? ancestorsOf(byId, self).loop : null;
  // Only a loop through backupId itself leads a walk down from it back to a backup it has seen (the
  // walk keeps a visited set anyway); its "descendants" would be its own ancestors.
  if (loop?.includes(backupId)) throw parentLoopError(backupId, loop);
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
  const record = byId.get(backupId);
  if (!record) throw new VolumeBackupError('NOT_FOUND', `backup ${backupId} not found`, { backupId });
  const { ids, missing, loop } = ancestorsOf(byId, record);
  if (loop) throw parentLoopError(backupId, loop);
  if (missing) {
    const child = ids.length ? ids[ids.length - 1] : backupId;
    throw new VolumeBackupError('CORRUPT', `backup ${child} needs its parent ${missing}, which is missing from the repository`, { backupId, missing });
  }
  const chain = [...ids].reverse().map((id) => byId.get(id)!);
  chain.push(record);
  if (chain[0].kind !== 'full') throw new VolumeBackupError('CORRUPT', `the chain of backup ${backupId} does not start with a full backup`, { backupId });
  return chain;
}
