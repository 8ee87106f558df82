/** Restore (or verify) a backup of a Cinder store into a file or block device, every block checked. */
import { promises as fs } from 'fs';
import { VolumeBackupError, cancelled } from '../errors';
import { ProgressTracker } from '../engine/progress';
import { refuseTargetInRepository } from '../engine/target-in-repository';
import { checkTargetOverwrite } from '../engine/target-overwrite';
import type { RestoreOptions, RestoreResult } from '../engine/types';
import { Target, closeTarget, endTargetAt, openTarget, syncTarget, writeAt } from '../engine/volume';
import { imageSize, readChain } from './chain';
import type { CinderStore } from './store';

export async function restoreCinderBackup(store: CinderStore, options: RestoreOptions): Promise<RestoreResult> {
  const started = Date.now();
  const verifyOnly = !!options.verifyOnly;
  if (!verifyOnly && !options.target) throw new VolumeBackupError('INVALID_ARGUMENT', 'a restore needs a target path (or verify-only)');
  if (!verifyOnly) await refuseTargetInRepository(options.target!, store.localDirectory());
  // The same rule as a restore from a repository: an existing target only when overwriting was allowed.
  if (!verifyOnly) await checkTargetOverwrite(options.target!, options.overwrite);
  const chain = await store.chain(options.backupId);
  const size = imageSize(chain);
  let target: Target | null = null;
  let bytesWritten = 0;
  try {
    if (!verifyOnly) target = await openTarget(options.target!, size);
    const t = target;
    const sink = t
      ? async (offset: number, data: Buffer) => {
          await writeAt(t, data, offset, false);
          bytesWritten += data.length;
        }
      : null;
    const progress = new ProgressTracker(options.onProgress, {
      operation: verifyOnly ? 'verify' : 'restore',
      backupId: options.backupId,
      volumeId: chain[chain.length - 1].volumeId,
      snapshotId: null,
      chunkCount: chain.reduce((n, b) => n + b.objects.length, 0),
      bytesTotal: chain.reduce((n, b) => n + b.objects.reduce((m, o) => m + o.length, 0), 0),
    });
    progress.start();
    let index = 0;
    const read = await readChain(store, options.backupId, sink, { signal: options.signal, onObject: (n) => progress.chunk(index++, n) });
    progress.end();
    const bytesLeftPastEnd = target ? await endTargetAt(target, size) : 0;
    if (target) await syncTarget(target);
    return {
      backupId: options.backupId,
      volumeId: chain[chain.length - 1].volumeId,
      target: target?.path ?? null,
      verifyOnly,
      chain: read.chain.map((b) => b.id),
      size,
      bytesWritten,
      bytesVerified: size,
      blocksVerified: Math.ceil(size / read.blockSize),
      bytesLeftPastEnd,
      durationMs: Date.now() - started,
    };
  } catch (err) {
    // A half-restored file we created must not look like a good copy.
    if (target?.created) await fs.rm(target.path, { force: true }).catch(() => undefined);
    throw options.signal?.aborted && !(err instanceof VolumeBackupError && err.code === 'CANCELLED') ? cancelled(options.signal.reason) : err;
  } finally {
    if (target) await closeTarget(target).catch(() => undefined);
  }
}
