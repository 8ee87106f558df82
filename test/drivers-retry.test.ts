/** The shared retry policy: what is retried, how often, how long it waits, and what comes out. */
import * as assert from 'assert';
import { VolumeBackupError } from '../lib/errors';
import { TransientError, transientReason, withRetry } from '../lib/drivers/retry';

const fast = { baseDelayMs: 1, maxDelayMs: 4 };

function failing(times: number, err: () => unknown) {
  let calls = 0;
  const op = async () => {
    calls++;
    if (calls <= times) throw err();
    return 'done';
  };
  return { op, calls: () => calls };
}

describe('retry policy', () => {
  it('retries transient failures, logging each with its reason, then succeeds', async () => {
    const warnings: string[] = [];
    const f = failing(3, () => Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    const result = await withRetry(f.op, { what: 'PUT s3://b/k', classify: (e) => transientReason(e, undefined), policy: fast, log: { warn: (m) => warnings.push(m) } });
    assert.strictEqual(result, 'done');
    assert.strictEqual(f.calls(), 4);
    assert.strictEqual(warnings.length, 3);
    for (const w of warnings) assert.match(w, /^PUT s3:\/\/b\/k: connection error \(ECONNRESET\); retry \d\/7 in \d+ ms$/);
  });

  it('fails at once on errors retrying cannot fix', async () => {
    const f = failing(5, () => Object.assign(new Error('denied'), { status: 403 }));
    await assert.rejects(withRetry(f.op, { what: 'x', classify: (e) => transientReason(e, 403), policy: fast }), /denied/);
    assert.strictEqual(f.calls(), 1);
  });

  it('stops after maxAttempts with a STORAGE error that says what failed and why', async () => {
    const f = failing(100, () => new Error('busy'));
    await assert.rejects(withRetry(f.op, { what: 'GET gs://b/o', classify: () => 'server error (503)', policy: { ...fast, maxAttempts: 3 } }), (err: VolumeBackupError) => {
      assert.strictEqual(err.code, 'STORAGE');
      assert.match(err.message, /^GET gs:\/\/b\/o failed after 3 attempts in [\d.]+ s: server error \(503\) \(busy\)$/);
      assert.strictEqual(err.details?.attempts, 3);
      assert.strictEqual((err.cause as Error).message, 'busy');
      return true;
    });
    assert.strictEqual(f.calls(), 3);
  });

  it('waits at most min(maxDelay, base * 2^n) before retry n (full jitter)', async () => {
    const warnings: string[] = [];
    const f = failing(6, () => new TransientError('flaky'));
    await withRetry(f.op, { what: 'x', classify: (e) => transientReason(e, undefined), policy: { baseDelayMs: 2, maxDelayMs: 20 }, log: { warn: (m) => warnings.push(m) } });
    const delays = warnings.map((w) => Number(/in (\d+) ms/.exec(w)![1]));
    delays.forEach((d, i) => assert.ok(d <= Math.min(20, 2 * 2 ** i), `retry ${i + 1} waited ${d} ms`));
  });

  it('gives up an attempt that never answers and tries again', async () => {
    let calls = 0;
    const op = (signal: AbortSignal) => {
      calls++;
      if (calls === 1) return new Promise<string>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      return Promise.resolve('second');
    };
    const result = await withRetry(op, { what: 'x', classify: (e) => transientReason(e, undefined), policy: { ...fast, attemptTimeoutMs: 20 } });
    assert.strictEqual(result, 'second');
  });

  it('stops waiting when cancelled', async () => {
    const controller = new AbortController();
    const f = failing(100, () => new TransientError('flaky'));
    setTimeout(() => controller.abort(new Error('user stop')), 30);
    await assert.rejects(withRetry(f.op, { what: 'x', classify: () => 'flaky', signal: controller.signal, policy: { baseDelayMs: 10_000, maxDelayMs: 10_000, maxAttempts: 3 } }), (err: VolumeBackupError) => err.code === 'CANCELLED');
  });

  it('classifies statuses and connection errors', () => {
    assert.match(transientReason(new Error('x'), 429)!, /throttled/);
    assert.match(transientReason(new Error('x'), 503)!, /server error \(503\)/);
    assert.match(transientReason(new Error('x'), 500)!, /server error/);
    assert.strictEqual(transientReason(new Error('x'), 404), null);
    assert.strictEqual(transientReason(new Error('x'), 412), null);
    assert.strictEqual(transientReason(new Error('x'), 403), null);
    assert.match(transientReason(new Error('outer', { cause: Object.assign(new Error('inner'), { code: 'EPIPE' }) }), undefined)!, /EPIPE/);
    assert.match(transientReason(new Error('socket hang up'), undefined)!, /connection error/);
    assert.strictEqual(transientReason(new Error('No such object'), undefined), null);
  });
});
