/** Open a repository from a driver spec or a --repo URL: the one entry point nodes and CLI share. */
import { DriverContext, DriverSpec, createDriver, parseRepositoryUrl } from './drivers';
import { Repository, openRepositoryIn } from './repository/repository';
import { makeCodecFor } from './codec/encryption';

export interface OpenRepositoryOptions extends DriverContext {
  /** Sub-directory (posix) or key prefix (s3/gcs) inside the driver's location; "" by default. */
  container?: string;
  /** Host name recorded in records this process writes (default: the machine's name). */
  host?: string;
  /** Make the repository (unencrypted) when it does not exist yet. */
  create?: boolean;
  /** Passphrase of an encrypted repository. */
  passphrase?: string;
}

export async function openRepository(where: string | DriverSpec, options: OpenRepositoryOptions = {}): Promise<Repository> {
  const spec = typeof where === 'string' ? parseRepositoryUrl(where) : where;
  const driver = createDriver(spec, { log: options.log });
  try {
    return await openRepositoryIn(driver, {
      container: options.container,
      host: options.host,
      create: options.create,
      makeCodec: (config) => makeCodecFor(config, options.passphrase),
    });
  } catch (err) {
    await driver.close?.();
    throw err;
  }
}
