/**
 * Bounded concurrency and waiting, in one place: the repository's record reads, prune's and verify's
 * fan-outs, the chunk loops of backup and restore, multipart parts and retry back-off all use these.
 */
import { cancelled } from '../errors';

/**
 * Run fn over items with at most `limit` at once. After the first failure no new item starts, the
 * others are told to stop (the signal fn gets), and the promise rejects only once all started work has
 * settled: a caller that cleans up after a failure (removes a failed backup's objects, aborts a
 * multipart upload) must not race calls that are still writing.
 */
export async function runBounded<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number, signal: AbortSignal) => Promise<R>, outer?: AbortSignal): Promise<R[]> {
  const stop = new AbortController();
  const signal = outer ? AbortSignal.any([outer, stop.signal]) : stop.signal;
  const results: R[] = new Array(items.length);
  let next = 0;
  let failure: { err: unknown } | null = null;
  const worker = async () => {
    while (!failure && !signal.aborted && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i], i, signal);
      } catch (err) {
        if (!failure) failure = { err };
        stop.abort(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw (failure as { err: unknown }).err;
  if (outer?.aborted) throw outer.reason;
  return results;
}

/** runBounded for work that takes no signal. */
export function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  return runBounded(items, limit, (item, index) => fn(item, index));
}

/**
 * The chunk loop of backups and restores: each slot (a set of buffers) takes chunk indexes 0..count-1
 * in turn. On the first failure the other slots take no new chunk, and it is thrown once they stopped.
 */
export async function forEachChunk<S>(slots: readonly S[], count: number, fn: (slot: S, chunk: number) => Promise<void>): Promise<void> {
  let next = 0;
  await mapLimit(slots, slots.length, async (slot) => {
    let sinceTurn = 0;
    for (let i = next++; i < count; i = next++) {
      try {
        await fn(slot, i);
      } catch (err) {
        next = count;
        throw err;
      }
      // A chunk of a sparse volume's hole needs no I/O: it resolves in microtasks only, and millions in a
      // row (16 TiB) would starve the event loop for a minute: no lease renewal, Ctrl-C or cancel.
      if (++sinceTurn === CHUNKS_PER_TURN) {
        sinceTurn = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  });
}

/** Chunks a slot does before it lets the event loop turn (timers, I/O callbacks, signals). */
const CHUNKS_PER_TURN = 64;

/** Wait `ms`; with a signal, stop waiting (CANCELLED) when it fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (!signal) return new Promise((resolve) => setTimeout(resolve, ms));
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(cancelled(signal.reason));
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelled(signal.reason));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
