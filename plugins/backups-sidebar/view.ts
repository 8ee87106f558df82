/**
 * What the Backups sidebar shows, built from a repository's records: volumes, each with its backups
 * grouped into chains (a full backup and everything that depends on it). Only fields a user reads go
 * out; object names, hashes and leases stay on the server.
 */
import type { BackupRecord } from '../../lib/repository/records';
import { leaseExpired } from '../../lib/repository/retention';

export interface BackupView {
  id: string;
  name: string;
  description: string;
  status: BackupRecord['status'];
  /** An operation whose owner stopped renewing its lease (a crashed writer or restorer). */
  stale: boolean;
  failReason: string | null;
  parentId: string | null;
  kind: BackupRecord['kind'];
  dataTimestamp: string;
  createdAt: string;
  updatedAt: string;
  size: number;
  storedBytes: number;
  objectCount: number;
  chunkSize: number;
  blockSize: number;
  compression: BackupRecord['compression'];
  snapshotId: string | null;
  snapshotProvider: string | null;
  host: string;
  sourcePath: string | null;
  encrypted: boolean;
  /** 0 for the chain's first backup, 1 + its parent's depth otherwise. */
  depth: number;
}

export interface ChainView {
  /** The full backup the chain starts with; for a broken chain, its oldest backup. */
  rootId: string;
  /** Why the chain cannot be restored as a whole (a missing parent), or null. */
  broken: string | null;
  /** Parents before their children; siblings oldest first (by data timestamp). */
  backups: BackupView[];
  storedBytes: number;
}

export interface VolumeView {
  volumeId: string;
  sourcePath: string | null;
  backupCount: number;
  storedBytes: number;
  newestDataTimestamp: string | null;
  /** Newest chain first. */
  chains: ChainView[];
}

export function backupView(record: BackupRecord, depth: number, now: Date): BackupView {
  return {
    id: record.id,
    name: record.name,
    description: record.description,
    status: record.status,
    stale: record.status !== 'available' && record.status !== 'error' && leaseExpired(record, now),
    failReason: record.failReason,
    parentId: record.parentId,
    kind: record.kind,
    dataTimestamp: record.dataTimestamp,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    size: record.size,
    storedBytes: record.storedBytes,
    objectCount: record.objectCount,
    chunkSize: record.chunkSize,
    blockSize: record.blockSize,
    compression: record.compression,
    snapshotId: record.snapshotId,
    snapshotProvider: record.snapshotProvider,
    host: record.host,
    sourcePath: record.sourcePath,
    encrypted: record.encrypted,
    depth,
  };
}

const byData = (a: BackupRecord, b: BackupRecord) =>
  Date.parse(a.dataTimestamp) - Date.parse(b.dataTimestamp) || a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id);

/** One volume's records as chains. Every record appears exactly once. */
export function chainsOf(records: readonly BackupRecord[], now: Date): ChainView[] {
  const byId = new Map(records.map((r) => [r.id, r]));
  const children = new Map<string, BackupRecord[]>();
  const roots: BackupRecord[] = [];
  for (const r of records) {
    if (r.parentId && byId.has(r.parentId) && r.parentId !== r.id) {
      const list = children.get(r.parentId) ?? [];
      list.push(r);
      children.set(r.parentId, list);
    } else {
      roots.push(r);
    }
  }
  const placed = new Set<string>();
  const chainFrom = (root: BackupRecord): ChainView => {
    const backups: BackupView[] = [];
    const visit = (r: BackupRecord, depth: number) => {
      if (placed.has(r.id)) return;
      placed.add(r.id);
      backups.push(backupView(r, depth, now));
      for (const child of [...(children.get(r.id) ?? [])].sort(byData)) visit(child, depth + 1);
    };
    visit(root, 0);
    let broken: string | null = null;
    if (root.parentId) broken = `its first backup needs ${root.parentId}, which is not in the repository`;
    else if (root.kind !== 'full') broken = `it starts with a ${root.kind} backup that has no parent`;
    return { rootId: root.id, broken, backups, storedBytes: backups.reduce((n, b) => n + b.storedBytes, 0) };
  };
  const chains = [...roots].sort(byData).map(chainFrom);
  // Records in a parent loop have no root; show them rather than hide them.
  for (const r of [...records].sort(byData)) {
    if (!placed.has(r.id)) {
      const chain = chainFrom(r);
      chain.broken = 'its parents form a loop';
      chains.push(chain);
    }
  }
  return chains.reverse();
}

export function volumesOf(records: readonly BackupRecord[], now: Date): VolumeView[] {
  const groups = new Map<string, BackupRecord[]>();
  for (const r of records) {
    const list = groups.get(r.volumeId) ?? [];
    list.push(r);
    groups.set(r.volumeId, list);
  }
  return [...groups.keys()].sort().map((volumeId) => {
    const list = groups.get(volumeId)!;
    const newest = [...list].sort(byData).pop() ?? null;
    return {
      volumeId,
      sourcePath: newest?.sourcePath ?? null,
      backupCount: list.length,
      storedBytes: list.reduce((n, r) => n + r.storedBytes, 0),
      newestDataTimestamp: newest?.dataTimestamp ?? null,
      chains: chainsOf(list, now),
    };
  });
}
