/**
 * A chain of backups (full ← incr1 ← … ← newest) seen chunk by chunk, a segment window at a time
 * (docs/format.md): for chunk i, each backup's entry (its data object, its record of the chunk's state)
 * and the chunk's effective state (zero map and block hashes), from the newest backup that touched it.
 *
 * Memory: a version-2 layer keeps at most WINDOWS_PER_LAYER decoded segment objects (≤ 1 MiB of hashes
 * each at the default sizes), whatever the volume size. A version-1 layer (read only) holds its object
 * list, and its whole hash list once a chunk's state is taken from it: version 1 is what it is.
 */
import { VolumeBackupError } from '../errors';
import { zeroBlockHash } from '../engine/block-hash';
import {
  BackupMetadata, BackupMetadataV1, DataObject, Extent, HASH_BYTES, MetadataV2, Segment, SegmentRef, blockCount,
} from './format';
import { ListedTotals, checkRecordTotals, loadHashList, loadSegment, readMetadata } from './backup-objects';
import type { BackupRecord } from './records';
import type { Repository } from './repository';

/** Chunks in flight straddle at most two segments. */
const WINDOWS_PER_LAYER = 2;

export type StoredObject = Omit<DataObject, 'chunk'>;

/** A chunk's state as of one backup: per block, 1 when all zeros, and its SHA-256 (zero blocks: the constant). */
export interface ChunkState {
  zero: Uint8Array;
  hashes: Buffer;
}

/** What one backup recorded for a chunk it touched. */
export interface LayerEntry {
  object: StoredObject | null;
  state(): Promise<ChunkState>;
}

interface Geometry {
  size: number;
  chunkSize: number;
  blockSize: number;
}

/** The block lengths of chunk `chunk` (the volume's last block may be short). */
function chunkBlocks(g: Geometry, chunk: number): { offset: number; length: number; count: number } {
  const offset = chunk * g.chunkSize;
  const length = Math.max(0, Math.min(g.chunkSize, g.size - offset));
  return { offset, length, count: blockCount(length, g.blockSize) };
}

function zeroHashOf(g: Geometry, length: number, b: number): Buffer {
  return zeroBlockHash(Math.min(g.blockSize, length - b * g.blockSize));
}

/** A chunk that no backup of the chain touched: all zeros (an absent chunk of a full backup). */
function zeroState(g: Geometry, chunk: number): ChunkState {
  const { length, count } = chunkBlocks(g, chunk);
  const hashes = Buffer.alloc(count * HASH_BYTES);
  for (let b = 0; b < count; b++) zeroHashOf(g, length, b).copy(hashes, b * HASH_BYTES);
  return { zero: new Uint8Array(count).fill(1), hashes };
}

/** Expand a version-2 entry (zero extents + hashes of the non-zero blocks) to a state. */
function expandState(g: Geometry, chunk: number, zeroExtents: Extent[], nonZeroHashes: Buffer): ChunkState {
  const { offset, length, count } = chunkBlocks(g, chunk);
  const zero = new Uint8Array(count);
  for (const [start, len] of zeroExtents) {
    for (let b = (start - offset) / g.blockSize; b * g.blockSize < start - offset + len && b < count; b++) zero[b] = 1;
  }
  const hashes = Buffer.alloc(count * HASH_BYTES);
  let at = 0;
  for (let b = 0; b < count; b++) {
    if (zero[b]) zeroHashOf(g, length, b).copy(hashes, b * HASH_BYTES);
    else at += nonZeroHashes.copy(hashes, b * HASH_BYTES, at, at + HASH_BYTES);
  }
  return { zero, hashes };
}

abstract class Layer {
  /** `metadataLength`: the stored length of the metadata object. */
  constructor(readonly record: BackupRecord, readonly metadata: BackupMetadata, protected readonly metadataLength: number) {}
  /** This backup's entry for the chunk, or undefined: it did not touch it. */
  abstract entry(chunk: number, signal?: AbortSignal): Promise<LayerEntry | undefined>;
  /** The objects and bytes its metadata lists, once every part of it was read (else null). */
  abstract listedTotals(): ListedTotals | null;
}

/** Version 1: every chunk has an entry; its state is a slice of the hash list. */
class LayerV1 extends Layer {
  private readonly objects: Map<number, DataObject>;
  private hashList: Promise<Buffer> | null = null;

  constructor(private readonly repo: Repository, record: BackupRecord, override readonly metadata: BackupMetadataV1, metadataLength: number) {
    super(record, metadata, metadataLength);
    this.objects = new Map(metadata.objects.map((o) => [o.chunk, o]));
  }

  listedTotals(): ListedTotals {
    const { objects, hashList } = this.metadata;
    return { objects: objects.length + 2, bytes: objects.reduce((n, o) => n + o.length, this.metadataLength + hashList.length) };
  }

  async entry(chunk: number, signal?: AbortSignal): Promise<LayerEntry> {
    return {
      object: this.objects.get(chunk) ?? null,
      state: async () => {
        this.hashList ??= loadHashList(this.repo, this.record, this.metadata, signal);
        const list = await this.hashList;
        const { offset, length, count } = chunkBlocks(this.metadata, chunk);
        const first = offset / this.metadata.blockSize;
        const hashes = Buffer.from(list.subarray(first * HASH_BYTES, (first + count) * HASH_BYTES));
        const zero = new Uint8Array(count);
        for (let b = 0; b < count; b++) zero[b] = zeroHashOf(this.metadata, length, b).equals(hashes.subarray(b * HASH_BYTES, (b + 1) * HASH_BYTES)) ? 1 : 0;
        return { zero, hashes };
      },
    };
  }
}

interface Window {
  entries: Map<number, LayerEntry>;
}

/** Version 2: the entries of a chunk are in its segment's object, if this backup touched the segment. */
class LayerV2 extends Layer {
  private readonly refs: Map<number, SegmentRef>;
  private readonly windows = new Map<number, Promise<Window>>();
  /** Per segment read: the objects (itself and its data objects) and bytes it lists. */
  private readonly seen = new Map<number, ListedTotals>();

  constructor(private readonly repo: Repository, record: BackupRecord, override readonly metadata: MetadataV2, metadataLength: number) {
    super(record, metadata, metadataLength);
    this.refs = new Map(metadata.segments.map((s) => [s.index, s]));
  }

  listedTotals(): ListedTotals | null {
    if (this.seen.size < this.refs.size) return null;
    const totals = { objects: 1, bytes: this.metadataLength };
    for (const t of this.seen.values()) {
      totals.objects += t.objects;
      totals.bytes += t.bytes;
    }
    return totals;
  }

  async entry(chunk: number, signal?: AbortSignal): Promise<LayerEntry | undefined> {
    const index = Math.floor(chunk / this.metadata.segmentChunks);
    if (!this.refs.has(index)) return undefined;
    return (await this.window(index, signal)).entries.get(chunk);
  }

  private window(index: number, signal?: AbortSignal): Promise<Window> {
    let w = this.windows.get(index);
    if (!w) {
      // The oldest window goes: chunks are visited in order.
      while (this.windows.size >= WINDOWS_PER_LAYER) this.windows.delete(Math.min(...this.windows.keys()));
      w = this.load(this.refs.get(index)!, signal);
      this.windows.set(index, w);
      w.catch(() => this.windows.delete(index));
    }
    return w;
  }

  private async load(ref: SegmentRef, signal?: AbortSignal): Promise<Window> {
    const segment: Segment = await loadSegment(this.repo, this.record, this.metadata, ref, signal);
    const entries = new Map<number, LayerEntry>();
    const totals = { objects: 1, bytes: ref.length };
    segment.entries.forEach((e, k) => {
      if (e.object) {
        totals.objects++;
        totals.bytes += e.object.length;
      }
      const hashes = Buffer.from(segment.hashes[k]); // its own copy: the segment's buffer can go
      let state: ChunkState | null = null;
      entries.set(e.chunk, {
        object: e.object,
        state: async () => (state ??= expandState(this.metadata, e.chunk, e.zeroExtents, hashes)),
      });
    });
    this.seen.set(ref.index, totals);
    return { entries };
  }
}

export interface ResolvedChunk {
  /** The chunk's state as of the newest backup (all zeros when no backup touched it). */
  state: ChunkState;
  /** The backup (index in the chain) whose entry gave the state, or -1. */
  stateLayer: number;
  /** Per backup of the chain, its data object for the chunk, if any. */
  objects: (StoredObject | null)[];
}

export class ChainView {
  /** The state of a whole chunk no backup touched: one shared, read-only copy (a thin volume has millions). */
  private zeroChunk: ChunkState | null = null;

  private constructor(readonly layers: Layer[]) {}

  /** Read the chain's metadata (oldest first) and check that the backups agree on their sizes. */
  static async open(repo: Repository, chain: BackupRecord[], signal?: AbortSignal): Promise<ChainView> {
    const metadatas = await Promise.all(chain.map((r) => readMetadata(repo, r, signal)));
    const last = chain[chain.length - 1];
    const layers = metadatas.map(({ metadata: m, storedLength }, k) => {
      if (m.blockSize !== last.blockSize || m.chunkSize !== last.chunkSize) {
        throw new VolumeBackupError('CORRUPT', `backup ${chain[k].id} in the chain of ${last.id} has different chunk or block sizes`);
      }
      return m.formatVersion === 1 ? new LayerV1(repo, chain[k], m, storedLength) : new LayerV2(repo, chain[k], m, storedLength);
    });
    return new ChainView(layers);
  }

  get newest(): BackupRecord {
    return this.layers[this.layers.length - 1].record;
  }

  /** The chunk's state as of the newest backup: what an incremental on top of it compares with. */
  async state(chunk: number, signal?: AbortSignal): Promise<ChunkState> {
    for (let k = this.layers.length - 1; k >= 0; k--) {
      const entry = await this.layers[k].entry(chunk, signal);
      if (entry) return entry.state();
    }
    return this.untouched(chunk);
  }

  /** Whether any backup of the chain has an entry for the chunk (none: it is all zeros). */
  async touched(chunk: number, signal?: AbortSignal): Promise<boolean> {
    for (const layer of this.layers) if (await layer.entry(chunk, signal)) return true;
    return false;
  }

  /** Everything a restore needs of the chunk: its state and every backup's data object for it. */
  async resolve(chunk: number, signal?: AbortSignal): Promise<ResolvedChunk> {
    const entries = await Promise.all(this.layers.map((l) => l.entry(chunk, signal)));
    let stateLayer = -1;
    for (let k = entries.length - 1; k >= 0 && stateLayer < 0; k--) if (entries[k]) stateLayer = k;
    const state = stateLayer >= 0 ? await entries[stateLayer]!.state() : this.untouched(chunk);
    return { state, stateLayer, objects: entries.map((e) => e?.object ?? null) };
  }

  /**
   * After every chunk was resolved (a whole restore): each backup's record against what its metadata
   * listed (checkRecordTotals), so a segment dropped with its entry is not restored as zeros.
   */
  checkListedTotals(): void {
    for (const layer of this.layers) {
      const totals = layer.listedTotals();
      if (totals) checkRecordTotals(layer.record, totals);
    }
  }

  /** All zeros (callers do not modify a state). */
  private untouched(chunk: number): ChunkState {
    const g = this.layers[this.layers.length - 1].metadata;
    if ((chunk + 1) * g.chunkSize > g.size) return zeroState(g, chunk); // the volume's short last chunk
    return (this.zeroChunk ??= zeroState(g, chunk));
  }
}
