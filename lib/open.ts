/** Open a repository from a driver spec or a --repo URL: the one entry point nodes and CLI share. */
import { DriverContext, DriverSpec, createDriver, parseRepositoryUrl } from './drivers';
import { checkConditionalWrites, isProbed } from './drivers/conditional-probe';
import type { Driver } from './drivers/driver';
import { Repository, openRepositoryIn, readConfigIfAny } from './repository/repository';
import { makeCodecFor, KdfCost } from './codec/encryption';
import { newConfig, writeNewRepository } from './repository/init';
import { invalid } from './errors';
import { checkCompression } from './engine/settings';
import { isCinderUrl } from './cinder/url';
import type { CinderStore } from './cinder/store';

export interface OpenRepositoryOptions extends DriverContext {
  /** Sub-directory (posix) or key prefix (s3/gcs) inside the driver's location; "" by default. */
  container?: string;
  /** Host name recorded in records this process writes (default: the machine's name). */
  host?: string;
  /** Make the repository when it does not exist yet: encrypted with `passphrase` when one is given. */
  create?: boolean;
  /** Passphrase of an encrypted repository. */
  passphrase?: string;
}

export async function openRepository(where: string | DriverSpec, options: OpenRepositoryOptions = {}): Promise<Repository> {
  if (typeof where === 'string' && isCinderUrl(where)) {
    const { refuseWrite } = await import('./cinder/store');
    throw refuseWrite();
  }
  const spec = typeof where === 'string' ? parseRepositoryUrl(where) : where;
  const driver = createDriver(spec, { log: options.log });
  try {
    // A store that does not enforce conditional writes is refused before anything relies on them (or is
    // written: a repository about to be made is checked in its bucket first).
    if (options.create && !(await readConfigIfAny(driver, containerOf(driver, options.container)))) await probeBeforeWriting(driver, options.container);
    const repo = await openRepositoryIn(driver, {
      container: options.container,
      host: options.host,
      create: options.create,
      newConfig: options.passphrase ? () => newConfig({ passphrase: options.passphrase }) : undefined,
      makeCodec: (config) => makeCodecFor(config, options.passphrase),
    });
    await checkConditionalWrites(driver, repo.container);
    // Someone who gives a passphrase expects encryption: say so when this repository has none.
    if (options.passphrase && !repo.encrypted) options.log?.warn(`a passphrase was given, but the repository at ${repo.location} is not encrypted: its backups are stored unencrypted`);
    return repo;
  } catch (err) {
    await driver.close?.();
    throw err;
  }
}

export interface InitRepositoryOptions extends DriverContext {
  container?: string;
  host?: string;
  /** Encrypt every object (AES-256-GCM); needs `passphrase`. */
  encrypt?: boolean;
  passphrase?: string;
  /** scrypt cost of the passphrase (default: 128 MiB, about half a second); lower only for tests. */
  kdf?: KdfCost;
  /** What backups compress with when they are not told (default zstd level 1), e.g. { algorithm: 'zstd', level: -5 }. */
  compression?: { algorithm: unknown; level?: unknown };
}

/** Make a new repository (refused where one exists) and return it open. */
export async function initRepository(where: string | DriverSpec, options: InitRepositoryOptions = {}): Promise<Repository> {
  if (options.encrypt && !options.passphrase) throw invalid('an encrypted repository needs a passphrase');
  if (!options.encrypt && options.passphrase) throw invalid('a passphrase was given for an unencrypted repository: ask for encryption, or give no passphrase');
  const compression = options.compression && checkCompression(options.compression.algorithm, options.compression.level);
  const spec = typeof where === 'string' ? parseRepositoryUrl(where) : where;
  const driver = createDriver(spec, { log: options.log });
  try {
    const container = await probeBeforeWriting(driver, options.container);
    const config = await newConfig({ passphrase: options.encrypt ? options.passphrase : undefined, kdf: options.kdf, compression });
    await writeNewRepository(driver, container, config);
    return await openRepositoryIn(driver, {
      container: options.container,
      host: options.host,
      makeCodec: (c) => makeCodecFor(c, options.passphrase),
    });
  } catch (err) {
    await driver.close?.();
    throw err;
  }
}

/** Make the bucket (or directory) of a repository about to be made, and probe the store there; returns the container. */
async function probeBeforeWriting(driver: Driver, requested: string | undefined): Promise<string> {
  const container = containerOf(driver, requested);
  if (!isProbed(driver)) return container;
  await driver.putContainer(container);
  await checkConditionalWrites(driver, container);
  return container;
}

function containerOf(driver: Driver, requested: string | undefined): string {
  return driver.updateContainerName(requested) ?? requested ?? '';
}

export { isCinderUrl };

/**
 * A Cinder backup store (cinder:PATH, cinder+s3://…, cinder+gs://…), read-only: list, show, restore,
 * verify and import read it (lib/cinder); every write is refused.
 */
export async function openCinder(where: string | DriverSpec, options: DriverContext = {}): Promise<CinderStore> {
  const { openCinderStore } = await import('./cinder/store');
  return openCinderStore(where, options);
}
