/**
 * The backup record: the catalog entry for one backup, stored in the container beside its data
 * (records/<volumeId>/<backupId>.json). Its status moves only by compare-and-swap (see repository.ts).
 */
import { z } from 'zod';
import { CONTROL_CHARACTERS_MESSAGE, hasControlCharacters } from '../text';

export const RECORD_FORMAT_VERSION = 1;

export const BackupStatus = z.enum(['creating', 'available', 'error', 'deleting', 'restoring']);
export type BackupStatus = z.infer<typeof BackupStatus>;

export const BackupKind = z.enum(['full', 'incremental', 'differential']);
export type BackupKind = z.infer<typeof BackupKind>;

export const Compression = z.enum(['none', 'zlib', 'zstd']);
export type Compression = z.infer<typeof Compression>;

/** The states an operation holds a record in while it runs; each has an owner and a lease (docs/reliability.md). */
export const TRANSIENT_STATUSES: readonly BackupStatus[] = ['creating', 'restoring', 'deleting'];

export function isTransient(status: BackupStatus): boolean {
  return TRANSIENT_STATUSES.includes(status);
}

/** Whether the lease of the operation holding a record ran out (its owner stopped renewing it). */
export function leaseExpired(record: { leaseExpiresAt: string | null }, now: Date): boolean {
  return record.leaseExpiresAt !== null && Date.parse(record.leaseExpiresAt) < now.getTime();
}

const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 date');
/** Text a user reads (names, hosts, paths, reasons): no control characters, which could forge terminal output. */
const freeText = (max: number, min = 0) => z.string().min(min).max(max).refine((s) => !hasControlCharacters(s), CONTROL_CHARACTERS_MESSAGE);
const safeInt = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/**
 * The process that moved a record into a transient state: its host's cleanup finishes or rolls back
 * the operation once that process is gone (pid, and its start time so a reused pid is not taken for it).
 */
export const OperationOwnerSchema = z.object({
  operation: z.enum(['create', 'restore', 'delete']),
  host: freeText(253, 1),
  pid: z.number().int().positive(),
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22); null off Linux. */
  pidStart: z.number().int().nonnegative().nullable(),
});
export type OperationOwner = z.infer<typeof OperationOwnerSchema>;

/**
 * A snapshot kept after a backup as the base of the next incremental (docs/snapshots.md, "Base
 * snapshots"): the next backup reads only the ranges whose extents differ from it. Host-local.
 */
export const BaseSnapshotSchema = z.object({
  provider: z.enum(['btrfs', 'reflink']),
  name: freeText(128, 1),
  host: freeText(253, 1),
  /** The volume file inside the snapshot: what this backup read. */
  path: freeText(4096, 1),
  /** What removing it takes: the btrfs snapshot subvolume, or the reflink clone (= path). */
  removes: freeText(4096, 1),
  /** Where its owner file is (lib/snapshot/owners.ts). */
  stateDir: freeText(4096, 1),
  /** The live volume file's inode when the snapshot was taken: another inode means the file was replaced. */
  sourceInode: safeInt,
  /** The live volume file's real path then: an inode number or an extent's address means nothing on another file system. */
  source: freeText(4096, 1).optional(),
  /** The snapshot file's ctime (ns) when kept: another means it was written or replaced since (by hand). */
  changedAtNs: z.string().regex(/^\d{1,30}$/).optional(),
});
export type BaseSnapshot = z.infer<typeof BaseSnapshotSchema>;

/** How a backup read its volume: everything, or only the ranges that changed since a base snapshot. */
export const ReadStatsSchema = z.object({
  method: z.enum(['full', 'changed-extents']),
  bytesRead: safeInt,
  /** Why a full read, when a changed-extent read was possible in principle; null otherwise. */
  reason: freeText(4096).nullable(),
  /** Changed-extent reads in a row up to this backup (0: this one read everything). */
  extentRuns: safeInt,
});
export type ReadStats = z.infer<typeof ReadStatsSchema>;

/** Who asked a running operation to stop (`volume-backup cancel`, the sidebar, msg.cancel); its owner stops at its next lease renewal. */
export const CancelRequestSchema = z.object({
  host: freeText(253, 1),
  /** The user (CLI: the login name; sidebar: the editor user) or "" when unknown. */
  user: freeText(256),
  /** What asked: "cli", "sidebar", "node". */
  source: freeText(64, 1),
  at: isoDate,
});
export type CancelRequest = z.infer<typeof CancelRequestSchema>;

/** Where a running restore writes: its host's cleanup reports the target as incomplete, and removes it when the restore created it. */
export const RestoreTargetSchema = z.object({
  path: freeText(4096, 1),
  host: freeText(253, 1),
  /** The target did not exist before this restore. */
  created: z.boolean(),
});
export type RestoreTarget = z.infer<typeof RestoreTargetSchema>;

export const BackupRecordSchema = z.object({
  formatVersion: z.literal(RECORD_FORMAT_VERSION),
  id: z.string().uuid(),
  volumeId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/).refine((s) => !s.includes('..')),
  name: freeText(1024),
  description: freeText(4096),
  status: BackupStatus,
  failReason: freeText(Number.MAX_SAFE_INTEGER).nullable(),
  parentId: z.string().uuid().nullable(),
  kind: BackupKind,
  dataTimestamp: isoDate,
  createdAt: isoDate,
  updatedAt: isoDate,
  size: safeInt,
  storedBytes: safeInt,
  objectCount: safeInt,
  chunkSize: z.number().int().positive(),
  blockSize: z.number().int().positive(),
  compression: Compression,
  snapshotId: freeText(1024).nullable(),
  snapshotProvider: freeText(64).nullable(),
  /** The host that created the backup (an operation's owner is in `owner`). */
  host: freeText(253, 1),
  /** Cinder's service_metadata: the object-name prefix of this backup's objects. */
  objectPrefix: z.string().min(1).max(1024),
  /** SHA-256 of the stored metadata object, so a record cannot silently point at another backup. */
  metadataSha256: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
  /** While an operation runs, its owner renews this; an expired lease means the owner stopped. */
  leaseExpiresAt: isoDate.nullable(),
  /** Who runs the operation while the status is transient; null otherwise (absent in records of older versions). */
  owner: OperationOwnerSchema.nullable().optional(),
  /** A request to stop the running operation, and afterwards the record of who stopped it (absent in older versions). */
  cancelRequest: CancelRequestSchema.nullable().optional(),
  /** While restoring: the target being written (absent in older versions). */
  restoreTarget: RestoreTargetSchema.nullable().optional(),
  sourcePath: freeText(4096).nullable(),
  encrypted: z.boolean(),
  /** The base snapshot this backup left for the next incremental (absent in older records). */
  baseSnapshot: BaseSnapshotSchema.nullable().optional(),
  /** How the volume was read (absent in older records and in backups not made through a snapshot). */
  readStats: ReadStatsSchema.nullable().optional(),
});
export type BackupRecord = z.infer<typeof BackupRecordSchema>;

/** Which status changes are allowed (Cinder's state machine, plus restoring → available). */
const TRANSITIONS: Record<BackupStatus, BackupStatus[]> = {
  creating: ['available', 'error'],
  available: ['restoring', 'deleting', 'error'],
  restoring: ['available', 'error'],
  error: ['deleting'],
  // deleting → available: a prune that finds a new dependent gives the backup back before deleting anything.
  deleting: ['deleting', 'error', 'available'],
};

export function canTransition(from: BackupStatus, to: BackupStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function parseRecord(json: unknown): BackupRecord {
  return BackupRecordSchema.parse(json);
}
