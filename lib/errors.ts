/**
 * Errors the engine raises. Every message says what went wrong and, where it can, what to do;
 * `code` lets the CLI, the nodes and tests tell them apart without parsing text.
 */
import { describeValue, oneLine } from './text';

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'OBJECT_MISSING'
  | 'CORRUPT'
  | 'CONFLICT'
  | 'PRECONDITION_FAILED'
  | 'HAS_DEPENDENTS'
  | 'INCOMPATIBLE_PARENT'
  | 'BUSY'
  | 'CANCELLED'
  | 'STORAGE'
  | 'AUTH'
  | 'ENCRYPTION'
  /** A snapshot provider could not make or remove a snapshot. */
  | 'SNAPSHOT';

export class VolumeBackupError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VolumeBackupError';
    this.code = code;
    this.details = details;
  }

  /** The message alone: Node-RED's Catch messages and logs show toString(), and a user reads no class names. */
  override toString(): string {
    return this.message;
  }
}

/** A compare-and-swap lost: the object exists (create) or changed since it was read (replace). */
export class PreconditionFailedError extends VolumeBackupError {
  constructor(objectName: string, message?: string) {
    super('PRECONDITION_FAILED', message ?? `object ${objectName} was changed by someone else`, { objectName });
    this.name = 'PreconditionFailedError';
  }
}

/** A driver could not find an object. */
export class ObjectNotFoundError extends VolumeBackupError {
  constructor(container: string, objectName: string) {
    super('OBJECT_MISSING', `object ${objectName} does not exist in container "${container}"`, { container, objectName });
    this.name = 'ObjectNotFoundError';
  }
}

export function invalid(message: string, details?: Record<string, unknown>): VolumeBackupError {
  return new VolumeBackupError('INVALID_ARGUMENT', message, details);
}

export function cancelled(reason?: unknown): VolumeBackupError {
  // Already a cancel error (an abort reason made by cancelled() itself): not "cancelled: cancelled: …".
  if (reason instanceof VolumeBackupError && reason.code === 'CANCELLED') return reason;
  const why = reason instanceof Error ? reason.message : reason ? describeValue(reason) : 'the operation was cancelled';
  return new VolumeBackupError('CANCELLED', `cancelled: ${why}`);
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelled(signal.reason);
}

/**
 * An error to hand to someone who shows it (Node-RED's done(err), which logs and passes toString()):
 * the message on one line with control characters escaped, no class-name prefix; code and cause kept.
 */
export function shownError(err: unknown): Error {
  const message = oneLine(errorMessage(err));
  if (err instanceof VolumeBackupError) return err.message === message ? err : new VolumeBackupError(err.code, message, err.details, { cause: err });
  const shown = new Error(message, { cause: err });
  shown.toString = () => message;
  return shown;
}

export function errorMessage(err: unknown): string {
  // A zod failure's message is a JSON dump of every issue: say the first few in one line instead.
  const issues = (err as { name?: string; issues?: { path: PropertyKey[]; message: string }[] } | null)?.issues;
  if (err instanceof Error && err.name === 'ZodError' && Array.isArray(issues)) {
    const shown = issues.slice(0, 3).map((i) => `${i.path.map(String).join('.') || 'value'}: ${i.message}`);
    return shown.join('; ') + (issues.length > 3 ? `; and ${issues.length - 3} more` : '');
  }
  return err instanceof Error ? err.message : String(err);
}
