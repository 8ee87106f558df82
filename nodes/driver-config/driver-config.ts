/**
 * driver-config: where backups live (posix directory, S3 bucket, GCS bucket), the settings every backup
 * made through it uses, and the limit on operations running at once. Secrets are Node-RED credentials:
 * they never appear in the flow JSON, in messages or in logs.
 */
import { oneLine } from '../../lib/text';
import * as os from 'os';
import { z } from 'zod';
import { cleanupHost } from '../../lib/engine/cleanup';
import { openCinder, openRepository } from '../../lib/open';
import { refuseWrite, type CinderStore } from '../../lib/cinder/store';
import { errorMessage, invalid } from '../../lib/errors';
import type { BackendExport, BackendModule } from '../../lib/backends/backend';
import { checkSetting } from '../../lib/backends/check';
import { DriverSpec, describeBackends, parseSettings, registerBackend, requireBackend, rulesOfField, settingOf, backends } from '../../lib/backends/registry';
import { Compression } from '../../lib/repository/records';
import type { Repository } from '../../lib/repository/repository';
import { cleanupSummary } from '../common/cleanup-summary';
import { Limiter } from '../common/limiter';
import { closeWhenUnused } from '../common/repository-users';
import type { Node, NodeAPI, NodeDef } from '../common/red';
import type { RepositoryConfigNode, RepositoryDefaults } from '../common/repository-config';
import { defaultRepositoryPath } from '../common/default-repository';
import { parseSize } from '../common/resolve';

const CONFIG_TYPE = 'volume-driver-config';
/** The Node-RED plugin type a third-party backend package registers (package.json node-red.plugins). */
const BACKEND_PLUGIN_TYPE = 'volume-backup-backend';
/** The editor loads the backends' descriptors from here (a script: the dialog needs them before it opens). */
const EDITOR_SCRIPT_ROUTE = '/volume-backup/backends.js';
const DEFAULT_MAX_CONCURRENT = 2;
/** How long close waits for aborted operations to clean up before it closes the repository. */
const CLOSE_GRACE_MS = 10_000;

const optionalText = z.string().trim().optional().transform((v) => (v ? v : undefined));

/** The settings every backend shares; a backend's own settings come from its module (lib/backends). */
const Settings = z.object({
  backend: z.string({ error: 'backend is missing: open the driver-config and choose one' }),
  container: optionalText,
  host: optionalText,
  compression: z.union([Compression, z.literal('')]).optional().transform((v) => (v ? v : undefined)),
  progress: z.boolean().optional(),
  cleanupAtStart: z.boolean().optional(),
  maxConcurrent: z.coerce.number().int().min(1).max(64).optional().catch(undefined),
  /** "cinder": the location is an OpenStack Cinder backup store, read-only (posix: its posix layout; s3/gcs: its object-store layout). */
  layout: z.enum(['repository', 'cinder']).optional().catch(undefined),
});

type Credentials = Record<string, string | undefined>;

/** An unresolved "${NAME}" means Node-RED found no such environment variable. */
function checkEnvResolved(label: string, value: unknown): void {
  const unresolved = typeof value === 'string' ? /^\$\{(\S+)\}$/.exec(value) : null;
  if (unresolved) throw invalid(`${label} refers to the environment variable ${unresolved[1]}, which is not set`);
}

/** A setting as the node holds it: text trimmed, empty is "not given". */
function given(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const text = value.trim();
  return text === '' ? undefined : text;
}

/**
 * The driver spec of a driver-config: its backend module's fields, secrets from the credentials. The
 * checks are the editor's (checkSetting), so a refused value reads the same in the dialog and here.
 */
function driverSpecFrom(def: NodeDef, backend: BackendModule, credentials: Credentials): DriverSpec {
  const input: Record<string, unknown> = {};
  for (const field of backend.fields) {
    const value = given(field.secret ? credentials[field.name] : def[field.name]);
    if (!field.secret) checkEnvResolved(`the setting "${field.label}"`, value);
    const problem = checkSetting(field.label, rulesOfField(backend, field), value);
    if (problem) throw invalid(problem);
    if (value !== undefined) input[settingOf(field)] = field.input === 'number' ? Number(value) : value;
  }
  return { backend: backend.name, ...parseSettings(backend, input) };
}

/** The part of Node-RED's API for plugins and admin routes (not in ../common/red: only this node uses it). */
interface BackendHostAPI {
  plugins?: { getByType(type: string): Array<{ id?: string; backend?: unknown }> };
  httpAdmin?: { get(route: string, handler: (req: unknown, res: { type(t: string): { send(body: string): void } }) => void): void };
  log?: { warn(message: string): void };
}

/**
 * Backends from Node-RED plugins of type "volume-backup-backend" (docs/backends.md). Node-RED loads
 * plugins before nodes; asking again at each deploy picks up a plugin installed since.
 */
function registerPluginBackends(RED: BackendHostAPI): void {
  for (const plugin of RED.plugins?.getByType(BACKEND_PLUGIN_TYPE) ?? []) {
    try {
      registerBackend(plugin.backend as BackendExport, `Node-RED plugin "${plugin.id}"`);
    } catch (err) {
      RED.log?.warn(`volume-backup: ${errorMessage(err)}`);
    }
  }
}

/** The editor's script (driver-config.html loads it): every backend's rows and rules, and the checks' own code. */
function editorScript(): string {
  const registry = { backends: describeBackends(), checkSetting: '__CHECK__' };
  // A replacer function: the source's "$" must not be read as a replacement pattern.
  return `window.VolumeBackupBackends = ${JSON.stringify(registry).replace('"__CHECK__"', () => checkSetting.toString())};\n`;
}

interface DriverConfigNode extends RepositoryConfigNode {
  opening: Promise<Repository> | null;
}

export = function register(RED: NodeAPI & BackendHostAPI): void {
  registerPluginBackends(RED);
  // Public like the editor's resources/: descriptors and rules, never a setting or a secret.
  RED.httpAdmin?.get(EDITOR_SCRIPT_ROUTE, (_req, res) => {
    registerPluginBackends(RED);
    res.type('application/javascript').send(editorScript());
  });

  function DriverConfig(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    registerPluginBackends(RED);
    const node = this as DriverConfigNode;
    const credentials: Credentials = (this.credentials ?? {}) as Credentials;

    // A bad setting does not stop the deploy: it is kept and reported to every message that uses it.
    let problem: Error | null = null;
    let spec: DriverSpec | null = null;
    let settings: z.infer<typeof Settings> | null = null;
    const defaults: RepositoryDefaults = { progress: true };
    try {
      const parsed = Settings.safeParse(def);
      if (!parsed.success) throw invalid(`invalid driver-config: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      settings = parsed.data;
      // A posix repository with an empty path lives in the Node-RED user directory (examples run as
      // imported); a Cinder store is Cinder's directory, never a default.
      const defaulted = settings.layout !== 'cinder' && settings.backend === 'posix' && !given(def.path);
      spec = driverSpecFrom(defaulted ? { ...def, path: defaultRepositoryPath(RED) } : def, requireBackend(settings.backend), credentials);
      if (defaulted) node.log(`repository: ${defaultRepositoryPath(RED)} (the default for an empty path)`);
      defaults.chunkSize = parseSize(def.chunkSize, 'chunk size');
      defaults.blockSize = parseSize(def.blockSize, 'block size');
      defaults.compression = settings.compression;
      defaults.progress = settings.progress ?? true;
    } catch (err) {
      problem = err instanceof Error ? err : new Error(String(err));
      node.warn(`driver-config "${def.name || def.id}": ${problem.message}`);
    }
    node.defaults = defaults;
    node.limiter = new Limiter(settings?.maxConcurrent ?? DEFAULT_MAX_CONCURRENT);
    node.opening = null;

    const log = { info: (m: string) => node.log(oneLine(m)), warn: (m: string) => node.warn(oneLine(m)) };
    // A host name from an environment variable that is not set: this machine's name, said at deploy.
    const unsetHost = settings?.host ? /^\$\{(\S+)\}$/.exec(settings.host) : null;
    if (unsetHost) node.warn(`the host name refers to the environment variable ${unsetHost[1]}, which is not set: using this machine's name, ${os.hostname()}`);
    const host = (!unsetHost && settings?.host) || os.hostname();
    // Configs saved before this setting existed clean up too.
    let cleanupPending = settings?.cleanupAtStart !== false;
    const closing = new AbortController();

    /**
     * Cinder's init_host for this instance: the leftovers of this host's stopped processes (never another
     * host's). Once per deploy, before the first operation uses the repository; a failure only warns.
     */
    const cleanUp = async (repo: Repository): Promise<void> => {
      if (!cleanupPending) return;
      cleanupPending = false;
      try {
        const result = await cleanupHost(repo, { host, log, signal: closing.signal });
        const summary = cleanupSummary(result);
        if (summary) node.log(summary);
        if (result.errors.length) {
          // What is left stays for the next deploy's cleanup (or the CLI's `cleanup`).
          node.warn(`start-up cleanup of host ${host}: ${result.errors.length} leftover(s) could not be cleaned (${result.errors.map((e) => e.message).join('; ')}); operations go ahead`);
        }
      } catch (err) {
        if (closing.signal.aborted) return;
        node.warn(`start-up cleanup of host ${host} failed: ${errorMessage(err)}; operations go ahead`);
      }
    };

    if (settings?.layout === 'cinder') {
      // A Cinder store: read through lib/cinder, never written (no repository, no start-up cleanup).
      let store: Promise<CinderStore> | null = null;
      node.getCinderStore = () => {
        if (problem || !spec) return Promise.reject(problem ?? new Error('driver-config is not set up'));
        store ??= openCinder(spec, { log });
        return store;
      };
      node.getRepository = () => Promise.reject(refuseWrite());
      node.on('close', (_removed, done) => {
        closing.abort();
        const idle = Promise.race([node.limiter.idle(), new Promise<void>((r) => setTimeout(r, CLOSE_GRACE_MS).unref())]);
        idle
          .then(async () => (await store?.catch(() => null))?.close())
          .catch((err) => node.warn(`closing the Cinder store failed: ${errorMessage(err)}`))
          .finally(() => done());
      });
      return;
    }

    const open = async (create: boolean): Promise<Repository> => {
      if (problem || !spec || !settings) throw problem ?? new Error('driver-config is not set up');
      const repo = await openRepository(spec, {
        container: settings.container,
        host,
        create,
        passphrase: credentials.passphrase || undefined,
        log,
      });
      await cleanUp(repo);
      return repo;
    };

    node.getRepository = async (create: boolean): Promise<Repository> => {
      // One open per config node, shared by its users. A failed open is forgotten so the next message
      // retries; a node that may create the repository retries a failed plain open with create.
      for (;;) {
        const current = node.opening;
        if (!current) {
          const attempt = open(create);
          node.opening = attempt;
          attempt.catch(() => {
            if (node.opening === attempt) node.opening = null;
          });
          return attempt;
        }
        try {
          return await current;
        } catch (err) {
          if (!create) throw err;
          if (node.opening === current) node.opening = null;
        }
      }
    };

    node.on('close', (_removed, done) => {
      closing.abort();
      const opening = node.opening;
      node.opening = null;
      const idle = Promise.race([node.limiter.idle(), new Promise<void>((r) => setTimeout(r, CLOSE_GRACE_MS).unref())]);
      idle
        .then(async () => {
          const repo = await opening?.catch(() => null);
          // Not under an operation that a re-created node took over (a deploy): its last user closes it.
          if (repo) await closeWhenUnused(repo);
        })
        .catch((err) => node.warn(`closing the repository failed: ${err instanceof Error ? err.message : String(err)}`))
        .finally(() => done());
    });
  }

  // Every backend's secrets are credentials, under the names earlier versions saved them with.
  const credentialTypes: Record<string, { type: 'text' | 'password' }> = { passphrase: { type: 'password' } };
  for (const backend of backends()) {
    for (const field of backend.fields) if (field.secret) credentialTypes[field.name] = { type: field.input === 'password' ? 'password' : 'text' };
  }
  RED.nodes.registerType(CONFIG_TYPE, DriverConfig, { credentials: credentialTypes });
};
