/**
 * Full, incremental and differential backups: the template of Cinder's chunked driver, with zero
 * detection, extent-level incrementals, verified parents and a bounded pipeline.
 *
 * Per chunk: positioned read → SHA-256 and zero detection of every block (worker threads) → the
 * blocks to store (full: every non-zero block; incremental: non-zero blocks whose hash differs from
 * the parent's) packed as extents into one object → compress → seal → write. A chunk the backup touched
 * (full: any non-zero block; incremental: any changed block) gets an entry in its segment's object:
 * its zero map, the hashes of its non-zero blocks, its data object (docs/format.md). A segment object is
 * written as soon as its last chunk is done, the metadata (the list of segments) at the end, and only
 * then the record becomes `available`. The parent's hashes are read a segment window at a time, so
 * memory does not grow with the volume. Any failure or cancel removes what was written and leaves the
 * record in `error`.
 */
import { VolumeBackupError, cancelled, errorMessage, throwIfAborted } from '../errors';
import { compress, compressBound } from '../codec/compression';
import { chainOf, findParent, parentMismatch } from '../repository/catalog';
import { ChainView } from '../repository/chain-view';
import {
  ChunkEntry, DEFAULT_SEGMENT_CHUNKS, METADATA_FORMAT_VERSION, MetadataV2, SegmentRef, chunkCount, dataObjectName,
  encodeMetadata, encodeSegment, metadataObjectName, runsToExtents, segmentObjectName, sha256,
} from '../repository/format';
import { VolumeLease, acquireVolumeLease, takeRecord } from '../repository/locks';
import { failStoppedBackupsOf } from './interrupted-backup';
import { watchRecord } from './cancel';
import { checkBackupId, checkText, checkVolumeId, newBackupId, volumeIdForPath } from '../repository/names';
import { BackupKind, BackupRecord, BaseSnapshot, Compression, RECORD_FORMAT_VERSION, ReadStats } from '../repository/records';
import { Repository, forEachChunk } from '../repository/repository';
import { oneLine } from '../text';
import { checkAllStored, deleteBackupObjects } from '../repository/backup-objects';
import { everyWorkerBusy, packChunk, warmHashPool } from './hash-pool';
import { PackResult, packHole } from './hash-worker';
import { SharedSlice, allocateSharedSlices } from '../io/direct-io';
import { Range, blockAligned, sparseReadsEnabled } from '../io/sparse';
import { ADAPTIVE_LEVELS, AdaptiveLevel } from '../codec/adaptive-level';
import { Pool } from './pool';
import { ProgressTracker } from './progress';
import { BACKUP_OUTPUTS_IN_FLIGHT, CHUNKS_IN_FLIGHT, DEFAULT_BLOCK_SIZE, DEFAULT_CHUNK_SIZE, DEFAULT_COMPRESSION, checkCompression, checkSizes, objectsInFlight } from './settings';
import type { CreateBackupOptions, ReadPlan } from './types';
import { Volume, checkNotShrunk, openSource, readChunk, readRanges } from './volume';

/**
 * The volume's lease. Taken over from a dead holder (a killed backup never releases it), what that backup
 * left (its record, partial objects) is freed under it, before this one needs the room; a free volume needs
 * no look at its records (a volume with a year of hourly backups has thousands).
 */
async function takeVolume(repo: Repository, volumeId: string, options: CreateBackupOptions): Promise<VolumeLease> {
  const lease = await acquireVolumeLease(repo, volumeId, { operation: 'backup', signal: options.signal, waitMs: options.lockWaitMs, onWait: options.onLockWait });
  if (lease.replacedDead) {
    await failStoppedBackupsOf(repo, volumeId, options.log).catch((err) => options.log?.warn(`earlier interrupted backups of volume ${volumeId} could not be looked for (${errorMessage(err)}); volume-backup cleanup finds them`));
  }
  return lease;
}

export async function createBackup(repo: Repository, options: CreateBackupOptions): Promise<BackupRecord> {
  const mode = BackupKind.safeParse(options.mode ?? 'full');
  if (!mode.success) throw new VolumeBackupError('INVALID_ARGUMENT', `unknown backup mode ${JSON.stringify(options.mode)}: use full, incremental or differential`);
  // The backup's own setting, else the repository's (init --compression), else zstd at its default level.
  const fromRepo = options.compression === undefined ? repo.config.compression : undefined;
  const compression = checkCompression(options.compression ?? fromRepo?.algorithm ?? DEFAULT_COMPRESSION, options.compressionLevel ?? fromRepo?.level);
  options = { ...options, compressionLevel: compression.level };
  const name = checkText('name', options.name, 255);
  const description = checkText('description', options.description, 4096);
  if (options.snapshot) checkText('snapshot id', options.snapshot.id, 1024);
  throwIfAborted(options.signal);
  warmHashPool();

  const source = await openSource(options.volume, options.sparse ?? sparseReadsEnabled());
  try {
    checkText('the volume path', options.sourcePath ?? source.path, 4096);
    const volumeId = checkVolumeId(options.volumeId ?? volumeIdForPath(options.sourcePath ?? options.volume));
    const lease = await takeVolume(repo, volumeId, options);
    try {
      // The parent is chosen under the volume's lease: a backup that waited for another builds on that one.
      const parentRecord = mode.data === 'full' ? null : await chooseParent(repo, volumeId, mode.data, options);
      const chunkSize = parentRecord?.chunkSize ?? options.chunkSize ?? DEFAULT_CHUNK_SIZE;
      const blockSize = parentRecord?.blockSize ?? options.blockSize ?? DEFAULT_BLOCK_SIZE;
      checkSizes(chunkSize, blockSize);
      if (parentRecord) checkCompatible(parentRecord, source, options);
      const parent = parentRecord ? await openParent(repo, parentRecord, options.signal) : null;
      const plan = await planRead(options, parentRecord, source.size);
      const record = creatingRecord(repo, options, {
        volumeId, name, description, kind: mode.data, parentId: parentRecord?.id ?? null, size: source.size,
        chunkSize, blockSize, compression: compression.algorithm, sourcePath: options.sourcePath ?? source.path,
      });
      const id = record.id;
      await repo.createRecord(record);
      // Renewals also watch for a cancel request (from any host): it stops the backup as Ctrl-C would.
      const watch = watchRecord(repo, id, volumeId, options.signal, options.log);
      const stopRenewal = watch.stop;
      const running = { ...options, signal: watch.signal };
      try {
        if (parentRecord) await checkParentStillThere(repo, parentRecord);
        const adaptive = compression.algorithm === 'zstd' && compression.level === undefined ? new AdaptiveLevel() : null;
        const written = await writeBackupObjects(repo, record, { source, parent, compression: compression.algorithm, options: running, adaptive }, plan.changed);
        if (adaptive?.fastChunks) options.log?.info(`backup ${id}: ${adaptive.fastChunks} chunks compressed at zstd level ${ADAPTIVE_LEVELS.fast} (the CPU, not I/O, set the pace), the others at ${ADAPTIVE_LEVELS.normal}`);
        await checkAllStored(repo, record, written.objectCount, written.storedBytes);
        return await repo.transition(id, ['creating'], 'available', {
          storedBytes: written.storedBytes,
          objectCount: written.objectCount,
          metadataSha256: written.metadataSha256,
          leaseExpiresAt: null,
          ...snapshotFields(options, plan, written.bytesRead),
        });
      } catch (err) {
        const failure = running.signal.aborted && !(err instanceof VolumeBackupError && err.code === 'CANCELLED') ? cancelled(running.signal.reason) : err;
        await failBackup(repo, record, failure, running);
        throw failure;
      } finally {
        stopRenewal();
      }
    } finally {
      await lease.release().catch(() => undefined);
    }
  } finally {
    await source.handle.close();
  }
}

/** Set-then-check against prune: our record names the parent; now the parent must still be available. */
async function checkParentStillThere(repo: Repository, parent: BackupRecord): Promise<void> {
  const now = await repo.getRecord(parent.id).catch(() => null);
  // Being restored is fine: a restoring backup cannot be moved to deleting (issue 6).
  if (now?.status !== 'available' && now?.status !== 'restoring') {
    throw new VolumeBackupError('CONFLICT', `parent backup ${parent.id} is ${now ? now.status : 'gone'} (being pruned or deleted): try again, or do a full backup`);
  }
}

/** The record of a backup about to be written: `creating`, owned by this process, with a new id. */
function creatingRecord(
  repo: Repository,
  options: CreateBackupOptions,
  fields: Pick<BackupRecord, 'volumeId' | 'name' | 'description' | 'kind' | 'parentId' | 'size' | 'chunkSize' | 'blockSize' | 'compression' | 'sourcePath'>,
): BackupRecord {
  // An import (lib/cinder/import.ts) keeps the id and time the backup had where it came from.
  const createdAt = options.importAs?.createdAt ?? new Date();
  const id = options.importAs ? checkBackupId(options.importAs.id) : newBackupId();
  // The fields in the order records have always been written in.
  return {
    formatVersion: RECORD_FORMAT_VERSION,
    id,
    volumeId: fields.volumeId,
    name: fields.name,
    description: fields.description,
    status: 'creating',
    failReason: null,
    parentId: fields.parentId,
    kind: fields.kind,
    dataTimestamp: (options.snapshot?.createdAt ?? createdAt).toISOString(),
    createdAt: createdAt.toISOString(),
    updatedAt: createdAt.toISOString(),
    size: fields.size,
    storedBytes: 0,
    objectCount: 0,
    chunkSize: fields.chunkSize,
    blockSize: fields.blockSize,
    compression: fields.compression,
    snapshotId: options.snapshot?.id ?? null,
    snapshotProvider: options.snapshot?.provider ?? null,
    host: repo.host,
    objectPrefix: repo.backupPrefix({ volumeId: fields.volumeId, backupId: id, createdAt }),
    metadataSha256: null,
    ...takeRecord(repo, 'create'),
    sourcePath: fields.sourcePath,
    encrypted: repo.codec.encrypted,
  };
}

async function chooseParent(repo: Repository, volumeId: string, mode: BackupKind, options: CreateBackupOptions): Promise<BackupRecord> {
  const records = await repo.listRecords(volumeId);
  if (options.parentId) {
    checkBackupId(options.parentId);
    const parent = records.find((r) => r.id === options.parentId);
    if (!parent) throw new VolumeBackupError('NOT_FOUND', `parent ${options.parentId} is not a backup of volume ${volumeId}`);
    if (parent.status !== 'available' && parent.status !== 'restoring') throw new VolumeBackupError('CONFLICT', `parent ${parent.id} is ${parent.status}, not available`);
    // An explicit parent meets the rules of the automatic choice (a differential on an incremental would be mislabelled).
    const mismatch = parentMismatch(parent, volumeId, mode, options.snapshot?.createdAt);
    if (mismatch) throw new VolumeBackupError('INCOMPATIBLE_PARENT', `backup ${parent.id} cannot be the parent of this ${mode} backup: ${mismatch}: choose another parent, or leave it to the automatic choice`, { parentId: parent.id });
    chainOf(records, parent.id); // a parent whose chain loops or is broken would make a backup nobody can restore
    return parent;
  }
  const parent = findParent(records, volumeId, mode, options.snapshot?.createdAt);
  if (!parent) {
    throw new VolumeBackupError(
      'NOT_FOUND',
      `no available ${mode === 'differential' ? 'full ' : ''}backup of volume ${volumeId}${options.snapshot ? ' older than the snapshot' : ''} to base a${mode === 'incremental' ? 'n' : ''} ${mode} backup on: do a full backup first`,
    );
  }
  chainOf(records, parent.id);
  return parent;
}

function checkCompatible(parent: BackupRecord, source: Volume, options: CreateBackupOptions): void {
  if (options.blockSize && options.blockSize !== parent.blockSize) {
    throw new VolumeBackupError('INCOMPATIBLE_PARENT', `block size ${options.blockSize} differs from parent ${parent.id}'s ${parent.blockSize}: do a full backup to change it`);
  }
  if (options.chunkSize && options.chunkSize !== parent.chunkSize) {
    throw new VolumeBackupError('INCOMPATIBLE_PARENT', `chunk size ${options.chunkSize} differs from parent ${parent.id}'s ${parent.chunkSize}: do a full backup to change it`);
  }
  if (source.size > parent.size) {
    throw new VolumeBackupError('INCOMPATIBLE_PARENT', `volume grew from ${parent.size} to ${source.size} bytes since backup ${parent.id}: do a full backup`);
  }
}

/** The parent's chain, its metadata read (its segments are read a window at a time while the backup runs). */
async function openParent(repo: Repository, record: BackupRecord, signal?: AbortSignal): Promise<ChainView> {
  try {
    const chain = chainOf(await repo.listRecords(record.volumeId), record.id);
    const broken = chain.find((r) => r.status !== 'available' && r.status !== 'restoring');
    if (broken) throw new VolumeBackupError('CONFLICT', `parent backup ${record.id} needs ${broken.id}, which is ${broken.status}: do a full backup`);
    return await ChainView.open(repo, chain, signal);
  } catch (err) {
    // Objects gone because a prune or delete took the parent meanwhile: say so, not "corrupt" (issue 6).
    const now = err instanceof VolumeBackupError && (err.code === 'OBJECT_MISSING' || err.code === 'CORRUPT') ? await repo.getRecord(record.id).catch(() => null) : record;
    if (now?.status !== 'available' && now?.status !== 'restoring') {
      throw new VolumeBackupError('CONFLICT', `parent backup ${record.id} is ${now ? now.status : 'gone'} (being pruned or deleted): try again, or do a full backup`);
    }
    throw err;
  }
}

/** The caller's plan of what to read; without a parent there is nothing to compare with: read everything. */
async function planRead(options: CreateBackupOptions, parent: BackupRecord | null, size: number): Promise<ReadPlan> {
  const plan = options.readPlan ? await options.readPlan(parent, size) : { changed: null, reason: null, extentRuns: 0 };
  return parent ? plan : { ...plan, changed: null };
}

/** A backup through a temporary snapshot records how it read the volume, and the base it keeps. */
function snapshotFields(options: CreateBackupOptions, plan: ReadPlan, bytesRead: number): { readStats?: ReadStats; baseSnapshot?: BaseSnapshot } {
  return {
    ...(options.readPlan ? { readStats: readStats(plan, bytesRead) } : {}),
    ...(options.baseSnapshot ? { baseSnapshot: options.baseSnapshot } : {}),
  };
}

function readStats(plan: ReadPlan, bytesRead: number): ReadStats {
  return { method: plan.changed ? 'changed-extents' : 'full', bytesRead, reason: plan.reason, extentRuns: plan.changed ? plan.extentRuns : 0 };
}

/** The block-aligned ranges of `changed` (sorted) within [start, end). */
function changedIn(changed: readonly Range[], start: number, end: number, blockSize: number): Range[] {
  let lo = 0;
  let hi = changed.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (changed[mid][1] <= start) lo = mid + 1;
    else hi = mid;
  }
  const within: Range[] = [];
  for (let k = lo; k < changed.length && changed[k][0] < end; k++) within.push(changed[k]);
  return blockAligned(within, blockSize, start, end);
}

/** 1 for every block of the chunk that lies outside `ranges` (not read: the parent's hash stands). */
function skipMask(ranges: readonly Range[], start: number, length: number, blockSize: number): Uint8Array {
  const skip = new Uint8Array(Math.ceil(length / blockSize)).fill(1);
  for (const [from, to] of ranges) skip.fill(0, (from - start) / blockSize, Math.ceil((to - start) / blockSize));
  return skip;
}

interface Written {
  /** Bytes read from the volume (holes and unchanged ranges are not read). */
  bytesRead: number;
  storedBytes: number;
  objectCount: number;
  metadataSha256: string;
}

/** The entries of one segment being written: it is sealed and stored when its last chunk is done. */
interface OpenSegment {
  remaining: number;
  entries: { entry: ChunkEntry; hashes: Buffer }[];
}

/** What a backup reads and compares with, and how it stores. */
interface BackupInput {
  source: Volume;
  parent: ChainView | null;
  compression: Compression;
  options: CreateBackupOptions;
  /** zstd with no level asked for: the level follows the CPU's pace (zstd --adapt); else null. */
  adaptive: AdaptiveLevel | null;
}

async function writeBackupObjects(repo: Repository, record: BackupRecord, backup: BackupInput, changed: Range[] | null): Promise<Written> {
  const { source, parent, compression, options } = backup;
  const { size, chunkSize, blockSize } = record;
  const chunks = chunkCount(size, chunkSize);
  const segmentChunks = DEFAULT_SEGMENT_CHUNKS;
  const open = new Map<number, OpenSegment>();
  const segments: SegmentRef[] = [];
  let dataObjects = 0;
  let storedBytes = 0;
  let bytesRead = 0;
  // Each slot: what will be stored (compressed, page-aligned so that a posix repository can write it
  // with O_DIRECT), shared with the workers. The chunk as read is borrowed from `inputs` only until it is
  // packed: a remote store keeps more slots (objectsInFlight) waiting for the network, not more inputs.
  const slotCount = Math.min(Math.max(BACKUP_OUTPUTS_IN_FLIGHT, objectsInFlight(repo)), chunks);
  const outputs = allocateSharedSlices(slotCount, compressBound(chunkSize));
  const slots = outputs.slices.map((output) => ({ output }));
  const inputs = new Pool(Array.from({ length: Math.min(CHUNKS_IN_FLIGHT, chunks) }, () => new SharedArrayBuffer(chunkSize)));
  const progress = new ProgressTracker(options.onProgress, { operation: 'backup', backupId: record.id, volumeId: record.volumeId, snapshotId: record.snapshotId, chunkCount: chunks, bytesTotal: size });
  progress.start();

  const segmentsBeingWritten = { open, segments, chunks, segmentChunks };
  const finishChunk = async (i: number, touched: TouchedChunk | null): Promise<void> => {
    // Awaited first: `storedBytes += await …` would read storedBytes before the wait and lose other chunks' additions.
    const stored = await finishSegmentChunk(repo, record, segmentsBeingWritten, i, touched, options.signal);
    storedBytes += stored;
  };

  // Every chunk task has stopped when this throws: failBackup then removes everything written.
  await forEachChunk(slots, chunks, async (slot, i) => {
    throwIfAborted(options.signal);
    const offset = i * chunkSize;
    const length = Math.min(chunkSize, size - offset);
    // Changed-extent incrementals read only the changed ranges; a chunk without any is as the parent's.
    const ranges = changed && parent ? changedIn(changed, offset, offset + length, blockSize) : null;
    if (ranges && ranges.length === 0) {
      await finishChunk(i, null);
      progress.chunk(i, length);
      return;
    }
    const r = await inputs.with(async (input) => {
      const packed = await readAndPack(repo, record, backup, { index: i, offset, length, ranges }, input, slot.output);
      bytesRead += packed.read;
      return packed.result;
    });
    const touched = parent ? r.store.includes(1) || r.zeroed.includes(1) : r.zeros.includes(0);
    let object: ChunkEntry['object'] = null;
    if (r.rawLength > 0) {
      object = await writeDataObject(repo, record, { index: i, offset, length }, r, slot.output, outputs.aligned, compression, options);
      dataObjects++;
      storedBytes += object.length;
    }
    await finishChunk(i, touched ? { entry: { chunk: i, zeroExtents: runsToExtents(r.zeros, offset, blockSize, offset + length), object }, hashes: nonZeroHashes(r.hashes, r.zeros) } : null);
    progress.chunk(i, length);
  });

  // A source cut short while it was read would leave a backup of bytes it no longer has.
  await checkNotShrunk(source);
  const metaStored = await writeMetadata(repo, record, compression, segmentChunks, segments, options.signal);
  progress.end();
  return {
    bytesRead,
    storedBytes: storedBytes + metaStored.length,
    objectCount: dataObjects + segments.length + 1,
    metadataSha256: sha256(metaStored),
  };
}

type TouchedChunk = OpenSegment['entries'][number];

/**
 * Read chunk `chunk.index` (all of it, or with `ranges` only those) into `input` and pack it into
 * `output`: hashing, zero detection, the comparison with the parent, packing and compression in one
 * worker task. Returns the bytes read with the worker's result.
 */
async function readAndPack(
  repo: Repository,
  record: BackupRecord,
  backup: BackupInput,
  chunk: { index: number; offset: number; length: number; ranges: Range[] | null },
  input: SharedArrayBuffer,
  output: SharedSlice,
): Promise<{ read: number; result: PackResult & { hashes: Buffer } }> {
  const { source, parent, compression, options } = backup;
  const { index, offset, length, ranges } = chunk;
  const { chunkSize, blockSize } = record;
  // A sparse file's holes are not read; a chunk that is all hole needs no worker either.
  const view = Buffer.from(input, 0, length);
  const read = ranges ? await readRanges(source, view, offset, ranges) : await readChunk(source, view, length, offset, blockSize);
  // The parent's state of this chunk, from the newest backup of its chain that touched it.
  const parentHashes = parent ? (await parent.state(index, options.signal)).hashes : null;
  const result = !read ? packHole(length, blockSize, parentHashes) : await packChunk({
    // The worker gets its own copy; a hole only reads them.
    input, length, blockSize, parentHashes: parentHashes && new Uint8Array(parentHashes), output: output.buffer, outputOffset: output.offset, outputLength: compressBound(chunkSize),
    compression, level: backup.adaptive ? backup.adaptive.next(everyWorkerBusy()) : options.compressionLevel, digest: !repo.codec.encrypted, md5: repo.wantsMd5,
    skip: ranges ? skipMask(ranges, offset, length, blockSize) : undefined,
  });
  return { read, result };
}

/**
 * Record chunk i's entry (or that it was not touched) in its segment; store the segment once its last
 * chunk is done. Returns the bytes stored (0 while the segment is open).
 */
async function finishSegmentChunk(
  repo: Repository,
  record: BackupRecord,
  state: { open: Map<number, OpenSegment>; segments: SegmentRef[]; chunks: number; segmentChunks: number },
  i: number,
  touched: TouchedChunk | null,
  signal: AbortSignal | undefined,
): Promise<number> {
  const { open, segments, chunks, segmentChunks } = state;
  const index = Math.floor(i / segmentChunks);
  let seg = open.get(index);
  if (!seg) {
    seg = { remaining: Math.min(segmentChunks, chunks - index * segmentChunks), entries: [] };
    open.set(index, seg);
  }
  if (touched) seg.entries.push(touched);
  if (--seg.remaining > 0) return 0;
  open.delete(index);
  if (seg.entries.length === 0) return 0; // nothing touched: the segment is zeros (full) or unchanged
  seg.entries.sort((a, b) => a.entry.chunk - b.entry.chunk);
  const name = segmentObjectName(record.objectPrefix, index);
  const plain = encodeSegment(record.id, { index, entries: seg.entries.map((e) => e.entry), hashes: seg.entries.map((e) => e.hashes) });
  const stored = repo.codec.seal(plain, name);
  const digest = sha256(stored);
  throwIfAborted(signal);
  await repo.writeObject(name, stored, signal, { sha256: digest });
  segments.push({ index, name, length: stored.length, sha256: digest });
  return stored.length;
}

/**
 * Chunk `chunk.index`'s blocks to store (packed by the worker into `output`) as its data object:
 * compressed on the thread pool if the worker could not, sealed, written.
 */
async function writeDataObject(
  repo: Repository,
  record: BackupRecord,
  chunk: { index: number; offset: number; length: number },
  r: PackResult,
  output: SharedSlice,
  aligned: boolean,
  compression: Compression,
  options: CreateBackupOptions,
): Promise<NonNullable<ChunkEntry['object']>> {
  const { index: i, offset, length } = chunk;
  const extents = runsToExtents(r.store, offset, record.blockSize, offset + length);
  let packed: Buffer = Buffer.from(output.buffer, output.offset, r.length);
  let applied = r.compression;
  if (applied === null) {
    // No synchronous codec in the workers for this algorithm: compress on the thread pool.
    const c = await compress(packed, compression, options.compressionLevel);
    packed = c.data;
    applied = c.compression;
  }
  const name = dataObjectName(record.objectPrefix, i + 1);
  const stored = repo.codec.seal(packed, name);
  const digest = r.sha256 !== null && r.compression !== null && stored === packed ? r.sha256 : sha256(stored);
  throwIfAborted(options.signal);
  // Still in the slot (not encrypted, not compressed elsewhere): the worker's MD5 is of these bytes,
  // and they are aligned for direct I/O.
  const inSlot = stored.buffer === output.buffer;
  await repo.writeObject(name, stored, options.signal, { sha256: digest, md5: inSlot ? r.md5 ?? undefined : undefined, directIo: aligned && inSlot });
  return { name, extents, compression: applied, rawLength: r.rawLength, length: stored.length, sha256: digest };
}

/** The metadata object (the list of segments, sorted here) written last; returns its stored bytes. */
async function writeMetadata(
  repo: Repository,
  record: BackupRecord,
  compression: Compression,
  segmentChunks: number,
  segments: SegmentRef[],
  signal: AbortSignal | undefined,
): Promise<Buffer> {
  segments.sort((a, b) => a.index - b.index);
  const metadata: MetadataV2 = {
    formatVersion: METADATA_FORMAT_VERSION,
    backupId: record.id,
    volumeId: record.volumeId,
    parentId: record.parentId,
    kind: record.kind,
    size: record.size,
    chunkSize: record.chunkSize,
    blockSize: record.blockSize,
    createdAt: record.createdAt,
    dataTimestamp: record.dataTimestamp,
    compression,
    segmentChunks,
    segments,
    extraMetadata: repo.extraMetadata,
  };
  const metaName = metadataObjectName(record.objectPrefix);
  const metaStored = repo.codec.seal(encodeMetadata(metadata), metaName);
  await repo.writeObject(metaName, metaStored, signal);
  return metaStored;
}

/** The hashes of the non-zero blocks, in order (a zero block's hash is a known constant). */
function nonZeroHashes(hashes: Buffer, zeros: Uint8Array): Buffer {
  const out = Buffer.alloc((zeros.length - zeros.reduce((n, z) => n + z, 0)) * 32);
  let at = 0;
  for (let b = 0; b < zeros.length; b++) if (!zeros[b]) at += hashes.copy(out, at, b * 32, b * 32 + 32);
  return out;
}

/** Remove what a failed backup wrote and leave its record in `error` with the reason. */
async function failBackup(repo: Repository, record: BackupRecord, err: unknown, options: CreateBackupOptions): Promise<void> {
  // The message may quote user input (a path, a name): the record keeps it escaped, on one line.
  const reason = oneLine(errorMessage(err));
  try {
    await deleteBackupObjects(repo, record);
  } catch (cleanupErr) {
    options.log?.warn(`backup ${record.id} failed and its objects could not all be removed (${errorMessage(cleanupErr)}); prune removes them later`);
  }
  try {
    await repo.transition(record.id, ['creating'], 'error', { failReason: reason, leaseExpiresAt: null });
  } catch (markErr) {
    options.log?.warn(`backup ${record.id} failed and its record could not be marked error: ${errorMessage(markErr)}`);
  }
}
