/** What the commands share: the repository options, number parsing, output, progress. */
import { promises as fs } from 'fs';
import { VolumeBackupError, invalid } from '../errors';
import type { ProgressEvent, ProgressListener } from '../engine/types';
import type { Repository } from '../repository/repository';
import type { CommandContext, OptionSpec, Values } from './command';

export const REPO_OPTIONS: OptionSpec = {
  repo: { type: 'string' },
  container: { type: 'string' },
  host: { type: 'string' },
  'passphrase-file': { type: 'string' },
  json: { type: 'boolean' },
  'backend-module': { type: 'string', multiple: true },
};

export const PROGRESS_OPTIONS: OptionSpec = {
  progress: { type: 'string' },
};

export const REPO_USAGE = `  --repo R               repository: a path, file:///path, s3://bucket[/prefix]?… or gs://bucket[/prefix]?…;
                         list, show, restore and verify also read a Cinder store (read-only):
                         cinder:PATH, cinder+s3://bucket[/prefix]?…, cinder+gs://… (cinder+ any backend's URL)
  --container NAME       sub-directory / key prefix inside the repository location (default: none)
  --host NAME            host name recorded as owner (default: this machine's name)
  --passphrase-file F    passphrase of an encrypted repository (or VOLUME_BACKUP_PASSPHRASE)
  --json                 print the result as JSON on stdout
  --backend-module M     load a third-party storage backend (an npm package name or a path; repeatable;
                         or VOLUME_BACKUP_BACKENDS=M1,M2); its URL scheme then works in --repo`;

export function str(values: Values, key: string): string | undefined {
  const v = values[key];
  return typeof v === 'string' ? v : undefined;
}

export function required(values: Values, key: string): string {
  const v = str(values, key);
  if (v === undefined || v === '') throw invalid(`--${key} is required`);
  return v;
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** "8M", "32KiB", "4096" → bytes. */
export function parseBytes(label: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw invalid(`--${label} must be a size in bytes such as 4096, 32K or 8M, not ${JSON.stringify(text)}`);
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n) || n <= 0) throw invalid(`--${label} is out of range: ${text}`);
  return n;
}

export async function passphraseFrom(values: Values, ctx: CommandContext): Promise<string | undefined> {
  const file = str(values, 'passphrase-file');
  if (file) return (await fs.readFile(file, 'utf8')).replace(/\r?\n$/, '');
  return ctx.env.VOLUME_BACKUP_PASSPHRASE || undefined;
}

/** Register the third-party backends VOLUME_BACKUP_BACKENDS and --backend-module name, before --repo is read. */
export async function loadBackends(values: Values, ctx: CommandContext): Promise<void> {
  const given = values['backend-module'];
  const { backendModulesFromEnv, loadBackendModules } = await import('../backends/registry');
  const names = [...backendModulesFromEnv(ctx.env), ...(Array.isArray(given) ? given.map(String) : [])];
  if (names.length) loadBackendModules(names);
}

export async function openRepo(values: Values, ctx: CommandContext, create = false): Promise<Repository> {
  // Loaded on use: the repository code (and zod) is not needed for --help or bad usage.
  const { openRepository } = await import('../open');
  await loadBackends(values, ctx);
  return openRepository(required(values, 'repo'), {
    container: str(values, 'container'),
    host: str(values, 'host'),
    create,
    passphrase: await passphraseFrom(values, ctx),
    log: { info: (m) => ctx.stderr.write(`${m}\n`), warn: (m) => ctx.stderr.write(`warning: ${m}\n`) },
  });
}

export function printJson(ctx: CommandContext, value: unknown): void {
  ctx.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

/** Progress on stderr: a bar on a terminal, JSON lines with --progress json, nothing otherwise. */
export function progressReporter(values: Values, ctx: CommandContext): { listener?: ProgressListener; stop(): void } {
  const mode = str(values, 'progress') ?? (ctx.progress.isTTY ? 'bar' : 'none');
  if (!['bar', 'json', 'none'].includes(mode)) throw invalid('--progress must be bar, json or none');
  if (mode === 'json') return { listener: (e) => ctx.stderr.write(JSON.stringify(e) + '\n'), stop: () => undefined };
  if (mode === 'none') return { stop: () => undefined };
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when a bar is drawn on a terminal, not with every command
  const { SingleBar } = require('cli-progress') as typeof import('cli-progress');
  const bar = new SingleBar(
    { format: '{operation} [{bar}] {percent}% | {done}/{total} | {rate}/s | ETA {eta}s', stream: ctx.progress as NodeJS.WritableStream, hideCursor: true, clearOnComplete: true },
  );
  let started = false;
  return {
    listener: (e: ProgressEvent) => {
      const payload = { operation: e.operation, done: formatBytes(e.bytesDone), total: formatBytes(e.bytesTotal), rate: formatBytes(e.bytesPerSecond) };
      if (!started) {
        bar.start(e.bytesTotal, e.bytesDone, payload);
        started = true;
      } else bar.update(e.bytesDone, payload);
    },
    stop: () => started && bar.stop(),
  };
}

export function describeRecordLine(r: { id: string; volumeId: string; kind: string; status: string; dataTimestamp: string; size: number; storedBytes: number; parentId: string | null; name: string }): string {
  return [r.id, r.volumeId, r.kind.padEnd(12), r.status.padEnd(9), r.dataTimestamp, formatBytes(r.size).padStart(10), formatBytes(r.storedBytes).padStart(10), r.parentId ?? '-', r.name].join('  ');
}

export { VolumeBackupError };
