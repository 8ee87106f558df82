/**
 * A restore never overwrites by surprise: an existing file, and any block device, is written only when
 * the caller allowed it (CLI --overwrite, the restore node's "Overwrite" checkbox or msg.overwrite, the
 * sidebar after its question). Whether the target exists is also what a killed restore's cleanup needs:
 * a target the restore created is removed, an existing one is reported as incomplete.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { VolumeBackupError } from '../errors';
import { shortPath } from './volume';

export interface TargetState {
  /** Absolute path. */
  path: string;
  exists: boolean;
  blockDevice: boolean;
}

const HOW_TO_ALLOW = 'allow overwriting (CLI --overwrite; restore node: the "Overwrite" checkbox or msg.overwrite = true)';

/**
 * Throws when `overwrite` is false and the target exists. `undefined` (library callers of earlier
 * versions) allows it as before; the CLI, the nodes and the sidebar always say.
 */
export async function checkTargetOverwrite(targetPath: string, overwrite: boolean | undefined): Promise<TargetState> {
  // Not a path at all: openTarget says so.
  if (typeof targetPath !== 'string' || targetPath.length === 0 || targetPath.includes('\0')) return { path: String(targetPath), exists: false, blockDevice: false };
  const abs = path.resolve(targetPath);
  const st = await fs.stat(abs).catch(() => null);
  const state: TargetState = { path: abs, exists: st !== null, blockDevice: !!st?.isBlockDevice() };
  if (overwrite !== false || !st) return state;
  if (state.blockDevice) {
    throw new VolumeBackupError('INVALID_ARGUMENT', `restore target ${shortPath(abs)} is a block device: a restore overwrites what it holds; check it is the right device, then ${HOW_TO_ALLOW}`, { target: abs });
  }
  throw new VolumeBackupError('INVALID_ARGUMENT', `restore target ${shortPath(abs)} exists${st.isFile() ? ` (${st.size} bytes)` : ''}: a restore would overwrite it; choose a new file, or ${HOW_TO_ALLOW}`, { target: abs });
}
