/** What every CLI command is: its options (node's util.parseArgs config), usage text, and run(). */
import type { ParseArgsConfig } from 'util';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface CommandContext {
  stdout: NodeJS.WritableStream;
  /** Both escape control characters: everything written to them is text for a person (or JSON). */
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** The raw stderr, for the progress bar's own terminal control sequences only. */
  progress: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  readStdin(): Promise<string>;
  signal: AbortSignal;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: OptionSpec;
  run(values: Values, ctx: CommandContext): Promise<number | void>;
}
