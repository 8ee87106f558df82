/**
 * Making a repository: its repository.json, encrypted or not. Written once with putIfAbsent, so two
 * processes making the same repository cannot both win, and an existing repository is never replaced.
 */
import type { Driver } from '../drivers/driver';
import { PreconditionFailedError, VolumeBackupError } from '../errors';
import { KdfCost, newEncryptionParams } from '../codec/encryption';
import { RepositoryConfig, newRepositoryConfig } from './config';
import { REPOSITORY_CONFIG_NAME, readConfigIfAny } from './repository';
import { missingConfigError, repositoryContentAt } from './missing-config';

export interface NewRepositoryOptions {
  /** Encrypt the repository's objects with a key wrapped by this passphrase. */
  passphrase?: string;
  /** scrypt cost (default DEFAULT_KDF); lower only for tests. */
  kdf?: KdfCost;
  /** The compression backups use when they are not given one (checked by the caller). */
  compression?: RepositoryConfig['compression'];
}

/** The description of a new repository: encrypted when a passphrase is given. */
export async function newConfig(options: NewRepositoryOptions = {}): Promise<RepositoryConfig> {
  const config = newRepositoryConfig(null);
  if (options.passphrase !== undefined) config.encryption = await newEncryptionParams(config.id, options.passphrase, options.kdf);
  if (options.compression) config.compression = options.compression;
  return config;
}

/** Write repository.json into a container that must not hold a repository yet. */
export async function writeNewRepository(driver: Driver, container: string, config: RepositoryConfig): Promise<void> {
  await driver.putContainer(container);
  // Only an empty location: where a repository's content is, its repository.json was lost, not never made.
  const found = await repositoryContentAt(driver, container);
  if (found && !(await readConfigIfAny(driver, container))) throw missingConfigError(driver, container, found);
  try {
    await driver.putIfAbsent(container, REPOSITORY_CONFIG_NAME, Buffer.from(JSON.stringify(config, null, 2) + '\n'));
  } catch (err) {
    if (err instanceof PreconditionFailedError) {
      throw new VolumeBackupError(
        'CONFLICT',
        `there is already a volume-backup repository at ${driver.location}${container ? ` (container ${container})` : ''}: it was left as it is`,
      );
    }
    throw err;
  }
}
