/**
 * The one list of backends. Built-ins register at the bottom of this file; third-party backends come
 * from Node-RED plugins of type "volume-backup-backend" (nodes/driver-config) or from the CLI's
 * --backend-module / VOLUME_BACKUP_BACKENDS (loadBackendModules). From here: a driver spec or a
 * repository URL to a Driver, and the descriptors the driver-config editor renders.
 */
import * as path from 'path';
import { z } from 'zod';
import { ObjectNotFoundError, PreconditionFailedError, errorMessage, invalid } from '../errors';
import { Driver, cinderObjectNamePrefix } from '../drivers/driver';
import type { RetryPolicy } from '../drivers/retry';
import { withRetries } from '../drivers/retrying-driver';
import type { BackendExport, BackendModule, BackendToolkit, DriverContext, SettingField } from './backend';
import { SettingRules, checkSetting, rulesOf } from './check';
import { gcsBackend } from './gcs';
import { posixBackend } from './posix';
import { s3Backend } from './s3';

/** A backend's settings with the backend's name: what a driver-config or a --repo URL amounts to. */
export type DriverSpec = { backend: string } & Record<string, unknown>;

const TOOLKIT: BackendToolkit = { z, ObjectNotFoundError, PreconditionFailedError, invalid, cinderObjectNamePrefix };

const registered = new Map<string, BackendModule>();
/** What each export became, so registering one export again (a function too) is a no-op. */
const fromExport = new WeakMap<object, BackendModule>();
const rulesCache = new WeakMap<BackendModule, Record<string, SettingRules>>();

/** What a backend module must have; checked when it registers so a broken package fails at once, by name. */
const ModuleShape = z.object({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, 'a lower-case word such as "sharded"'),
  label: z.string().min(1),
  settings: z.custom<z.ZodObject>((s) => s instanceof z.ZodObject || typeof (s as z.ZodObject)?.safeParse === 'function', 'a zod object schema'),
  fields: z.array(z.object({ name: z.string().min(1), label: z.string().min(1), input: z.enum(['text', 'password', 'checkbox', 'select', 'number']) }).loose()),
  url: z.object({ schemes: z.array(z.string().regex(/^[a-z][a-z0-9+.-]*$/)), parse: z.function(), format: z.function() }).loose(),
  capabilities: z.object({ conditionalWrites: z.enum(['local', 'store']), multipart: z.boolean(), localDirectory: z.boolean(), md5: z.boolean() }),
  describe: z.function(),
  create: z.function(),
});

/**
 * Add a backend (a module, or a function of the toolkit that makes one). Registering the same module
 * again is a no-op; another module with a taken name, scheme or field name of another kind is refused.
 */
export function registerBackend(exported: BackendExport, source = 'a backend module'): BackendModule {
  const seen = typeof exported === 'object' || typeof exported === 'function' ? fromExport.get(exported) : undefined;
  if (seen && registered.get(seen.name) === seen) return seen;
  const module = typeof exported === 'function' ? exported(TOOLKIT) : exported;
  const shape = ModuleShape.safeParse(module);
  if (!shape.success) {
    throw invalid(`${source} is not a volume-backup backend: ${shape.error.issues.map((i) => `${i.path.join('.') || 'module'}: ${i.message}`).join('; ')} (docs/backends.md)`);
  }
  const existing = registered.get(module.name);
  if (existing === module) return module;
  if (existing) throw invalid(`${source} adds a backend named "${module.name}", which another module already is: backend names must be unique`);
  for (const other of registered.values()) {
    const scheme = module.url.schemes.find((s) => other.url.schemes.includes(s));
    if (scheme) throw invalid(`${source}: the URL scheme "${scheme}:" of backend "${module.name}" is taken by backend "${other.name}"`);
    if (module.url.plainPath && other.url.plainPath) throw invalid(`${source}: plain paths already belong to backend "${other.name}"`);
    for (const field of module.fields) {
      const same = other.fields.find((f) => f.name === field.name);
      if (same && (same.input !== field.input || !!same.secret !== !!field.secret)) {
        throw invalid(`${source}: backend "${module.name}" declares the driver-config field "${field.name}" unlike backend "${other.name}" does: rename it`);
      }
    }
  }
  registered.set(module.name, module);
  fromExport.set(exported, module);
  return module;
}

export function backends(): BackendModule[] {
  return [...registered.values()];
}

export function backendNamed(name: string): BackendModule | undefined {
  return registered.get(name);
}

function knownBackends(): string {
  return backends().map((b) => b.name).join(', ');
}

export function requireBackend(name: unknown): BackendModule {
  const module = typeof name === 'string' ? registered.get(name) : undefined;
  if (!module) {
    throw invalid(`unknown storage backend ${JSON.stringify(name)}: use one of ${knownBackends()} (a third-party backend must be installed: a Node-RED plugin, or --backend-module on the CLI)`);
  }
  return module;
}

/** The setting a field sets. */
export const settingOf = (field: SettingField): string => field.setting ?? field.name;

function rulesFor(module: BackendModule): Record<string, SettingRules> {
  let rules = rulesCache.get(module);
  if (!rules) rulesCache.set(module, (rules = rulesOf(module.settings)));
  return rules;
}

/** Check settings against the backend's schema; what is wrong is said in words, with the editor's labels. */
export function parseSettings(module: BackendModule, input: Record<string, unknown>): Record<string, unknown> {
  const parsed = module.settings.safeParse(input);
  if (parsed.success) return parsed.data as Record<string, unknown>;
  const rules = rulesFor(module);
  const problems = parsed.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? '');
    const label = module.fields.find((f) => settingOf(f) === key)?.label ?? key;
    const words = rules[key] ? checkSetting(label, rules[key], input[key]) : null;
    return words ?? `${issue.path.join('.') || 'settings'}: ${issue.message}`;
  });
  throw invalid(`invalid ${module.name} storage settings: ${problems.join('; ')}`);
}

export function createDriver(spec: DriverSpec, context: DriverContext = {}): Driver {
  if (typeof spec !== 'object' || spec === null) throw invalid('invalid storage settings: expected an object with a "backend"');
  const { backend, ...input } = spec;
  const module = requireBackend(backend);
  const settings = parseSettings(module, input);
  // Retries are a layer around whatever the factory made (retrying-driver.ts), not each backend's code.
  const retry = (settings as { retry?: Partial<RetryPolicy> }).retry;
  return withRetries(module.create(settings, context), { policy: retry, log: context.log });
}

const SCHEME = /^([a-z][a-z0-9+.-]*):/i;

/** A --repo value (a path or a URL) to a driver spec; which backend is decided by the URL scheme. */
export function parseRepositoryUrl(repo: string, env: NodeJS.ProcessEnv = process.env): DriverSpec {
  if (typeof repo !== 'string' || repo.length === 0 || repo.includes('\0')) throw invalid('--repo needs a path or a URL');
  const scheme = SCHEME.exec(repo)?.[1]?.toLowerCase();
  const module = scheme ? backends().find((b) => b.url.schemes.includes(scheme)) : undefined;
  if (module) return { backend: module.name, ...module.url.parse(new URL(repo), env) };
  // "name:/…" or "name://…" with a name no backend has is a mistake, not a relative path (write ./name: for one).
  if (scheme && /^[a-z][a-z0-9+.-]*:\//i.test(repo)) {
    const schemes = backends().flatMap((b) => b.url.schemes.map((s) => `${s}:`));
    throw invalid(`unsupported repository URL scheme "${scheme}:": use a path or one of ${schemes.join(', ')} (a third-party backend needs --backend-module or VOLUME_BACKUP_BACKENDS)`);
  }
  const paths = backends().find((b) => b.url.plainPath);
  if (!paths) throw invalid(`"${repo}" is not a repository URL: give scheme://…`);
  return { backend: paths.name, ...paths.url.parse({ pathname: repo, searchParams: new URLSearchParams() }, env) };
}

/** The URL of a driver spec, without its secrets. */
export function formatRepositoryUrl(spec: DriverSpec): string {
  const { backend, ...input } = spec;
  const module = requireBackend(backend);
  return module.url.format(parseSettings(module, input));
}

/**
 * Load backend packages by module name (resolved from `from`, then from this package) or path, as the
 * CLI's --backend-module and VOLUME_BACKUP_BACKENDS give them. A package exports its backend as
 * module.exports, `backend` or `default`: a module or a function of the toolkit.
 */
export function loadBackendModules(specifiers: string[], from = process.cwd()): BackendModule[] {
  return specifiers.map((specifier) => {
    const name = specifier.trim();
    const isPath = name.startsWith('.') || path.isAbsolute(name);
    let file: string;
    try {
      file = isPath ? require.resolve(path.resolve(from, name)) : require.resolve(name, { paths: [from, __dirname] });
    } catch {
      throw invalid(`backend module "${name}" was not found: install it (npm install ${name}) or give its path`);
    }
    let loaded: Record<string, unknown> & BackendExport;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a backend package named at run time
      loaded = require(file) as Record<string, unknown> & BackendExport;
    } catch (err) {
      throw invalid(`backend module "${name}" failed to load: ${errorMessage(err)}`);
    }
    const exported = (loaded.backend ?? loaded.default ?? loaded) as BackendExport;
    return registerBackend(exported, `backend module "${name}"`);
  });
}

/** Module names or paths in VOLUME_BACKUP_BACKENDS (comma-separated). */
export function backendModulesFromEnv(env: NodeJS.ProcessEnv): string[] {
  return (env.VOLUME_BACKUP_BACKENDS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

/** What the driver-config editor needs of one backend: its rows with their rules (from the schema). */
export interface BackendDescriptor {
  name: string;
  label: string;
  /** The first URL scheme, and whether plain paths are this backend's: for the node's label. */
  scheme: string;
  plainPath: boolean;
  capabilities: BackendModule['capabilities'];
  fields: Array<SettingField & { rules: SettingRules }>;
}

export function describeBackends(): BackendDescriptor[] {
  return backends().map((b) => ({
    name: b.name,
    label: b.label,
    scheme: b.url.schemes[0] ?? b.name,
    plainPath: !!b.url.plainPath,
    capabilities: b.capabilities,
    fields: b.fields.map((f) => ({ ...f, rules: rulesOfField(b, f) })),
  }));
}

/** Rules of one field of one backend, for the runtime's checks in the editor's words. */
export function rulesOfField(module: BackendModule, field: SettingField): SettingRules {
  const rules = rulesFor(module)[settingOf(field)] ?? {};
  return field.defaultInNodeRed ? { ...rules, required: undefined } : rules;
}

// The built-in backends: a new one is a file in this directory and one line here.
registerBackend(posixBackend);
registerBackend(s3Backend);
registerBackend(gcsBackend);
