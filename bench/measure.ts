/**
 * Running a command the way a user would and measuring it: wall time, CPU time and peak RSS of the
 * child (GNU time's "maximum resident set size" when /usr/bin/time exists, else VmHWM polled from
 * /proc/<pid>/status), plus the helpers every measurement needs (bytes in a directory, page cache).
 */
import { spawn, spawnSync } from 'child_process';
import { existsSync, promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface Measured {
  wallSeconds: number;
  cpuSeconds: number | null;
  peakRssBytes: number | null;
  /** Bytes the process read from / wrote to storage (GNU time's %I / %O: page-cache hits are not counted). */
  diskReadBytes?: number;
  diskWriteBytes?: number;
  stdout: string;
  stderr: string;
}

const GNU_TIME = '/usr/bin/time';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Allowed exit codes (default [0]). */
  okCodes?: number[];
}

/** Run `cmd args` to completion; throws with its stderr when it fails. */
export async function measure(cmd: string, args: string[], options: RunOptions = {}): Promise<Measured> {
  const useTime = existsSync(GNU_TIME);
  const timeFile = path.join(os.tmpdir(), `bench-time-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const argv = useTime ? ['-f', '%e %U %S %M %I %O', '-o', timeFile, cmd, ...args] : args;
  const started = process.hrtime.bigint();
  const child = spawn(useTime ? GNU_TIME : cmd, argv, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { if (stdout.length < 1 << 20) stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { if (stderr.length < 1 << 20) stderr += d.toString(); });
  let polledHwm = 0;
  const poll = useTime ? null : setInterval(() => {
    fs.readFile(`/proc/${child.pid}/status`, 'utf8').then((s) => {
      const m = /VmHWM:\s+(\d+) kB/.exec(s);
      if (m) polledHwm = Math.max(polledHwm, Number(m[1]) * 1024);
    }, () => undefined);
  }, 20);
  const code: number = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? -1));
  });
  if (poll) clearInterval(poll);
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  let cpuSeconds: number | null = null;
  let peakRssBytes: number | null = polledHwm || null;
  let disk: { diskReadBytes?: number; diskWriteBytes?: number } = {};
  if (useTime) {
    const text = await fs.readFile(timeFile, 'utf8').catch(() => '');
    await fs.rm(timeFile, { force: true });
    const last = text.trim().split('\n').pop() ?? '';
    const m = /^([\d.]+) ([\d.]+) ([\d.]+) (\d+) (\d+) (\d+)$/.exec(last);
    if (m) {
      cpuSeconds = Number(m[2]) + Number(m[3]);
      peakRssBytes = Number(m[4]) * 1024;
      disk = { diskReadBytes: Number(m[5]) * 512, diskWriteBytes: Number(m[6]) * 512 };
    }
  }
  if (!(options.okCodes ?? [0]).includes(code)) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${stderr.trim().slice(-2000) || stdout.trim().slice(-2000)}`);
  }
  return { wallSeconds, cpuSeconds, peakRssBytes, ...disk, stdout, stderr };
}

/** Apparent size of every file under `dir` (what `du -sb` reports). */
export async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await dirBytes(p);
    else if (e.isFile()) total += (await fs.stat(p)).size;
  }
  return total;
}

export function commandExists(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Page cache policy for the whole run. "as-is" (the default) touches nothing between steps, as when a
 * user runs the commands one after another: what a step wrote or read stays cached or not as the tool
 * left it (this project writes its objects and restores with O_DIRECT, so they are not cached), and
 * write-back a step left behind is paid by the steps after it. "warm" runs `sync` and reads each input
 * just before its step (what the bench did until 2026-11-28: it gave this project's restore a cached
 * repository that a user's restore does not have). "cold" runs `sync` and drops the cache before every
 * step (needs root and a writable /proc/sys/vm/drop_caches, else it falls back to warm and says so).
 */
export class PageCache {
  constructor(public mode: 'as-is' | 'warm' | 'cold') {}

  async prepare(inputs: string[]): Promise<void> {
    if (this.mode === 'as-is') return;
    // Flush what earlier steps left dirty, so no step pays for another's write-back.
    spawnSync('sync');
    if (this.mode === 'cold') {
      try {
        await fs.writeFile('/proc/sys/vm/drop_caches', '3\n');
        return;
      } catch (err) {
        process.stderr.write(`cannot drop the page cache (${(err as Error).message}): measuring with a warm cache instead\n`);
        this.mode = 'warm';
      }
    }
    for (const input of inputs) await readAll(input);
  }
}

async function readAll(target: string): Promise<void> {
  const st = await fs.stat(target).catch(() => null);
  if (!st) return;
  if (st.isDirectory()) {
    for (const e of await fs.readdir(target)) await readAll(path.join(target, e));
    return;
  }
  if (!st.isFile()) return;
  const handle = await fs.open(target, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 << 20);
    for (let pos = 0; pos < st.size; pos += buf.length) await handle.read(buf, 0, buf.length, pos);
  } finally {
    await handle.close();
  }
}
