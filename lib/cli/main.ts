/**
 * volume-backup: the command line. Parses with node's own util.parseArgs (no dependency needed),
 * turns Ctrl-C/SIGTERM into a cancel that lets the engine clean up, and prints one line per error.
 * Exit codes: 0 success, 1 failure, 2 bad usage, 130 cancelled.
 */
import { parseArgs } from 'util';
import { VolumeBackupError, errorMessage, invalid } from '../errors';
import { closeHashPool } from '../engine/hash-pool';
import { escapeControl, oneLine } from '../text';
import type { Command, CommandContext, OptionSpec } from './command';
import { COMMANDS } from './commands';

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'volume-backup: chunked, incremental, verified backups of disk images and block devices',
    '',
    'usage: volume-backup <command> [options]     (volume-backup <command> --help for its options)',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
  ].join('\n');
}

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d: string) => (text += d)); // a string: the encoding is set above
    process.stdin.on('end', () => resolve(text));
    process.stdin.on('error', reject);
  });
}

/**
 * A stream whose text is shown with its control characters escaped (lines stay lines): names, paths
 * and messages from records and users cannot drive the terminal. Escaped JSON stays the same JSON.
 */
function escaping<S extends NodeJS.WritableStream & { isTTY?: boolean }>(stream: S): S {
  const write = (chunk: string | Uint8Array, ...rest: unknown[]): boolean =>
    (stream.write as (c: string, ...r: unknown[]) => boolean)(
      (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')).split('\n').map(escapeControl).join('\n'),
      ...rest,
    );
  return { write, isTTY: stream.isTTY } as unknown as S;
}

/** util.parseArgs lets the last of repeated options win silently: say which one was given twice. */
function parseOptions(args: string[], options: OptionSpec): Record<string, unknown> {
  const { values, tokens } = parseArgs({ args, options, strict: true, allowPositionals: false, tokens: true });
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    if (seen.has(token.name) && !options[token.name]?.multiple) throw invalid(`--${token.name} is given more than once: give it once`);
    seen.add(token.name);
  }
  return values;
}

export async function main(argv: string[], io: Partial<CommandContext> = {}): Promise<number> {
  const controller = new AbortController();
  const ctx: CommandContext = {
    stdout: escaping(io.stdout ?? process.stdout),
    stderr: escaping(io.stderr ?? process.stderr),
    progress: io.progress ?? io.stderr ?? process.stderr,
    env: io.env ?? process.env,
    readStdin: io.readStdin ?? readStdin,
    signal: io.signal ?? controller.signal,
  };
  const onSignal = (sig: NodeJS.Signals) => controller.abort(new Error(`interrupted by ${sig}`));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const [name, ...rest] = argv;
  try {
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      ctx.stdout.write(overview());
      return name ? 0 : 2;
    }
    const command: Command | undefined = COMMANDS.find((c) => c.name === name);
    if (!command) {
      ctx.stderr.write(`volume-backup: unknown command ${oneLine(JSON.stringify(name))} (volume-backup --help lists the commands)\n`);
      return 2;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      ctx.stdout.write(command.usage + '\n');
      return 0;
    }
    let values;
    try {
      values = parseOptions(rest, command.options);
    } catch (err) {
      ctx.stderr.write(`volume-backup ${name}: ${oneLine(errorMessage(err))} (see volume-backup ${name} --help)\n`);
      return 2;
    }
    const code = await command.run(values as Record<string, string | boolean | undefined>, ctx);
    return code ?? 0;
  } catch (err) {
    const code = err instanceof VolumeBackupError ? err.code : undefined;
    ctx.stderr.write(`volume-backup ${name}: error: ${oneLine(errorMessage(err))}\n`);
    if (code === 'CANCELLED') return 130;
    return code === 'INVALID_ARGUMENT' ? 2 : 1;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await closeHashPool();
  }
}
