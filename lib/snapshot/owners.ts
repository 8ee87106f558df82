/**
 * Owner files: one small JSON file per temporary snapshot, written before the temporary is made and
 * removed after it is gone. It names the owner (host, pid and the pid's start time, so a reused pid is
 * not mistaken for the owner) and holds the removal handle, so start-up cleanup (cleanup.ts) can remove
 * what a dead process left. They live in one state directory per host, whatever the provider.
 */
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { z } from 'zod';
import { ProviderName, RemovalHandle, isTemporaryName } from './provider';

const OWNER_SUFFIX = '.owner.json';

export const OwnerRecord = z.object({
  formatVersion: z.literal(1),
  name: z.string().refine(isTemporaryName, 'not a temporary name'),
  provider: ProviderName,
  host: z.string().min(1),
  pid: z.number().int().positive(),
  /** Start time of the owner process in clock ticks since boot (/proc/<pid>/stat field 22); null off Linux. */
  pidStart: z.number().int().nonnegative().nullable(),
  volume: z.string(),
  createdAt: z.string(),
  handle: RemovalHandle,
  /**
   * Set once the backup that read the temporary succeeded and kept it as the base of the next
   * incremental: from then on its owner is that backup, not the process (cleanup.ts).
   */
  base: z.object({ repositoryId: z.string().min(1), volumeId: z.string().min(1), backupId: z.string().min(1) }).optional(),
});
export type OwnerRecord = z.infer<typeof OwnerRecord>;

/** Where owner files live unless the user says: kept across reboots, since LVM snapshots survive them. */
export function defaultStateDir(): string {
  if (process.env.VOLUME_BACKUP_STATE_DIR) return process.env.VOLUME_BACKUP_STATE_DIR;
  return process.getuid?.() === 0
    ? '/var/lib/volume-backup/temporaries'
    : path.join(os.homedir(), '.local', 'state', 'volume-backup', 'temporaries');
}

export function ownerFilePath(stateDir: string, name: string): string {
  return path.join(stateDir, `${name}${OWNER_SUFFIX}`);
}

/** Writes (or replaces) an owner file atomically; only its owner may read or change it. */
export async function writeOwnerFile(stateDir: string, owner: OwnerRecord): Promise<void> {
  await fsp.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const file = ownerFilePath(stateDir, owner.name);
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, JSON.stringify(OwnerRecord.parse(owner), null, 2) + '\n', { mode: 0o600 });
  await fsp.rename(tmp, file);
}

export async function removeOwnerFile(stateDir: string, name: string): Promise<void> {
  await fsp.rm(ownerFilePath(stateDir, name), { force: true });
}

export interface OwnerFileEntry {
  file: string;
  owner: OwnerRecord | null;
  /** Why the file cannot be used, when owner is null. */
  problem?: string;
}

/**
 * Every owner file in the state directory. A file that another user could have written is not trusted:
 * cleanup runs the commands and removes the paths it names.
 */
export async function readOwnerFiles(stateDir: string): Promise<OwnerFileEntry[]> {
  let names: string[];
  try {
    names = await fsp.readdir(stateDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: OwnerFileEntry[] = [];
  for (const name of names.filter((n) => n.endsWith(OWNER_SUFFIX)).sort()) {
    const file = path.join(stateDir, name);
    try {
      const st = await fsp.lstat(file);
      const uid = process.getuid?.();
      if (!st.isFile()) throw new Error('not a regular file');
      if (uid !== undefined && st.uid !== uid) throw new Error(`owned by uid ${st.uid}, not by this user`);
      if (st.mode & 0o022) throw new Error('writable by other users');
      const owner = OwnerRecord.parse(JSON.parse(await fsp.readFile(file, 'utf8')));
      if (`${owner.name}${OWNER_SUFFIX}` !== name) throw new Error('its name does not match its content');
      out.push({ file, owner });
    } catch (err) {
      out.push({ file, owner: null, problem: (err as Error).message });
    }
  }
  return out;
}

/** Hands a temporary over to the backup that keeps it as its base (OwnerRecord.base). */
export async function markOwnerAsBase(stateDir: string, name: string, base: NonNullable<OwnerRecord['base']>): Promise<void> {
  const owner = OwnerRecord.parse(JSON.parse(await fsp.readFile(ownerFilePath(stateDir, name), 'utf8')));
  await writeOwnerFile(stateDir, { ...owner, base });
}
