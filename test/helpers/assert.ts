/**
 * Assertions on the errors the engine throws: a VolumeBackupError with the expected code and a message
 * that says what went wrong (a user reads the message, scripts read the code).
 */
import { strict as assert } from 'assert';
import { VolumeBackupError } from '../../lib/errors';

/** A validator for assert.rejects / assert.throws: a VolumeBackupError with this code (and text, if given). */
export function isError(code: string, text?: RegExp): (err: unknown) => true {
  return (err: unknown) => {
    assert.ok(err instanceof VolumeBackupError, `expected a VolumeBackupError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (text) assert.match(err.message, text);
    return true;
  };
}

/** Awaits a promise that must reject with a VolumeBackupError of this code and message; returns the error. */
export async function expectError(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<VolumeBackupError> {
  try {
    await promise;
  } catch (err) {
    isError(code, pattern)(err);
    return err as VolumeBackupError;
  }
  assert.fail(`expected an error ${code}`);
}
