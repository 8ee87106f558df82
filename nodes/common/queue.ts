/**
 * A node's bounded work queue: one operation runs at a time, at most `capacity` more wait. Closing the
 * node aborts the running operation (its signal fires so the engine can clean up), refuses the waiting
 * ones, and resolves once the running one has finished.
 */
import { VolumeBackupError } from '../../lib/errors';

export interface QueuedJob {
  /** Runs the operation; must not reject (report errors itself). */
  run(signal: AbortSignal): Promise<void>;
  /** Called instead of `run` when the job is dropped before it started. */
  cancel(err: Error): void;
}

export class BoundedQueue {
  private readonly waiting: QueuedJob[] = [];
  private running: Promise<void> | null = null;
  private controller: AbortController | null = null;
  private closed = false;

  constructor(
    readonly capacity: number,
    private readonly onChange: () => void = () => {},
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 0) throw new Error(`the queue size must be a whole number ≥ 0, not ${capacity}`);
  }

  get waitingCount(): number {
    return this.waiting.length;
  }

  get busy(): boolean {
    return this.running !== null;
  }

  /** Start or queue a job. Throws a clear error when the queue is full or closed. */
  push(job: QueuedJob): void {
    if (this.closed) throw new VolumeBackupError('CANCELLED', 'the node is stopping (redeploy or shutdown); the message was not processed');
    if (this.running && this.waiting.length >= this.capacity) {
      throw new VolumeBackupError(
        'BUSY',
        `the node is busy and its queue is full (${this.capacity} waiting): the message was dropped; raise "Queue size" or send fewer messages`,
        { capacity: this.capacity },
      );
    }
    this.waiting.push(job);
    this.pump();
  }

  /** Abort the running job, refuse the waiting ones, and wait for the running job to finish. */
  async close(reason = 'the node was stopped (redeploy or shutdown)'): Promise<void> {
    this.closed = true;
    const dropped = this.waiting.splice(0);
    for (const job of dropped) job.cancel(new VolumeBackupError('CANCELLED', `cancelled: ${reason}`));
    this.controller?.abort(new VolumeBackupError('CANCELLED', `cancelled: ${reason}`));
    await this.running;
  }

  private pump(): void {
    if (this.running || this.closed) {
      this.onChange();
      return;
    }
    const job = this.waiting.shift();
    if (!job) {
      this.onChange();
      return;
    }
    const controller = new AbortController();
    this.controller = controller;
    this.running = (async () => {
      try {
        await job.run(controller.signal);
      } catch {
        // Jobs report their own errors; this only keeps the queue moving.
      }
    })().finally(() => {
      this.running = null;
      this.controller = null;
      this.pump();
    });
    this.onChange();
  }
}
