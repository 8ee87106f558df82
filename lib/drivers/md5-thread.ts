/**
 * MD5 of large bodies off the event loop: on the engine's hashing threads while they run (offloadMd5To),
 * else on one worker thread of its own, started when first needed, that hashes what it is sent. A
 * restore reads every object through the driver, and checking each GET body against its MD5 ETag on the
 * main thread would take the time the event loop needs for the sockets (about 7 ms per 4 MiB). Small
 * bodies are hashed in place: the message would cost more than the hash.
 */
// Nothing else of the drivers: the engine's hash pool registers itself here, and the CLI loads that pool
// (to close it) even for --help, which must not load the drivers' dependencies (zod).
import { createHash } from 'crypto';
import { Worker } from 'worker_threads';

/** Below this, hashing in place is cheaper than a message to the worker. */
const IN_PLACE_BELOW = 256 * 1024;

const WORKER_CODE = `
const { parentPort } = require('worker_threads');
const { createHash } = require('crypto');
parentPort.on('message', ({ id, data }) => {
  parentPort.postMessage({ id, hex: createHash('md5').update(data).digest('hex') });
});
`;

let worker: Worker | null = null;
let nextId = 0;
const pending = new Map<number, { resolve: (hex: string) => void; reject: (err: Error) => void }>();

function started(): Worker {
  if (worker) return worker;
  const w = new Worker(WORKER_CODE, { eval: true });
  w.on('message', ({ id, hex }: { id: number; hex: string }) => {
    const job = pending.get(id);
    pending.delete(id);
    // Only a job in flight keeps the process alive.
    if (pending.size === 0) w.unref();
    job?.resolve(hex);
  });
  const fail = (err: Error) => {
    worker = null;
    for (const job of pending.values()) job.reject(err);
    pending.clear();
  };
  w.on('error', fail);
  w.on('exit', (code) => fail(new Error(`the MD5 worker thread exited (${code})`)));
  w.unref();
  worker = w;
  return w;
}

/** Another pool of threads that hashes instead, while it is running (null: it is not); see offloadMd5To. */
let offload: ((data: Uint8Array) => Promise<string | null>) | null = null;

/**
 * Hash on `pool` (the engine's threads, during a backup or restore) when it is running, so that no
 * extra thread is started for it. The engine registers this; a driver used alone keeps its own thread.
 */
export function offloadMd5To(pool: ((data: Uint8Array) => Promise<string | null>) | null): void {
  offload = pool;
}

/** The hex MD5 of `data`, computed off the event loop when it is large. */
export async function md5Hex(data: Uint8Array): Promise<string> {
  if (data.length < IN_PLACE_BELOW) return createHash('md5').update(data).digest('hex');
  // Shared memory (a restore's slot) is seen by the other thread as it is: no copy; the caller leaves it
  // alone until the hash is back. Anything else is copied (the caller keeps its buffer): a view into a
  // larger buffer is cut out first, or the whole buffer would be copied.
  const whole = data.buffer instanceof SharedArrayBuffer || (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength);
  const message = whole ? data : (Uint8Array.prototype.slice.call(data) as Uint8Array);
  return (offload && (await offload(message))) || onOwnThread(message);
}

function onOwnThread(data: Uint8Array): Promise<string> {
  const w = started();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.ref();
    w.postMessage({ id, data });
  });
}
