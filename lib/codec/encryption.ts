/** Client-side encryption of a repository's objects (filled in by the encryption issue). */
import { VolumeBackupError } from '../errors';
import type { RepositoryConfig } from '../repository/config';
import { IDENTITY_CODEC, ObjectCodec } from './object-codec';

export async function makeCodecFor(config: RepositoryConfig, passphrase: string | undefined): Promise<ObjectCodec> {
  if (!config.encryption) return IDENTITY_CODEC;
  if (!passphrase) {
    throw new VolumeBackupError('ENCRYPTION', 'this repository is encrypted: give its passphrase (VOLUME_BACKUP_PASSPHRASE or --passphrase-file)');
  }
  throw new VolumeBackupError('ENCRYPTION', 'encrypted repositories are not supported by this version');
}
