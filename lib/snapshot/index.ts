/**
 * Snapshot providers: configuration, construction, and `auto`, which picks the first that applies to a
 * volume (lvm for a logical volume, btrfs for a file on btrfs, reflink where clones work, else copy) and
 * says which and why.
 */
import { z } from 'zod';
import { VolumeBackupError } from '../errors';
import { BtrfsProvider } from './btrfs';
import { CommandProvider } from './command';
import { CopyProvider } from './copy';
import { LvmProvider, checkLvmSize } from './lvm';
import { DEFAULT_TIMEOUT_MS, ProviderChoice, ProviderContext, ProviderName, SnapshotProvider } from './provider';
import { ReflinkProvider } from './reflink';

export * from './provider';
export { CommandRunner, RunOptions, RunResult, runCommand } from './runner';
export { cleanupTemporarySnapshots, CleanupOptions, CleanupResult } from './cleanup';
export { defaultStateDir, OwnerRecord } from './owners';
export { removeTemporary } from './remove';
export { takeTemporarySnapshot, dropTemporarySnapshot } from './temporary';

/** How to take a temporary snapshot: plain data, shared by the engine, the CLI and the node. */
export const SnapshotProviderConfig = z
  .object({
    provider: ProviderChoice.default('auto'),
    /** Where btrfs/reflink/copy temporaries go, on the volume's file system for btrfs and reflink (default: beside the volume). */
    snapshotDir: z.string().min(1).optional(),
    /** lvm: size of the snapshot's copy-on-write area, "2G" or "10%ORIGIN" (default). */
    lvmSize: z.string().refine((s) => { try { checkLvmSize(s); return true; } catch { return false; } }, 'use a size such as 2G or a percentage such as 10%ORIGIN').optional(),
    /** command: argument arrays, see command.ts for placeholders and output. */
    createCommand: z.array(z.string()).min(1).optional(),
    deleteCommand: z.array(z.string()).min(1).optional(),
    /** Timeout of each provider command (default per provider: 120 s for btrfs/lvm, 300 s for command…). */
    timeoutSeconds: z.number().positive().max(7 * 24 * 3600).optional(),
  })
  .strict();
export type SnapshotProviderConfig = z.input<typeof SnapshotProviderConfig>;

export function createProvider(name: ProviderName, input: SnapshotProviderConfig): SnapshotProvider {
  const config = SnapshotProviderConfig.parse(input);
  const timeoutMs = config.timeoutSeconds ? Math.round(config.timeoutSeconds * 1000) : DEFAULT_TIMEOUT_MS[name];
  switch (name) {
    case 'btrfs':
      return new BtrfsProvider({ snapshotDir: config.snapshotDir, timeoutMs });
    case 'reflink':
      return new ReflinkProvider({ snapshotDir: config.snapshotDir, timeoutMs });
    case 'copy':
      return new CopyProvider({ snapshotDir: config.snapshotDir, timeoutMs });
    case 'lvm':
      return new LvmProvider({ size: config.lvmSize, timeoutMs });
    case 'command':
      if (!config.createCommand || !config.deleteCommand) {
        throw new VolumeBackupError('INVALID_ARGUMENT', 'the command provider needs both a create command and a delete command');
      }
      return new CommandProvider({ create: config.createCommand, delete: config.deleteCommand, snapshotDir: config.snapshotDir, timeoutMs });
  }
}

/** The order `auto` tries; command is never automatic (it needs the user's commands). */
export const AUTO_ORDER: ProviderName[] = ['lvm', 'btrfs', 'reflink', 'copy'];

/** The provider to use for `volume`: the one asked for, or with `auto` the first that applies. */
export async function selectProvider(volume: string, input: SnapshotProviderConfig, ctx: ProviderContext): Promise<SnapshotProvider> {
  const config = SnapshotProviderConfig.parse(input);
  if (config.provider !== 'auto') return createProvider(config.provider, config);
  const reasons: string[] = [];
  for (const name of AUTO_ORDER) {
    const provider = createProvider(name, config);
    const why = await provider.applies(volume, ctx);
    if (why === null) {
      ctx.log.info(`snapshot provider auto: using ${name} for ${volume}${reasons.length ? ` (${reasons.join('; ')})` : ''}`);
      return provider;
    }
    reasons.push(`${name}: ${why}`);
  }
  throw new VolumeBackupError('SNAPSHOT', `no snapshot provider can snapshot ${volume}: ${reasons.join('; ')}`, { volume });
}
