/**
 * Client-side encryption of a repository's objects (data, segment objects and hash lists, metadata).
 *
 * Keys: a random 256-bit master key is made once, when the repository is made, and stored in
 * repository.json wrapped (AES-256-GCM) by a key derived from the passphrase with scrypt (memory-hard,
 * per-repository random salt). The wrap's authentication tag is the passphrase check: a wrong
 * passphrase fails when the repository is opened, before anything is read, written or restored.
 * The wrap binds the repository id, the salt and the KDF parameters, so none of them can be edited.
 *
 * Objects: AES-256-GCM under a key derived from the master key (HKDF), a fresh random 96-bit nonce per
 * object, and the object's name as additional authenticated data, so an object that was altered,
 * truncated, or moved/swapped to another name fails to open. Stored form:
 *   "VBE1" | nonce (12) | ciphertext | tag (16)
 * Random nonces are safe far beyond what a repository holds (2^32 objects of 8 MiB = 32 PiB).
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, scrypt as scryptCb } from 'crypto';
import { VolumeBackupError } from '../errors';
import type { EncryptionParams, RepositoryConfig } from '../repository/config';
import { IDENTITY_CODEC, ObjectCodec } from './object-codec';

const MAGIC = Buffer.from('VBE1', 'ascii');
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
/** Bytes an encrypted object is longer than its plaintext. */
export const ENCRYPTION_OVERHEAD = MAGIC.length + NONCE_BYTES + TAG_BYTES;

export interface KdfCost {
  /** CPU/memory cost, a power of two; memory used is 128 * N * r bytes. */
  N: number;
  r: number;
  p: number;
}

/** 2^17 * 8 * 128 = 128 MiB and about half a second here: costly to guess, cheap to open once. */
export const DEFAULT_KDF: KdfCost = { N: 2 ** 17, r: 8, p: 1 };
/** Bounds on the parameters read from a repository.json, so a hostile one cannot exhaust memory or CPU. */
const KDF_LIMITS = { minN: 2 ** 14, maxN: 2 ** 22, maxR: 32, maxP: 16, maxMem: 1024 * 1024 * 1024 };

const PASSPHRASE_HELP = 'VOLUME_BACKUP_PASSPHRASE, --passphrase-file, or the passphrase credential of the driver-config node';

function encryptionError(message: string): VolumeBackupError {
  return new VolumeBackupError('ENCRYPTION', message);
}

function checkKdf(kdf: KdfCost): void {
  const { N, r, p } = kdf;
  const ok =
    Number.isSafeInteger(N) && N >= KDF_LIMITS.minN && N <= KDF_LIMITS.maxN && (N & (N - 1)) === 0 &&
    Number.isSafeInteger(r) && r >= 1 && r <= KDF_LIMITS.maxR &&
    Number.isSafeInteger(p) && p >= 1 && p <= KDF_LIMITS.maxP &&
    128 * N * r <= KDF_LIMITS.maxMem;
  if (!ok) {
    throw encryptionError(
      `unsupported scrypt parameters N=${N} r=${r} p=${p}: N must be a power of two from 2^14 to 2^22, r 1-32, p 1-16, memory at most 1 GiB`,
    );
  }
}

function checkPassphrase(passphrase: unknown): string {
  if (typeof passphrase !== 'string' || passphrase.length === 0) {
    throw encryptionError(`an encrypted repository needs a passphrase: give it through ${PASSPHRASE_HELP}`);
  }
  return passphrase;
}

function deriveWrappingKey(passphrase: string, salt: Buffer, kdf: KdfCost): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // Asynchronous: scrypt runs on the libuv pool, so a Node-RED runtime stays responsive meanwhile.
    scryptCb(passphrase.normalize('NFC'), salt, KEY_BYTES, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 2 * 128 * kdf.N * kdf.r + 1024 * 1024 }, (err, key) =>
      err ? reject(encryptionError(`the key could not be derived from the passphrase: ${err.message}`)) : resolve(key),
    );
  });
}

/** What the wrapped master key is bound to: editing any of it makes the unwrap fail. */
function wrapContext(repositoryId: string, params: Pick<EncryptionParams, 'algorithm' | 'kdf' | 'N' | 'r' | 'p' | 'salt'>): Buffer {
  const { algorithm, kdf, N, r, p, salt } = params;
  return Buffer.from(JSON.stringify(['volume-backup master key v1', repositoryId, algorithm, kdf, N, r, p, salt]), 'utf8');
}

function gcmSeal(key: Buffer, plain: Buffer, aad: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = cipher.update(plain);
  const final = cipher.final();
  return Buffer.concat([MAGIC, nonce, body, final, cipher.getAuthTag()]);
}

/** null when the bytes are not ours or do not authenticate; the caller says what that means. */
function gcmOpen(key: Buffer, stored: Buffer, aad: Buffer): Buffer | null {
  const nonce = stored.subarray(MAGIC.length, MAGIC.length + NONCE_BYTES);
  const tag = stored.subarray(stored.length - TAG_BYTES);
  const body = stored.subarray(MAGIC.length + NONCE_BYTES, stored.length - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const plain = decipher.update(body);
  try {
    return Buffer.concat([plain, decipher.final()]);
  } catch {
    return null;
  }
}

function objectAad(objectName: string): Buffer {
  return Buffer.from(`volume-backup object v1\0${objectName}`, 'utf8');
}

/** The codec of an unlocked repository. */
export class AesGcmCodec implements ObjectCodec {
  readonly encrypted = true;
  private readonly key: Buffer;

  constructor(masterKey: Buffer, repositoryId: string) {
    // A separate key for objects, so the master key itself never encrypts data.
    this.key = Buffer.from(hkdfSync('sha256', masterKey, Buffer.from(repositoryId, 'utf8'), 'volume-backup objects v1', KEY_BYTES));
  }

  seal(plain: Buffer, objectName: string): Buffer {
    return gcmSeal(this.key, plain, objectAad(objectName));
  }

  open(stored: Buffer, objectName: string): Buffer {
    if (stored.length < ENCRYPTION_OVERHEAD) {
      throw encryptionError(`it is ${stored.length} bytes, too short to be an encrypted object (truncated?)`);
    }
    if (!stored.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw encryptionError('it is not an encrypted object of this format (overwritten, or written without encryption?)');
    }
    const plain = gcmOpen(this.key, stored, objectAad(objectName));
    if (!plain) throw encryptionError('authentication failed: its bytes were altered or truncated, or it was moved from another object name');
    return plain;
  }
}

/** Unlocked master keys by repository and passphrase, so a repository made or opened again skips scrypt. */
const unlocked = new Map<string, Buffer>();
const UNLOCKED_MAX = 16;

function unlockedKey(config: RepositoryConfig, passphrase: string): string {
  const e = config.encryption!;
  return createHash('sha256').update(JSON.stringify([config.id, e.salt, e.N, e.r, e.p, e.wrappedKey, passphrase])).digest('hex');
}

function remember(key: string, masterKey: Buffer): void {
  if (unlocked.size >= UNLOCKED_MAX) unlocked.delete(unlocked.keys().next().value!);
  unlocked.set(key, masterKey);
}

/** Make the encryption parameters of a new repository: a fresh master key wrapped by the passphrase. */
export async function newEncryptionParams(repositoryId: string, passphrase: string, kdf: KdfCost = DEFAULT_KDF): Promise<EncryptionParams> {
  checkPassphrase(passphrase);
  checkKdf(kdf);
  const salt = randomBytes(32);
  const masterKey = randomBytes(KEY_BYTES);
  const base = { algorithm: 'aes-256-gcm' as const, kdf: 'scrypt' as const, N: kdf.N, r: kdf.r, p: kdf.p, salt: salt.toString('base64') };
  const wrappingKey = await deriveWrappingKey(passphrase, salt, kdf);
  const wrapped = gcmSeal(wrappingKey, masterKey, wrapContext(repositoryId, base));
  const params: EncryptionParams = { ...base, wrappedKey: wrapped.toString('base64') };
  remember(unlockedKey({ id: repositoryId, encryption: params } as RepositoryConfig, passphrase), masterKey);
  return params;
}

/** Unwrap the master key. Throws ENCRYPTION with a clear message on a missing or wrong passphrase. */
async function unlock(config: RepositoryConfig, passphrase: string): Promise<Buffer> {
  const e = config.encryption!;
  const cacheKey = unlockedKey(config, passphrase);
  const cached = unlocked.get(cacheKey);
  if (cached) return cached;
  checkKdf(e);
  const salt = Buffer.from(e.salt, 'base64');
  const wrapped = Buffer.from(e.wrappedKey, 'base64');
  if (salt.length < 16 || wrapped.length !== ENCRYPTION_OVERHEAD + KEY_BYTES || !wrapped.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new VolumeBackupError('CORRUPT', 'repository.json is damaged: its encryption salt or wrapped key is malformed');
  }
  const wrappingKey = await deriveWrappingKey(passphrase, salt, e);
  const masterKey = gcmOpen(wrappingKey, wrapped, wrapContext(config.id, e));
  if (!masterKey) {
    throw encryptionError('wrong passphrase for this encrypted repository (or its repository.json was altered): nothing was read or written');
  }
  remember(cacheKey, masterKey);
  return masterKey;
}

/** The codec for a repository: identity when it is not encrypted; otherwise unlocked with the passphrase. */
export async function makeCodecFor(config: RepositoryConfig, passphrase: string | undefined): Promise<ObjectCodec> {
  if (!config.encryption) return IDENTITY_CODEC;
  if (!passphrase) throw encryptionError(`this repository is encrypted: give its passphrase (${PASSPHRASE_HELP})`);
  return new AesGcmCodec(await unlock(config, passphrase), config.id);
}
