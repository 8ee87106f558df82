/**
 * MD5 of large bodies off the event loop: one worker thread, started when first needed, that hashes what
 * it is sent. A restore reads every object through the driver, and checking each GET body against its
 * MD5 ETag on the main thread would take the time the event loop needs for the sockets (about 7 ms per
 * 4 MiB). Small bodies are hashed in place: the message would cost more than the hash.
 */
import { Worker } from 'worker_threads';
import { md5 } from './object-store-helpers';

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

/** The hex MD5 of `data`, computed off the event loop when it is large. */
export function md5Hex(data: Uint8Array): Promise<string> {
  if (data.length < IN_PLACE_BELOW) return Promise.resolve(md5(data).toString('hex'));
  const w = started();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.ref();
    // Shared memory (a restore's slot) is seen by the worker as it is: no copy; the caller leaves it
    // alone until the hash is back. Anything else is copied (the caller keeps its buffer): a view into a
    // larger buffer is cut out first, or the whole buffer would be copied.
    const whole = data.buffer instanceof SharedArrayBuffer || (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength);
    w.postMessage({ id, data: whole ? data : Uint8Array.prototype.slice.call(data) });
  });
}
