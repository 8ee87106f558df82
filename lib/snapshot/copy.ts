/**
 * copy: Cinder's fallback when nothing else can: a temporary full copy (sparse where the volume has holes).
 * It is NOT point-in-time: a volume written to during the copy gives a torn copy, and we say so.
 */
import * as path from 'path';
import { resolveVolume, temporaryDirectory } from './files';
import { CreateRequest, ProviderContext, SnapshotProvider, TemporarySnapshot } from './provider';

export interface CopyOptions {
  snapshotDir?: string;
  timeoutMs: number;
}

export class CopyProvider implements SnapshotProvider {
  readonly name = 'copy' as const;
  constructor(private readonly options: CopyOptions) {}

  async applies(volume: string): Promise<string | null> {
    try {
      await temporaryDirectory(volume, this.options.snapshotDir);
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  }

  async create(request: CreateRequest, ctx: ProviderContext): Promise<TemporarySnapshot> {
    const { real } = await resolveVolume(request.volume);
    const file = path.join(await temporaryDirectory(real, this.options.snapshotDir), request.name);
    ctx.log.warn(
      `copy: ${real} is copied in full to ${file}. This is NOT a point-in-time snapshot: if the volume is written to ` +
        'during the copy, the backup can be inconsistent. For a volume in use, use btrfs, reflink, lvm or a command provider.',
    );
    await request.register({ provider: 'copy', file });
    const createdAt = new Date();
    await ctx.runner('cp', ['--reflink=never', '--sparse=always', '--', real, file], { timeoutMs: this.options.timeoutMs, signal: ctx.signal });
    return { provider: 'copy', name: request.name, path: file, id: null, createdAt, handle: { provider: 'copy', file } };
  }
}
