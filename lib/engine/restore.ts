/**
 * Restore and verify. The chain (full ← incr1 ← incr2 …) is resolved per chunk, a segment window at a
 * time (lib/repository/chain-view.ts): the chunk's state (zero map, block hashes) is the newest backup's
 * that touched it, and each non-zero block comes from the newest backup that stored it, so every block is
 * fetched and written once. Every block's SHA-256 is checked against the chunk's state before the
 * block is written, and every object's length and decompressed length; verify-only mode also checks
 * every stored object's own digest. Any mismatch or missing object fails the restore with the backup,
 * object and offset named. Writes go around the page cache (O_DIRECT) where the target allows it.
 */
import { promises as fs } from 'fs';
import { ObjectNotFoundError, VolumeBackupError, cancelled, errorMessage, throwIfAborted } from '../errors';
import { compressBound, decompress, syncZstd } from '../codec/compression';
import { ancestorsOf, chainOf } from '../repository/catalog';
import { ChainView, StoredObject } from '../repository/chain-view';
import { blockCount, chunkCount, sha256 } from '../repository/format';
import { takeRecord } from '../repository/locks';
import { heldByThisProcess, stillRunning } from '../repository/owner';
import { checkBackupId } from '../repository/names';
import { BackupRecord, isTransient } from '../repository/records';
import { Repository, forEachChunk } from '../repository/repository';
import { sha256Of } from './block-hash';
import { unpackObject, verifyChunk, warmHashPool } from './hash-pool';
import type { BlockCheck } from './hash-worker';
import { DIRECT_ALIGNMENT, SharedSlice, allocateAlignedShared, allocateSharedSlices } from '../io/direct-io';
import { ProgressTracker } from './progress';
import { CHUNKS_IN_FLIGHT } from './settings';
import type { Logger, RestoreOptions, RestoreResult } from './types';
import { Target, closeTarget, endTargetAt, openTarget, syncTarget, writeAt } from './volume';
import { refuseTargetInRepository } from './target-in-repository';
import { TargetState, checkTargetOverwrite } from './target-overwrite';
import { endStoppedRestoreOf } from './interrupted-restore';
import { watchRecord } from './cancel';


/** Bytes restored between background write-backs of the target. */
const FLUSH_BYTES = 64 * 1024 * 1024;

export async function restoreBackup(repo: Repository, options: RestoreOptions): Promise<RestoreResult> {
  const started = Date.now();
  const backupId = checkBackupId(options.backupId);
  const verifyOnly = !!options.verifyOnly;
  if (!verifyOnly && !options.target) throw new VolumeBackupError('INVALID_ARGUMENT', 'a restore needs a target path (or verify-only)');
  if (!verifyOnly) await refuseTargetInRepository(options.target!, repo.localDirectory);
  // Before the target is judged: a killed restore of this backup may have left a half-written one.
  await endStoppedRestoreOf(repo, backupId, options.log);
  // A base restore says what the (existing) target holds: that is consent to write over it.
  const targetState = verifyOnly ? null : await checkTargetOverwrite(options.target!, options.baseId ? true : options.overwrite);
  throwIfAborted(options.signal);
  warmHashPool();

  const record = await repo.getRecord(backupId);
  refuseUnavailable(repo, record);
  // Set-then-check against prune: mark the backup restoring (owned by this process, so its host's start-up cleanup finds it; `host` stays the creator), then make sure its whole chain is still there.
  // The record names the target and host, so a killed restore's cleanup can report (or remove) it.
  const marked = targetState ? await markRestoring(repo, record, targetState, options.log) : false;
  // Renewals also watch for a cancel request (from any host): it stops the restore as Ctrl-C would.
  const watch = marked ? watchRecord(repo, backupId, record.volumeId, options.signal, options.log) : null;
  const stopRenewal = watch?.stop ?? (() => undefined);
  options = watch ? { ...options, signal: watch.signal } : options;
  let target: Target | null = null;
  try {
    const records = await repo.listRecords(record.volumeId);
    const chain = chainOf(records, backupId);
    for (const link of chain.slice(0, -1)) {
      if (link.status !== 'available' && link.status !== 'restoring') {
        throw new VolumeBackupError('CONFLICT', `backup ${backupId} needs ${link.id}, which is ${link.status}`);
      }
    }
    const view = await ChainView.open(repo, chain, options.signal);
    const base = options.baseId ? await openBase(repo, record, options) : null;
    if (!verifyOnly) target = await openTarget(options.target!, record.size);
    const blocksSampled = base && target ? await checkTargetHoldsBase(target, base, view, options) : 0;
    const result = await applyChain(repo, record, view, target, options, base?.view ?? null);
    view.checkListedTotals();
    // Only once every block is written: a failed restore leaves an existing target partly overwritten, at its old size.
    const bytesLeftPastEnd = target ? await endTargetAt(target, record.size) : 0;
    if (target) await syncTarget(target);
    return {
      backupId,
      volumeId: record.volumeId,
      target: target?.path ?? null,
      verifyOnly,
      chain: chain.map((r) => r.id),
      size: record.size,
      bytesWritten: result.bytesWritten,
      bytesLeftPastEnd,
      durationMs: Date.now() - started,
      ...verifiedAndBase(record, result.bytesRebuilt, base, blocksSampled),
    };
  } catch (err) {
    let failure = options.signal?.aborted && !(err instanceof VolumeBackupError && err.code === 'CANCELLED') ? cancelled(options.signal.reason) : err;
    // A verify-only run does not mark the backup, so a prune may delete its chain meanwhile: say so
    // rather than report the vanished objects as damage.
    if (verifyOnly && err instanceof VolumeBackupError && (err.code === 'OBJECT_MISSING' || err.code === 'CORRUPT')) {
      const gone = await chainBeingDeleted(repo, record);
      if (gone) failure = new VolumeBackupError('CONFLICT', `backup ${backupId} could not be verified: ${gone}`, { backupId });
    }
    // A half-restored file we created must not look like a good copy.
    if (target?.created) await fs.rm(target.path, { force: true }).catch(() => undefined);
    else if (target?.written) failure = partlyOverwritten(failure, target.path);
    throw failure;
  } finally {
    stopRenewal();
    if (target) await closeTarget(target).catch(() => undefined);
    if (marked) await endRestoring(repo, record, options);
  }
}

/** Errors of a repository that refuses every write (mounted read-only, or not this user's to write). */
const READ_ONLY_CODES = new Set(['EROFS', 'EACCES', 'EPERM']);

/**
 * Mark the backup restoring, owned by this process and naming the target (so its host's start-up cleanup
 * can end a killed restore). A repository that cannot be written (a backup disk mounted read-only, a
 * replica) is still restored from, unmarked, as a verify-only run reads it: nothing there holds off a
 * prune from elsewhere, whose removed objects would make the restore fail (never restore wrongly).
 */
async function markRestoring(repo: Repository, record: BackupRecord, target: TargetState, log?: Logger): Promise<boolean> {
  try {
    await repo.transition(record.id, ['available'], 'restoring', { ...takeRecord(repo, 'restore'), restoreTarget: { path: target.path, host: repo.host, created: !target.exists } });
    return true;
  } catch (err) {
    if (!(err instanceof VolumeBackupError && err.code === 'STORAGE' && READ_ONLY_CODES.has(String(err.details?.code)))) throw err;
    log?.warn(`backup ${record.id} could not be marked restoring: the repository refuses writes (${String(err.details?.code)}); restoring it anyway: nothing holds off a prune or delete from elsewhere meanwhile (the restore would then fail), and if this restore is stopped, ${target.path} is incomplete`);
    return false;
  }
}

/** A failed restore over an existing file or device changed it: say so, lest it be taken for its old content or the backup's. */
function partlyOverwritten(err: unknown, targetPath: string): unknown {
  if (!(err instanceof VolumeBackupError)) return err;
  return new VolumeBackupError(err.code, `${err.message}; ${targetPath} was partly overwritten: it holds neither its old content nor the backup's, so restore again before using it`, err.details, { cause: err });
}

/** Only an available backup is restored; a busy one names what holds it. */
function refuseUnavailable(repo: Repository, record: BackupRecord): void {
  if (record.status === 'available') return;
  const holder = isTransient(record.status) ? ` (${stillRunning(record, repo.host, new Date()) ?? 'the process that ran it is gone: volume-backup cleanup ends it'})` : '';
  throw new VolumeBackupError('CONFLICT', `backup ${record.id} is ${record.status}${record.failReason ? ` (${record.failReason})` : ''}${holder}: only available backups can be restored`);
}

/** The backup is available again after a restore, only while this process still owns it: a cleanup that found our lease expired may have given it back, and another restore taken it. */
async function endRestoring(repo: Repository, record: BackupRecord, options: RestoreOptions): Promise<void> {
  await repo.updateRecord(record.id, (current) => {
    if (current.status !== 'restoring' || !heldByThisProcess(current, repo.host)) throw new VolumeBackupError('CONFLICT', `it is ${current.status}${current.owner ? ` (${current.owner.operation} by process ${current.owner.pid} of host ${current.owner.host})` : ''} now`);
    return { status: 'available', restoreTarget: null };
  }, record.volumeId).catch((err) => {
    options.log?.warn(`backup ${record.id} could not be set back to available: ${errorMessage(err)}`);
  });
}

/** What was checked (everything, or with a base only the blocks that differ from it), and the base's figures. */
function verifiedAndBase(record: BackupRecord, bytesRebuilt: number, base: Base | null, blocksSampled: number): Pick<RestoreResult, 'bytesVerified' | 'blocksVerified' | 'base'> {
  if (!base) return { bytesVerified: bytesRebuilt, blocksVerified: blockCount(record.size, record.blockSize) };
  return {
    bytesVerified: bytesRebuilt,
    blocksVerified: Math.ceil(bytesRebuilt / record.blockSize),
    base: { backupId: base.record.id, blocksSampled, bytesUnchanged: record.size - bytesRebuilt },
  };
}

/** Target blocks checked against the base's hashes before a base restore (spread over the volume). */
const BASE_SAMPLE_BLOCKS = 64;

interface Base {
  record: BackupRecord;
  view: ChainView;
  /** The base's chain without the base itself (null: the base is a full backup): what the base's own backup changed. */
  prior: ChainView | null;
}

/** The base of a restore: an available backup of the same geometry, its chain's metadata read. */
async function openBase(repo: Repository, record: BackupRecord, options: RestoreOptions): Promise<Base> {
  const baseId = checkBackupId(options.baseId!);
  if (options.verifyOnly) throw new VolumeBackupError('INVALID_ARGUMENT', 'a base applies to a restore into a target, not to verify-only');
  if (baseId === record.id) throw new VolumeBackupError('INVALID_ARGUMENT', `the base ${baseId} is the backup being restored: the target would be left as it is; restore without a base to rewrite it`);
  const base = await repo.getRecord(baseId);
  if (base.status !== 'available' && base.status !== 'restoring') throw new VolumeBackupError('CONFLICT', `base backup ${baseId} is ${base.status}, not available`);
  if (base.size !== record.size || base.chunkSize !== record.chunkSize || base.blockSize !== record.blockSize) {
    throw new VolumeBackupError('INVALID_ARGUMENT', `base backup ${baseId} (${base.size} bytes, ${base.chunkSize}/${base.blockSize} chunk/block) does not match backup ${record.id} (${record.size}, ${record.chunkSize}/${record.blockSize}): restore without a base`);
  }
  const chain = chainOf(await repo.listRecords(base.volumeId), baseId);
  const prior = chain.length > 1 ? await ChainView.open(repo, chain.slice(0, -1), options.signal) : null;
  return { record: base, view: await ChainView.open(repo, chain, options.signal), prior };
}

/**
 * A base restore trusts the target to hold the base's bytes: check that on a sample of blocks (or not,
 * with trustBase), and refuse a target that does not, or that did not exist.
 */
async function checkTargetHoldsBase(target: Target, base: Base, view: ChainView, options: RestoreOptions): Promise<number> {
  const { size, chunkSize, blockSize, id } = base.record;
  if (target.created) throw new VolumeBackupError('INVALID_ARGUMENT', `restore target ${target.path} did not exist, so it cannot hold base backup ${id}: restore without a base`);
  if (options.trustBase) return 0;
  const blocks = blockCount(size, blockSize);
  const picks = new Set<number>([0, blocks - 1]);
  for (let k = 0; picks.size < Math.min(blocks, BASE_SAMPLE_BLOCKS); k++) picks.add(Math.floor(((k + Math.random()) * blocks) / BASE_SAMPLE_BLOCKS) % blocks);
  for (const b of await blocksTellingBase(base, view, BASE_SAMPLE_BLOCKS, options.signal)) picks.add(b);
  const buf = Buffer.alloc(blockSize);
  for (const b of [...picks].sort((x, y) => x - y)) {
    throwIfAborted(options.signal);
    const at = b * blockSize;
    const length = Math.min(blockSize, size - at);
    const { bytesRead } = await target.handle.read(buf, 0, length, at);
    const chunk = Math.floor(at / chunkSize);
    const k = (at - chunk * chunkSize) / blockSize;
    const expected = (await base.view.state(chunk, options.signal)).hashes.subarray(k * 32, k * 32 + 32);
    if (bytesRead !== length || !sha256Of(buf.subarray(0, length)).equals(expected)) {
      throw new VolumeBackupError('CONFLICT', `restore target ${target.path} does not hold base backup ${id}: its block at offset ${at} differs; restore without a base (or, if you are sure, trust it: CLI --trust-base; restore node: the "Trust the base" checkbox or msg.trustBase = true)`, { offset: at });
    }
  }
  return picks.size;
}

/**
 * Blocks the base's own backup changed and this restore leaves as they are: where a target holding an
 * older backup of the volume (the drill before last) differs from the base. A spread sample would
 * likely miss them (a few changed blocks among millions), and the restore would leave them wrong.
 */
async function blocksTellingBase(base: Base, view: ChainView, limit: number, signal?: AbortSignal): Promise<number[]> {
  if (!base.prior) return [];
  const { size, chunkSize, blockSize } = base.record;
  const own = base.view.layers[base.view.layers.length - 1];
  const out: number[] = [];
  const hashAt = (hashes: Buffer, k: number) => hashes.subarray(k * 32, k * 32 + 32);
  for (let i = 0; i < chunkCount(size, chunkSize) && out.length < limit; i++) {
    const entry = await own.entry(i, signal);
    if (!entry) continue;
    const [now, before, restored] = await Promise.all([entry.state(), base.prior.state(i, signal), view.state(i, signal)]);
    for (let k = 0; k * 32 < now.hashes.length && out.length < limit; k++) {
      const h = hashAt(now.hashes, k);
      if (!h.equals(hashAt(before.hashes, k)) && h.equals(hashAt(restored.hashes, k))) out.push((i * chunkSize) / blockSize + k);
    }
  }
  return out;
}

/** A chunk being rebuilt and the object being unpacked into it (`storedAligned`: page-aligned, for O_DIRECT reads). */
interface RestoreSlot {
  chunk: SharedSlice;
  stored: SharedArrayBuffer;
  storedAligned: boolean;
}

/** What one chunk's restore does: where its blocks come from, which are checked, which are written. */
interface ChunkPlan {
  index: number;
  offset: number;
  length: number;
  /** 1 where the block is zeros by the chain's metadata. */
  isZero: Uint8Array;
  /** Per block: the layer (backup of the chain) that supplies it; -1 for zero and untouched blocks. */
  source: Int32Array;
  /** 1 where the block is rebuilt (and written): all blocks, or with a base those that differ from it. */
  rebuilt: Uint8Array;
  /** The layers whose objects are fetched, in order. */
  needed: number[];
  /** The layer whose entry gave the chunk's hashes (-1: untouched). */
  stateLayer: number;
  objects: (StoredObject | null)[];
  expected: Buffer;
}

/** Slots of chunks in flight and the per-chunk steps: plan, rebuild and check, write. */
async function applyChain(
  repo: Repository,
  record: BackupRecord,
  chain: ChainView,
  target: Target | null,
  options: RestoreOptions,
  base: ChainView | null = null,
): Promise<{ bytesWritten: number; bytesRebuilt: number }> {
  const { size, chunkSize } = record;
  const chunks = chunkCount(size, chunkSize);
  const progress = new ProgressTracker(options.onProgress, {
    operation: options.verifyOnly ? 'verify' : 'restore', backupId: record.id, volumeId: record.volumeId, snapshotId: record.snapshotId, chunkCount: chunks, bytesTotal: size,
  });
  progress.start();
  let bytesWritten = 0;
  let bytesRebuilt = 0;
  // Each slot: the chunk being rebuilt (page-aligned, so it can be written with O_DIRECT), and the
  // object being unpacked into it (shared with the workers, so objects are copied once into a reused
  // buffer instead of piling up as garbage in every thread).
  // A slot holds up to twice the chunk size (16 MiB by default), so its count is the restore's memory.
  // On a local repository, one chunk more than a backup: with O_DIRECT a chunk waits for the device
  // while it is written, and the extra one keeps both workers busy meanwhile (1 GiB: 1.20 s instead of
  // 1.39 s, +15 MiB peak). From an object store, as many as a backup reads: its client takes ~20 MiB
  // of its own, and six slots (one per object a backup keeps in flight there) peaked at 235 MiB against
  // the 200 MiB every operation may use; three restored 256 MiB from RGW as fast as six (0.98 s, 1.05 s).
  const slotCount = Math.min(repo.localDirectory === null ? CHUNKS_IN_FLIGHT : CHUNKS_IN_FLIGHT + 1, chunks);
  const { slices, aligned } = allocateSharedSlices(slotCount, chunkSize);
  const slots = slices.map((chunk) => {
    // Page-aligned too, so that a posix repository's objects can be read into it with O_DIRECT.
    const stored = allocateAlignedShared(compressBound(chunkSize));
    return { chunk, stored: stored.buffer, storedAligned: stored.aligned };
  });
  const flush = target ? new BackgroundFlush(target) : null;
  // Zero blocks are holes in a new (sparse) target; anywhere else they must be written as zeros.
  const writesZeros = target !== null && !target.created;
  await forEachChunk(slots, chunks, async (slot, i) => {
    throwIfAborted(options.signal);
    // A chunk no backup of the chain touched is zeros: nothing to fetch or check, nor to write into a new
    // sparse file (most of a thin volume: per-block work here made a 16 TiB restore take 33 s).
    if (!base && !writesZeros && !(await chain.touched(i, options.signal))) {
      const length = Math.min(chunkSize, size - i * chunkSize);
      bytesRebuilt += length;
      progress.chunk(i, length);
      return;
    }
    const plan = await planChunk(record, chain, base, i, options.signal);
    const view = Buffer.from(slot.chunk.buffer, slot.chunk.offset, plan.length);
    if (writesZeros) zeroFillBlocks(view, plan, record.blockSize);
    await rebuildChunk(repo, record, chain, plan, slot, !!options.verifyOnly, options.signal);
    bytesRebuilt += rebuiltBytes(plan, record.blockSize);
    if (target) {
      // Not written: blocks the target already has (a base), and zero blocks of a new sparse file.
      const skip = plan.rebuilt.map((r, b) => (!r || (!writesZeros && plan.isZero[b]) ? 1 : 0));
      const { written, buffered } = await writeChunk(target, view, plan.offset, base || !writesZeros ? skip : null, record.blockSize, aligned);
      bytesWritten += written;
      flush!.wrote(buffered);
    }
    progress.chunk(i, plan.length);
  });
  await flush?.done();
  progress.end();
  return { bytesWritten, bytesRebuilt };
}

/**
 * Buffered writes (no O_DIRECT here) start going to the disk while later chunks are still being
 * rebuilt, so the final fsync does not wait for the whole volume: a background datasync every FLUSH_BYTES.
 */
class BackgroundFlush {
  private unflushed = 0;
  private flushing: Promise<void> | null = null;
  private error: unknown = null;
  constructor(private readonly target: Target) {}

  wrote(bytes: number): void {
    this.unflushed += bytes;
    if (this.flushing || this.unflushed < FLUSH_BYTES) return;
    this.unflushed = 0;
    this.flushing = syncTarget(this.target, true).catch((err) => { this.error ??= err; }).finally(() => { this.flushing = null; });
  }

  async done(): Promise<void> {
    await this.flushing;
    if (this.error) throw this.error as Error;
  }
}

/** Chunk `i`'s plan: which layer supplies each block, checked complete; with a base, only the blocks that differ from it. */
async function planChunk(record: BackupRecord, chain: ChainView, base: ChainView | null, i: number, signal?: AbortSignal): Promise<ChunkPlan> {
  const { size, chunkSize, blockSize } = record;
  const offset = i * chunkSize;
  const length = Math.min(chunkSize, size - offset);
  const nBlocks = Math.ceil(length / blockSize);
  const { state, stateLayer, objects } = await chain.resolve(i, signal);
  if (state.zero.length < nBlocks) {
    throw new VolumeBackupError('CORRUPT', `the metadata of the chain of ${record.id} describes ${state.zero.length} blocks of chunk ${i}, not ${nBlocks}`, { backupId: record.id });
  }
  const isZero = state.zero.subarray(0, nBlocks);
  const rebuilt = base ? differingBlocks(state.hashes, (await base.state(i, signal)).hashes, nBlocks) : new Uint8Array(nBlocks).fill(1);
  // Which layer supplies each non-zero block: the newest that stored it (-1: nobody, which is corruption).
  const source = new Int32Array(nBlocks).fill(-1);
  objects.forEach((obj, k) => {
    for (const [start, len] of obj?.extents ?? []) markBlocks(source, start - offset, len, blockSize, k);
  });
  for (let b = 0; b < nBlocks; b++) {
    if (!rebuilt[b] || isZero[b]) source[b] = -1;
    else if (source[b] < 0) {
      throw new VolumeBackupError('CORRUPT', `no backup in the chain of ${record.id} holds the block at offset ${offset + b * blockSize}: the metadata is incomplete`, { backupId: record.id });
    }
  }
  const needed = [...new Set(Array.from(source).filter((k) => k >= 0))];
  return { index: i, offset, length, isZero, source, rebuilt, needed, stateLayer, objects, expected: state.hashes };
}

/** 1 where the block's hash differs from the base's (a base restore rewrites only those). */
function differingBlocks(hashes: Buffer, baseHashes: Buffer, nBlocks: number): Uint8Array {
  const out = new Uint8Array(nBlocks);
  for (let b = 0; b < nBlocks; b++) out[b] = hashes.compare(baseHashes, b * 32, b * 32 + 32, b * 32, b * 32 + 32) === 0 ? 0 : 1;
  return out;
}

function rebuiltBytes(plan: ChunkPlan, blockSize: number): number {
  let n = 0;
  for (let b = 0; b < plan.rebuilt.length; b++) if (plan.rebuilt[b]) n += Math.min(blockSize, plan.length - b * blockSize);
  return n;
}

/** Zero blocks written to an existing target are written as zeros: put zeros in their place. */
function zeroFillBlocks(view: Buffer, plan: ChunkPlan, blockSize: number): void {
  for (let b = 0; b < plan.isZero.length; b++) if (plan.isZero[b] && plan.rebuilt[b]) view.fill(0, b * blockSize, Math.min((b + 1) * blockSize, plan.length));
}

/**
 * Fetch each needed object once, copy in the blocks it supplies, and check every rebuilt data block
 * against the chunk's hashes (in the worker that unpacks the chunk's last object). One object at a time
 * per chunk: the parallelism is across chunks.
 */
async function rebuildChunk(
  repo: Repository,
  record: BackupRecord,
  chain: ChainView,
  plan: ChunkPlan,
  slot: RestoreSlot,
  verifyOnly: boolean,
  signal?: AbortSignal,
): Promise<void> {
  const { needed, objects, source, isZero, offset, length } = plan;
  const { blockSize } = record;
  if (needed.length === 0) return; // zeros, or the base's blocks: nothing to fetch or check
  // Blocks not rebuilt are skipped by the check as zero blocks are (the caller knows what they hold).
  const skipped = isZero.map((z, b) => (z || !plan.rebuilt[b] ? 1 : 0));
  // A copy (the worker gets its own), made only for a chunk with data: a thin volume is mostly without.
  const check: BlockCheck = { length, blockSize, expected: new Uint8Array(plan.expected.subarray(0, isZero.length * 32)), zero: skipped };
  let badBlock = -1;
  let verified = false;
  for (const [n, k] of needed.entries()) {
    const obj = objects[k]!;
    const copies = copyPlan(obj, k, source, isZero, offset, length, blockSize);
    // A restore checks the content it writes, every block of it (as restic and borg check the content
    // they extract, not its container); verify-only mode, which checks the repository, also checks
    // each stored object's own digest, so damage in blocks a restore does not use is found too.
    const r = await fetchInto(repo, chain.layers[k].record, obj, slot, copies, verifyOnly, n === needed.length - 1 ? check : undefined, signal);
    if (r !== undefined) {
      badBlock = r;
      verified = true;
    }
  }
  if (!verified) badBlock = await verifyChunk({ chunk: slot.chunk.buffer, chunkOffset: slot.chunk.offset, ...check });
  if (badBlock >= 0) throw blockMismatch(record, chain, plan, badBlock, blockSize);
}

/** Either the supplying object or the hashes recorded for the chunk are wrong: name both. */
function blockMismatch(record: BackupRecord, chain: ChainView, plan: ChunkPlan, badBlock: number, blockSize: number): VolumeBackupError {
  const supplier = chain.layers[plan.source[badBlock]].record;
  const objectName = plan.objects[plan.source[badBlock]]!.name;
  const hashesBy = plan.stateLayer >= 0 ? chain.layers[plan.stateLayer].record.id : record.id;
  const orHashes = hashesBy === supplier.id ? '' : ` (or the block hashes backup ${hashesBy} recorded are)`;
  const at = plan.offset + badBlock * blockSize;
  return new VolumeBackupError('CORRUPT', `object ${objectName} of backup ${supplier.id} is corrupt${orHashes}: the block at offset ${at} does not match its SHA-256`, { backupId: supplier.id, objectName, offset: at });
}

function markBlocks(source: Int32Array, rel: number, len: number, blockSize: number, layer: number): void {
  for (let b = Math.floor(rel / blockSize); b * blockSize < rel + len && b < source.length; b++) source[b] = layer;
}

/**
 * Which bytes of an object's raw (decompressed) data land where in the chunk: [from, to, length]
 * triples, one per run of blocks that this object supplies (newer backups may supply some instead).
 */
function copyPlan(obj: StoredObject, layer: number, source: Int32Array, isZero: Uint8Array, offset: number, length: number, blockSize: number): number[] {
  const copies: number[] = [];
  let at = 0;
  for (const [start, len] of obj.extents) {
    for (let b = Math.floor((start - offset) / blockSize); b * blockSize < start - offset + len; b++) {
      if (source[b] !== layer || isZero[b]) continue;
      const from = at + (b * blockSize - (start - offset));
      const to = b * blockSize;
      const n = Math.min(blockSize, length - to);
      const last = copies.length - 3;
      if (last >= 0 && copies[last] + copies[last + 2] === from && copies[last + 1] + copies[last + 2] === to) copies[last + 2] += n;
      else copies.push(from, to, n);
    }
    at += len;
  }
  return copies;
}

/**
 * Read an object, check its digest (`checkDigest`), decrypt, decompress and copy its blocks into the
 * chunk; with `check`, verify the chunk's blocks too and return the first bad one (-1: none). Without
 * encryption the digest check and decompression run in a worker thread, straight into the chunk.
 */
async function fetchInto(
  repo: Repository,
  record: BackupRecord,
  obj: StoredObject,
  slot: RestoreSlot,
  copies: number[],
  checkDigest: boolean,
  check: BlockCheck | undefined,
  signal?: AbortSignal,
): Promise<number | undefined> {
  const what = `object ${obj.name} of backup ${record.id}`;
  const corrupt = () => new VolumeBackupError('CORRUPT', `object ${obj.name} of backup ${record.id} (offset ${obj.extents[0][0]}) is corrupt: its SHA-256 does not match the metadata`, { backupId: record.id, objectName: obj.name });
  const inWorker = (obj.compression !== 'zstd' || syncZstd() !== null) && obj.length <= slot.stored.byteLength;
  const unpack = async (storedLength: number, digest: string | null): Promise<number | undefined> => {
    const r = await unpackObject({
      stored: slot.stored, storedLength, sha256: digest, compression: obj.compression, rawLength: obj.rawLength,
      chunk: slot.chunk.buffer, chunkOffset: slot.chunk.offset, chunkSize: record.chunkSize, copies, what, verify: check,
    });
    if (!r.digestOk) throw corrupt();
    if (r.corrupt) throw new VolumeBackupError('CORRUPT', r.corrupt, { backupId: record.id, objectName: obj.name });
    return r.badBlock;
  };
  let stored: Buffer;
  try {
    // Unencrypted objects go from the store straight into the slot's shared buffer when the driver can.
    if (inWorker && !repo.codec.encrypted) {
      const n = await repo.readObjectInto(obj.name, new Uint8Array(slot.stored), signal, slot.storedAligned);
      if (n >= 0) {
        if (n !== obj.length) throw corrupt();
        return await unpack(n, checkDigest ? obj.sha256 : null);
      }
    }
    stored = await repo.readObject(obj.name, signal);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) {
      throw new VolumeBackupError('OBJECT_MISSING', `object ${obj.name} of backup ${record.id} (offset ${obj.extents[0][0]}) is missing from the repository`, { backupId: record.id, objectName: obj.name });
    }
    throw err;
  }
  if (stored.length !== obj.length) throw corrupt();
  let plain = stored;
  if (repo.codec.encrypted || !inWorker) {
    if (checkDigest && sha256(stored) !== obj.sha256) throw corrupt();
    try {
      plain = repo.codec.open(stored, obj.name);
    } catch (err) {
      throw new VolumeBackupError('CORRUPT', `object ${obj.name} of backup ${record.id} cannot be decrypted: ${errorMessage(err)}`, { backupId: record.id, objectName: obj.name });
    }
  }
  if (inWorker) {
    plain.copy(Buffer.from(slot.stored));
    return unpack(plain.length, plain === stored && checkDigest ? obj.sha256 : null);
  }
  const raw = await decompress(plain, obj.compression, obj.rawLength, what);
  const view = Buffer.from(slot.chunk.buffer, slot.chunk.offset);
  for (let c = 0; c < copies.length; c += 3) raw.copy(view, copies[c + 1], copies[c], copies[c] + copies[c + 2]);
  return undefined;
}

/**
 * Write a verified chunk: all of it, or only the runs of blocks that `holes` does not mark (holes of a
 * new, sparse file; blocks a base target already holds). Returns the bytes written and how many of them
 * went through the page cache (O_DIRECT was refused or the run is not aligned: the volume's unaligned tail).
 */
async function writeChunk(target: Target, view: Buffer, offset: number, holes: Uint8Array | null, blockSize: number, aligned: boolean): Promise<{ written: number; buffered: number }> {
  let written = 0;
  let buffered = 0;
  const write = async (from: number, to: number): Promise<void> => {
    if (!(await writeAt(target, view.subarray(from, to), offset + from, aligned && from % DIRECT_ALIGNMENT === 0))) buffered += to - from;
    written += to - from;
  };
  if (!holes) {
    // Aligned head through O_DIRECT, any unaligned tail (the volume's last bytes) buffered.
    const head = view.length - (view.length % DIRECT_ALIGNMENT);
    if (head > 0) await write(0, head);
    if (head < view.length) await write(head, view.length);
    return { written, buffered };
  }
  let runStart = -1;
  for (let b = 0; b <= holes.length; b++) {
    const data = b < holes.length && !holes[b];
    if (data && runStart < 0) runStart = b;
    if (!data && runStart >= 0) {
      const from = runStart * blockSize;
      const to = Math.min(b * blockSize, view.length);
      const head = to - ((to - from) % DIRECT_ALIGNMENT);
      if (head > from) await write(from, head);
      if (head < to) await write(head, to);
      runStart = -1;
    }
  }
  return { written, buffered };
}

/** Why the chain of `record` is going away (a backup of it deleted or being deleted), or null. */
async function chainBeingDeleted(repo: Repository, record: BackupRecord): Promise<string | null> {
  const records = await repo.listRecords(record.volumeId).catch(() => null);
  if (!records) return null;
  const byId = new Map(records.map((r) => [r.id, r]));
  const current = byId.get(record.id);
  if (!current) return `backup ${record.id} was deleted while it was read`;
  const { ids, missing } = ancestorsOf(byId, current);
  const deleting = [current.id, ...ids].find((id) => byId.get(id)!.status === 'deleting');
  if (deleting) return `backup ${deleting} of its chain is being deleted`;
  return missing ? `backup ${missing} of its chain was deleted while it was read` : null;
}
