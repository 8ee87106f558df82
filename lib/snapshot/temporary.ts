/**
 * Taking and dropping a temporary snapshot with its owner file: the owner file exists before the
 * temporary can, and goes only after the temporary is gone, so a crash at any point leaves something
 * start-up cleanup can act on.
 */
import { errorMessage } from '../errors';
import { OwnerRecord, removeOwnerFile, writeOwnerFile } from './owners';
import { processStartTime } from '../util/process';
import { ProviderContext, RemovalHandle, SnapshotProvider, TemporarySnapshot, newTemporaryName } from './provider';
import { removeTemporary } from './remove';

export interface OwnershipOptions {
  /** The host recorded as owner (the repository's host). */
  host: string;
  stateDir: string;
}

export async function takeTemporarySnapshot(
  provider: SnapshotProvider,
  volume: string,
  ownership: OwnershipOptions,
  ctx: ProviderContext,
): Promise<TemporarySnapshot> {
  const name = newTemporaryName();
  const base = {
    formatVersion: 1 as const,
    name,
    provider: provider.name,
    host: ownership.host,
    pid: process.pid,
    pidStart: processStartTime(process.pid),
    volume,
    createdAt: new Date().toISOString(),
  };
  let registered: RemovalHandle | null = null;
  const register = async (handle: RemovalHandle) => {
    const owner: OwnerRecord = { ...base, handle };
    await writeOwnerFile(ownership.stateDir, owner);
    registered = handle;
  };
  try {
    return await provider.create({ volume, name, register }, ctx);
  } catch (err) {
    if (registered) await dropQuietly(name, registered, ownership.stateDir, ctx);
    throw err;
  }
}

/** Removes the temporary, then its owner file. Throws when the temporary could not be removed. */
export async function dropTemporarySnapshot(snapshot: TemporarySnapshot, stateDir: string, ctx: ProviderContext): Promise<void> {
  await removeTemporary(snapshot.handle, ctx);
  await removeOwnerFile(stateDir, snapshot.name);
}

/** After a failed create: remove whatever part of the temporary exists; on failure leave it to cleanup. */
async function dropQuietly(name: string, handle: RemovalHandle, stateDir: string, ctx: ProviderContext): Promise<void> {
  if (handle.provider === 'command' && !handle.argv) {
    ctx.log.warn(`command: the create command failed before printing a path; if it made a snapshot named ${name}, remove it by hand`);
    await removeOwnerFile(stateDir, name);
    return;
  }
  try {
    await removeTemporary(handle, ctx);
    await removeOwnerFile(stateDir, name);
  } catch (err) {
    ctx.log.warn(`could not remove the partly made ${handle.provider} temporary ${name}: ${errorMessage(err)}; start-up cleanup will retry`);
  }
}
