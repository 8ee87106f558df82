/**
 * The snapshot provider contract. A provider makes a temporary, point-in-time copy of a volume that a
 * backup can read while the volume stays in use, and removes it afterwards. Each temporary is named
 * `volume-backup-tmp-<pid>-<random>` and described, before it is made, by a JSON "handle" that says
 * everything its removal needs; the handle goes into an owner file (owners.ts), so start-up cleanup in
 * another process can remove what a dead process left behind.
 */
import { randomBytes } from 'crypto';
import { z } from 'zod';
import type { Logger } from '../engine/types';
import type { CommandRunner } from './runner';

export const PROVIDER_NAMES = ['btrfs', 'reflink', 'lvm', 'command', 'copy'] as const;
export const ProviderName = z.enum(PROVIDER_NAMES);
export type ProviderName = z.infer<typeof ProviderName>;

/** What a user may ask for: a provider, or `auto` (the first that applies; see index.ts). */
export const ProviderChoice = z.enum(['auto', ...PROVIDER_NAMES]);
export type ProviderChoice = z.infer<typeof ProviderChoice>;

/** Every temporary's name starts with this, so people and cleanup can tell them from anything else. */
export const TEMPORARY_PREFIX = 'volume-backup-tmp-';
const TEMPORARY_NAME = /^volume-backup-tmp-[0-9]+-[0-9a-f]{8}$/;

/** A fresh temporary name; its characters are valid in file names and LVM names alike. */
export function newTemporaryName(pid = process.pid): string {
  return `${TEMPORARY_PREFIX}${pid}-${randomBytes(4).toString('hex')}`;
}

export function isTemporaryName(name: string): boolean {
  return TEMPORARY_NAME.test(name);
}

/** What removing a temporary takes, per provider. JSON, because it is stored in the owner file. */
export const RemovalHandle = z.discriminatedUnion('provider', [
  /** The snapshot subvolume (not the volume file inside it). */
  z.object({ provider: z.literal('btrfs'), subvolume: z.string().min(1) }),
  z.object({ provider: z.literal('reflink'), file: z.string().min(1) }),
  z.object({ provider: z.literal('copy'), file: z.string().min(1) }),
  /** "VG/LV" of the snapshot volume. */
  z.object({ provider: z.literal('lvm'), lv: z.string().min(3) }),
  /** The delete command with its placeholders filled in; null while the create command has not said its path. */
  z.object({ provider: z.literal('command'), argv: z.array(z.string()).min(1).nullable(), timeoutMs: z.number().int().positive() }),
]);
export type RemovalHandle = z.infer<typeof RemovalHandle>;

/** A temporary snapshot that exists now. */
export interface TemporarySnapshot {
  provider: ProviderName;
  name: string;
  /** The file or block device a backup reads: the volume as it was when the snapshot was taken. */
  path: string;
  /** The snapshot's own id, when the provider has one (the command provider may print one). */
  id: string | null;
  /** Taken just before the snapshot was started: every write before this time is in the snapshot. */
  createdAt: Date;
  handle: RemovalHandle;
}

export interface ProviderContext {
  runner: CommandRunner;
  log: Logger;
  signal?: AbortSignal;
}

export interface CreateRequest {
  /** The live volume: a file or a block device. */
  volume: string;
  name: string;
  /**
   * Called with the removal handle before anything is made (and again if the handle changes), so an
   * owner file exists for every temporary that might exist.
   */
  register: (handle: RemovalHandle) => Promise<void>;
}

export interface SnapshotProvider {
  readonly name: ProviderName;
  /** null when this provider can snapshot `volume` here, else the reason it cannot (auto logs it). */
  applies(volume: string, ctx: ProviderContext): Promise<string | null>;
  create(request: CreateRequest, ctx: ProviderContext): Promise<TemporarySnapshot>;
}

/** Timeouts of the providers' commands, unless the user sets one. */
export const DEFAULT_TIMEOUT_MS: Record<ProviderName, number> = {
  btrfs: 120_000,
  lvm: 120_000,
  // A clone of a very fragmented file walks every extent.
  reflink: 600_000,
  command: 300_000,
  // A full copy of a large volume.
  copy: 24 * 3600_000,
};

export const NULL_LOGGER: Logger = { info: () => undefined, warn: () => undefined };
