/**
 * Repository-wide verify (restic's `check`, with `--read-data`): every record well-formed, every chain
 * complete, every object a backup's metadata lists present with its recorded size; with readData every
 * object's digest and every block's SHA-256 too (through the restore's verify-only mode, so there is one
 * checking code path). Also reported: objects no record owns (orphans), operations whose owner stopped
 * (stuck records), and what failed backups left behind.
 *
 * Verify runs beside backups, restores and prunes of other processes: objects are listed before records
 * (a record always exists before its objects, so a live backup's objects are never called orphans), and
 * a problem is reported only if the record still says the same after a second look.
 */
import { VolumeBackupError, errorMessage, throwIfAborted } from '../errors';
import { chainOf } from '../repository/catalog';
import { OwnedObject, checkRecordTotals, listBackupObjects, loadHashList, ownedObjects, readMetadata } from '../repository/backup-objects';
import { DATA_ROOT, classifyObjects, volumeOfRecordName } from '../repository/layout';
import { DEFAULT_LEASE_TTL_MS, listVolumeLeases } from '../repository/locks';
import { checkBackupId } from '../repository/names';
import { ownerHost } from '../repository/owner';
import { BackupRecord, leaseExpired } from '../repository/records';
import { Repository } from '../repository/repository';
import { mapLimit } from '../util/concurrency';
import type { ObjectEntry } from '../drivers/driver';
import { restoreBackup } from './restore';
import type { Logger, ProgressListener } from './types';

/** A `deleting` record has no lease; one unchanged this long is taken as abandoned. */
export const STUCK_DELETE_MS = 5 * DEFAULT_LEASE_TTL_MS;

export type VerifyProblemKind =
  | 'malformed-record'
  | 'broken-chain'
  | 'missing-object'
  | 'wrong-size'
  | 'corrupt'
  | 'orphaned-objects'
  | 'stuck-record'
  | 'unreadable'
  /** repository.json is gone while backups are there: the repository cannot be opened. */
  | 'missing-config';

export interface VerifyProblem {
  kind: VerifyProblemKind;
  message: string;
  /** The backups whose restore this problem breaks (or the record concerned). */
  backupIds: string[];
  objectName?: string;
  host?: string;
}

export interface VerifyNote {
  message: string;
  backupId?: string;
}

export interface VerifyOptions {
  /** Only this backup (and the chain it needs); no orphan scan. */
  backupId?: string;
  /** Also read every object and check its digest and every block's SHA-256. */
  readData?: boolean;
  /** Backups checked at the same time (default 4; 2 with readData). */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  log?: Logger;
  /** The time leases are judged against (tests). */
  now?: () => Date;
}

export interface VerifyResult {
  ok: boolean;
  readData: boolean;
  recordsChecked: number;
  /** Available (or restoring) backups whose objects were checked. */
  backupsVerified: number;
  objectsChecked: number;
  /** Bytes read and checked block by block (readData). */
  bytesVerified: number;
  problems: VerifyProblem[];
  /** Not wrong, but worth knowing: operations in progress, what failed backups left. */
  notes: VerifyNote[];
  durationMs: number;
}

class Findings {
  private readonly byMessage = new Map<string, VerifyProblem>();
  readonly notes: VerifyNote[] = [];

  add(problem: VerifyProblem): void {
    const known = this.byMessage.get(problem.message);
    if (!known) this.byMessage.set(problem.message, { ...problem, backupIds: [...problem.backupIds] });
    else for (const id of problem.backupIds) if (!known.backupIds.includes(id)) known.backupIds.push(id);
  }

  get problems(): VerifyProblem[] {
    return [...this.byMessage.values()];
  }
}

export async function verifyRepository(repo: Repository, options: VerifyOptions = {}): Promise<VerifyResult> {
  const started = Date.now();
  const now = options.now ?? (() => new Date());
  const findings = new Findings();
  const counters = { backupsVerified: 0, objectsChecked: 0, bytesVerified: 0 };
  throwIfAborted(options.signal);

  let records: BackupRecord[];
  let objects: ObjectEntry[] | null = null;
  /** Volumes with a record that cannot be read: prune keeps their orphans (see prune.ts). */
  const heldVolumes = new Set<string>();
  if (options.backupId) {
    const backupId = checkBackupId(options.backupId);
    const target = await repo.getRecord(backupId);
    const all = await repo.listRecords(target.volumeId, (name, reason) => malformed(findings, name, reason));
    const chain = await chainOrProblem(repo, findings, byIdOf(all), target, now());
    records = chain ?? [target];
  } else {
    // Objects first, records second: see the comment at the top.
    objects = await repo.listObjects(DATA_ROOT);
    records = await repo.listRecords(undefined, (name, reason) => {
      malformed(findings, name, reason);
      heldVolumes.add(volumeOfRecordName(name) ?? '*');
    });
    const byId = byIdOf(records);
    for (const record of records) if (record.status === 'available' || record.status === 'restoring') await chainOrProblem(repo, findings, byId, record, now());
  }

  // Without readData a backup costs a listing and two small reads: more of them in flight (big catalogs).
  const concurrency = options.concurrency ?? (options.readData ? 2 : 16);
  // The listing the orphan scan made serves every backup's presence check (one request instead of one per backup).
  const listed = objects ? new Map(objects.map((e) => [e.name, e.size])) : null;
  const check: Check = { repo, findings, counters, options, listed };
  await mapLimit(records, concurrency, async (record) => {
    throwIfAborted(options.signal);
    try {
      await checkRecord(check, record, now());
    } catch (err) {
      if (err instanceof VolumeBackupError && err.code === 'CANCELLED') throw err;
      // Anything unexpected (a network failure…) is a problem too: verify must not pass what it could not check.
      findings.add({ kind: 'unreadable', message: `backup ${record.id} could not be checked: ${errorMessage(err)}`, backupIds: [record.id] });
    }
  });
  if (objects) {
    await findOrphans(repo, objects, records, findings, heldVolumes);
    await noteStaleLeases(repo, findings, now());
  }

  const problems = findings.problems;
  return {
    ok: problems.length === 0,
    readData: !!options.readData,
    recordsChecked: records.length,
    ...counters,
    problems,
    notes: findings.notes,
    durationMs: Date.now() - started,
  };
}

function malformed(findings: Findings, name: string, reason: string): void {
  findings.add({ kind: 'malformed-record', message: `record ${name} is malformed: ${reason}`, backupIds: [] });
}

function byIdOf(records: readonly BackupRecord[]): Map<string, BackupRecord> {
  return new Map(records.map((r) => [r.id, r]));
}

/**
 * The chain a complete backup needs; every link must exist and be complete. A link found missing or
 * deleting may be a prune that took the chain after the records were listed: the backup is read again,
 * and one that is no longer complete is a note, not a problem.
 */
async function chainOrProblem(repo: Repository, findings: Findings, byId: ReadonlyMap<string, BackupRecord>, record: BackupRecord, now: Date): Promise<BackupRecord[] | null> {
  let problem: string;
  try {
    const chain = chainOf(byId, record.id);
    const link = chain.slice(0, -1).find((l) => l.status !== 'available' && l.status !== 'restoring');
    if (!link) return chain;
    if (link.status === 'deleting' && link.leaseExpiresAt !== null && !leaseExpired(link, now)) {
      // A deletion in progress: it takes this backup too (children first) or gives the parent back.
      findings.notes.push({ backupId: record.id, message: `backup ${record.id} needs ${link.id}, which a running deletion holds (${ownerHost(link)}); not counted` });
      return null;
    }
    problem = `backup ${record.id} needs ${link.id}, which is ${link.status}`;
  } catch (err) {
    problem = errorMessage(err);
  }
  if (!(await stillComplete(repo, record))) {
    findings.notes.push({ backupId: record.id, message: `backup ${record.id} changed while it was checked (deleted or pruned meanwhile); not counted` });
    return null;
  }
  findings.add({ kind: 'broken-chain', message: problem, backupIds: [record.id] });
  return null;
}

interface Counters {
  backupsVerified: number;
  objectsChecked: number;
  bytesVerified: number;
}

/** What the check of every record shares: the repository, where findings and counts go, the orphan scan's listing. */
interface Check {
  repo: Repository;
  findings: Findings;
  counters: Counters;
  options: VerifyOptions;
  listed: ReadonlyMap<string, number> | null;
}

/** One record, judged by its status. */
async function checkRecord(check: Check, record: BackupRecord, now: Date): Promise<void> {
  switch (record.status) {
    case 'available':
    case 'restoring':
      return checkComplete(check, record, now);
    case 'creating':
      return checkCreating(record, check.findings, now);
    case 'deleting':
      return checkDeleting(record, check.findings, now);
    case 'error':
      return checkFailed(check.repo, record, check.findings);
  }
}

/** A complete backup: its objects present (and with --read-data, its data intact); a restore whose lease expired is stuck. */
async function checkComplete(check: Check, record: BackupRecord, now: Date): Promise<void> {
  const { repo, findings, counters, options, listed } = check;
  if (record.status === 'restoring' && leaseExpired(record, now)) {
    const host = ownerHost(record);
    findings.add({
      kind: 'stuck-record',
      message: `backup ${record.id} has been restoring on host ${host} since ${record.updatedAt} and its lease expired at ${record.leaseExpiresAt}: that restore stopped. Run \`volume-backup cleanup --host ${host}\` on ${host}, or \`volume-backup reset-status --backup ${record.id} --status available\` if that host is gone for good`,
      backupIds: [record.id],
      host,
    });
  }
  const found = await checkObjects(repo, record, options.signal, listed);
  counters.objectsChecked += found.checked;
  let problems = found.problems;
  if (problems.length === 0 && options.readData && record.status === 'available') {
    try {
      const result = await restoreBackup(repo, { backupId: record.id, verifyOnly: true, signal: options.signal, onProgress: options.onProgress, log: options.log });
      counters.bytesVerified += result.bytesVerified;
    } catch (err) {
      if (err instanceof VolumeBackupError && err.code === 'CANCELLED') throw err;
      problems = [problemFrom(err, record)];
    }
  }
  if (problems.length > 0 && !(await stillComplete(repo, record))) {
    findings.notes.push({ backupId: record.id, message: `backup ${record.id} changed while it was checked (deleted or pruned meanwhile); not counted` });
    return;
  }
  for (const p of problems) findings.add(p);
  counters.backupsVerified++;
}

/** A backup being created: stuck when its writer's lease expired, otherwise work in progress. */
function checkCreating(record: BackupRecord, findings: Findings, now: Date): void {
  const host = ownerHost(record);
  if (leaseExpired(record, now)) {
    findings.add({
      kind: 'stuck-record',
      message: `backup ${record.id} of volume ${record.volumeId} has been creating on host ${host} since ${record.createdAt} and its lease expired at ${record.leaseExpiresAt}: that backup stopped. Run \`volume-backup cleanup --host ${host}\` on ${host}, or \`volume-backup reset-status --backup ${record.id} --status error\` if that host is gone for good`,
      backupIds: [record.id],
      host,
    });
  } else {
    findings.notes.push({ backupId: record.id, message: `backup ${record.id} of volume ${record.volumeId} is being created by host ${host} (not checked)` });
  }
}

/** A deletion names its owner and renews a lease; one of an older version is judged by its age. */
function checkDeleting(record: BackupRecord, findings: Findings, now: Date): void {
  const host = ownerHost(record);
  if (record.leaseExpiresAt ? leaseExpired(record, now) : now.getTime() - Date.parse(record.updatedAt) > STUCK_DELETE_MS) {
    findings.add({
      kind: 'stuck-record',
      message: `backup ${record.id} of volume ${record.volumeId} has been deleting since ${record.updatedAt} (host ${host}): the deletion stopped. Run \`volume-backup cleanup --host ${host}\` on ${host}, or delete it again`,
      backupIds: [record.id],
      host,
    });
  } else {
    findings.notes.push({ backupId: record.id, message: `backup ${record.id} of volume ${record.volumeId} is being deleted` });
  }
}

/** A failed backup: the objects it left behind are a note (prune or delete removes them). */
async function checkFailed(repo: Repository, record: BackupRecord, findings: Findings): Promise<void> {
  const left = await listBackupObjects(repo, record);
  if (left.length > 0) {
    const bytes = left.reduce((n, e) => n + e.size, 0);
    findings.notes.push({ backupId: record.id, message: `failed backup ${record.id} of volume ${record.volumeId} still has ${left.length} object(s), ${bytes} bytes: prune or delete removes them` });
  }
}

/**
 * Metadata (and segments, or the hash list) readable and consistent with the record; every object it
 * names present, right size. `repositoryListing` (whole-repository verify) was made before this record
 * was read: a backup it finds fault with is checked again against a listing of its own before it is blamed.
 */
async function checkObjects(
  repo: Repository,
  record: BackupRecord,
  signal?: AbortSignal,
  repositoryListing: ReadonlyMap<string, number> | null = null,
): Promise<{ problems: VerifyProblem[]; checked: number }> {
  if (repositoryListing) {
    const quick = await checkObjectsAgainst(repo, record, repositoryListing, signal);
    if (quick.problems.length === 0) return quick;
  }
  let listed: ReadonlyMap<string, number>;
  try {
    listed = new Map((await listBackupObjects(repo, record)).map((e) => [e.name, e.size]));
  } catch (err) {
    if (err instanceof VolumeBackupError && err.code === 'CANCELLED') throw err;
    return { problems: [problemFrom(err, record)], checked: 1 };
  }
  return checkObjectsAgainst(repo, record, listed, signal);
}

async function checkObjectsAgainst(
  repo: Repository,
  record: BackupRecord,
  listed: ReadonlyMap<string, number>,
  signal?: AbortSignal,
): Promise<{ problems: VerifyProblem[]; checked: number }> {
  const problems: VerifyProblem[] = [];
  let checked = 1;
  const check = ({ name, length }: OwnedObject): void => {
    checked++;
    const size = listed.get(name);
    if (size === undefined) {
      problems.push({ kind: 'missing-object', message: `object ${name} of backup ${record.id} is missing from the repository`, backupIds: [record.id], objectName: name });
    } else if (size !== length) {
      problems.push({ kind: 'wrong-size', message: `object ${name} of backup ${record.id} is ${size} bytes; its metadata says ${length}`, backupIds: [record.id], objectName: name });
    }
  };
  try {
    const { metadata, storedLength } = await readMetadata(repo, record, signal);
    if (metadata.formatVersion === 1) await loadHashList(repo, record, metadata, signal);
    const totals = { objects: 1, bytes: storedLength };
    for await (const owned of ownedObjects(repo, record, metadata, signal)) {
      check(owned);
      totals.objects++;
      totals.bytes += owned.length;
    }
    checkRecordTotals(record, totals);
  } catch (err) {
    if (err instanceof VolumeBackupError && err.code === 'CANCELLED') throw err;
    return { problems: [...problems, problemFrom(err, record)], checked };
  }
  return { problems, checked };
}

function problemFrom(err: unknown, record: BackupRecord): VerifyProblem {
  const code = err instanceof VolumeBackupError ? err.code : undefined;
  const objectName = err instanceof VolumeBackupError && typeof err.details?.objectName === 'string' ? err.details.objectName : undefined;
  const kind: VerifyProblemKind = code === 'OBJECT_MISSING' ? 'missing-object' : code === 'CORRUPT' ? 'corrupt' : code === 'CONFLICT' || code === 'NOT_FOUND' ? 'broken-chain' : 'unreadable';
  return { kind, message: errorMessage(err), backupIds: [record.id], objectName };
}

/** A second look before blaming a backup: is it still there and complete? */
async function stillComplete(repo: Repository, record: BackupRecord): Promise<boolean> {
  try {
    const { record: now } = await repo.readRecord(record.id, record.volumeId);
    return (now.status === 'available' || now.status === 'restoring') && now.metadataSha256 === record.metadataSha256;
  } catch (err) {
    if (err instanceof VolumeBackupError && err.code === 'NOT_FOUND') return false;
    return true;
  }
}

/**
 * Objects no record owns, by the layout's one classifier (prune's too, so what verify calls an orphan is
 * what prune deletes). Grouped by backup prefix; a group is reported once a second listing still has it.
 */
async function findOrphans(repo: Repository, objects: ObjectEntry[], known: readonly BackupRecord[], findings: Findings, heldVolumes: ReadonlySet<string>): Promise<void> {
  if (objects.length === 0) return;
  // Records listed after the objects, and re-listed: a backup started meanwhile counts.
  const records = await repo.listRecordsSince(known);
  const { orphans, foreign } = classifyObjects(objects, records);
  const candidates = new Map<string, string>();
  for (const o of orphans) candidates.set(o.prefix, o.volumeId);
  for (const [prefix, volumeId] of [...candidates].sort(([a], [b]) => a.localeCompare(b))) {
    // A deletion in progress removes objects before its record: those that are gone by now were not orphans.
    const still = classifyObjects(await repo.listObjects(prefix), records).orphans.filter((o) => o.prefix === prefix);
    if (still.length === 0) continue;
    const bytes = still.reduce((n, e) => n + e.size, 0);
    const prune = heldVolumes.has(volumeId) || heldVolumes.has('*')
      ? `prune keeps them while a record of volume ${volumeId} cannot be read (see that problem)`
      : 'prune deletes them after its orphan grace period';
    findings.add({
      kind: 'orphaned-objects',
      message: `${still.length} object(s), ${bytes} bytes, under ${prefix} belong to no backup record (a record removed by hand or by another tool): ${prune}, or re-create the record with "volume-backup import"`,
      backupIds: [],
      objectName: prefix,
    });
  }
  if (foreign.length > 0) {
    const shown = foreign.map((e) => e.name).sort().slice(0, 5).join(', ');
    findings.notes.push({ message: `${foreign.length} object(s) (${shown}${foreign.length > 5 ? ', …' : ''}) are under ${DATA_ROOT} but in no volume's directory: not made by volume-backup, so neither verify nor prune acts on them` });
  }
}

/** A lease left by a process that stopped is harmless (the next backup takes it over), but worth a note. */
async function noteStaleLeases(repo: Repository, findings: Findings, now: Date): Promise<void> {
  for (const { volumeId, holder } of await listVolumeLeases(repo)) {
    if (!holder) {
      findings.notes.push({ message: `the lease of volume ${volumeId} is unreadable; the next backup of the volume replaces it` });
    } else if (Date.parse(holder.expiresAt) < now.getTime()) {
      findings.notes.push({
        message: `the lease of volume ${volumeId} (host ${holder.host}, pid ${holder.pid}, ${holder.operation}) expired at ${holder.expiresAt}: that process stopped; the next backup takes the lease over, or "volume-backup cleanup --host ${holder.host}" on that host releases it`,
      });
    }
  }
}
