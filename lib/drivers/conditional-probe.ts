/**
 * Know the store before trusting it. Concurrent backups, leases and status changes are safe only when
 * the store enforces create-if-absent and replace-if-match; an S3-compatible store that ignores them lets
 * two writers both win silently. So on first use of a repository, a probe object under its container
 * (probes/<uuid>) is created, created again (must be refused), replaced from a wrong ETag (must be
 * refused) and from the right one (must succeed), then deleted. A store that fails this is refused with
 * the setting that opts out (conditionalWrites=false: one writer at a time).
 *
 * Cost: five small requests, about 0.12 s against a local RGW (each write waits for its commit). The
 * result is kept per process and repository location, not in repository.json: a store's behaviour can
 * change under the same name (a gateway upgraded, or put behind a proxy), and a repository.json that says
 * "checked" would be trusted by every host. A CLI call pays the probe once; a Node-RED flow once per run.
 */
import { randomUUID } from 'crypto';
import { PreconditionFailedError, VolumeBackupError } from '../errors';
import { PROBES_PREFIX } from '../repository/layout';
import type { Driver } from './driver';
import { backendNamed } from '../backends/registry';

// Where probe objects live is the object layout's (apart from every backup's, record's and lock's name).
export { PROBES_PREFIX } from '../repository/layout';

const checked = new Map<string, Promise<void>>();

/**
 * Resolves once `driver` is known to enforce conditional writes in `container` (checked at most once per
 * process); throws a CONFLICT error naming conditionalWrites when it does not. Drivers without
 * conditional writes (single-writer mode) and posix (the file system enforces them) are not probed.
 */
export function checkConditionalWrites(driver: Driver, container: string): Promise<void> {
  if (!isProbed(driver)) return Promise.resolve();
  const key = `${driver.location}\n${container}`;
  let probe = checked.get(key);
  if (!probe) {
    probe = probeConditionalWrites(driver, container).then((done) => {
      // A probe that could not finish (network, permissions) is tried again next time.
      if (!done) checked.delete(key);
    }, (err) => {
      checked.delete(key);
      throw err;
    });
    checked.set(key, probe);
  }
  return probe;
}

/** Whether checkConditionalWrites sends anything for this driver. */
export function isProbed(driver: Driver): boolean {
  // The backend's capabilities say whether a remote store enforces them (probe it) or this process does.
  return driver.conditionalWrites && backendNamed(driver.kind)?.capabilities.conditionalWrites !== 'local';
}

/** True once the store passed; false when it could not be probed (credentials that may only read). */
async function probeConditionalWrites(driver: Driver, container: string): Promise<boolean> {
  const name = `${PROBES_PREFIX}${randomUUID()}`;
  const refuse = (what: string) =>
    new VolumeBackupError(
      'CONFLICT',
      `the store at ${driver.location} does not enforce ${what}, which concurrent writers rely on: use a store that does, ` +
        `or set conditionalWrites=false (URL: ?conditionalWrites=false) and never let two writers use this repository at once`,
      { location: driver.location },
    );
  let etag: string;
  try {
    etag = await driver.putIfAbsent(container, name, Buffer.from('probe 1'));
  } catch (err) {
    // Credentials that may only read cannot probe; their writes fail anyway, with their own message.
    if (err instanceof VolumeBackupError && err.code === 'AUTH') return false;
    throw err;
  }
  try {
    if (await succeeds(driver.putIfAbsent(container, name, Buffer.from('probe 2')))) throw refuse('create-if-absent (If-None-Match: *)');
    const stale = etag.replace(/[0-9a-f]/g, (c) => (c === '0' ? '1' : '0'));
    if (await succeeds(driver.replaceIfMatch(container, name, Buffer.from('probe 3'), stale))) throw refuse('replace-if-match (If-Match)');
    if (!(await succeeds(driver.replaceIfMatch(container, name, Buffer.from('probe 4'), etag)))) throw refuse('replace-if-match (If-Match) with the current ETag');
  } finally {
    await driver.deleteObject(container, name).catch(() => undefined);
  }
  return true;
}

/** True when the conditional write went through, false when its condition was refused. */
async function succeeds(write: Promise<string>): Promise<boolean> {
  try {
    await write;
    return true;
  } catch (err) {
    if (err instanceof PreconditionFailedError) return false;
    throw err;
  }
}
