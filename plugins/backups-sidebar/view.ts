/**
 * What the Backups sidebar shows, built from a repository's records: volumes, each with its backups
 * grouped into chains (a full backup and everything that depends on it). Only fields a user reads go
 * out; object names, hashes and leases stay on the server.
 */
import type { BackupRecord } from '../../lib/repository/records';
import { leaseExpired } from '../../lib/repository/records';

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
  /** Who asked the running operation to stop (and, once it stopped, who stopped it). */
  cancelRequest: BackupRecord['cancelRequest'] | null;
  /** While restoring: the target being written, and by which host. */
  restoreTarget: BackupRecord['restoreTarget'] | null;
  /** 0 for the chain's first backup, 1 + its parent's depth otherwise. */
  depth: number;
}

export interface ChainView {
  /** The full backup the chain starts with; for a broken chain, its oldest backup. */
  rootId: string;
  /** Why the chain cannot be restored as a whole (a missing parent), or null. */
  broken: string | null;
  /** Parents before their children; siblings oldest first (by data timestamp). On a page: the page's part of the chain. */
  backups: BackupView[];
  /** Backups in the whole chain (more than backups.length when a page shows only part of it). */
  backupCount: number;
  storedBytes: number;
}

export interface VolumeView {
  volumeId: string;
  sourcePath: string | null;
  backupCount: number;
  /** Chains of the whole volume (more than chains.length when a page shows only some). */
  chainCount: number;
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
    cancelRequest: record.cancelRequest ?? null,
    restoreTarget: record.restoreTarget ?? null,
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
    return { rootId: root.id, broken, backups, backupCount: backups.length, storedBytes: backups.reduce((n, b) => n + b.storedBytes, 0) };
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

function byVolume(records: readonly BackupRecord[]): Map<string, BackupRecord[]> {
  const groups = new Map<string, BackupRecord[]>();
  for (const r of records) {
    const list = groups.get(r.volumeId);
    if (list) list.push(r);
    else groups.set(r.volumeId, [r]);
  }
  return new Map([...groups.keys()].sort().map((id) => [id, groups.get(id)!]));
}

function volumeView(volumeId: string, list: BackupRecord[], chains: ChainView[], chainCount = chains.length): VolumeView {
  let newest: BackupRecord | null = null;
  for (const r of list) if (!newest || byData(newest, r) < 0) newest = r;
  return {
    volumeId,
    sourcePath: newest?.sourcePath ?? null,
    backupCount: list.length,
    chainCount,
    storedBytes: list.reduce((n, r) => n + r.storedBytes, 0),
    newestDataTimestamp: newest?.dataTimestamp ?? null,
    chains,
  };
}

export function volumesOf(records: readonly BackupRecord[], now: Date): VolumeView[] {
  return [...byVolume(records)].map(([volumeId, list]) => volumeView(volumeId, list, chainsOf(list, now)));
}

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

export interface PageInfo {
  /** 0-based. */
  page: number;
  size: number;
  /** Backups in the listing (every page together). */
  total: number;
  pages: number;
}

/**
 * One page of the listing: the backups in the sidebar's order (volumes by id, newest chain first,
 * parents before children) from page*size on, as volumes and chains holding only that page's
 * backups (volume and chain totals stay whole). Only the volumes on the page are built into chains,
 * so a page of a 10,000-backup repository costs what its backups cost, not the repository.
 */
export function sidebarPage(records: readonly BackupRecord[], now: Date, request: { page: number; size: number }): { volumes: VolumeView[]; page: PageInfo } {
  const size = Math.min(Math.max(1, Math.floor(request.size)), MAX_PAGE_SIZE);
  const pages = Math.max(1, Math.ceil(records.length / size));
  const page = Math.min(Math.max(0, Math.floor(request.page)), pages - 1);
  const start = page * size;
  const end = start + size;
  const volumes: VolumeView[] = [];
  let offset = 0; // index of the volume's first backup in the whole listing
  for (const [volumeId, list] of byVolume(records)) {
    const volumeStart = offset;
    offset += list.length;
    if (offset <= start) continue;
    if (volumeStart >= end) break;
    let index = volumeStart;
    const chains: ChainView[] = [];
    const all = chainsOf(list, now);
    for (const chain of all) {
      const from = Math.max(start - index, 0);
      const to = Math.min(end - index, chain.backups.length);
      index += chain.backups.length;
      if (from < to) chains.push({ ...chain, backups: chain.backups.slice(from, to) });
    }
    volumes.push(volumeView(volumeId, list, chains, all.length));
  }
  return { volumes, page: { page, size, total: records.length, pages } };
}
