/**
 * Damaging a posix repository on purpose, as a crash, a bad hand edit or a crafted repository would:
 * edits of backup records (records/<vol>/<id>.json) and of metadata objects (their object lists), with
 * the record's metadataSha256 recomputed where asked so the damage gets past the digest check.
 * The edits are plain data (fast-check generates and shrinks them); applyEdits writes them out and
 * says which backups' records or metadata actually changed.
 */
import fc from 'fast-check';
import { createHash, randomUUID } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';

/** One backup of the base repository, as created. */
export interface BaseBackup {
  id: string;
  volumeId: string;
  parentId: string | null;
  objectPrefix: string;
  /** records/<vol>/<id>.json */
  recordFile: string;
  /** <prefix>_metadata */
  metadataFile: string;
  /** SHA-256 of the volume image this backup was taken of. */
  imageSha256: string;
}

export type Edit =
  | { t: 'prefix'; i: number; j: number; how: 'other' | 'volumeDir' | 'timeDir' | 'truncated' | 'foreign' | 'repositoryFile' | 'records' | 'escape'; resync: boolean }
  | { t: 'parent'; i: number; j: number; how: 'self' | 'other' | 'descendant' | 'missing' | 'none'; sync: boolean }
  | { t: 'number'; i: number; field: 'size' | 'blockSize' | 'chunkSize'; how: 'plus1' | 'minus1' | 'double' | 'half' | 'zero' | 'plusBlock'; sync: boolean }
  | { t: 'status'; i: number; status: 'creating' | 'available' | 'error' | 'deleting' | 'restoring' }
  | { t: 'ident'; i: number; j: number; how: 'idOnly' | 'volumeOnly' | 'moveToVolume' | 'replaceOther'; sync: boolean }
  | { t: 'sha'; i: number; j: number; how: 'random' | 'none' | 'other' }
  | { t: 'objName'; i: number; k: number; j: number; how: 'ownOther' | 'otherBackup' | 'escape' | 'missing'; resync: boolean }
  | { t: 'extent'; i: number; k: number; how: 'shiftBlock' | 'grow' | 'shrink' | 'beyondSize' | 'overlapPrevious'; resync: boolean }
  | { t: 'objLength'; i: number; k: number; how: 'plus1' | 'minus1' | 'zero'; resync: boolean }
  | { t: 'objList'; i: number; k: number; how: 'drop' | 'duplicate' | 'empty'; resync: boolean }
  | { t: 'borrow'; i: number; j: number; what: 'hashList' | 'objects' | 'all'; resync: boolean }
  | { t: 'zeros'; i: number; how: 'addFirstBlock' | 'clear'; resync: boolean };

const idx = fc.nat({ max: 63 });

/** Random edits; indexes are taken modulo the number of backups (or objects), so they shrink towards 0. */
export const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ t: fc.constant('prefix' as const), i: idx, j: idx, how: fc.constantFrom('other', 'volumeDir', 'timeDir', 'truncated', 'foreign', 'repositoryFile', 'records', 'escape'), resync: fc.boolean() }),
  fc.record({ t: fc.constant('parent' as const), i: idx, j: idx, how: fc.constantFrom('self', 'other', 'descendant', 'missing', 'none'), sync: fc.boolean() }),
  fc.record({ t: fc.constant('number' as const), i: idx, field: fc.constantFrom('size', 'blockSize', 'chunkSize'), how: fc.constantFrom('plus1', 'minus1', 'double', 'half', 'zero', 'plusBlock'), sync: fc.boolean() }),
  fc.record({ t: fc.constant('status' as const), i: idx, status: fc.constantFrom('creating', 'available', 'error', 'deleting', 'restoring') }),
  fc.record({ t: fc.constant('ident' as const), i: idx, j: idx, how: fc.constantFrom('idOnly', 'volumeOnly', 'moveToVolume', 'replaceOther'), sync: fc.boolean() }),
  fc.record({ t: fc.constant('sha' as const), i: idx, j: idx, how: fc.constantFrom('random', 'none', 'other') }),
  fc.record({ t: fc.constant('objName' as const), i: idx, k: idx, j: idx, how: fc.constantFrom('ownOther', 'otherBackup', 'escape', 'missing'), resync: fc.boolean() }),
  fc.record({ t: fc.constant('extent' as const), i: idx, k: idx, how: fc.constantFrom('shiftBlock', 'grow', 'shrink', 'beyondSize', 'overlapPrevious'), resync: fc.boolean() }),
  fc.record({ t: fc.constant('objLength' as const), i: idx, k: idx, how: fc.constantFrom('plus1', 'minus1', 'zero'), resync: fc.boolean() }),
  fc.record({ t: fc.constant('objList' as const), i: idx, k: idx, how: fc.constantFrom('drop', 'duplicate', 'empty'), resync: fc.boolean() }),
  fc.record({ t: fc.constant('borrow' as const), i: idx, j: idx, what: fc.constantFrom('hashList', 'objects', 'all'), resync: fc.boolean() }),
  fc.record({ t: fc.constant('zeros' as const), i: idx, how: fc.constantFrom('addFirstBlock', 'clear'), resync: fc.boolean() }),
);

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

interface Working {
  record: Json;
  /** Where the record is written (relative to the repository). */
  file: string;
  removed: boolean;
  metadata: Json;
  resync: boolean;
}

/** Descendants of backup `id` in the base repository (children, grandchildren, …). */
export function descendantsOf(base: BaseBackup[], id: string): BaseBackup[] {
  const out: BaseBackup[] = [];
  const walk = (parent: string) => {
    for (const b of base) if (b.parentId === parent && !out.includes(b)) (out.push(b), walk(b.id));
  };
  walk(id);
  return out;
}

function applyOne(edit: Edit, base: BaseBackup[], work: Working[]): void {
  const n = base.length;
  const i = edit.i % n;
  const w = work[i];
  const b = base[i];
  const other = 'j' in edit ? base[edit.j % n === i ? (i + 1) % n : edit.j % n] : base[(i + 1) % n];
  const objects: Json[] = w.metadata.objects;
  const k = 'k' in edit && objects.length ? edit.k % objects.length : 0;
  const syncMeta = (field: string, value: unknown) => {
    w.metadata[field] = value;
    w.resync = true;
  };
  switch (edit.t) {
    case 'prefix': {
      const prefixes: Record<typeof edit.how, string> = {
        other: other.objectPrefix,
        volumeDir: `volume_${b.volumeId}`,
        timeDir: path.posix.dirname(b.objectPrefix),
        truncated: b.objectPrefix.slice(0, -1),
        foreign: `volume_${other.volumeId}/${path.posix.basename(b.objectPrefix)}`,
        repositoryFile: 'repository',
        records: 'records/',
        escape: `../${b.objectPrefix}`,
      };
      w.record.objectPrefix = prefixes[edit.how];
      w.resync ||= edit.resync;
      break;
    }
    case 'parent': {
      const descendant = descendantsOf(base, b.id)[0]?.id ?? b.id;
      const parents: Record<typeof edit.how, string | null> = { self: b.id, other: other.id, descendant, missing: randomUUID(), none: null };
      w.record.parentId = parents[edit.how];
      if (edit.sync) syncMeta('parentId', w.record.parentId);
      break;
    }
    case 'number': {
      const v: number = w.record[edit.field];
      const values: Record<typeof edit.how, number> = {
        plus1: v + 1, minus1: Math.max(0, v - 1), double: v * 2, half: Math.floor(v / 2), zero: 0, plusBlock: v + w.record.blockSize,
      };
      w.record[edit.field] = values[edit.how];
      if (edit.sync) syncMeta(edit.field, w.record[edit.field]);
      break;
    }
    case 'status':
      w.record.status = edit.status;
      break;
    case 'ident':
      if (edit.how === 'idOnly' || edit.how === 'replaceOther') w.record.id = other.id;
      if (edit.how === 'volumeOnly' || edit.how === 'moveToVolume' || edit.how === 'replaceOther') w.record.volumeId = other.volumeId;
      if (edit.how === 'moveToVolume') w.file = `records/${other.volumeId}/${w.record.id}.json`;
      if (edit.how === 'replaceOther') (w.file = other.recordFile), (work[base.indexOf(other)].removed = true);
      if (edit.sync) (syncMeta('backupId', w.record.id), syncMeta('volumeId', w.record.volumeId));
      break;
    case 'sha':
      w.record.metadataSha256 = edit.how === 'random' ? sha256Hex(randomUUID()) : edit.how === 'none' ? null : work[base.indexOf(other)].record.metadataSha256;
      w.resync = false;
      break;
    case 'objName': {
      if (!objects.length) break;
      const otherObjects: Json[] = work[base.indexOf(other)].metadata.objects;
      const names: Record<typeof edit.how, string> = {
        ownOther: objects[(k + 1) % objects.length].name,
        otherBackup: otherObjects.length ? otherObjects[k % otherObjects.length].name : other.metadataFile,
        escape: `../../${objects[k].name}`,
        missing: `${b.objectPrefix}-99999`,
      };
      objects[k].name = names[edit.how];
      w.resync ||= edit.resync;
      break;
    }
    case 'extent': {
      if (!objects.length) break;
      const extents: [number, number][] = objects[k].extents;
      const bs: number = w.metadata.blockSize;
      const e = extents[0];
      if (edit.how === 'shiftBlock') e[0] += bs;
      if (edit.how === 'grow') e[1] += bs;
      if (edit.how === 'shrink') e[1] = Math.max(1, e[1] - bs);
      if (edit.how === 'beyondSize') e[0] = w.metadata.size;
      if (edit.how === 'overlapPrevious') e[0] = Math.max(0, e[0] - bs);
      w.resync ||= edit.resync;
      break;
    }
    case 'objLength':
      if (!objects.length) break;
      objects[k].length = edit.how === 'plus1' ? objects[k].length + 1 : edit.how === 'minus1' ? Math.max(0, objects[k].length - 1) : 0;
      w.resync ||= edit.resync;
      break;
    case 'objList':
      if (edit.how === 'drop') objects.splice(k, 1);
      if (edit.how === 'duplicate' && objects.length) objects.splice(k, 0, structuredClone(objects[k]));
      if (edit.how === 'empty') objects.length = 0;
      w.resync ||= edit.resync;
      break;
    case 'borrow': {
      const from = work[base.indexOf(other)].metadata;
      if (edit.what !== 'objects') w.metadata.hashList = structuredClone(from.hashList);
      if (edit.what !== 'hashList') (w.metadata.objects = structuredClone(from.objects)), (w.metadata.zeroExtents = structuredClone(from.zeroExtents));
      w.resync ||= edit.resync;
      break;
    }
    case 'zeros':
      w.metadata.zeroExtents = edit.how === 'clear' ? [] : [[0, w.metadata.blockSize], ...w.metadata.zeroExtents];
      w.resync ||= edit.resync;
      break;
  }
}

/** A relative object name that stays inside the repository (what a resync may read). */
function inside(repoDir: string, name: string): string | null {
  const full = path.resolve(repoDir, name);
  return full.startsWith(repoDir + path.sep) ? full : null;
}

/**
 * Applies `edits` to the posix repository at repoDir (a copy of the base) and returns the ids of the
 * base backups whose record file or metadata object now differs from the base (removed counts).
 */
export async function applyEdits(repoDir: string, base: BaseBackup[], edits: Edit[]): Promise<Set<string>> {
  const original = new Map<string, Buffer>();
  const work: Working[] = [];
  for (const b of base) {
    const record = await fs.readFile(path.join(repoDir, b.recordFile));
    const metadata = await fs.readFile(path.join(repoDir, b.metadataFile));
    original.set(b.recordFile, record);
    original.set(b.metadataFile, metadata);
    work.push({ record: JSON.parse(record.toString()), file: b.recordFile, removed: false, metadata: JSON.parse(metadata.toString()), resync: false });
  }
  for (const edit of edits) applyOne(edit, base, work);

  // Metadata first (at its original place), then the records that follow it.
  // Only what an edit changed is rewritten (the engine writes records pretty-printed).
  const same = (value: Json, file: string) => JSON.stringify(value) === JSON.stringify(JSON.parse(original.get(file)!.toString()));
  for (const [n, w] of work.entries()) {
    if (!same(w.metadata, base[n].metadataFile)) await fs.writeFile(path.join(repoDir, base[n].metadataFile), JSON.stringify(w.metadata));
  }
  for (const [n, w] of work.entries()) if (w.file !== base[n].recordFile || w.removed) await fs.rm(path.join(repoDir, base[n].recordFile), { force: true });
  for (const [n, w] of work.entries()) {
    if (w.removed) continue;
    if (w.resync) {
      const meta = inside(repoDir, `${w.record.objectPrefix}_metadata`);
      const bytes = meta ? await fs.readFile(meta).catch(() => null) : null;
      if (bytes) w.record.metadataSha256 = sha256Hex(bytes);
    }
    if (w.file === base[n].recordFile && same(w.record, w.file)) continue;
    const file = path.join(repoDir, w.file);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, JSON.stringify(w.record));
  }

  const edited = new Set<string>();
  for (const b of base) {
    for (const file of [b.recordFile, b.metadataFile]) {
      const now = await fs.readFile(path.join(repoDir, file)).catch(() => null);
      if (!now || !now.equals(original.get(file)!)) edited.add(b.id);
    }
  }
  return edited;
}

/** Edits a person can read in a failure report. */
export function describeEdits(edits: Edit[], base: BaseBackup[]): string {
  const n = base.length;
  const name = (x: number) => `#${x % n}(${base[x % n].volumeId}/${base[x % n].id.slice(0, 8)})`;
  return edits.map((e) => `${e.t} ${name(e.i)}${'j' in e ? ` j=${name(e.j)}` : ''} ${JSON.stringify({ ...e, t: undefined, i: undefined, j: undefined })}`).join('\n  ');
}
