/**
 * Sources and targets: regular files (disk images) and block devices. Positioned reads and writes only,
 * so several chunks can be in flight; new targets are created sparse (zero ranges stay holes).
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { DataRanges, Range, blockAligned } from '../io/sparse';
import { VolumeBackupError, errorMessage, invalid } from '../errors';
import { DIRECT_ALIGNMENT, openDirect, writeAllAt } from '../io/direct-io';
import { writeFailure } from '../io/write-errors';
import { mapLimit } from '../util/concurrency';

export interface Volume {
  path: string;
  size: number;
  isBlockDevice: boolean;
  handle: fs.FileHandle;
  /** Where a sparse regular file has data (null: read everything; always for block devices). */
  dataRanges: DataRanges | null;
}

/** The sysfs directory of a block device by its device number (st_rdev / st_dev). */
export function sysfsBlockDir(rdev: number | bigint): string {
  const dev = BigInt(rdev);
  const major = Number((dev >> 8n) & 0xfffn);
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & 0xfff00n));
  return `/sys/dev/block/${major}:${minor}`;
}

/** Size of a block device, from sysfs (stat reports 0 for devices). */
async function blockDeviceSize(rdev: number, devicePath: string): Promise<number> {
  try {
    const sectors = (await fs.readFile(`${sysfsBlockDir(rdev)}/size`, 'utf8')).trim();
    return Number(sectors) * 512;
  } catch (err) {
    throw new VolumeBackupError('INVALID_ARGUMENT', `cannot read the size of block device ${devicePath}: ${errorMessage(err)}`);
  }
}

/** `sparse`: skip the holes of a regular file (SEEK_DATA/SEEK_HOLE) where the system can tell them. */
export async function openSource(volumePath: string, sparse = true): Promise<Volume> {
  if (typeof volumePath !== 'string' || volumePath.length === 0 || volumePath.includes('\0')) {
    throw invalid('the volume must be the path of a disk image or block device');
  }
  const abs = path.resolve(volumePath);
  let st;
  try {
    st = await fs.stat(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new VolumeBackupError('NOT_FOUND', `volume ${abs} does not exist: check the path`);
    if (code === 'EACCES') throw new VolumeBackupError('INVALID_ARGUMENT', `volume ${abs} is not readable: check its permissions`);
    throw new VolumeBackupError('INVALID_ARGUMENT', `cannot read volume ${shortPath(abs)}: ${code ?? errorMessage(err)}`);
  }
  if (!st.isFile() && !st.isBlockDevice()) throw invalid(`volume ${abs} is not a regular file or a block device`);
  const size = st.isBlockDevice() ? await blockDeviceSize(st.rdev, abs) : st.size;
  if (size === 0) throw invalid(`volume ${abs} is empty (0 bytes): there is nothing to back up`);
  let handle;
  try {
    handle = await fs.open(abs, 'r');
  } catch (err) {
    throw new VolumeBackupError('INVALID_ARGUMENT', `cannot open volume ${abs}: ${errorMessage(err)}`);
  }
  // Block devices keep plain reads: lseek(SEEK_DATA) means nothing to them.
  const dataRanges = sparse && st.isFile() ? DataRanges.open(handle.fd, size) : null;
  return { path: abs, size, isBlockDevice: st.isBlockDevice(), handle, dataRanges };
}

/**
 * Read the chunk at `position` into `target`, skipping the holes of a sparse file: whole blocks in a
 * hole are zero-filled, not read. Returns the bytes read; 0 when the chunk is all hole: then nothing was
 * read or written and `target` holds stale bytes (the caller knows every block is zero).
 */
export async function readChunk(volume: Volume, target: Buffer, length: number, position: number, blockSize: number): Promise<number> {
  const end = position + length;
  const data = volume.dataRanges ? await volume.dataRanges.within(position, end) : null;
  if (!data) {
    await readFully(volume, target, length, position);
    return length;
  }
  if (data.length === 0) return 0;
  let at = position;
  let read = 0;
  for (const [from, to] of blockAligned(data, blockSize, position, end)) {
    zeroFill(target, at - position, from - position);
    await readFully(volume, target.subarray(from - position), to - from, from);
    read += to - from;
    at = to;
  }
  zeroFill(target, at - position, length);
  return read;
}

/**
 * Read only `ranges` (block-aligned, within the chunk at `position`) into their places in `target`; the
 * other bytes of `target` are left as they are (the caller does not look at them). Returns the bytes read.
 */
export async function readRanges(volume: Volume, target: Buffer, position: number, ranges: readonly Range[]): Promise<number> {
  // Scattered small ranges of a cold volume wait on the device, not the CPU: several at once let it
  // (and a loop device's backing file) serve them together instead of one seek after another.
  await mapLimit(ranges, RANGE_READS_IN_FLIGHT, ([from, to]) => readFully(volume, target.subarray(from - position), to - from, from));
  return ranges.reduce((sum, [from, to]) => sum + (to - from), 0);
}

/** Range reads of one chunk at once (libuv's threads serve them; a changed-extent chunk has a few to hundreds). */
const RANGE_READS_IN_FLIGHT = 8;

const ZEROS = Buffer.alloc(1024 * 1024);

/**
 * Zero bytes [start, end) of `target` by copying from a zero buffer: fill() on memory of a
 * SharedArrayBuffer (our chunk slots) is ~15x slower than a copy (measured on Node 20).
 */
function zeroFill(target: Buffer, start: number, end: number): void {
  for (let at = start; at < end; at += ZEROS.length) target.set(ZEROS.subarray(0, Math.min(ZEROS.length, end - at)), at);
}

/**
 * After a backup that skipped holes: a file that shrank meanwhile is an error, as a short read would
 * have made it (past its new end, the holes were never read).
 */
export async function checkNotShrunk(volume: Volume): Promise<void> {
  if (!volume.dataRanges) return;
  const { size } = await volume.handle.stat();
  if (size < volume.size) throw new VolumeBackupError('INVALID_ARGUMENT', `volume ${volume.path} became shorter while it was read (${size} bytes, was ${volume.size})`);
}

/** Read exactly `length` bytes at `position` (short reads are retried; a shrunk source is an error). */
export async function readFully(volume: Volume, target: Buffer, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await volume.handle.read(target, done, length - done, position + done);
    if (bytesRead === 0) throw new VolumeBackupError('INVALID_ARGUMENT', `volume ${volume.path} became shorter while it was read (at byte ${position + done})`);
    done += bytesRead;
  }
}

export interface Target {
  path: string;
  handle: fs.FileHandle;
  /** True when we made the file: zero ranges can stay holes, and a failed restore removes it. */
  created: boolean;
  /** Set once a write to it began: a failed restore has changed what it held. */
  written?: boolean;
  isBlockDevice: boolean;
  /** Its size when opened (a new file: the backup's size). */
  sizeBefore: number;
  /**
   * The same file opened with O_DIRECT (null where the filesystem refuses it): aligned writes go
   * straight from our buffers to the device, as Cinder's volume copies do with `dd oflag=direct`. A
   * restore then neither fills the page cache with a whole volume (evicting what the host needs) nor
   * leaves gigabytes of dirty pages for the final fsync.
   */
  direct: fs.FileHandle | null;
}

export async function openTarget(targetPath: string, size: number): Promise<Target> {
  if (typeof targetPath !== 'string' || targetPath.length === 0 || targetPath.includes('\0')) {
    throw invalid('the restore target must be a file or block device path');
  }
  const abs = path.resolve(targetPath);
  const st = await fs.stat(abs).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw new VolumeBackupError('INVALID_ARGUMENT', `cannot use restore target ${shortPath(abs)}: ${err.code ?? errorMessage(err)}`);
  });
  if (!st) {
    let handle;
    try {
      handle = await fs.open(abs, 'wx', 0o640);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw invalid(`cannot create restore target ${abs}: its directory ${path.dirname(abs)} does not exist`);
      // A read-only or full file system, no permission: said as every failed write is (what, and what to do).
      const said = writeFailure(err, { kind: 'target', path: abs });
      throw said instanceof VolumeBackupError ? said : new VolumeBackupError('INVALID_ARGUMENT', `cannot create restore target ${abs}: ${errorMessage(err)}`);
    }
    await handle.truncate(size);
    return { path: abs, handle, created: true, isBlockDevice: false, sizeBefore: size, direct: await openDirect(abs).catch(() => null) };
  }
  if (!st.isFile() && !st.isBlockDevice()) throw invalid(`restore target ${abs} is not a regular file or a block device`);
  const existing = st.isBlockDevice() ? await blockDeviceSize(st.rdev, abs) : st.size;
  if (existing < size) {
    throw invalid(`restore target ${abs} holds ${existing} bytes but the backup needs ${size}: use a larger target or a new file`);
  }
  return { path: abs, handle: await fs.open(abs, 'r+'), created: false, isBlockDevice: st.isBlockDevice(), sizeBefore: existing, direct: await openDirect(abs).catch(() => null) };
}

/**
 * After every byte of a `size`-byte backup was written: a regular file that was larger ends at the
 * backup's size, so its bytes are the volume's and nothing of its old tail is left. Returns the bytes
 * past the end left as they were: those of a larger block device (which cannot be shortened), else 0.
 */
export async function endTargetAt(target: Target, size: number): Promise<number> {
  if (target.isBlockDevice) return target.sizeBefore - size;
  if (target.sizeBefore > size) await target.handle.truncate(size);
  return 0;
}

/** Close both handles of a target (the direct one first: its writes are complete when they return). */
export async function closeTarget(target: Target): Promise<void> {
  await target.direct?.close().catch(() => undefined);
  target.direct = null;
  await target.handle.close();
}

/**
 * Write `data` at `position`, through O_DIRECT when the target has it and the write is aligned
 * (`alignedMemory`: the caller knows `data` starts on a DIRECT_ALIGNMENT boundary). Returns whether it
 * went direct, i.e. left nothing in the page cache to flush. A refused direct write (EINVAL: a device
 * with larger sectors, memory that is not aligned after all) turns direct I/O off for this target.
 */
export async function writeAt(target: Target, data: Buffer, position: number, alignedMemory: boolean): Promise<boolean> {
  target.written = true;
  const direct = target.direct;
  if (direct && alignedMemory && position % DIRECT_ALIGNMENT === 0 && data.length % DIRECT_ALIGNMENT === 0) {
    try {
      await writeAllAt(direct, data, position);
      return true;
    } catch (err) {
      // Another chunk's write may have turned direct I/O off (and closed the handle) meanwhile.
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL' && target.direct === direct) throw writeFailure(err, { kind: 'target', path: target.path });
      if (target.direct === direct) {
        target.direct = null;
        await direct.close().catch(() => undefined);
      }
    }
  }
  await writeAllAt(target.handle, data, position).catch((err) => {
    throw writeFailure(err, { kind: 'target', path: target.path });
  });
  return false;
}

/** Flush the target to its disk (`dataOnly`: fdatasync); a full disk shows here too. */
export async function syncTarget(target: Target, dataOnly = false): Promise<void> {
  await (dataOnly ? target.handle.datasync() : target.handle.sync()).catch((err) => {
    throw writeFailure(err, { kind: 'target', path: target.path });
  });
}

/** A path for a message: hostile input can be 100 000 characters long. */
export function shortPath(p: string): string {
  return p.length <= 300 ? p : `${p.slice(0, 200)}…${p.slice(-60)} (${p.length} characters)`;
}
