/**
 * `export --format cinder`: a repository backup written in Cinder's posix layout under a directory (a
 * Cinder backup_posix_path, or one to copy there), flattened into one full backup or as its chain, with
 * the backup_url `cinder backup-import` takes for each (Cinder's export_record: base64 JSON of the
 * backup's fields). The backups keep their ids, names, descriptions and times.
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { restoreBackup } from '../engine/restore';
import { chainOf } from '../repository/catalog';
import type { BackupRecord } from '../repository/records';
import type { Repository } from '../repository/repository';
import { CinderExportCompression, WrittenCinderBackup, removeContainer, writeCinderBackup } from './writer';

export const CINDER_POSIX_SERVICE = 'cinder.backup.drivers.posix.PosixBackupDriver';
const GiB = 1024 ** 3;

export interface CinderExportOptions {
  backupId: string;
  /** The directory the Cinder layout is written under. */
  to: string;
  /** Export the chain as Cinder incrementals (default: one full backup with the whole image). */
  chain?: boolean;
  compression?: CinderExportCompression;
  /** Object size (default: the backup's chunk size); a multiple of the block size. */
  chunkSize?: number;
  /** Where the work image is restored (default: the temporary directory). */
  workDir?: string;
  signal?: AbortSignal;
}

export interface ExportedCinderBackup {
  backupId: string;
  parentId: string | null;
  container: string;
  backupService: string;
  backupUrl: string;
}

export async function exportToCinder(repo: Repository, options: CinderExportOptions): Promise<ExportedCinderBackup[]> {
  const record = await repo.getRecord(options.backupId);
  const records = await repo.listRecords(record.volumeId);
  const chain = options.chain ? chainOf(records, record.id) : [record];
  const work = await fs.mkdtemp(path.join(options.workDir ?? os.tmpdir(), 'vb-cinder-export-'));
  const image = path.join(work, 'volume.img');
  const out: ExportedCinderBackup[] = [];
  try {
    let parent: { id: string; sha256s: string[] } | null = null;
    for (const [i, r] of chain.entries()) {
      await fs.rm(image, { force: true }); // a new file each time: restored sparse, nothing of the last one left
      await restoreBackup(repo, { backupId: r.id, target: image, signal: options.signal });
      const written = await writeCinderBackup({
        root: options.to,
        image,
        id: r.id,
        volumeId: r.volumeId,
        name: r.name,
        description: r.description,
        createdAt: new Date(r.createdAt),
        parent,
        chunkSize: options.chunkSize ?? r.chunkSize,
        blockSize: r.blockSize,
        compression: options.compression ?? 'zlib',
        signal: options.signal,
      });
      const dependents = i < chain.length - 1 ? 1 : 0;
      out.push({ backupId: r.id, parentId: parent?.id ?? null, container: written.container, backupService: CINDER_POSIX_SERVICE, backupUrl: backupUrl(r, written, parent?.id ?? null, dependents) });
      parent = { id: r.id, sha256s: written.sha256s };
    }
    return out;
  } catch (err) {
    // A chain exported in part would be a chain Cinder cannot restore: what this run wrote goes.
    for (const e of out) await removeContainer(options.to, e.container).catch(() => undefined);
    throw err;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** Cinder's export record (objects.Backup.encode_record with driver_info {} as the posix driver gives it). */
function backupUrl(r: BackupRecord, w: WrittenCinderBackup, parentId: string | null, dependents: number): string {
  const time = (iso: string) => `${iso.slice(0, 19)}Z`;
  const record = {
    driver_info: {},
    id: r.id,
    volume_id: r.volumeId,
    container: w.container,
    parent_id: parentId,
    status: 'available',
    fail_reason: null,
    size: Math.max(1, Math.ceil(w.size / GiB)),
    display_name: r.name,
    display_description: r.description,
    service_metadata: w.prefix,
    service: CINDER_POSIX_SERVICE,
    object_count: w.objectCount,
    temp_volume_id: null,
    temp_snapshot_id: null,
    num_dependent_backups: dependents,
    snapshot_id: null,
    data_timestamp: time(r.dataTimestamp),
    restore_volume_id: null,
    metadata: {},
    encryption_key_id: null,
    created_at: time(r.createdAt),
    updated_at: time(r.updatedAt),
    deleted_at: null,
    deleted: false,
  };
  return Buffer.from(JSON.stringify(record), 'utf8').toString('base64');
}
