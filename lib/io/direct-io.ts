/**
 * Direct I/O (O_DIRECT): writes that go from our buffers to the device without passing through the
 * page cache. A restore or a backup writes gigabytes that nobody reads back soon; through the page
 * cache they would evict what the host needs, cost a copy each (on some virtual machines a slow one)
 * and pile up dirty pages for the final fsync. Cinder copies volumes with `dd oflag=direct` for the
 * same reasons, and borg drops what it wrote from the cache.
 *
 * O_DIRECT needs aligned addresses, offsets and lengths. Node offers no aligned allocation, but a
 * shared WebAssembly.Memory is page-aligned (V8 reserves it with mmap) and its buffer is an ordinary
 * SharedArrayBuffer that worker threads see in place. Alignment is an optimisation, never assumed for
 * correctness: where the kernel refuses a direct open or write (EINVAL), the caller writes buffered.
 */
import { constants as fsConstants, promises as fs } from 'fs';

/** What O_DIRECT needs of addresses, offsets and lengths: the largest logical block size in use. */
export const DIRECT_ALIGNMENT = 4096;

const WASM_PAGE = 64 * 1024;

/** The part of WebAssembly.Memory used here (the compiler's libraries here do not declare WebAssembly). */
type WasmMemory = new (descriptor: { initial: number; maximum: number; shared: true }) => { buffer: SharedArrayBuffer };

export interface SharedSlice {
  buffer: SharedArrayBuffer;
  offset: number;
}

/**
 * `count` slices of `bytes` each in one shared buffer. `aligned` says whether each slice starts on a
 * DIRECT_ALIGNMENT boundary (false when WebAssembly memory is unavailable, e.g. a virtual memory limit).
 */
export function allocateSharedSlices(count: number, bytes: number): { slices: SharedSlice[]; aligned: boolean } {
  const stride = Math.ceil(bytes / WASM_PAGE) * WASM_PAGE;
  const pages = (stride * count) / WASM_PAGE;
  try {
    const { Memory } = (globalThis as unknown as { WebAssembly: { Memory: WasmMemory } }).WebAssembly;
    const buffer = new Memory({ initial: pages, maximum: pages, shared: true }).buffer;
    return { slices: Array.from({ length: count }, (_, k) => ({ buffer, offset: k * stride })), aligned: true };
  } catch {
    return { slices: Array.from({ length: count }, () => ({ buffer: new SharedArrayBuffer(bytes), offset: 0 })), aligned: false };
  }
}

/** One page-aligned shared buffer of at least `bytes` (see allocateSharedSlices; `aligned` false where it could not be). */
export function allocateAlignedShared(bytes: number): { buffer: SharedArrayBuffer; aligned: boolean } {
  const { slices, aligned } = allocateSharedSlices(1, bytes);
  return { buffer: slices[0].buffer, aligned };
}

/**
 * Read the whole file `file` into `target` with O_DIRECT: `target` must start on an aligned address
 * (the caller says so) and have room for the size rounded up to DIRECT_ALIGNMENT. Returns the bytes
 * read, -1 when the file is larger than `target`, or null where direct I/O is refused (EINVAL: a file
 * system without it, memory that is not aligned after all): the caller then reads it the ordinary way.
 * Throws the open's error (ENOENT…) as fs.open would.
 */
export async function readFileDirect(file: string, target: Uint8Array): Promise<number | null> {
  const { O_DIRECT, O_RDONLY } = fsConstants;
  if (O_DIRECT === undefined || target.byteOffset % DIRECT_ALIGNMENT !== 0) return null;
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, O_RDONLY | O_DIRECT);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return null;
    throw err;
  }
  try {
    const { size } = await handle.stat();
    const padded = Math.ceil(size / DIRECT_ALIGNMENT) * DIRECT_ALIGNMENT;
    if (padded > target.length) return size > target.length ? -1 : null;
    let done = 0;
    while (done < size) {
      // A short read stops at an aligned offset (or the end of the file), so the next one stays aligned.
      const { bytesRead } = await handle.read(target, done, padded - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
      if (done < size && done % DIRECT_ALIGNMENT !== 0) return null;
    }
    return done;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return null;
    throw err;
  } finally {
    await handle.close();
  }
}

/** Open `file` for direct writes with these extra flags, or null where O_DIRECT is not available. */
export async function openDirect(file: string, flags = 0, mode?: number): Promise<fs.FileHandle | null> {
  const { O_DIRECT, O_WRONLY } = fsConstants;
  if (O_DIRECT === undefined) return null;
  return fs.open(file, O_WRONLY | O_DIRECT | flags, mode).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EINVAL') return null;
    throw err;
  });
}

/** Write all of `data` at `position` (a write may be short). */
export async function writeAllAt(handle: fs.FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * Write `data` as the new file `file` (created here, exclusively) with O_DIRECT, when `data` starts on
 * an aligned address (the caller says so) and its buffer extends to the next DIRECT_ALIGNMENT boundary:
 * the padded tail is written, then cut off. Returns the file's handle, still open so the caller can
 * fsync and close it without opening it again (each open, fsync and close is a trip through libuv's four
 * threads, which a changed-extent incremental writing hundreds of small objects keeps busy); or null,
 * having left nothing behind, where direct I/O is refused: the caller then writes the file the ordinary
 * way. The file is not yet fsynced.
 */
export async function writeNewFileDirect(file: string, data: Buffer, mode: number): Promise<fs.FileHandle | null> {
  const padded = Math.ceil(data.length / DIRECT_ALIGNMENT) * DIRECT_ALIGNMENT;
  if (padded === 0 || data.buffer.byteLength < data.byteOffset + padded) return null;
  const handle = await openDirect(file, fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
  if (!handle) {
    // Linux checks for O_DIRECT support after creating the file: remove what the refused open made.
    await fs.rm(file, { force: true });
    return null;
  }
  try {
    await writeAllAt(handle, new Uint8Array(data.buffer, data.byteOffset, padded), 0);
    if (padded !== data.length) await handle.truncate(data.length);
    return handle;
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.rm(file, { force: true });
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return null;
    throw err;
  }
}
