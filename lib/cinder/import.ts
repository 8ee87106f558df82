/**
 * Import a Cinder chain into a repository as native backups: the same ids, names, descriptions, times
 * and parent links, so the next native incremental of the volume continues the chain. Each Cinder
 * backup is applied (checked block by block) to a sparse work image, and a native backup of that image
 * is made as of the Cinder backup: a full for the chain's first, an incremental on the one before for
 * the others. Backups already in the repository are kept, not imported again.
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createBackup } from '../engine/backup';
import type { Logger } from '../engine/types';
import { VolumeBackupError, invalid } from '../errors';
import { checkBackupId, checkVolumeId } from '../repository/names';
import type { BackupRecord, Compression } from '../repository/records';
import type { Repository } from '../repository/repository';
import { DEFAULT_CHUNK_SIZE } from '../engine/settings';
import { walkChain } from './chain';
import type { CinderBackup, CinderStore } from './store';

export interface CinderImportOptions {
  /** Import this backup's chain (default: every chain of `volumeId`). */
  backupId?: string;
  volumeId?: string;
  compression?: Compression;
  /** Where the work image is made (default: the OS's temporary directory); it needs room for the volume (sparse). */
  workDir?: string;
  signal?: AbortSignal;
  log?: Logger;
}

export interface CinderImportResult {
  imported: BackupRecord[];
  /** Backups of the chains that were in the repository already (kept as they are). */
  skipped: string[];
}

export async function importCinderBackups(store: CinderStore, repo: Repository, options: CinderImportOptions): Promise<CinderImportResult> {
  if (!options.backupId === !options.volumeId) throw invalid('give --backup ID (that backup and its chain) or --volume-id V (every backup of the volume)');
  const heads = options.backupId ? [await store.get(checkBackupId(options.backupId))] : await chainHeads(store, checkVolumeId(options.volumeId!));
  const result: CinderImportResult = { imported: [], skipped: [] };
  const existing = new Set((await repo.listRecords()).map((r) => r.id));
  for (const head of heads) await importChain(store, repo, await store.chain(head.id), existing, result, options);
  return result;
}

/** The backups of a volume no other backup names as parent: importing their chains imports them all. */
async function chainHeads(store: CinderStore, volumeId: string): Promise<CinderBackup[]> {
  const all = await store.list(volumeId);
  if (all.length === 0) throw new VolumeBackupError('NOT_FOUND', `no backup of volume ${volumeId} in the ${store.location}`);
  const parents = new Set(all.map((b) => b.parentId));
  return all.filter((b) => !parents.has(b.id));
}

async function importChain(store: CinderStore, repo: Repository, chain: CinderBackup[], existing: Set<string>, result: CinderImportResult, options: CinderImportOptions): Promise<void> {
  const work = await fs.mkdtemp(path.join(options.workDir ?? os.tmpdir(), 'vb-cinder-import-'));
  const image = path.join(work, 'volume.img');
  const handle = await fs.open(image, 'w+');
  try {
    let previous: CinderBackup | null = null;
    let previousSize = 0;
    await walkChain(
      store,
      chain,
      async (offset, data) => {
        await handle.write(data, 0, data.length, offset);
      },
      {
        signal: options.signal,
        afterBackup: async (b) => {
          let parent = previous;
          previous = b;
          const size = (await handle.stat()).size;
          const grew = size > previousSize && parent !== null;
          previousSize = size;
          if (existing.has(b.id)) {
            result.skipped.push(b.id);
            return;
          }
          if (grew) {
            // Cinder checks growth in whole GiB only; a native incremental cannot grow its volume.
            options.log?.warn(`Cinder backup ${b.id} is of a volume larger than its parent ${parent!.id}'s: it is imported as a full backup (no parent link)`);
            parent = null;
          }
          await handle.datasync();
          const sha = await store.readSha256(b);
          const record = await createBackup(repo, {
            volume: image,
            volumeId: checkVolumeId(b.volumeId),
            name: b.name,
            description: b.description,
            mode: parent ? 'incremental' : 'full',
            parentId: parent?.id,
            blockSize: parent ? undefined : sha.chunk_size,
            chunkSize: parent ? undefined : chunkSizeFor(sha.chunk_size),
            compression: options.compression,
            sourcePath: `${store.key(b, b.prefix)} (Cinder backup ${b.id})`,
            importAs: { id: b.id, createdAt: b.createdAt },
            signal: options.signal,
          });
          existing.add(b.id);
          result.imported.push(record);
          options.log?.info(`imported Cinder backup ${b.id}${parent ? ` (incremental on ${parent.id})` : ' (full)'}`);
        },
      },
    );
  } finally {
    await handle.close();
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** The repository's default chunk size, rounded down to a whole number of Cinder's hash blocks. */
function chunkSizeFor(blockSize: number): number {
  return Math.max(1, Math.floor(DEFAULT_CHUNK_SIZE / blockSize)) * blockSize;
}
