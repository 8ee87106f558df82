/**
 * Retries for object-store drivers: exponential backoff with full jitter (delay drawn uniformly from
 * [0, min(maxDelay, base * 2^attempt)]), bounded by attempts and total time. The drivers turn their
 * SDK's own retries off so these are the ones that count, and every retry is logged with its reason.
 */
import { VolumeBackupError, cancelled, errorMessage } from '../errors';
import { sleep } from '../util/concurrency';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** No new attempt starts after this much time since the first one. */
  maxElapsedMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * An attempt that has not settled after this long (plus one second per MiB it carries) is given up
   * and retried: a reply cut short can leave a client waiting forever.
   */
  attemptTimeoutMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 8, maxElapsedMs: 120_000, baseDelayMs: 200, maxDelayMs: 15_000, attemptTimeoutMs: 60_000 };

export interface RetryContext {
  /** What is being done, for log lines: "PUT s3://bucket/key". */
  what: string;
  /** Why `err` is worth another attempt (a short reason), or null when retrying cannot help. */
  classify: (err: unknown) => string | null;
  policy?: Partial<RetryPolicy>;
  signal?: AbortSignal;
  log?: { warn(message: string): void };
  /** Bytes the operation moves, to stretch the attempt timeout. */
  bytes?: number;
}

/** Thrown by drivers when a body ended early or did not match its digest: the next attempt may succeed. */
export class TransientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransientError';
  }
}

/**
 * Run `op` until it succeeds, fails with an error `classify` deems permanent, or the budget is spent.
 * `op` gets a signal that fires when the caller cancels or the attempt times out.
 */
export async function withRetry<T>(op: (signal: AbortSignal, attempt: number) => Promise<T>, ctx: RetryContext): Promise<T> {
  const policy = { ...DEFAULT_RETRY_POLICY, ...ctx.policy };
  const started = Date.now();
  const timeoutMs = policy.attemptTimeoutMs + Math.round(((ctx.bytes ?? 0) / (1024 * 1024)) * 1000);
  for (let attempt = 1; ; attempt++) {
    if (ctx.signal?.aborted) throw cancelled(ctx.signal.reason);
    try {
      return await attemptWithTimeout(op, attempt, timeoutMs, ctx.signal);
    } catch (err) {
      if (ctx.signal?.aborted) throw cancelled(ctx.signal.reason);
      const reason = ctx.classify(err);
      if (reason === null) throw err;
      const delay = Math.random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      const elapsed = Date.now() - started;
      if (attempt >= policy.maxAttempts || elapsed + delay > policy.maxElapsedMs) {
        throw new VolumeBackupError(
          'STORAGE',
          `${ctx.what} failed after ${attempt} attempts in ${(elapsed / 1000).toFixed(1)} s: ${reason} (${errorMessage(err)})`,
          { attempts: attempt },
          { cause: err },
        );
      }
      ctx.log?.warn(`${ctx.what}: ${reason}; retry ${attempt}/${policy.maxAttempts - 1} in ${Math.round(delay)} ms`);
      await sleep(delay, ctx.signal);
    }
  }
}

async function attemptWithTimeout<T>(op: (signal: AbortSignal, attempt: number) => Promise<T>, attempt: number, timeoutMs: number, outer?: AbortSignal): Promise<T> {
  const timeout = new AbortController();
  const signal = outer ? AbortSignal.any([outer, timeout.signal]) : timeout.signal;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new TransientError(`no reply within ${(timeoutMs / 1000).toFixed(1)} s`);
      timeout.abort(err);
      reject(err);
    }, timeoutMs);
  });
  try {
    return await Promise.race([op(signal, attempt), expired]);
  } finally {
    clearTimeout(timer);
  }
}

const NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND',
  'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNCLOSED',
]);

/**
 * The reason shared by both drivers: HTTP status (429, 408, 5xx), connection errors anywhere in the
 * cause chain, and our own TransientError. Returns null for anything else.
 */
export function transientReason(err: unknown, status: number | undefined): string | null {
  if (status === 429) return 'throttled (429)';
  if (status === 408) return 'request timeout (408)';
  if (status !== undefined && status >= 500 && status <= 599) return `server error (${status})`;
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof TransientError) return e.message;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return `connection error (${code})`;
    const name = (e as { name?: unknown }).name;
    if (name === 'TimeoutError' || name === 'RequestTimeout') return 'timed out';
    const message = errorMessage(e);
    if (/socket hang up|premature close|aborted|ECONNRESET|other side closed|terminated/i.test(message)) return `connection error (${message})`;
  }
  return null;
}
