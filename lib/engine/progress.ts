/**
 * Turns "chunk i is done" into the progress events the CLI and the nodes show. Chunks finish in any
 * order (several are in flight), so what reads forward is `chunksDone` of `chunkCount` and a percent
 * that never goes back; `chunkIndex` still says which chunk this event is about.
 */
import type { Operation, ProgressEvent, ProgressListener } from './types';

export interface ProgressBase {
  operation: Operation;
  backupId: string;
  volumeId: string;
  /** The snapshot the backup was taken from, when there was one. */
  snapshotId: string | null;
  chunkCount: number;
  bytesTotal: number;
}

export class ProgressTracker {
  private readonly started = Date.now();
  private bytesDone = 0;
  private chunksDone = 0;
  private percent = 0;

  constructor(
    private readonly listener: ProgressListener | undefined,
    private readonly base: ProgressBase,
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
    const exact = total > 0 ? Math.min(100, Math.round((this.bytesDone / total) * 1000) / 10) : type === 'start' ? 0 : 100;
    this.percent = Math.max(this.percent, type === 'end' ? 100 : exact);
    const event: ProgressEvent = {
      type,
      ...this.base,
      chunkIndex,
      chunksDone: this.chunksDone,
      bytesDone: this.bytesDone,
      bytesTotal: total,
      percent: this.percent,
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
