/**
 * A running CLI child process whose stderr lines can be awaited: to stop or kill a worker at a known
 * point (e.g. its first `--progress json` chunk event), as a crash would.
 */
import { ChildProcess, spawn } from 'child_process';
import { CLI, CliResult } from './cli';

export interface RunningCli {
  child: ChildProcess;
  pid: number;
  /** Resolves when the process has exited (however it exited). */
  result: Promise<CliResult>;
  /** The first stderr line (already seen or still to come) that `match` accepts. */
  waitForLine(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let partial = '';
  const lines: string[] = [];
  const waiters: { match: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => {
    stderr += d;
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  const result = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    child,
    pid: child.pid!,
    result,
    waitForLine(match, timeoutMs) {
      const seen = lines.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        // Without a limit it waits as long as the process runs (the test's own timeout is the bound).
        const timer = timeoutMs === undefined ? undefined : setTimeout(() => reject(new Error(`no matching line from volume-backup ${args[0]} within ${timeoutMs} ms; stderr so far:\n${stderr}`)), timeoutMs);
        const entry = {
          match,
          resolve: (line: string) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        waiters.push(entry);
        void result.then(() => {
          if (!waiters.includes(entry)) return;
          clearTimeout(timer);
          reject(new Error(`volume-backup ${args[0]} exited before the expected line; stderr:\n${stderr}`));
        });
      });
    },
  };
}

/** A `--progress json` chunk event. */
export function isChunkEvent(line: string): boolean {
  try {
    return (JSON.parse(line) as { type?: string }).type === 'chunk';
  } catch {
    return false;
  }
}

/**
 * Stop the process at its first chunk and kill it with SIGKILL: a crash mid-operation, at a point
 * where its record and some objects exist. Returns the backup id from the progress event.
 */
export async function killAtFirstChunk(cli: RunningCli): Promise<string> {
  const line = await cli.waitForLine(isChunkEvent);
  process.kill(cli.pid, 'SIGSTOP');
  return (JSON.parse(line) as { backupId: string }).backupId;
}

export async function finishKill(cli: RunningCli): Promise<CliResult> {
  process.kill(cli.pid, 'SIGKILL');
  return cli.result;
}
