/**
 * A counting semaphore: at most `limit` operations run at once; the others wait in arrival order.
 * The driver-config node owns one, so every node that uses the same repository shares its limit.
 */
export class Limiter {
  private running = 0;
  private readonly waiting: { grant: () => void }[] = [];
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new Error(`the concurrency limit must be a whole number ≥ 1, not ${limit}`);
  }

  get active(): number {
    return this.running;
  }

  /** Whether an acquire now would have to wait. */
  get full(): boolean {
    return this.running >= this.limit || this.waiting.length > 0;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Wait for a slot; the returned function gives it back (call it exactly once). */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          this.running++;
          let released = false;
          resolve(() => {
            if (released) return;
            released = true;
            this.running--;
            this.next();
          });
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
      this.next();
    });
  }

  /**
   * Count an operation that is already running (one a re-created node took over after a deploy) without
   * waiting, even beyond the limit; the returned function gives the slot back.
   */
  occupy(): () => void {
    this.running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      this.next();
    };
  }

  /** Resolves when nothing runs any more. */
  idle(): Promise<void> {
    if (this.running === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private next(): void {
    while (this.running < this.limit && this.waiting.length > 0) this.waiting.shift()!.grant();
    if (this.running === 0 && this.waiting.length === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
