/**
 * The settings rules in words. A backend's zod schema is the one source: rulesOf() reads each
 * setting's bounds from it (z.toJSONSchema), and checkSetting() says what is wrong with a value in
 * words. The runtime (driver-config node, CLI) and the editor run the same checkSetting: the editor
 * gets its source text from the registry's admin endpoint, so it must stay self-contained (no imports,
 * no helpers from outside its body).
 */
import { z } from 'zod';

/** What the schema allows for one setting. */
export interface SettingRules {
  type?: 'string' | 'boolean' | 'number' | 'integer' | 'object';
  required?: boolean;
  minLength?: number;
  maxLength?: number;
  enum?: string[];
  uri?: boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
}

interface JsonSchemaProperty {
  type?: string;
  minLength?: number;
  maxLength?: number;
  enum?: unknown[];
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
}

/** Each setting's rules, read from the schema (as input: a setting with a default is not required). */
export function rulesOf(schema: z.ZodObject): Record<string, SettingRules> {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, JsonSchemaProperty>; required?: string[] };
  const out: Record<string, SettingRules> = {};
  for (const [key, p] of Object.entries(json.properties ?? {})) {
    out[key] = {
      type: p.type as SettingRules['type'],
      required: json.required?.includes(key) || undefined,
      minLength: p.minLength,
      maxLength: p.maxLength,
      enum: p.enum?.map(String),
      uri: p.format === 'uri' || undefined,
      minimum: p.minimum,
      maximum: p.maximum === Number.MAX_SAFE_INTEGER ? undefined : p.maximum,
      exclusiveMinimum: p.exclusiveMinimum,
    };
  }
  return out;
}

/**
 * What is wrong with `value` for a setting labelled `label`, in words; null when nothing is. An empty
 * string is "not given". A "${NAME}" value is left to the runtime, which sees the environment.
 */
export function checkSetting(label: string, rules: SettingRules, value: unknown): string | null {
  if (value === undefined || value === null || value === '') return rules.required ? `${label} is required: fill it in` : null;
  if (typeof value === 'string' && /\$\{[^}]+\}/.test(value)) return null;
  if (rules.type === 'boolean') return typeof value === 'boolean' ? null : `${label} must be on or off`;
  if (rules.type === 'number' || rules.type === 'integer') {
    const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value.trim()) : NaN;
    if (!Number.isFinite(n)) return `${label} must be a number, not ${JSON.stringify(value)}`;
    if (rules.type === 'integer' && !Number.isInteger(n)) return `${label} must be a whole number, not ${n}`;
    if (rules.exclusiveMinimum !== undefined && n <= rules.exclusiveMinimum) return `${label} must be more than ${rules.exclusiveMinimum}`;
    if (rules.minimum !== undefined && n < rules.minimum) return `${label} must be at least ${rules.minimum}`;
    if (rules.maximum !== undefined && n > rules.maximum) return `${label} must be at most ${rules.maximum}`;
    return null;
  }
  if (rules.type !== 'string') return null;
  if (typeof value !== 'string') return `${label} must be text`;
  const length = value.length;
  const min = rules.minLength;
  const max = rules.maxLength;
  if ((min !== undefined && length < min) || (max !== undefined && length > max)) {
    const characters = (n: number) => `${n} character${n === 1 ? '' : 's'}`;
    const allowed = min !== undefined && max !== undefined ? `${min} to ${characters(max)} long` : min !== undefined ? `at least ${characters(min)} long` : `at most ${characters(max!)} long`;
    return `${label} must be ${allowed}; "${value.length > 40 ? value.slice(0, 40) + '…' : value}" has ${characters(length)}`;
  }
  if (rules.enum && !rules.enum.includes(value)) return `${label} must be one of ${rules.enum.join(', ')}, not "${value}"`;
  if (rules.uri) {
    let ok: boolean;
    try {
      ok = /^[a-z][a-z0-9+.-]*:$/i.test(new URL(value).protocol);
    } catch {
      ok = false;
    }
    if (!ok) return `${label} must be a URL such as https://storage.example.com:9000, not "${value}"`;
  }
  return null;
}
