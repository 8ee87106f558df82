/** Turns "chunk i of n done" into the progress events the CLI and the nodes show: rate and ETA included. */
import type { Operation, ProgressEvent, ProgressListener } from './types';

export class ProgressTracker {
  private readonly started = Date.now();
  private bytesDone = 0;
  private chunksDone = 0;

  constructor(
    private readonly listener: ProgressListener | undefined,
    private readonly base: { operation: Operation; backupId: string; volumeId: string; chunkCount: number; bytesTotal: number },
  ) {}

  start(): void {
    this.emit('start', -1);
  }

  chunk(chunkIndex: number, bytes: number): void {
    this.bytesDone += bytes;
    this.chunksDone++;
    this.emit('chunk', chunkIndex);
  }

  end(): void {
    this.emit('end', this.base.chunkCount - 1);
  }

  private emit(type: ProgressEvent['type'], chunkIndex: number): void {
    if (!this.listener) return;
    const seconds = (Date.now() - this.started) / 1000;
    const rate = seconds > 0 ? this.bytesDone / seconds : 0;
    const total = this.base.bytesTotal;
    const event: ProgressEvent = {
      type,
      ...this.base,
      chunkIndex,
      bytesDone: this.bytesDone,
      bytesTotal: total,
      percent: total > 0 ? Math.min(100, Math.round((this.bytesDone / total) * 1000) / 10) : 100,
      bytesPerSecond: Math.round(rate),
      etaSeconds: type === 'end' ? 0 : rate > 0 ? Math.round((total - this.bytesDone) / rate) : null,
    };
    try {
      this.listener(event);
    } catch {
      // A listener's bug must not break a backup.
    }
  }
}
