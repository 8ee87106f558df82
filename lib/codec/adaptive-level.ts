/**
 * zstd's `--adapt`, for the chunks of one backup: zstd level 1 (the default) while the workers keep up
 * with the disk or the network, its fast level -5 (about lz4's ratio and speed) while every worker is
 * already busy when a chunk is ready, i.e. while the CPU, not I/O, sets the pace. A backup from a
 * cached or fast disk on few cores then finishes sooner; one limited by its disk or its network keeps
 * level 1 and stores less. Only when no level was asked for: an explicit level is used as given.
 *
 * Measured on the 1 GiB bench image (2 cores, whole CLI runs): level 1 1.72 s and 533 MB stored, -5
 * 1.58 s and 634 MB (borg's lz4: 627 MB); levels -1 to -3 were no faster than 1 there.
 */
export const ADAPTIVE_LEVELS = { normal: 1, fast: -5 } as const;

/** Chunks in a row that must see busy (or idle) workers before the level changes: no flapping. */
const STREAK = 3;

export class AdaptiveLevel {
  private fast = false;
  private streak = 0;
  /** Chunks packed at the fast level (for the backup's log line). */
  fastChunks = 0;

  /** The level for the next chunk, given whether every worker was busy when it was ready. */
  next(everyWorkerBusy: boolean): number {
    if (everyWorkerBusy !== this.fast) {
      this.streak++;
      if (this.streak >= STREAK) {
        this.fast = everyWorkerBusy;
        this.streak = 0;
      }
    } else this.streak = 0;
    if (this.fast) this.fastChunks++;
    return this.fast ? ADAPTIVE_LEVELS.fast : ADAPTIVE_LEVELS.normal;
  }
}
