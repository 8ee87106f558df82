/**
 * The contenders, each driven through its command line as a user would: this project's CLI, BorgBackup
 * (lz4, unencrypted: its fast setting) and restic (zstd auto, encrypted: it cannot be turned off).
 * Each backs up `<dir>/<file>` by a relative path, so the incremental sees the same file changed.
 */
import { spawnSync } from 'child_process';
import { existsSync, promises as fs } from 'fs';
import * as path from 'path';
import { Measured, commandExists, measure } from './measure';

export interface Tool {
  name: string;
  /** What is being measured: version and settings. */
  describe(): string;
  /** null when usable, else why not. */
  unavailable(): string | null;
  init(repo: string): Promise<void>;
  full(repo: string, dir: string, file: string): Promise<Measured>;
  incremental(repo: string, dir: string, file: string): Promise<Measured>;
  /** Restore the newest backup; returns the measurement and the restored file. */
  restore(repo: string, outDir: string, dir: string, file: string): Promise<{ measured: Measured; file: string }>;
}

/** Extra CLI options for variants of this project's tool (chunk size, block size, compression). */
export interface OursSettings {
  chunkSize?: string;
  blockSize?: string;
  compression?: string;
  level?: number;
}

/**
 * `bin` is the package's bin/volume-backup.js, run as an installed `volume-backup` is: the script
 * itself (its `#!/usr/bin/env node` line picks the node on PATH), a new process per command.
 */
export function ours(bin: string, settings: OursSettings = {}, env: NodeJS.ProcessEnv = {}): Tool {
  const latest = new Map<string, string>();
  // Chunk and block sizes are fixed by the full backup; the compression is chosen per backup.
  const sizes = [
    ...(settings.chunkSize ? ['--chunk-size', settings.chunkSize] : []),
    ...(settings.blockSize ? ['--block-size', settings.blockSize] : []),
  ];
  const codec = [
    ...(settings.compression ? ['--compression', settings.compression] : []),
    ...(settings.level !== undefined ? [`--compression-level=${settings.level}`] : []),
  ];
  const run = async (repo: string, args: string[], cwd?: string): Promise<Measured> =>
    measure(bin, [...args, '--repo', repo, '--json'], { cwd, env }); // no terminal: no progress bar, as for a user's script
  const backup = async (repo: string, dir: string, file: string, mode: string[]): Promise<Measured> => {
    const m = await run(repo, ['create', '--volume', file, '--volume-id', 'bench', ...mode, ...(mode.length ? [] : sizes), ...codec], dir);
    latest.set(repo, (JSON.parse(m.stdout) as { id: string }).id);
    return m;
  };
  return {
    name: 'volume-backup',
    describe: () => `this project's CLI (${settings.compression ?? 'zstd'}${settings.level !== undefined ? ` level ${settings.level}` : ''}, chunk ${settings.chunkSize ?? 'default'}, block ${settings.blockSize ?? 'default'}, unencrypted)`,
    unavailable: () => null,
    init: async () => undefined,
    full: (repo, dir, file) => backup(repo, dir, file, []),
    incremental: (repo, dir, file) => backup(repo, dir, file, ['--incremental']),
    async restore(repo, outDir, _dir, file) {
      const target = path.join(outDir, file);
      const measured = await run(repo, ['restore', '--backup', latest.get(repo)!, '--target', target]);
      return { measured, file: target };
    },
  };
}

function versionOf(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return (r.stdout || r.stderr || '').trim().split('\n')[0];
}

export function borg(home: string): Tool {
  const env = {
    BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
    BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
    BORG_BASE_DIR: home,
  };
  let archive = 0;
  return {
    name: 'borg',
    describe: () => `${versionOf('borg', ['--version'])} (lz4, unencrypted, extract --sparse)`,
    unavailable: () => (commandExists('borg') ? null : 'borg is not installed (Debian package borgbackup)'),
    async init(repo) {
      await measure('borg', ['init', '-e', 'none', repo], { env });
    },
    full: (repo, dir, file) => measure('borg', ['create', '--compression', 'lz4', `${repo}::a${++archive}`, file], { cwd: dir, env }),
    incremental: (repo, dir, file) => measure('borg', ['create', '--compression', 'lz4', `${repo}::a${++archive}`, file], { cwd: dir, env }),
    async restore(repo, outDir, _dir, file) {
      await fs.mkdir(outDir, { recursive: true });
      const measured = await measure('borg', ['extract', '--sparse', `${repo}::a${archive}`], { cwd: outDir, env });
      return { measured, file: path.join(outDir, file) };
    },
  };
}

export function restic(cacheDir: string): Tool {
  const env = { RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: cacheDir };
  return {
    name: 'restic',
    describe: () => `${versionOf('restic', ['version'])} (repository v2, zstd auto, encrypted)`,
    unavailable: () => (commandExists('restic') ? null : 'restic is not installed (Debian package restic)'),
    async init(repo) {
      await measure('restic', ['init', '--repository-version', '2', '--repo', repo], { env });
    },
    full: (repo, dir, file) => measure('restic', ['backup', '--repo', repo, file], { cwd: dir, env }),
    incremental: (repo, dir, file) => measure('restic', ['backup', '--repo', repo, file], { cwd: dir, env }),
    async restore(repo, outDir, dir, file) {
      const measured = await measure('restic', ['restore', 'latest', '--repo', repo, '--target', outDir], { env });
      // restic 0.14 keeps the path as given (relative here); later versions restore the absolute one.
      const relative = path.join(outDir, file);
      return { measured, file: existsSync(relative) ? relative : path.join(outDir, path.resolve(dir, file)) };
    },
  };
}
