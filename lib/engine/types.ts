/** The options and results of the engine's operations: the public API the nodes and the CLI use. */
import type { BackupKind, BackupRecord, BaseSnapshot, Compression } from '../repository/records';

export type Operation = 'backup' | 'restore' | 'verify' | 'delete' | 'prune';

/** One event per chunk, plus a start and an end event, for every backup, restore and verify. */
export interface ProgressEvent {
  type: 'start' | 'chunk' | 'end';
  operation: Operation;
  backupId: string;
  volumeId: string;
  /** The snapshot the backup was (or is being) taken from, or null. */
  snapshotId: string | null;
  /** Which chunk this event is about (chunks finish in any order; -1 for start). */
  chunkIndex: number;
  /** How many chunks are done: 1, 2, … chunkCount, in order. */
  chunksDone: number;
  chunkCount: number;
  bytesDone: number;
  bytesTotal: number;
  percent: number;
  bytesPerSecond: number;
  etaSeconds: number | null;
}

export type ProgressListener = (event: ProgressEvent) => void;

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

export interface CommonOptions {
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  log?: Logger;
}

/** A point-in-time source: an existing snapshot, or one a provider took for this backup. */
export interface SnapshotSource {
  id: string | null;
  /** The snapshot's creation time: it becomes the backup's dataTimestamp. */
  createdAt: Date;
  provider: string | null;
}

export interface CreateBackupOptions extends CommonOptions {
  /** Path of the disk image or block device to read. */
  volume: string;
  /** Defaults to a stable id derived from the volume path. */
  volumeId?: string;
  name?: string;
  description?: string;
  /** full (default), incremental (parent: newest available backup) or differential (parent: newest full). */
  mode?: BackupKind;
  /** Use this backup as the parent of an incremental instead of choosing one. */
  parentId?: string;
  chunkSize?: number;
  blockSize?: number;
  compression?: Compression;
  compressionLevel?: number;
  /** Set when `volume` is a snapshot: its id and time go into the record. */
  snapshot?: SnapshotSource;
  /** Path recorded as the volume's source when `volume` is a temporary snapshot of it. */
  sourcePath?: string;
  /**
   * Skip the holes of a sparse disk image (lseek SEEK_DATA/SEEK_HOLE) instead of reading its zeros; same
   * backup either way. Default: on, unless VOLUME_BACKUP_SPARSE=off. Block devices are always read.
   */
  sparse?: boolean;
  /** Keep this id and creation time (an import from another system, e.g. Cinder): never for a new backup. */
  importAs?: { id: string; createdAt: Date };
  /** How long to wait while another backup of the same volume runs (default 0: fail at once with BUSY). */
  lockWaitMs?: number;
  /** Called once when the backup has to wait for another backup of the volume (to show it in a status). */
  onLockWait?: (holder: { host: string; pid: number; operation: string; acquiredAt: string }) => void;
  /**
   * Once the parent is chosen (null: a full backup): which byte ranges may differ from it. The other
   * blocks keep the parent's hashes unread (changed-extent incrementals, lib/engine/changed-extents.ts).
   */
  readPlan?: (parent: BackupRecord | null, size: number) => Promise<ReadPlan>;
  /** Recorded on the backup when it becomes available: the snapshot kept as the next one's base. */
  baseSnapshot?: BaseSnapshot;
}

/** What to read of the volume: everything (changed null), or only the ranges that may have changed. */
export interface ReadPlan {
  /** Byte ranges, sorted and not overlapping; null: read everything. */
  changed: [start: number, end: number][] | null;
  /** Why everything is read although a base snapshot was asked for; null otherwise. */
  reason: string | null;
  /** Changed-extent reads in a row, this one included (0 when this one reads everything). */
  extentRuns: number;
}

export interface RestoreOptions extends CommonOptions {
  backupId: string;
  /**
   * A new file (created sparse), an existing file (overwritten, then cut to the backup's size) or a
   * block device at least as large as the backup. Never inside a posix repository.
   */
  target?: string;
  /** Read and check everything, write nothing. */
  verifyOnly?: boolean;
  /**
   * A backup whose bytes the (existing) target already holds: only the blocks that differ between it and
   * the restored backup are written. A sample of the target's blocks is checked against its hashes first.
   */
  baseId?: string;
  /** With baseId: skip the sample check (the caller knows the target holds the base's bytes). */
  trustBase?: boolean;
  /**
   * false: refuse a target that exists (a file, any block device); true: write over it. The CLI, the
   * nodes and the sidebar always say; undefined keeps the behaviour of earlier versions (allowed).
   */
  overwrite?: boolean;
}

export interface RestoreResult {
  backupId: string;
  volumeId: string;
  target: string | null;
  verifyOnly: boolean;
  /** The chain applied, full backup first. */
  chain: string[];
  size: number;
  bytesWritten: number;
  /** Bytes checked against the backup's hash list (before they were written; the target is not read back). */
  bytesVerified: number;
  blocksVerified: number;
  /**
   * Bytes of the target past the backup's end, left as they were: those of a block device larger than
   * the backup. 0 for a file, which ends at the backup's size (a larger one is cut to it).
   */
  bytesLeftPastEnd: number;
  durationMs: number;
  /** With a base: which, how many target blocks were checked against it, and the bytes left as they were. */
  base?: { backupId: string; blocksSampled: number; bytesUnchanged: number };
}

export interface DeleteOptions {
  backupId: string;
  /** Also delete every backup that depends on this one, children first. */
  cascade?: boolean;
  signal?: AbortSignal;
  log?: Logger;
  onDeleted?: (record: BackupRecord) => void;
}

export interface DeleteResult {
  deleted: BackupRecord[];
  bytesFreed: number;
}
