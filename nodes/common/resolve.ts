/**
 * From a message and a node's settings to the engine's options. Precedence, for every property:
 *   1. the node's own setting, when filled in: a fixed value, an environment variable, flow/global
 *      context, a JSONata expression, or a msg property of the user's choice (typedInput);
 *   2. otherwise the message's standard property (msg.volume, msg.volumeId, msg.backupId, …);
 *   3. otherwise the driver-config node's setting (chunk size, block size, compression);
 *   4. otherwise the engine's default.
 * The collected values are then checked with zod, so a bad message gets an error that names the property.
 */
import { z } from 'zod';
import { invalid } from '../../lib/errors';
import { describeValue } from '../../lib/text';
import type { Node, NodeAPI, NodeDef, NodeMessage } from './red';

/** RED.util.evaluateNodeProperty as a promise (the callback form handles async context stores). */
export function evaluateProperty(RED: NodeAPI, node: Node, msg: NodeMessage, value: unknown, type: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    try {
      RED.util.evaluateNodeProperty(value, type, node, msg, (err, result) => (err ? reject(err) : resolve(result)));
    } catch (err) {
      reject(err);
    }
  });
}

/** A property described by the node's typedInput `<name>` / `<name>Type` pair and a standard msg property. */
export interface PropertySource {
  /** Name of the node setting (its typedInput type lives in `<name>Type`). */
  setting: string;
  /** The msg property used when the node's setting is empty. */
  msgProperty: string;
}

/** Sources whose node setting and msg property have the same name, the usual case: `volume` → msg.volume. */
export function sameNamed<K extends string>(...names: K[]): Record<K, PropertySource> {
  return Object.fromEntries(names.map((name): [K, PropertySource] => [name, { setting: name, msgProperty: name }])) as Record<K, PropertySource>;
}

export interface ResolvedProperty {
  value: unknown;
  /** Where the value came from, for error messages ("msg.volume", "the node's volume setting"). */
  from: string;
}

export async function resolveProperty(RED: NodeAPI, node: Node, def: NodeDef, msg: NodeMessage, source: PropertySource): Promise<ResolvedProperty> {
  const value = def[source.setting];
  const type = typeof def[`${source.setting}Type`] === 'string' ? (def[`${source.setting}Type`] as string) : 'str';
  const empty = value === undefined || value === null || value === '';
  if (!empty) {
    const from = type === 'msg' ? `msg.${describeValue(value)}` : type === 'str' || type === 'num' || type === 'bool' || type === 'json'
      ? `the node's "${source.setting}" setting`
      : `${type} ${describeValue(value)}`;
    try {
      return { value: await evaluateProperty(RED, node, msg, value, type), from };
    } catch (err) {
      throw invalid(`could not read ${from}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { value: msg[source.msgProperty], from: `msg.${source.msgProperty}` };
}

/** Resolve several properties at once; `undefined`, null and "" all mean "not given". */
export async function resolveProperties<K extends string>(
  RED: NodeAPI,
  node: Node,
  def: NodeDef,
  msg: NodeMessage,
  sources: Record<K, PropertySource>,
): Promise<{ values: Record<K, unknown>; from: Record<K, string> }> {
  const values = {} as Record<K, unknown>;
  const from = {} as Record<K, string>;
  for (const key of Object.keys(sources) as K[]) {
    const resolved = await resolveProperty(RED, node, def, msg, sources[key]);
    values[key] = resolved.value === null || resolved.value === '' ? undefined : resolved.value;
    from[key] = resolved.from;
  }
  return { values, from };
}

/** Check resolved values with a zod schema; the error names the property and where it came from. */
export function checkOptions<T extends z.ZodType>(schema: T, values: Record<string, unknown>, from: Record<string, string>): z.infer<T> {
  const parsed = schema.safeParse(values);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? '');
    const where = from[key] ? ` (from ${from[key]})` : '';
    return `${key || 'message'}${where}: ${issue.message}`;
  });
  throw invalid(`invalid input: ${problems.join('; ')}`);
}

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1024, kb: 1024, kib: 1024,
  m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
};

/** A byte count given as a number or as text with a binary unit ("8 MiB", "32K", "65536"). */
export function parseSize(value: unknown, label: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value > 0) return value;
    throw invalid(`${label} must be a positive whole number of bytes, not ${value}`);
  }
  const match = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value) : null;
  const unit = match ? SIZE_UNITS[match[2].toLowerCase()] : undefined;
  const bytes = match && unit ? Math.round(Number(match[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw invalid(`${label} ${JSON.stringify(describeValue(value)).slice(0, 40)} is not a size: use bytes or a number with K, M or G (e.g. "8 MiB")`);
  }
  return bytes;
}

const MAX_WAIT_SECONDS = 24 * 3600;

/** A wait in seconds, given as a number or numeric text ("30", "2.5"), as milliseconds; at most a day. */
export function parseSeconds(value: unknown, label: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const seconds = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > MAX_WAIT_SECONDS) {
    throw invalid(`${label} must be a number of seconds from 0 to ${MAX_WAIT_SECONDS}, not ${JSON.stringify(value)?.slice(0, 40) ?? typeof value}`);
  }
  return Math.round(seconds * 1000);
}

/** zod pieces shared by the operation nodes. */
export const text = (what: string) =>
  z.string({ error: (issue) => (issue.input === undefined ? `is missing: ${what}` : `must be text (${what}), not ${typeof issue.input}`) }).min(1);

export const flag = z
  .union([z.boolean(), z.enum(['true', 'false'])])
  .transform((v) => v === true || v === 'true');

/** A whole number ≥ 0, as a number or as digits ("30"): a count the user gives, e.g. from a num field or env. */
export const wholeNumber = (what: string) =>
  z
    .unknown()
    .refine((v) => (typeof v === 'number' || typeof v === 'string') && /^\s*\d+\s*$/.test(String(v)) && Number.isSafeInteger(Number(v)), {
      error: (issue) => `must be ${what}, not ${JSON.stringify(issue.input)?.slice(0, 40) ?? typeof issue.input}`,
    })
    .transform((v) => Number(v));
