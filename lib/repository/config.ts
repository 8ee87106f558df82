/** repository.json: what a repository is. Written once, when the repository is made. */
import { randomUUID } from 'crypto';
import { z } from 'zod';
import { VolumeBackupError, errorMessage } from '../errors';
import { Compression } from './records';

export const REPOSITORY_FORMAT_VERSION = 1;

export const EncryptionParamsSchema = z.object({
  algorithm: z.literal('aes-256-gcm'),
  kdf: z.literal('scrypt'),
  /** scrypt cost parameters (memory-hard: N * r * 128 bytes of memory). */
  N: z.number().int().positive(),
  r: z.number().int().positive(),
  p: z.number().int().positive(),
  salt: z.string().min(16),
  /** The master key wrapped with the passphrase key, so a wrong passphrase is detected at once. */
  wrappedKey: z.string().min(1),
});
export type EncryptionParams = z.infer<typeof EncryptionParamsSchema>;

export const RepositoryConfigSchema = z.object({
  kind: z.literal('node-red-contrib-volume-backup repository'),
  formatVersion: z.literal(REPOSITORY_FORMAT_VERSION),
  id: z.string().uuid(),
  createdAt: z.string(),
  encryption: EncryptionParamsSchema.nullable(),
  /**
   * The compression a backup uses when it is not given one (init --compression); absent: zstd level 1.
   * Every object records what it was stored with, so a restore reads any mix.
   */
  compression: z.object({ algorithm: Compression, level: z.number().int().optional() }).optional(),
});
export type RepositoryConfig = z.infer<typeof RepositoryConfigSchema>;

export function newRepositoryConfig(encryption: EncryptionParams | null): RepositoryConfig {
  return {
    kind: 'node-red-contrib-volume-backup repository',
    formatVersion: REPOSITORY_FORMAT_VERSION,
    id: randomUUID(),
    createdAt: new Date().toISOString(),
    encryption,
  };
}

export function parseRepositoryConfig(data: Buffer): RepositoryConfig {
  try {
    return RepositoryConfigSchema.parse(JSON.parse(data.toString('utf8')));
  } catch (err) {
    throw new VolumeBackupError('CORRUPT', `repository.json is not a volume-backup repository description: ${errorMessage(err)}`);
  }
}
