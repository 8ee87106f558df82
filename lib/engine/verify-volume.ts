/**
 * A volume checked against a backup (issue 16): every block of the volume (or of a snapshot of it) is read
 * and hashed and compared with the hashes the backup's chain records. After a changed-extent incremental
 * this says whether the file system reported every change: run it on the snapshot the backup read, or on
 * a volume nobody writes to. Reads the volume; writes nothing.
 */
import { VolumeBackupError, throwIfAborted } from '../errors';
import { chainOf, findParent } from '../repository/catalog';
import { ChainView } from '../repository/chain-view';
import { chunkCount } from '../repository/format';
import { checkBackupId, checkVolumeId, volumeIdForPath } from '../repository/names';
import type { BackupRecord } from '../repository/records';
import { Repository, forEachChunk } from '../repository/repository';
import { verifyChunk, warmHashPool } from './hash-pool';
import { ProgressTracker } from './progress';
import { CHUNKS_IN_FLIGHT } from './settings';
import type { CommonOptions } from './types';
import { openSource, readFully } from './volume';

export interface VerifyVolumeOptions extends CommonOptions {
  volume: string;
  /** The backup to compare with (default: the newest available backup of volumeId). */
  backupId?: string;
  /** Default: derived from the volume's path, as backups do. */
  volumeId?: string;
}

export interface VerifyVolumeResult {
  backupId: string;
  volume: string;
  ok: boolean;
  bytesRead: number;
  /** The first differing block of each chunk that differs (at most MAX_REPORTED), as byte offsets. */
  differingAt: number[];
  /** Chunks with at least one differing block. */
  differingChunks: number;
}

const MAX_REPORTED = 100;

async function chooseBackup(repo: Repository, options: VerifyVolumeOptions): Promise<BackupRecord> {
  if (options.backupId) {
    const record = await repo.getRecord(checkBackupId(options.backupId));
    if (record.status !== 'available' && record.status !== 'restoring') throw new VolumeBackupError('CONFLICT', `backup ${record.id} is ${record.status}, not available`);
    return record;
  }
  const volumeId = checkVolumeId(options.volumeId ?? volumeIdForPath(options.volume));
  const newest = findParent(await repo.listRecords(volumeId), volumeId, 'incremental');
  if (!newest) throw new VolumeBackupError('NOT_FOUND', `no available backup of volume ${volumeId} to compare ${options.volume} with: give --backup ID`);
  return newest;
}

export async function verifyVolume(repo: Repository, options: VerifyVolumeOptions): Promise<VerifyVolumeResult> {
  warmHashPool();
  const record = await chooseBackup(repo, options);
  const source = await openSource(options.volume, false);
  try {
    if (source.size !== record.size) {
      throw new VolumeBackupError('INVALID_ARGUMENT', `volume ${source.path} holds ${source.size} bytes, backup ${record.id} ${record.size}: they cannot be compared`);
    }
    const view = await ChainView.open(repo, chainOf(await repo.listRecords(record.volumeId), record.id), options.signal);
    const { size, chunkSize, blockSize } = record;
    const chunks = chunkCount(size, chunkSize);
    const progress = new ProgressTracker(options.onProgress, { operation: 'verify', backupId: record.id, volumeId: record.volumeId, snapshotId: record.snapshotId, chunkCount: chunks, bytesTotal: size });
    progress.start();
    const differing: number[] = [];
    const slots = Array.from({ length: Math.min(CHUNKS_IN_FLIGHT, chunks) }, () => new SharedArrayBuffer(chunkSize));
    await forEachChunk(slots, chunks, async (slot, i) => {
      throwIfAborted(options.signal);
      const offset = i * chunkSize;
      const length = Math.min(chunkSize, size - offset);
      await readFully(source, Buffer.from(slot, 0, length), length, offset);
      const state = await view.state(i, options.signal);
      const blocks = Math.ceil(length / blockSize);
      // Zero blocks too: their recorded hash is the zero block's, which data in the volume would not match.
      const bad = await verifyChunk({ chunk: slot, chunkOffset: 0, length, blockSize, expected: new Uint8Array(state.hashes.subarray(0, blocks * 32)), zero: new Uint8Array(blocks) });
      if (bad >= 0) differing.push(offset + bad * blockSize);
      progress.chunk(i, length);
    });
    progress.end();
    differing.sort((a, b) => a - b);
    return { backupId: record.id, volume: source.path, ok: differing.length === 0, bytesRead: size, differingAt: differing.slice(0, MAX_REPORTED), differingChunks: differing.length };
  } finally {
    await source.handle.close();
  }
}
