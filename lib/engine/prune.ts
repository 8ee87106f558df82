/**
 * Prune: apply a retention policy (lib/repository/retention.ts) to a repository, safely beside
 * backups and restores running in other processes or hosts. No repository-wide lock is taken; the
 * deletions follow delete-batch.ts's set-then-check (records → deleting by compare-and-swap, then one
 * re-listing: a backup that any record names as parent is given back), the same protocol writers and
 * restorers follow from their side, so at least one side always sees the other.
 *
 * Order of work per volume: list the objects, then the records (a writer creates its record before
 * its first object, so an object listed earlier than the records always belongs to a listed record);
 * plan; delete children first; then objects that no record covers (orphans of crashes), once they
 * have been seen as orphans for the grace period. A dry run does the listing and the plan only.
 */
import { VolumeBackupError, errorMessage, throwIfAborted } from '../errors';
import type { ObjectEntry } from '../drivers/driver';
import { deleteBackups } from './delete-batch';
import { ancestorsOf, parentLoopError } from '../repository/catalog';
import type { CommonOptions, ProgressEvent } from './types';
import { BackupRecord, leaseExpired } from '../repository/records';
import { Repository } from '../repository/repository';
import { mapLimit } from '../util/concurrency';
import { checkVolumeId } from '../repository/names';
import { ParentIndex } from '../repository/parent-index';
import { DATA_ROOT, classifyObjects, volumeObjectsPrefix, volumeOfObject, volumeOfRecordName } from '../repository/layout';
import { PlannedDelete, VolumePlan, childrenFirst, planRetention, resolvePolicy } from '../repository/retention';

export const DEFAULT_ORPHAN_GRACE_PERIOD_MS = 24 * 3600_000;
/** Backups checked by one listing of the records (and held in `deleting` together). */
const PRUNE_BATCH = 100;
/** Where prune remembers when it first saw each orphaned object (one small sealed JSON object per volume; layout.ts names it). */
export { ORPHAN_STATE_PREFIX } from '../repository/layout';

export interface PruneOptions extends CommonOptions {
  /** keepLast, keepDaily, keepWithin… (see RetentionPolicy); validated here. */
  policy: unknown;
  /** Only this volume (default: every volume in the repository). */
  volumeId?: string;
  /** Plan and report, change nothing. */
  dryRun?: boolean;
  /** An object no record covers is deleted once it has been seen so for this long (default 24 h). */
  orphanGracePeriodMs?: number;
}

export interface KeptBackupReport {
  id: string;
  kind: string;
  status: string;
  dataTimestamp: string;
  parentId: string | null;
  storedBytes: number;
  /** Which rules keep it ("keep-daily", "parent of <id>", "in use by <id>"…). */
  reasons: string[];
}

export interface DeletedBackupReport {
  id: string;
  kind: string;
  status: string;
  dataTimestamp: string;
  parentId: string | null;
  reason: string;
  bytesFreed: number;
}

export interface OrphanReport {
  name: string;
  size: number;
  /** When a prune first saw it unreferenced (null: now, for the first time). */
  firstSeen: string | null;
  action: 'deleted' | 'would delete' | 'kept for the grace period' | 'kept: records unreadable';
}

export interface VolumePruneReport {
  volumeId: string;
  kept: KeptBackupReport[];
  /** Deleted (dry run: would be deleted), in the order of deletion. */
  deleted: DeletedBackupReport[];
  orphans: OrphanReport[];
  bytesFreed: number;
  problems: string[];
}

export interface PruneReport {
  dryRun: boolean;
  policy: string;
  volumes: VolumePruneReport[];
  backupsDeleted: number;
  orphansDeleted: number;
  bytesFreed: number;
  problems: string[];
  durationMs: number;
}

interface Listing {
  /** Objects under volume_<id>/ per volume id. */
  objects: Map<string, ObjectEntry[]>;
  records: BackupRecord[];
  /** Volumes with a record that could not be read: their orphans are never deleted. */
  unreadable: Set<string>;
  problems: string[];
}

/** How a kept backup's reason starts when the storage refused its deletion. */
const DELETION_FAILED = 'deletion failed: ';

export async function pruneRepository(repo: Repository, options: PruneOptions): Promise<PruneReport> {
  const started = Date.now();
  const policy = resolvePolicy(options.policy);
  const volumeId = options.volumeId === undefined ? undefined : checkVolumeId(options.volumeId);
  const grace = options.orphanGracePeriodMs ?? DEFAULT_ORPHAN_GRACE_PERIOD_MS;
  if (!Number.isFinite(grace) || grace < 0) throw new VolumeBackupError('INVALID_ARGUMENT', 'orphanGracePeriodMs must be a number of milliseconds ≥ 0');
  throwIfAborted(options.signal);

  const listing = await list(repo, volumeId);
  const loops = parentLoops(listing.records);
  const now = new Date();
  const plan = planRetention(listing.records, policy, { now, volumeId });
  const volumeIds = new Set([...plan.volumes.map((v) => v.volumeId), ...listing.objects.keys()]);
  const empty = (id: string): VolumePlan => ({ volumeId: id, keep: [], delete: [], bytesFreed: 0, problems: [] });
  const byVolume = new Map(plan.volumes.map((v) => [v.volumeId, v]));

  const progress = progressEmitter(options, plan.volumes.reduce((n, v) => n + v.delete.length, 0), plan.volumes.reduce((n, v) => n + v.bytesFreed, 0));
  const volumes: VolumePruneReport[] = [];
  for (const id of [...volumeIds].sort()) {
    const planned = byVolume.get(id) ?? empty(id);
    const volumePlan = listing.unreadable.has(id) ? keepAll(planned, UNREADABLE) : loops.has(id) ? keepAll(planned, LOOP) : planned;
    const objects = listing.objects.get(id) ?? [];
    const records = listing.records.filter((r) => r.volumeId === id);
    const report = options.dryRun
      ? reportPlan(volumePlan, objects)
      : await executePlan(repo, volumePlan, records, options, progress);
    report.orphans = await handleOrphans(repo, id, objects, records, listing.unreadable.has(id), grace, now, options);
    report.bytesFreed = report.deleted.reduce((n, d) => n + d.bytesFreed, 0) + report.orphans.filter((o) => o.action === 'deleted' || o.action === 'would delete').reduce((n, o) => n + o.size, 0);
    volumes.push(report);
  }
  const problems = [...listing.problems, ...volumes.flatMap((v) => v.problems)];
  for (const p of problems) options.log?.warn(p);
  const report: PruneReport = {
    dryRun: !!options.dryRun,
    policy: plan.policy,
    volumes,
    backupsDeleted: volumes.reduce((n, v) => n + v.deleted.length, 0),
    orphansDeleted: volumes.reduce((n, v) => n + v.orphans.filter((o) => o.action === 'deleted' || o.action === 'would delete').length, 0),
    bytesFreed: volumes.reduce((n, v) => n + v.bytesFreed, 0),
    problems,
    durationMs: Date.now() - started,
  };
  // The rest was pruned; the failure says the repository is damaged (verify and restore fail on it too).
  if (loops.size > 0) {
    const which = [...loops].map(([v, message]) => `volume ${v}: ${message}; prune kept every backup of volume ${v}`);
    throw new VolumeBackupError('CORRUPT', which.join('. '), { report });
  }
  // Deletions the storage refused (a full or read-only repository): what the policy wanted gone is still
  // there, so the prune failed, whatever else it did (the report goes with the error).
  const refused = volumes.flatMap((v) => v.kept.filter((k) => k.reasons.some((r) => r.startsWith(DELETION_FAILED))));
  if (refused.length > 0) {
    const first = refused[0].reasons.find((r) => r.startsWith(DELETION_FAILED))!.slice(DELETION_FAILED.length);
    throw new VolumeBackupError('STORAGE', `${refused.length} backup(s) the policy removes could not be deleted (${refused[0].id}: ${first}); they are kept, and the prune did the rest`, { report });
  }
  return report;
}

/** Per volume, the parent loop its records form (catalog.parentLoopError's words), if any. */
function parentLoops(records: readonly BackupRecord[]): Map<string, string> {
  const byId = new Map(records.map((r) => [r.id, r]));
  const loops = new Map<string, string>();
  for (const r of records) {
    if (loops.has(r.volumeId)) continue;
    const { loop } = ancestorsOf(byId, r);
    if (loop) loops.set(r.volumeId, parentLoopError(loop[0], loop).message);
  }
  return loops;
}

/** Why a volume deletes no backup (keepAll): its "kept" reason, and why the policy's deletions wait. */
const UNREADABLE = { reason: 'kept: a record of this volume cannot be read, and it may depend on this backup', because: 'a record of this volume cannot be read; fix or remove that record (see the problem above)' };
const LOOP = { reason: "kept: this volume's records name each other as parents in a loop", because: "this volume's records form a parent loop; repair the parentId of those records (see the error)" };

/**
 * A volume with a record that cannot be read, or whose records form a parent loop, deletes no backup:
 * the real chains are unknown, and deleting a parent would make its backup unrestorable for good.
 */
function keepAll(plan: VolumePlan, why: { reason: string; because: string }): VolumePlan {
  const { reason } = why;
  return {
    ...plan,
    keep: [...plan.keep, ...plan.delete.map((d) => ({ record: d.record, reasons: [reason] }))],
    delete: [],
    bytesFreed: 0,
    problems: [...plan.problems, ...(plan.delete.length > 0 ? [`volume ${plan.volumeId}: ${plan.delete.length} backup(s) the policy would delete are kept because ${why.because}, then prune again`] : [])],
  };
}

// ---- listing -------------------------------------------------------------------------------------

async function list(repo: Repository, volumeId: string | undefined): Promise<Listing> {
  // Objects first, records second (see the header).
  const entries = await repo.listObjects(volumeId ? volumeObjectsPrefix(volumeId) : DATA_ROOT);
  const objects = new Map<string, ObjectEntry[]>();
  for (const e of entries) {
    const owner = volumeOfObject(e.name);
    if (owner === null) continue;
    let bucket = objects.get(owner);
    if (!bucket) objects.set(owner, (bucket = []));
    bucket.push(e);
  }
  const unreadable = new Set<string>();
  const problems: string[] = [];
  const records = await repo.listRecords(volumeId, (name, reason) => {
    unreadable.add(volumeOfRecordName(name) ?? '*');
    problems.push(`record ${name} cannot be read (${reason}): prune leaves it, its volume's backups and its volume's unreferenced objects alone`);
  });
  if (unreadable.has('*')) for (const id of objects.keys()) unreadable.add(id);
  return { objects, records, unreadable, problems };
}

// ---- reports and execution -----------------------------------------------------------------------

function keptReport(record: BackupRecord, reasons: string[]): KeptBackupReport {
  return {
    id: record.id,
    kind: record.kind,
    status: record.status,
    dataTimestamp: record.dataTimestamp,
    parentId: record.parentId,
    storedBytes: record.storedBytes,
    reasons,
  };
}

function deletedReport(record: BackupRecord, reason: string, bytesFreed: number): DeletedBackupReport {
  return { id: record.id, kind: record.kind, status: record.status, dataTimestamp: record.dataTimestamp, parentId: record.parentId, reason, bytesFreed };
}

function reportPlan(plan: VolumePlan, objects: ObjectEntry[]): VolumePruneReport {
  const { owned } = classifyObjects(objects, [...plan.keep.map((k) => k.record), ...plan.delete.map((d) => d.record)]);
  const bytesOf = (d: PlannedDelete) => (owned.get(d.record.id) ?? []).reduce((n, e) => n + e.size, 0);
  return {
    volumeId: plan.volumeId,
    kept: plan.keep.map((k) => keptReport(k.record, k.giveBack ? [...k.reasons, 'its unfinished deletion is undone'] : k.reasons)),
    deleted: plan.delete.map((d) => deletedReport(d.record, d.reason, bytesOf(d))),
    orphans: [],
    bytesFreed: 0,
    problems: [...plan.problems],
  };
}

async function executePlan(
  repo: Repository,
  plan: VolumePlan,
  records: BackupRecord[],
  options: PruneOptions,
  progress: (record: BackupRecord, bytesFreed: number) => void,
): Promise<VolumePruneReport> {
  const kept = new Map(plan.keep.map((k) => [k.record.id, keptReport(k.record, [...k.reasons])]));
  const keep = (record: BackupRecord, reason: string) => {
    const entry = kept.get(record.id);
    if (entry) entry.reasons.push(reason);
    else kept.set(record.id, keptReport(record, [reason]));
  };
  const deleted: DeletedBackupReport[] = [];
  const problems = [...plan.problems];

  await endStaleRestores(repo, plan, problems);

  const reasons = new Map(plan.delete.map((d) => [d.record.id, d.reason]));
  const byId = new Map(records.map((r) => [r.id, r]));
  const childrenOf = childrenByParent(records);
  const queue = childrenFirst([...plan.delete.map((d) => d.record), ...plan.keep.filter((k) => k.giveBack).map((k) => k.record)], byId);
  const gone = new Set<string>();
  const index = new ParentIndex(repo, plan.volumeId, records);
  const failed = (record: BackupRecord, err: unknown) => {
    const code = err instanceof VolumeBackupError ? err.code : null;
    if (code === 'NOT_FOUND') gone.add(record.id); // deleted by someone else meanwhile
    else if (code === 'CONFLICT') keep(record, `busy: ${errorMessage(err)}`);
    else if (code === 'CANCELLED') throw err;
    else {
      keep(record, `${DELETION_FAILED}${errorMessage(err)}`);
      problems.push(`backup ${record.id} could not be deleted: ${errorMessage(err)}`);
    }
  };
  const onDeleted = (record: BackupRecord, freed: number) => {
    const reason = reasons.get(record.id) ?? 'unfinished deletion';
    gone.add(record.id);
    kept.delete(record.id);
    deleted.push(deletedReport(record, reason, freed));
    options.log?.info(`deleted backup ${record.id} of volume ${record.volumeId} (${record.kind}, ${record.dataTimestamp}): ${reason}`);
    progress(record, freed);
  };
  // In batches (one listing checks a whole batch), children first within and across batches.
  for (let start = 0; start < queue.length; start += PRUNE_BATCH) {
    throwIfAborted(options.signal);
    const batch = await prepareBatch(repo, queue.slice(start, start + PRUNE_BATCH), childrenOf, gone, keep, failed);
    const outcome = await deleteBackups(repo, batch, { index, signal: options.signal, onDeleted });
    for (const [id, users] of outcome.givenBack) {
      if (!kept.get(id)?.reasons.some((r) => r.startsWith('in use by'))) keep(byId.get(id)!, `in use by ${users.join(', ')}`);
    }
    for (const [id, err] of outcome.failed) failed(byId.get(id)!, err);
  }
  const keptList = [...kept.values()].sort((a, b) => Date.parse(b.dataTimestamp) - Date.parse(a.dataTimestamp));
  return { volumeId: plan.volumeId, kept: keptList, deleted, orphans: [], bytesFreed: 0, problems };
}

/** Restores that stopped (lease expired) leave their backup `restoring`; give it back. */
async function endStaleRestores(repo: Repository, plan: VolumePlan, problems: string[]): Promise<void> {
  for (const k of plan.keep) {
    if (k.record.status === 'restoring' && leaseExpired(k.record, new Date())) {
      await endStaleRestore(repo, k.record).catch((err) => problems.push(`backup ${k.record.id} stays restoring: ${errorMessage(err)}`));
    }
  }
}

function childrenByParent(records: readonly BackupRecord[]): Map<string, string[]> {
  const childrenOf = new Map<string, string[]>();
  for (const r of records) if (r.parentId) childrenOf.set(r.parentId, [...(childrenOf.get(r.parentId) ?? []), r.id]);
  return childrenOf;
}

/**
 * The records of one slice of the queue that can go to deleteBackups, each made deletable (an abandoned
 * writer fenced, a stopped restore ended); the others are kept (`keep`) or reported (`failed`).
 */
async function prepareBatch(
  repo: Repository,
  slice: readonly BackupRecord[],
  childrenOf: ReadonlyMap<string, string[]>,
  gone: ReadonlySet<string>,
  keep: (record: BackupRecord, reason: string) => void,
  failed: (record: BackupRecord, err: unknown) => void,
): Promise<BackupRecord[]> {
  const batch: BackupRecord[] = [];
  const inBatch = new Set<string>();
  for (const record of slice) {
    // A child that stays keeps its parent: do not even try. (An unfinished deletion is always
    // handed over, to be finished or given back.)
    const stayingChild = (childrenOf.get(record.id) ?? []).find((c) => !gone.has(c) && !inBatch.has(c));
    if (stayingChild && record.status !== 'deleting') {
      keep(record, `parent of ${stayingChild}`);
      continue;
    }
    try {
      let current = record;
      if (record.status === 'creating') current = await fenceAbandonedWriter(repo, record);
      if (record.status === 'restoring') current = await endStaleRestore(repo, record);
      batch.push(current);
      inBatch.add(record.id);
    } catch (err) {
      failed(record, err);
    }
  }
  return batch;
}

/**
 * A backup whose writer stopped renewing its lease: fence it (creating → error) so that a writer
 * that was merely slow fails at its final compare-and-swap instead of completing over deleted data.
 */
async function fenceAbandonedWriter(repo: Repository, record: BackupRecord): Promise<BackupRecord> {
  return repo.updateRecord(
    record.id,
    (current) => {
      if (current.status !== 'creating' || !leaseExpired(current, new Date())) {
        throw new VolumeBackupError('CONFLICT', `backup ${record.id} is being written again (its lease was renewed)`, { backupId: record.id });
      }
      return { status: 'error', failReason: `its writer stopped (lease expired at ${current.leaseExpiresAt}); removed by prune`, leaseExpiresAt: null };
    },
    record.volumeId,
  );
}

async function endStaleRestore(repo: Repository, record: BackupRecord): Promise<BackupRecord> {
  return repo.updateRecord(
    record.id,
    (current) => {
      if (current.status !== 'restoring' || !leaseExpired(current, new Date())) {
        throw new VolumeBackupError('CONFLICT', `backup ${record.id} is being restored`, { backupId: record.id });
      }
      return { status: 'available', leaseExpiresAt: null };
    },
    record.volumeId,
  );
}

// ---- orphans -------------------------------------------------------------------------------------

interface OrphanState {
  formatVersion: 1;
  /** Object name → when a prune first saw it unreferenced. */
  firstSeen: Record<string, string>;
}

async function readOrphanState(repo: Repository, volumeId: string): Promise<OrphanState> {
  const parsed = (await repo.readPruneState(volumeId)) as OrphanState | null;
  if (parsed && parsed.formatVersion === 1 && typeof parsed.firstSeen === 'object' && parsed.firstSeen) return parsed;
  return { formatVersion: 1, firstSeen: {} };
}

/**
 * Objects under volume_<id>/ that no record covers. One is deleted only after prunes have seen it
 * unreferenced for the grace period (remembered in prune/orphans/<id>.json), which covers objects
 * copied in ahead of an `import` and writers on hosts whose records prune could not see yet.
 */
async function handleOrphans(
  repo: Repository,
  volumeId: string,
  objects: ObjectEntry[],
  records: BackupRecord[],
  unreadable: boolean,
  graceMs: number,
  now: Date,
  options: PruneOptions,
): Promise<OrphanReport[]> {
  // The layout's one classifier: what verify reports as orphaned is what this deletes.
  const { orphans } = classifyObjects(objects, records);
  const state = await readOrphanState(repo, volumeId);
  if (orphans.length === 0 && Object.keys(state.firstSeen).length === 0) return [];
  const reports: OrphanReport[] = [];
  const next: OrphanState = { formatVersion: 1, firstSeen: {} };
  const doomed: ObjectEntry[] = [];
  for (const e of orphans) {
    const firstSeen = state.firstSeen[e.name] ?? null;
    const ripe = graceMs === 0 || (firstSeen !== null && now.getTime() - Date.parse(firstSeen) >= graceMs);
    if (unreadable) reports.push({ name: e.name, size: e.size, firstSeen, action: 'kept: records unreadable' });
    else if (ripe) {
      reports.push({ name: e.name, size: e.size, firstSeen, action: options.dryRun ? 'would delete' : 'deleted' });
      doomed.push(e);
      continue;
    } else reports.push({ name: e.name, size: e.size, firstSeen, action: 'kept for the grace period' });
    next.firstSeen[e.name] = firstSeen ?? now.toISOString();
  }
  if (options.dryRun) return reports;
  await mapLimit(doomed, 8, async (e) => {
    throwIfAborted(options.signal);
    await repo.deleteObject(e.name);
    options.log?.info(`deleted unreferenced object ${e.name} (${e.size} bytes)`);
  });
  if (Object.keys(next.firstSeen).length) await repo.writePruneState(volumeId, next);
  else await repo.deletePruneState(volumeId);
  return reports;
}

// ---- progress ------------------------------------------------------------------------------------

function progressEmitter(options: PruneOptions, plannedCount: number, plannedBytes: number): (record: BackupRecord, bytesFreed: number) => void {
  const started = Date.now();
  let done = 0;
  let bytesDone = 0;
  return (record, bytesFreed) => {
    done++;
    bytesDone += bytesFreed;
    if (!options.onProgress) return;
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? bytesDone / seconds : 0;
    const count = Math.max(plannedCount, done);
    const perBackup = seconds / done;
    const event: ProgressEvent = {
      type: 'chunk',
      operation: 'prune',
      backupId: record.id,
      volumeId: record.volumeId,
      snapshotId: record.snapshotId,
      chunkIndex: done - 1,
      chunksDone: done,
      chunkCount: count,
      bytesDone,
      bytesTotal: Math.max(plannedBytes, bytesDone),
      percent: Math.round((done / count) * 1000) / 10,
      bytesPerSecond: Math.round(rate),
      etaSeconds: Math.round(perBackup * (count - done)),
    };
    try {
      options.onProgress(event);
    } catch {
      // A listener's bug must not break a prune.
    }
  };
}
