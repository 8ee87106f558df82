/**
 * command: the user's own create and delete commands (ZFS, Ceph RBD, a hypervisor's API, …), each an
 * argument array run without a shell, with a timeout. Placeholders inside any argument:
 *   create: {volume} {name} {dir}        delete: {path} {id} {volume} {name} {dir}
 * The create command prints the snapshot's path on its last non-empty line of output, either alone or as
 * JSON: {"path": "/dev/zvol/tank/vm@x", "id": "tank/vm@x"}.
 * The delete command should succeed when the snapshot is already gone: after a failed create, and at
 * start-up cleanup, it may run for a snapshot that was never made.
 */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { VolumeBackupError, invalid } from '../errors';
import { describeCommand } from './runner';
import { CreateRequest, ProviderContext, RemovalHandle, SnapshotProvider, TemporarySnapshot } from './provider';

export interface CommandOptions {
  create: string[];
  delete: string[];
  /** Default for {dir}: the volume's directory. */
  snapshotDir?: string;
  timeoutMs: number;
}

const CREATE_PLACEHOLDERS = ['volume', 'name', 'dir'];
const DELETE_PLACEHOLDERS = ['path', 'id', 'volume', 'name', 'dir'];
const PLACEHOLDER = /\{([A-Za-z]+)\}/g;

function placeholdersIn(argv: string[]): Set<string> {
  const found = new Set<string>();
  for (const arg of argv) for (const m of arg.matchAll(PLACEHOLDER)) found.add(m[1]);
  return found;
}

/** Refuses an empty command or an unknown placeholder (a typo would otherwise reach the command as text). */
export function checkCommand(label: string, argv: unknown, allowed: string[]): string[] {
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string') || !argv[0]) {
    throw invalid(`the ${label} command must be a non-empty array of arguments, program first`);
  }
  for (const name of placeholdersIn(argv)) {
    if (!allowed.includes(name)) throw invalid(`the ${label} command uses {${name}}; it may use ${allowed.map((a) => `{${a}}`).join(' ')}`);
  }
  return argv;
}

export function fillPlaceholders(argv: string[], values: Record<string, string>): string[] {
  return argv.map((arg) => arg.replace(PLACEHOLDER, (whole, name: string) => (name in values ? values[name] : whole)));
}

/** The last non-empty line of the create command's output: a path, or JSON with path and id. */
export function parseCreateOutput(stdout: string): { path: string; id: string | null } {
  const line = stdout.split('\n').map((l) => l.trim()).filter(Boolean).pop();
  if (!line) throw new VolumeBackupError('SNAPSHOT', 'the create command printed nothing; it must print the snapshot path on its last line');
  let out: { path: string; id: string | null };
  if (line.startsWith('{')) {
    let json: { path?: unknown; id?: unknown };
    try {
      json = JSON.parse(line);
    } catch {
      throw new VolumeBackupError('SNAPSHOT', `the create command's last line is not valid JSON: ${line.slice(0, 200)}`);
    }
    if (typeof json.path !== 'string') throw new VolumeBackupError('SNAPSHOT', `the create command's JSON has no "path": ${line.slice(0, 200)}`);
    if (json.id !== undefined && json.id !== null && typeof json.id !== 'string' && typeof json.id !== 'number') {
      throw new VolumeBackupError('SNAPSHOT', `the create command's JSON has an "id" that is not text: ${line.slice(0, 200)}`);
    }
    out = { path: json.path, id: json.id === undefined || json.id === null ? null : String(json.id) };
  } else {
    out = { path: line, id: null };
  }
  if (!path.isAbsolute(out.path)) throw new VolumeBackupError('SNAPSHOT', `the create command printed ${JSON.stringify(out.path)}, which is not an absolute path`);
  return out;
}

export class CommandProvider implements SnapshotProvider {
  readonly name = 'command' as const;
  constructor(private readonly options: CommandOptions) {
    checkCommand('create', options.create, CREATE_PLACEHOLDERS);
    checkCommand('delete', options.delete, DELETE_PLACEHOLDERS);
  }

  async applies(): Promise<string | null> {
    return null;
  }

  async create(request: CreateRequest, ctx: ProviderContext): Promise<TemporarySnapshot> {
    const volume = path.resolve(request.volume);
    const dir = this.options.snapshotDir ? path.resolve(this.options.snapshotDir) : path.dirname(volume);
    const known: Record<string, string> = { volume, name: request.name, dir };
    const deleteNeedsOutput = [...placeholdersIn(this.options.delete)].some((p) => p === 'path' || p === 'id');
    const timeoutMs = this.options.timeoutMs;
    // Until the create command has said its path, a delete that needs {path} or {id} cannot be written down.
    await request.register({ provider: 'command', argv: deleteNeedsOutput ? null : fillPlaceholders(this.options.delete, known), timeoutMs });
    const [file, ...args] = fillPlaceholders(this.options.create, known);
    const createdAt = new Date();
    const { stdout } = await ctx.runner(file, args, { timeoutMs, signal: ctx.signal });
    let made: { path: string; id: string | null };
    try {
      made = parseCreateOutput(stdout);
    } catch (err) {
      // The snapshot may exist though we cannot name it: say where to look.
      throw new VolumeBackupError('SNAPSHOT', `${(err as Error).message} (command: ${describeCommand(file, args)}); a snapshot named ${request.name} may be left over`);
    }
    const handle: RemovalHandle = {
      provider: 'command',
      argv: fillPlaceholders(this.options.delete, { ...known, path: made.path, id: made.id ?? '' }),
      timeoutMs,
    };
    await request.register(handle);
    try {
      await fsp.stat(made.path);
    } catch (err) {
      throw new VolumeBackupError('SNAPSHOT', `the create command printed ${made.path}, which cannot be opened: ${(err as Error).message}`);
    }
    ctx.log.info(`command: snapshot ${made.id ?? request.name} at ${made.path}`);
    return { provider: 'command', name: request.name, path: made.path, id: made.id, createdAt, handle };
  }
}

export async function removeCommandSnapshot(handle: Extract<RemovalHandle, { provider: 'command' }>, ctx: ProviderContext): Promise<void> {
  if (!handle.argv) {
    throw new VolumeBackupError('SNAPSHOT', 'the delete command needs the path or id the create command never printed; remove the snapshot by hand');
  }
  const [file, ...args] = handle.argv;
  await ctx.runner(file, args, { timeoutMs: handle.timeoutMs });
}
