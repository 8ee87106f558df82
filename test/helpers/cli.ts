/**
 * Running the real `volume-backup` binary in a child process, as a user would: arguments, environment,
 * stdin; exit code, stdout and stderr back. Also spawning it for crash tests (the caller kills it).
 */
import { ChildProcess, spawn } from 'child_process';
import * as path from 'path';

/** bin/volume-backup.js, from dist/test/helpers/ or test/helpers/. */
export const CLI = path.resolve(__dirname, '..', '..', ...(path.basename(path.resolve(__dirname, '..', '..')) === 'dist' ? ['..'] : []), 'bin', 'volume-backup.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  input?: string;
  cwd?: string;
  timeoutMs?: number;
  /** Run as this user and group (the tests run as root; permission faults need someone else). */
  uid?: number;
  gid?: number;
}

/** The environment for the CLI: ours without any passphrase, plus `extra`. */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.VOLUME_BACKUP_PASSPHRASE;
  return { ...env, ...extra };
}

export function spawnCli(args: string[], options: CliOptions = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], {
    env: options.env ?? cliEnv(),
    cwd: options.cwd,
    uid: options.uid,
    gid: options.gid,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, options);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin!.end(options.input ?? '');
  });
}

/** Run and expect success; returns stdout parsed as JSON (--json is added). */
export async function cliJson<T = unknown>(args: string[], options?: CliOptions): Promise<T> {
  const result = await runCli([...args, '--json'], options);
  if (result.code !== 0) throw new Error(`volume-backup ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}
