/**
 * A fixed set of reusable things (buffers) handed out first come, first served: a task waits for one
 * instead of allocating its own, so memory stays what the set holds.
 */
export class Pool<T> {
  private readonly free: T[];
  private readonly waiting: ((item: T) => void)[] = [];

  constructor(items: T[]) {
    this.free = [...items];
  }

  take(): Promise<T> {
    const item = this.free.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  give(item: T): void {
    const next = this.waiting.shift();
    if (next) next(item);
    else this.free.push(item);
  }

  /** take(), run `fn` with the item, give it back whatever happens. */
  async with<R>(fn: (item: T) => Promise<R>): Promise<R> {
    const item = await this.take();
    try {
      return await fn(item);
    } finally {
      this.give(item);
    }
  }
}
