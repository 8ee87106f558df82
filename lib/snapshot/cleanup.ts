/**
 * Start-up cleanup (Cinder's init_host): remove the temporary snapshots that a dead process of this host
 * left behind. Only this host's owner files are looked at; a temporary whose owner still runs is left alone.
 */
import * as os from 'os';
import type { Logger } from '../engine/types';
import { errorMessage } from '../errors';
import { OwnerRecord, defaultStateDir, readOwnerFiles, removeOwnerFile } from './owners';
import { processAlive } from '../util/process';
import { NULL_LOGGER } from './provider';
import { removeTemporary } from './remove';
import { CommandRunner, runCommand } from './runner';

export interface CleanupOptions {
  /** This host's name as recorded in owner files (the repository's host; default: the machine's name). */
  host?: string;
  /** Where owner files are (default: defaultStateDir()). */
  stateDir?: string;
  log?: Logger;
  runner?: CommandRunner;
  /**
   * Whether a kept base snapshot is still its backup's (true), or its backup is gone or keeps another
   * base (false); null when this caller cannot tell (another repository): then it is left alone.
   */
  baseInUse?: (owner: OwnerRecord & { base: NonNullable<OwnerRecord['base']> }) => Promise<boolean | null>;
}

export interface CleanupResult {
  removed: OwnerRecord[];
  /** Owner files left in place, and why: owner alive, another host, unreadable, or removal failed. */
  kept: { file: string; name: string | null; reason: string }[];
}

export async function cleanupTemporarySnapshots(options: CleanupOptions = {}): Promise<CleanupResult> {
  const host = options.host ?? os.hostname();
  const stateDir = options.stateDir ?? defaultStateDir();
  const log = options.log ?? NULL_LOGGER;
  const ctx = { runner: options.runner ?? runCommand, log };
  const result: CleanupResult = { removed: [], kept: [] };
  for (const { file, owner, problem } of await readOwnerFiles(stateDir)) {
    if (!owner) {
      log.warn(`snapshot cleanup: ignoring ${file}: ${problem}`);
      result.kept.push({ file, name: null, reason: problem ?? 'unreadable' });
      continue;
    }
    if (owner.host !== host) {
      result.kept.push({ file, name: owner.name, reason: `owned by host ${owner.host}` });
      continue;
    }
    if (owner.base) {
      const inUse = options.baseInUse ? await options.baseInUse({ ...owner, base: owner.base }) : null;
      if (inUse !== false) {
        result.kept.push({ file, name: owner.name, reason: `base snapshot of backup ${owner.base.backupId}${inUse ? '' : ` in repository ${owner.base.repositoryId}`}` });
        continue;
      }
    } else if (processAlive(owner)) {
      result.kept.push({ file, name: owner.name, reason: `its owner, process ${owner.pid}, is running` });
      continue;
    }
    try {
      await removeTemporary(owner.handle, ctx);
      await removeOwnerFile(stateDir, owner.name);
      log.info(
        owner.base
          ? `snapshot cleanup: removed ${owner.provider} base snapshot ${owner.name} of ${owner.volume}: backup ${owner.base.backupId} no longer keeps it`
          : `snapshot cleanup: removed ${owner.provider} temporary ${owner.name} of ${owner.volume}, left by process ${owner.pid}`,
      );
      result.removed.push(owner);
    } catch (err) {
      log.warn(`snapshot cleanup: could not remove ${owner.provider} temporary ${owner.name} of ${owner.volume}: ${errorMessage(err)}`);
      result.kept.push({ file, name: owner.name, reason: errorMessage(err) });
    }
  }
  return result;
}
