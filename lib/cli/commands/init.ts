import type { Command } from '../command';
import { REPO_OPTIONS, REPO_USAGE, loadBackends, passphraseFrom, printJson, required, str } from '../common';
import { invalid } from '../../errors';

export const init: Command = {
  name: 'init',
  summary: 'make a new repository, optionally encrypted (--encrypt)',
  usage: `volume-backup init --repo R [--encrypt] [--compression none|zlib|zstd] [--compression-level=N] [--json]
  --encrypt              encrypt every object (AES-256-GCM) with a key protected by a passphrase, read from
                         VOLUME_BACKUP_PASSPHRASE or --passphrase-file F (never from the command line);
                         every later command on the repository needs the same passphrase
  --compression C        what backups into this repository compress with unless told otherwise (default zstd)
  --compression-level=N  its level: zstd -7 (fastest, largest) to 22, default 1; zlib 0 to 9, default 1.
                         e.g. --compression-level=-5: a full backup ~10% faster where the CPU is the limit,
                         ~20% more stored (README, Performance)
${REPO_USAGE}`,
  options: { ...REPO_OPTIONS, encrypt: { type: 'boolean' }, compression: { type: 'string' }, 'compression-level': { type: 'string' } },
  async run(values, ctx) {
    const { initRepository } = await import('../../open');
    await loadBackends(values, ctx);
    const where = required(values, 'repo');
    const encrypt = !!values.encrypt;
    const passphrase = await passphraseFrom(values, ctx);
    if (encrypt && !passphrase) throw invalid('--encrypt needs a passphrase: set VOLUME_BACKUP_PASSPHRASE or give --passphrase-file F');
    if (!encrypt && passphrase) throw invalid('a passphrase is set but --encrypt was not given: add --encrypt, or unset VOLUME_BACKUP_PASSPHRASE');
    const algorithm = str(values, 'compression');
    const level = str(values, 'compression-level');
    if (level !== undefined && !/^-?\d+$/.test(level)) throw invalid('--compression-level must be a whole number (a negative one as --compression-level=-5)');
    const compression = algorithm === undefined && level === undefined ? undefined : { algorithm: algorithm ?? 'zstd', level: level === undefined ? undefined : Number(level) };
    const repo = await initRepository(where, { container: str(values, 'container'), host: str(values, 'host'), encrypt, passphrase, compression });
    try {
      const summary = { location: repo.location, id: repo.config.id, encrypted: repo.encrypted, encryption: repo.config.encryption && { algorithm: repo.config.encryption.algorithm, kdf: repo.config.encryption.kdf, N: repo.config.encryption.N, r: repo.config.encryption.r, p: repo.config.encryption.p }, compression: repo.config.compression ?? null };
      if (values.json) return printJson(ctx, summary);
      ctx.stdout.write(`made ${repo.encrypted ? 'an encrypted' : 'an unencrypted'} repository ${repo.config.id} at ${repo.location}\n`);
      if (repo.encrypted) ctx.stdout.write('keep the passphrase safe: without it nothing in this repository can be restored\n');
    } finally {
      await repo.close();
    }
  },
};
