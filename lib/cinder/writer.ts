/**
 * Writing one backup in Cinder's posix layout, as chunkeddriver.backup() does: the image read an object
 * at a time, a SHA-256 per block; a full backup stores every object, an incremental one object per run
 * of blocks changed since the parent's list (never across an object boundary); each object compressed
 * unless that does not shrink it ("none"); then `_sha256file` and `_metadata` (JSON, sorted keys).
 */
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { syncZstd } from '../codec/compression';
import { VolumeBackupError, throwIfAborted } from '../errors';

export type CinderExportCompression = 'zlib' | 'zstd' | 'none';

export interface CinderBackupToWrite {
  /** The store's root (Cinder's backup_posix_path). */
  root: string;
  image: string;
  id: string;
  volumeId: string;
  name: string;
  description: string;
  createdAt: Date;
  /** An incremental on this parent (its hash list), or null for a full backup. */
  parent: { id: string; sha256s: string[] } | null;
  chunkSize: number;
  blockSize: number;
  compression: CinderExportCompression;
  signal?: AbortSignal;
}

export interface WrittenCinderBackup {
  container: string;
  prefix: string;
  objectCount: number;
  sha256s: string[];
  size: number;
}

/** Cinder's posix container of a backup: <id[0:2]>/<id[2:4]>/<id>. */
export function posixContainer(id: string): string {
  return path.posix.join(id.slice(0, 2), id.slice(2, 4), id);
}

/** Cinder's posix object prefix: volume_<v>_<YYYYmmddHHMMSS>_backup_<id>. */
export function posixPrefix(volumeId: string, createdAt: Date, id: string): string {
  const ts = createdAt.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `volume_${volumeId}_${ts}_backup_${id}`;
}

/** Python's str() of an aware UTC datetime, as Cinder writes created_at into its sidecars. */
export function pythonTime(d: Date): string {
  const iso = d.toISOString(); // 2026-11-28T11:53:24.043Z
  const ms = d.getUTCMilliseconds();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${ms ? `.${String(ms * 1000).padStart(6, '0')}` : ''}+00:00`;
}

/** JSON as Python's json.dumps(sort_keys=True, indent=2) writes it (non-ASCII escaped). */
export function pythonJson(value: unknown): Buffer {
  const sortKeys = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sortKeys) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])])) : v;
  const text = JSON.stringify(sortKeys(value), null, 2).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return Buffer.from(text, 'utf8');
}

async function compressFor(compression: CinderExportCompression, data: Buffer): Promise<{ algorithm: string; data: Buffer }> {
  if (compression === 'none') return { algorithm: 'none', data };
  let out: Buffer;
  if (compression === 'zlib') out = zlib.deflateSync(data, { level: 6 });
  else {
    // Python's zstd module refuses frames without the content size in their header: zstd-napi's one-shot
    // compression writes it (@mongodb-js/zstd's streaming frames do not).
    const z = syncZstd();
    if (!z) throw new VolumeBackupError('INVALID_ARGUMENT', 'zstd for Cinder needs the zstd-napi module, which is not built here: export with --compression zlib');
    const dst = Buffer.allocUnsafe(z.compressBound(data.length));
    out = dst.subarray(0, new z.CCtx().compress(dst, data, 3));
  }
  return out.length >= data.length ? { algorithm: 'none', data } : { algorithm: compression, data: out };
}

export async function writeCinderBackup(b: CinderBackupToWrite): Promise<WrittenCinderBackup> {
  if (b.chunkSize % b.blockSize !== 0) throw new VolumeBackupError('INVALID_ARGUMENT', `the object size ${b.chunkSize} is not a multiple of the block size ${b.blockSize}`);
  const container = posixContainer(b.id);
  const dir = path.join(b.root, container);
  const existing = await fs.readdir(dir).catch(() => [] as string[]);
  if (existing.length > 0) throw new VolumeBackupError('CONFLICT', `${dir} already holds ${existing.length} file(s): a Cinder backup ${b.id} is there already; export to another directory or remove it`);
  await fs.mkdir(dir, { recursive: true, mode: 0o770 });
  try {
    return await writeInto(b, dir, container);
  } catch (err) {
    // Half a backup must not look like one to Cinder (or to a second export): the directory was empty, and is again.
    await removeContainer(b.root, container);
    throw err;
  }
}

/** Remove a backup's container that an export made (and was empty before). */
export async function removeContainer(root: string, container: string): Promise<void> {
  await fs.rm(path.join(root, container), { recursive: true, force: true });
}

async function writeInto(b: CinderBackupToWrite, dir: string, container: string): Promise<WrittenCinderBackup> {
  const prefix = posixPrefix(b.volumeId, b.createdAt, b.id);
  const objects: Record<string, { offset: number; length: number; compression: string; md5: string }>[] = [];
  const sha256s: string[] = [];
  const writeObject = async (data: Buffer, offset: number): Promise<void> => {
    const name = `${prefix}-${String(objects.length + 1).padStart(5, '0')}`;
    const out = await compressFor(b.compression, data);
    await writeFile(path.join(dir, name), out.data);
    objects.push({ [name]: { offset, length: data.length, compression: out.algorithm, md5: createHash('md5').update(data).digest('hex') } });
  };
  const handle = await fs.open(b.image, 'r');
  let size = 0;
  try {
    const buf = Buffer.alloc(b.chunkSize);
    for (let offset = 0; ; offset += b.chunkSize) {
      throwIfAborted(b.signal);
      const { bytesRead } = await handle.read(buf, 0, b.chunkSize, offset);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      size = offset + bytesRead;
      const first = sha256s.length;
      for (let o = 0; o < bytesRead; o += b.blockSize) sha256s.push(createHash('sha256').update(chunk.subarray(o, o + b.blockSize)).digest('hex'));
      if (!b.parent) {
        await writeObject(Buffer.from(chunk), offset);
        continue;
      }
      // One object per run of blocks that differ from the parent's, inside this chunk.
      let runStart = -1;
      for (let i = first; i <= sha256s.length; i++) {
        const changed = i < sha256s.length && sha256s[i] !== b.parent.sha256s[i];
        if (changed && runStart < 0) runStart = i;
        if (!changed && runStart >= 0) {
          const from = (runStart - first) * b.blockSize;
          const to = Math.min(bytesRead, (i - first) * b.blockSize);
          await writeObject(Buffer.from(chunk.subarray(from, to)), offset + from);
          runStart = -1;
        }
      }
    }
  } finally {
    await handle.close();
  }
  if (b.parent && sha256s.length > b.parent.sha256s.length) throw new VolumeBackupError('INCOMPATIBLE_PARENT', `the volume of backup ${b.id} is larger than its parent ${b.parent.id}'s: Cinder refuses such an incremental; export it flattened`);
  const header = { backup_description: b.description, backup_id: b.id, backup_name: b.name, created_at: pythonTime(b.createdAt), volume_id: b.volumeId, version: '1.0.0' };
  await writeFile(path.join(dir, `${prefix}_sha256file`), pythonJson({ ...header, chunk_size: b.blockSize, sha256s }));
  await writeFile(path.join(dir, `${prefix}_metadata`), pythonJson({ ...header, objects, parent_id: b.parent?.id ?? null, volume_meta: null }));
  return { container, prefix, objectCount: objects.length, sha256s, size };
}

/** Written whole and flushed, 0660 as Cinder's posix driver makes its files. */
async function writeFile(file: string, data: Buffer): Promise<void> {
  const handle = await fs.open(file, 'wx', 0o660);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
