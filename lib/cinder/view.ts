/** A Cinder backup shown the way list/show/the sidebar show a native record. */
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
