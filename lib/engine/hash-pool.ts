/**
 * A process-wide pool of hashing threads (piscina: a well-kept worker pool; it queues tasks and moves
 * its threads). Chunks live in SharedArrayBuffers that the workers read in place.
 */
import * as os from 'os';
import * as path from 'path';
import type Piscina from 'piscina';
import type { Md5Task, PackResult, PackTask, UnpackResult, UnpackTask, VerifyResult, VerifyTask } from './hash-worker';
import { offloadMd5To } from '../drivers/md5-thread';

let pool: Piscina | null = null;
/** Tasks given to the pool and not finished yet (running or queued). */
let tasksInFlight = 0;

function workerThreads(): number {
  return Math.max(1, os.availableParallelism());
}

function getPool(): Piscina {
  // piscina loads with the first task, not with every module that can close the pool (the CLI).
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- piscina loads with the first task
  const Pool = (require('piscina') as { Piscina: typeof Piscina }).Piscina;
  pool ??= new Pool({
    filename: path.join(__dirname, 'hash-worker.js'),
    maxThreads: workerThreads(),
    minThreads: 0,
    idleTimeout: 2000,
  });
  return pool;
}

/**
 * Start every thread now (each loads the worker module and zstd: tens of milliseconds), so that they
 * are ready by the time the first chunk is: call it before reading records and metadata.
 */
export function warmHashPool(): void {
  const p = getPool();
  for (let k = 0; k < p.options.maxThreads; k++) p.run({ kind: 'warm' }).catch(() => undefined);
}

async function runTask(task: PackTask | UnpackTask | VerifyTask | Md5Task): Promise<unknown> {
  tasksInFlight++;
  try {
    return await getPool().run(task);
  } finally {
    tasksInFlight--;
  }
}

/** Whether a task given now would wait: every thread has one already (the CPU, not I/O, sets the pace). */
export function everyWorkerBusy(): boolean {
  return tasksInFlight >= workerThreads();
}

/** The backup step of a chunk (hash, zero-detect, compare with the parent, pack, compress, digest). */
export async function packChunk(task: Omit<PackTask, 'kind'>): Promise<PackResult & { hashes: Buffer }> {
  const r = (await runTask({ ...task, kind: 'pack' })) as PackResult;
  return { ...r, hashes: Buffer.from(r.hashes.buffer, r.hashes.byteOffset, r.hashes.byteLength) };
}

/** The restore step of an object (digest check, decompress, copy blocks into the chunk). */
export async function unpackObject(task: Omit<UnpackTask, 'kind'>): Promise<UnpackResult> {
  return (await runTask({ ...task, kind: 'unpack' })) as UnpackResult;
}

/** The restore's check of a chunk rebuilt without a worker: the first data block that does not match, or -1. */
export async function verifyChunk(task: Omit<VerifyTask, 'kind'>): Promise<number> {
  return ((await runTask({ ...task, kind: 'verify' })) as VerifyResult).badBlock;
}

/**
 * The MD5 an object store's driver checks each GET body against runs on these threads while they are
 * up (a restore's), instead of on a thread of its own: one V8 isolate fewer (a restore from RGW peaked
 * ~6 MiB lower; it had peaked at 242 MiB against the 200 MiB asked of every operation).
 */
export async function md5OnPool(data: Uint8Array): Promise<string | null> {
  return pool ? ((await runTask({ kind: 'md5', data })) as string) : null;
}
offloadMd5To(md5OnPool);

/** Stop the threads (the CLI calls this before exiting; an idle pool also winds down by itself). */
export async function closeHashPool(): Promise<void> {
  const p = pool;
  pool = null;
  await p?.destroy();
}
