/** `verify --volume PATH`: a volume (or a snapshot of it) compared block by block with a backup's hashes. */
import type { CommandContext, Values } from '../command';
import { formatBytes, openRepo, printJson, progressReporter, str } from '../common';

export async function verifyVolumeCommand(values: Values, ctx: CommandContext): Promise<number> {
  const { verifyVolume } = await import('../../engine/verify-volume');
  const repo = await openRepo(values, ctx);
  const progress = progressReporter(values, ctx);
  try {
    const result = await verifyVolume(repo, {
      volume: str(values, 'volume') as string,
      backupId: str(values, 'backup'),
      volumeId: str(values, 'volume-id'),
      signal: ctx.signal,
      onProgress: progress.listener,
    });
    progress.stop();
    if (values.json) printJson(ctx, result);
    else if (result.ok) ctx.stdout.write(`${result.volume} matches backup ${result.backupId}: ${formatBytes(result.bytesRead)} read, every block's SHA-256 as recorded\n`);
    else {
      const where = result.differingAt.slice(0, 10).join(', ');
      ctx.stdout.write(`${result.volume} differs from backup ${result.backupId} in ${result.differingChunks} chunk(s), first differing blocks at ${where}${result.differingChunks > 10 ? ', …' : ''}\n`);
    }
    return result.ok ? 0 : 1;
  } finally {
    progress.stop();
    await repo.close();
  }
}
