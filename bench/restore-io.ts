/**
 * The restore's I/O alone, as a limit to compare our restore with: every data object of a repository read
 * with O_DIRECT (4 at once, as a restore's slots do), while the data ranges of a restored image are written
 * with O_DIRECT to a new file (8 MiB at a time, 4 at once) and the file is fsynced at the end. Nothing is
 * decompressed, hashed or verified, and no repository code runs: what moving these bytes costs on this
 * disk, whatever does it. Prints {"seconds", "bytesRead", "bytesWritten"} as JSON.
 *
 * `node dist/bench/restore-io.js REPOSITORY RESTORED_IMAGE SCRATCH_FILE` (the scratch file is removed).
 */
import { constants as fsConstants, promises as fs } from 'fs';
import * as path from 'path';
import { allocateAlignedShared, openDirect, readFileDirect, writeAllAt } from '../lib/io/direct-io';
import { DataRanges, Range } from '../lib/io/sparse';
import { mapLimit } from '../lib/util/concurrency';
import { Pool } from '../lib/engine/pool';

const IN_FLIGHT = 4;
const WRITE_SIZE = 8 * 1024 * 1024;
/** Objects larger than this are not data objects of the default chunk size; they are read anyway, the ordinary way. */
const READ_BUFFER = 32 * 1024 * 1024;

/** Every file under `dir` except repository records, leases and the repository's own description. */
async function dataObjects(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await dataObjects(p)));
    else if (/-\d{5}$/.test(entry.name)) out.push(p);
  }
  return out;
}

/** The restored image's data ranges, window by window (a write never crosses an 8 MiB boundary). */
async function writesOf(image: string): Promise<{ size: number; writes: Range[] }> {
  const handle = await fs.open(image, 'r');
  try {
    const { size } = await handle.stat();
    const ranges = DataRanges.open(handle.fd, size);
    const writes: Range[] = [];
    for (let at = 0; at < size; at += WRITE_SIZE) {
      const end = Math.min(size, at + WRITE_SIZE);
      for (const [from, to] of (await ranges?.within(at, end)) ?? [[at, end] as Range]) writes.push([from - (from % 4096), to]);
    }
    return { size, writes };
  } finally {
    await handle.close();
  }
}

export async function restoreIo(repository: string, restored: string, scratch: string): Promise<{ seconds: number; bytesRead: number; bytesWritten: number }> {
  const objects = await dataObjects(repository);
  const { size, writes } = await writesOf(restored);
  await fs.rm(scratch, { force: true });
  const readBuffers = new Pool(Array.from({ length: IN_FLIGHT }, () => new Uint8Array(allocateAlignedShared(READ_BUFFER).buffer)));
  // What is written does not matter: the writes share one buffer.
  const written = new Uint8Array(allocateAlignedShared(WRITE_SIZE).buffer).fill(7);
  const started = process.hrtime.bigint();
  let bytesRead = 0;
  let bytesWritten = 0;
  const reading = mapLimit(objects, IN_FLIGHT, (file) => readBuffers.with(async (buffer) => {
    const n = await readFileDirect(file, buffer);
    bytesRead += n === null || n < 0 ? (await fs.readFile(file)).length : n;
  }));
  const writing = (async () => {
    const handle = (await openDirect(scratch, fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600)) ?? (await fs.open(scratch, 'wx'));
    try {
      await handle.truncate(size);
      await mapLimit(writes, IN_FLIGHT, async ([start, end]) => {
        const length = Math.ceil((end - start) / 4096) * 4096;
        await writeAllAt(handle, written.subarray(0, length), start);
        bytesWritten += end - start;
      });
      await handle.sync();
    } finally {
      await handle.close();
    }
  })();
  await Promise.all([reading, writing]);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await fs.rm(scratch, { force: true });
  return { seconds, bytesRead, bytesWritten };
}

if (require.main === module) {
  const [repository, restored, scratch] = process.argv.slice(2);
  restoreIo(repository, restored, scratch).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
