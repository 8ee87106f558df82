/**
 * Where a sparse regular file holds data: lseek(SEEK_DATA / SEEK_HOLE), through the optional fs-ext
 * addon (Node's fs has no lseek). A backup then neither reads nor hashes the holes of a disk image:
 * they are zeros. Where that cannot be asked (another OS, the addon not built or built for another
 * Node, a file system that refuses the call) the answer is "unknown": the caller reads everything and
 * its zero detection finds the zeros, as it does for block devices.
 */

type SeekCallback = (err: NodeJS.ErrnoException | null, position: number) => void;
type Seek = (fd: number, offset: number, whence: number, callback: SeekCallback) => void;

// Linux's values (macOS swaps them): the only platform this is used on.
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
/**
 * At most this many data ranges per window; past it the rest of the window is read as data. Bounds the
 * seeks of a badly fragmented image (reading a hole only costs zeros, which zero detection handles).
 */
const MAX_RANGES = 16;

let seekFn: Seek | null | undefined;

function loadSeek(): Seek | null {
  if (seekFn !== undefined) return seekFn;
  seekFn = null;
  if (process.platform === 'linux') {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- an optional native dependency that may be absent or unbuilt: loaded inside a try
      const ext = require('fs-ext') as { seek?: Seek };
      if (typeof ext.seek === 'function') seekFn = ext.seek;
    } catch {
      // Not installed, not built, or built for another Node version: read everything.
    }
  }
  return seekFn;
}

/** VOLUME_BACKUP_SPARSE=off (or 0, false, no) reads holes like data: for file systems that answer wrongly. */
export function sparseReadsEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.VOLUME_BACKUP_SPARSE?.trim().toLowerCase();
  return !(v === 'off' || v === '0' || v === 'false' || v === 'no');
}

export type Range = [start: number, end: number];

/** The data ranges of one open regular file of `size` bytes (which must not change meanwhile). */
export class DataRanges {
  /** A range known to hold no data: windows inside it need no seek (an image is mostly one big hole). */
  private hole: Range = [0, 0];
  private unsupported = false;

  private constructor(private readonly fd: number, private readonly size: number, private readonly seek: Seek) {}

  /** For an open regular file, or null where holes cannot be found here (then read everything). */
  static open(fd: number, size: number): DataRanges | null {
    const seek = loadSeek();
    return seek ? new DataRanges(fd, size, seek) : null;
  }

  /**
   * The data ranges within [start, end), in order and clipped to it (empty: all hole), or null when the
   * file system cannot tell (read the whole window).
   */
  async within(start: number, end: number): Promise<Range[] | null> {
    if (this.unsupported) return null;
    const out: Range[] = [];
    let pos = start;
    try {
      while (pos < end) {
        if (pos >= this.hole[0] && pos < this.hole[1]) {
          pos = this.hole[1];
          continue;
        }
        if (out.length === MAX_RANGES) {
          out.push([pos, end]);
          break;
        }
        const data = await this.seekTo(pos, SEEK_DATA);
        if (data > pos) this.hole = [pos, data];
        if (data >= end) break;
        const hole = await this.seekTo(data, SEEK_HOLE);
        if (hole <= data) throw new Error(`SEEK_HOLE from ${data} answered ${hole}`);
        out.push([data, Math.min(hole, end)]);
        pos = hole;
      }
    } catch {
      // EINVAL/ENOTSUP/ENOSYS (a file system or kernel without it) or a nonsensical answer.
      this.unsupported = true;
      return null;
    }
    return out;
  }

  /** lseek; ENXIO (no data, or no hole, from `offset` to the end) answers the file's end. */
  private seekTo(offset: number, whence: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.seek(this.fd, offset, whence, (err, position) => {
        if (err?.code === 'ENXIO') resolve(this.size);
        else if (err) reject(err);
        else if (!Number.isSafeInteger(position) || position < offset) reject(new Error(`lseek from ${offset} answered ${position}`));
        else resolve(Math.min(position, this.size));
      });
    });
  }
}

/**
 * Data ranges widened to whole blocks (blocks start at multiples of `blockSize` from the volume's
 * start), clipped to [start, end) and merged: a block is a hole only if all of it is.
 */
export function blockAligned(ranges: readonly Range[], blockSize: number, start: number, end: number): Range[] {
  const out: Range[] = [];
  for (const [from, to] of ranges) {
    const a = Math.max(start, Math.floor(from / blockSize) * blockSize);
    const b = Math.min(end, Math.ceil(to / blockSize) * blockSize);
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}
