/**
 * Runs a program with an argument array: never through a shell (no quoting, no injection), always with a
 * timeout, cancelled by an AbortSignal. Injectable, so tests can check the exact commands of a provider
 * that cannot run here (LVM needs device-mapper).
 */
import { execFile } from 'child_process';
import { VolumeBackupError, cancelled } from '../errors';

export interface RunOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export type CommandRunner = (file: string, args: readonly string[], options: RunOptions) => Promise<RunResult>;

const MAX_OUTPUT = 4 * 1024 * 1024;

/** Which package provides a command this project uses, for the "not found" message. */
const PACKAGES: Record<string, string> = { btrfs: 'btrfs-progs', lvcreate: 'lvm2', lvremove: 'lvm2', lvs: 'lvm2', cp: 'coreutils' };

export function describeCommand(file: string, args: readonly string[]): string {
  return [file, ...args].map((a) => (/^[A-Za-z0-9_./=:%,+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

export const runCommand: CommandRunner = (file, args, options) => {
  if (options.signal?.aborted) return Promise.reject(cancelled(options.signal.reason));
  return new Promise((resolve, reject) => {
    execFile(
      file,
      [...args],
      { timeout: options.timeoutMs, signal: options.signal, maxBuffer: MAX_OUTPUT, encoding: 'utf8', windowsHide: true },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        if (options.signal?.aborted) return reject(cancelled(options.signal.reason));
        reject(commandError(file, args, options.timeoutMs, err as NodeJS.ErrnoException & { killed?: boolean; signal?: string }, stderr));
      },
    );
  });
};

function commandError(
  file: string,
  args: readonly string[],
  timeoutMs: number,
  err: NodeJS.ErrnoException & { killed?: boolean; signal?: string; code?: unknown },
  stderr: string,
): VolumeBackupError {
  const what = describeCommand(file, args);
  let why: string;
  if (err.code === 'ENOENT') {
    const pkg = PACKAGES[file];
    why = `command ${file} not found${pkg ? ` (install ${pkg})` : ''}`;
  } else if (err.killed && err.signal) {
    why = `timed out after ${Math.round(timeoutMs / 1000)} s and was stopped`;
  } else if (typeof err.code === 'number') {
    why = `exited with code ${err.code}`;
  } else if (err.signal) {
    why = `was killed by ${err.signal}`;
  } else {
    why = err.message;
  }
  const tail = stderr.trim().split('\n').slice(-5).join('\n');
  return new VolumeBackupError('SNAPSHOT', `${what}: ${why}${tail ? `: ${tail}` : ''}`, {
    command: [file, ...args],
    exitCode: typeof err.code === 'number' ? err.code : null,
    notFound: err.code === 'ENOENT',
  });
}
