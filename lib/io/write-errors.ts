/**
 * A failed write, said so a user can act on it. "ENOSPC: no space left on device, write" names neither
 * what was written nor what to do; this names both and keeps the system error as the cause.
 */
import { VolumeBackupError } from '../errors';

/** Where the write went: an object of a repository, or a restore target. */
export type WritePlace = { kind: 'repository'; what: string; location: string } | { kind: 'target'; path: string };

const REASONS: Record<string, { reason: string; repository: (location: string) => string; target: (path: string) => string }> = {
  ENOSPC: {
    reason: 'no space left on device',
    repository: (l) => `free space on the file system of ${l}, or prune old backups (volume-backup prune)`,
    target: (p) => `free space on the file system of ${p}, or restore to a larger one`,
  },
  EDQUOT: {
    reason: 'disk quota exceeded',
    repository: (l) => `raise this user's quota for ${l}, free space there, or prune old backups (volume-backup prune)`,
    target: (p) => `raise this user's quota for ${p} or free space there`,
  },
  EACCES: {
    reason: 'permission denied',
    repository: (l) => `let this user write to ${l}, or run as a user who may`,
    target: (p) => `let this user write to ${p}, or choose another target`,
  },
  EPERM: {
    reason: 'operation not permitted',
    repository: (l) => `let this user write to ${l}, or run as a user who may`,
    target: (p) => `let this user write to ${p}, or choose another target`,
  },
  EROFS: {
    reason: 'read-only file system',
    repository: (l) => `mount the file system of ${l} read-write, or use another repository`,
    target: (p) => `mount the file system of ${p} read-write, or choose another target`,
  },
  EIO: {
    reason: 'input/output error',
    repository: (l) => `the disk under ${l} may be failing: check the system log (dmesg) and the disk before trusting it`,
    target: (p) => `the disk under ${p} may be failing: check the system log (dmesg) and the disk`,
  },
  EFBIG: {
    reason: 'file too large',
    repository: (l) => `the file system of ${l} cannot hold a file this large: use a smaller --chunk-size or another file system`,
    target: (p) => `the file system of ${p} cannot hold a file this large: restore to a block device or another file system`,
  },
};

/**
 * `err` as a STORAGE VolumeBackupError naming the write and what to do, when it is one of the system
 * errors above; anything else (already clear, or not a write fault) is returned unchanged.
 */
export function writeFailure(err: unknown, place: WritePlace): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const known = typeof code === 'string' && !(err instanceof VolumeBackupError) ? REASONS[code] : undefined;
  if (!known) return err;
  const message =
    place.kind === 'repository'
      ? `cannot write ${place.what} to the repository at ${place.location}: ${known.reason} (${code}): ${known.repository(place.location)}`
      : `cannot write the restore target ${place.path}: ${known.reason} (${code}): ${known.target(place.path)}`;
  return new VolumeBackupError('STORAGE', message, { code, ...(place.kind === 'repository' ? { object: place.what } : { target: place.path }) }, { cause: err });
}
