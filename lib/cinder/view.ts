/** A Cinder backup shown the way list/show/the sidebar show a native record. */
import { RECORD_FORMAT_VERSION, type BackupRecord } from '../repository/records';
import { imageSize } from './chain';
import type { CinderBackup, CinderStore } from './store';

export interface CinderBackupView {
  id: string;
  volumeId: string;
  name: string;
  description: string;
  status: 'available';
  kind: 'full' | 'incremental';
  parentId: string | null;
  dataTimestamp: string;
  createdAt: string;
  /** The image's length in bytes (from the chain's full backup; null when the chain is broken). */
  size: number;
  storedBytes: number;
  objectCount: number;
  compression: string;
  /** Where the objects are: the posix container directory, or "" (keys from the bucket's root). */
  container: string;
  objectPrefix: string;
  source: 'cinder';
}

export async function viewOf(store: CinderStore, b: CinderBackup): Promise<CinderBackupView> {
  const chain = await store.chain(b.id).catch(() => null);
  const compressions = [...new Set(b.objects.map((o) => o.compression))].sort();
  return {
    id: b.id,
    volumeId: b.volumeId,
    name: b.name,
    description: b.description,
    status: 'available',
    kind: b.parentId ? 'incremental' : 'full',
    parentId: b.parentId,
    dataTimestamp: b.createdAt.toISOString(),
    createdAt: b.createdAt.toISOString(),
    size: chain ? imageSize(chain) : -1,
    storedBytes: b.storedBytes,
    objectCount: b.objects.length,
    compression: compressions.join('+') || 'none',
    container: b.base,
    objectPrefix: b.prefix,
    source: 'cinder',
  };
}

/**
 * The view as a record of this package's shape (status available, no owner, no lease), for the code that
 * shows records: the restore node's list and the Backups sidebar. Its `compression` may be bz2.
 */
export function recordOf(v: CinderBackupView, blockSize = 32768): BackupRecord {
  return {
    formatVersion: RECORD_FORMAT_VERSION,
    id: v.id,
    volumeId: v.volumeId,
    name: v.name,
    description: v.description,
    status: 'available',
    failReason: null,
    parentId: v.parentId,
    kind: v.kind,
    dataTimestamp: v.dataTimestamp,
    createdAt: v.createdAt,
    updatedAt: v.createdAt,
    size: Math.max(0, v.size),
    storedBytes: v.storedBytes,
    objectCount: v.objectCount,
    chunkSize: blockSize,
    blockSize,
    compression: v.compression as BackupRecord['compression'],
    snapshotId: null,
    snapshotProvider: null,
    host: 'cinder',
    objectPrefix: v.objectPrefix,
    metadataSha256: null,
    leaseExpiresAt: null,
    owner: null,
    sourcePath: null,
    encrypted: false,
  };
}

/** Every backup of a store (or of one volume) as records, oldest first. */
export async function cinderRecords(store: CinderStore, volumeId?: string): Promise<BackupRecord[]> {
  return Promise.all((await store.list(volumeId)).map(async (b) => recordOf(await viewOf(store, b))));
}
