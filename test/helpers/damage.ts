/**
 * Damaging a posix repository on purpose, as a crash, a bad hand edit or a crafted repository would:
 * edits of backup records (records/<vol>/<id>.json), of metadata objects (format 2: their segment lists)
 * and of segment objects (their chunk entries: data object names, extents, lengths, zero maps, hashes),
 * with the digests that name an edited object recomputed where asked (a segment's sha256 and length in
 * the metadata, the metadata's metadataSha256 in the record) so the damage gets past the digest checks.
 * The repository is unencrypted: a segment object is its plain encoding (docs/format.md).
 * The edits are plain data (fast-check generates and shrinks them); applyEdits writes them out and
 * says which backups' records, metadata or segment objects actually changed.
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
  /** <prefix>_segment-NNNNNN, by segment index, as the metadata lists them. */
  segmentFiles: Map<number, string>;
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
  // Chunk entries of the segment objects (k: the k-th entry with a data object, in chunk order).
  | { t: 'objName'; i: number; k: number; j: number; how: 'ownOther' | 'otherBackup' | 'escape' | 'missing'; resync: boolean }
  | { t: 'extent'; i: number; k: number; how: 'shiftBlock' | 'grow' | 'shrink' | 'beyondSize' | 'overlapPrevious'; resync: boolean }
  | { t: 'objLength'; i: number; k: number; how: 'plus1' | 'minus1' | 'zero'; resync: boolean }
  | { t: 'objList'; i: number; k: number; how: 'drop' | 'duplicate' | 'empty'; resync: boolean }
  | { t: 'hashes'; i: number; k: number; how: 'flip' | 'swap' | 'cut'; resync: boolean }
  // The metadata's segment list.
  | { t: 'segName'; i: number; k: number; j: number; how: 'ownOther' | 'otherBackup' | 'escape' | 'missing'; resync: boolean }
  | { t: 'segList'; i: number; k: number; how: 'duplicate' | 'reverse' | 'beyondSize'; resync: boolean }
  | { t: 'borrow'; i: number; j: number; what: 'segments' | 'entries' | 'all'; resync: boolean }
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
  fc.record({ t: fc.constant('hashes' as const), i: idx, k: idx, how: fc.constantFrom('flip', 'swap', 'cut'), resync: fc.boolean() }),
  fc.record({ t: fc.constant('segName' as const), i: idx, k: idx, j: idx, how: fc.constantFrom('ownOther', 'otherBackup', 'escape', 'missing'), resync: fc.boolean() }),
  fc.record({ t: fc.constant('segList' as const), i: idx, k: idx, how: fc.constantFrom('duplicate', 'reverse', 'beyondSize'), resync: fc.boolean() }),
  fc.record({ t: fc.constant('borrow' as const), i: idx, j: idx, what: fc.constantFrom('segments', 'entries', 'all'), resync: fc.boolean() }),
  fc.record({ t: fc.constant('zeros' as const), i: idx, how: fc.constantFrom('addFirstBlock', 'clear'), resync: fc.boolean() }),
);

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

type Json = any;

/** A segment object being edited: its JSON, and per chunk entry the hashes that follow it. */
interface WorkingSegment {
  json: Json;
  hashes: Buffer[];
  /** Recompute its digest and length in the metadata (a crafted repository). */
  fix: boolean;
}

interface Working {
  record: Json;
  /** Where the record is written (relative to the repository). */
  file: string;
  removed: boolean;
  metadata: Json;
  /** By segment index. */
  segments: Map<number, WorkingSegment>;
  resync: boolean;
}

/** A segment object's plain bytes split into its JSON and each entry's hashes (docs/format.md). */
export function decodeSegmentFile(data: Buffer, metadata: Json): { json: Json; hashes: Buffer[] } {
  const end = 4 + data.readUInt32BE(0);
  const json = JSON.parse(data.subarray(4, end).toString('utf8'));
  const { blockSize, chunkSize, size } = metadata;
  const hashes: Buffer[] = [];
  let at = end;
  for (const entry of json.chunks) {
    const blocks = Math.ceil((Math.min(chunkSize, size - entry.chunk * chunkSize)) / blockSize);
    const zeros = (entry.zeroExtents as [number, number][]).reduce((n, [, length]) => n + Math.ceil(length / blockSize), 0);
    hashes.push(Buffer.from(data.subarray(at, at + (blocks - zeros) * 32)));
    at += (blocks - zeros) * 32;
  }
  return { json, hashes };
}

export function encodeSegmentFile(segment: { json: Json; hashes: Buffer[] }): Buffer {
  const text = Buffer.from(JSON.stringify(segment.json));
  const head = Buffer.alloc(4);
  head.writeUInt32BE(text.length);
  return Buffer.concat([head, text, ...segment.hashes]);
}

/** The chunk entries of a backup's segments, in order, with the segment holding each. */
function entriesOf(w: Working): { seg: WorkingSegment; pos: number; entry: Json }[] {
  const out: { seg: WorkingSegment; pos: number; entry: Json }[] = [];
  for (const index of [...w.segments.keys()].sort((a, b) => a - b)) {
    const seg = w.segments.get(index)!;
    (seg.json.chunks as Json[]).forEach((entry, pos) => out.push({ seg, pos, entry }));
  }
  return out;
}

/** Descendants of backup `id` in the base repository (children, grandchildren, …). */
export function descendantsOf(base: BaseBackup[], id: string): BaseBackup[] {
  const out: BaseBackup[] = [];
  const walk = (parent: string) => {
    for (const b of base) {
      if (b.parentId !== parent || out.includes(b)) continue;
      out.push(b);
      walk(b.id);
    }
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
  // Entries with a data object (what v1 listed as objects); an entry edit marks its segment for a fix-up.
  const stored = entriesOf(w).filter((e) => e.entry.object);
  const k = 'k' in edit && stored.length ? edit.k % stored.length : 0;
  const touch = (seg: WorkingSegment, resync: boolean) => {
    if (!resync) return;
    seg.fix = true;
    w.resync = true;
  };
  const refs: Json[] = w.metadata.segments ?? [];
  const r = 'k' in edit && refs.length ? edit.k % refs.length : 0;
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
      if (edit.how === 'replaceOther') {
        w.file = other.recordFile;
        work[base.indexOf(other)].removed = true;
      }
      if (edit.sync) {
        syncMeta('backupId', w.record.id);
        syncMeta('volumeId', w.record.volumeId);
      }
      break;
    case 'sha':
      w.record.metadataSha256 = edit.how === 'random' ? sha256Hex(randomUUID()) : edit.how === 'none' ? null : work[base.indexOf(other)].record.metadataSha256;
      w.resync = false;
      break;
    case 'objName': {
      if (!stored.length) break;
      const theirs = entriesOf(work[base.indexOf(other)]).filter((e) => e.entry.object);
      const names: Record<typeof edit.how, string> = {
        ownOther: stored[(k + 1) % stored.length].entry.object.name,
        otherBackup: theirs.length ? theirs[k % theirs.length].entry.object.name : other.metadataFile,
        escape: `../../${stored[k].entry.object.name}`,
        missing: `${b.objectPrefix}-99999`,
      };
      stored[k].entry.object.name = names[edit.how];
      touch(stored[k].seg, edit.resync);
      break;
    }
    case 'extent': {
      if (!stored.length) break;
      const extents: [number, number][] = stored[k].entry.object.extents;
      const bs: number = w.metadata.blockSize;
      const e = extents[0];
      if (edit.how === 'shiftBlock') e[0] += bs;
      if (edit.how === 'grow') e[1] += bs;
      if (edit.how === 'shrink') e[1] = Math.max(1, e[1] - bs);
      if (edit.how === 'beyondSize') e[0] = w.metadata.size;
      if (edit.how === 'overlapPrevious') e[0] = Math.max(0, e[0] - bs);
      touch(stored[k].seg, edit.resync);
      break;
    }
    case 'objLength': {
      if (!stored.length) break;
      const o = stored[k].entry.object;
      o.length = edit.how === 'plus1' ? o.length + 1 : edit.how === 'minus1' ? Math.max(0, o.length - 1) : 0;
      touch(stored[k].seg, edit.resync);
      break;
    }
    case 'objList':
      // Format 1 dropped objects from the metadata's list: here an entry loses its data object (its zero
      // map and hashes stay), or an entry is listed twice, or every entry loses its object.
      if (edit.how === 'drop' && stored.length) {
        stored[k].entry.object = null;
        touch(stored[k].seg, edit.resync);
      }
      if (edit.how === 'duplicate' && stored.length) {
        const { seg, pos } = stored[k];
        seg.json.chunks.splice(pos, 0, structuredClone(seg.json.chunks[pos]));
        seg.hashes.splice(pos, 0, Buffer.from(seg.hashes[pos]));
        touch(seg, edit.resync);
      }
      if (edit.how === 'empty') {
        for (const e of stored) {
          e.entry.object = null;
          touch(e.seg, edit.resync);
        }
      }
      break;
    case 'hashes': {
      const all = entriesOf(w).filter((e) => e.seg.hashes[e.pos].length > 0);
      if (!all.length) break;
      const { seg, pos } = all[('k' in edit ? edit.k : 0) % all.length];
      const h = seg.hashes[pos];
      if (edit.how === 'flip') h[h.length - 1] ^= 0x01;
      if (edit.how === 'swap' && h.length >= 64) Buffer.concat([h.subarray(32, 64), h.subarray(0, 32)]).copy(h);
      if (edit.how === 'swap' && h.length < 64) h.fill(0);
      if (edit.how === 'cut') seg.hashes[pos] = h.subarray(0, h.length - 32);
      touch(seg, edit.resync);
      break;
    }
    case 'segName': {
      if (!refs.length) break;
      const theirs: Json[] = work[base.indexOf(other)].metadata.segments ?? [];
      const names: Record<typeof edit.how, string> = {
        ownOther: refs[(r + 1) % refs.length].name,
        otherBackup: theirs.length ? theirs[r % theirs.length].name : other.metadataFile,
        escape: `../../${refs[r].name}`,
        missing: `${b.objectPrefix}_segment-999999`,
      };
      refs[r].name = names[edit.how];
      w.resync ||= edit.resync;
      break;
    }
    case 'segList':
      if (!refs.length) break;
      if (edit.how === 'duplicate') refs.splice(r, 0, structuredClone(refs[r]));
      if (edit.how === 'reverse') refs.reverse();
      if (edit.how === 'beyondSize') refs[r].index = Math.ceil(w.metadata.size / w.metadata.chunkSize / w.metadata.segmentChunks);
      w.resync ||= edit.resync;
      break;
    case 'borrow': {
      // The other backup's segment list (its objects' names), and/or its entries and hashes in this backup's segment objects.
      const from = work[base.indexOf(other)];
      if (edit.what !== 'entries') w.metadata.segments = structuredClone(from.metadata.segments);
      if (edit.what !== 'segments') {
        for (const [index, seg] of w.segments) {
          const theirs = from.segments.get(index);
          if (!theirs) continue;
          seg.json.chunks = structuredClone(theirs.json.chunks);
          seg.hashes = theirs.hashes.map((h) => Buffer.from(h));
          touch(seg, edit.resync);
        }
      }
      w.resync ||= edit.resync;
      break;
    }
    case 'zeros': {
      // A zero map edited, its hashes left as they are.
      const all = entriesOf(w);
      if (edit.how === 'clear') {
        for (const e of all) {
          e.entry.zeroExtents = [];
          touch(e.seg, edit.resync);
        }
      }
      if (edit.how === 'addFirstBlock' && all.length) {
        const e = all[0];
        e.entry.zeroExtents = [[e.entry.chunk * w.metadata.chunkSize, w.metadata.blockSize], ...e.entry.zeroExtents];
        touch(e.seg, edit.resync);
      }
      break;
    }
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
    const parsed = JSON.parse(metadata.toString());
    const segments = new Map<number, WorkingSegment>();
    for (const [index, file] of b.segmentFiles) {
      const bytes = await fs.readFile(path.join(repoDir, file));
      original.set(file, bytes);
      segments.set(index, { ...decodeSegmentFile(bytes, parsed), fix: false });
    }
    work.push({ record: JSON.parse(record.toString()), file: b.recordFile, removed: false, metadata: parsed, segments, resync: false });
  }
  for (const edit of edits) applyOne(edit, base, work);

  // Segments first, then the metadata that names them (at its original place), then the records.
  // Only what an edit changed is rewritten (the engine writes records pretty-printed).
  for (const [n, w] of work.entries()) {
    for (const [index, seg] of w.segments) {
      const file = base[n].segmentFiles.get(index)!;
      const bytes = encodeSegmentFile(seg);
      if (!bytes.equals(original.get(file)!)) await fs.writeFile(path.join(repoDir, file), bytes);
      if (!seg.fix) continue;
      for (const ref of w.metadata.segments ?? []) {
        if (ref.name !== file) continue;
        ref.sha256 = sha256Hex(bytes);
        ref.length = bytes.length;
      }
    }
  }
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
    for (const file of [b.recordFile, b.metadataFile, ...b.segmentFiles.values()]) {
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
