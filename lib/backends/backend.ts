/**
 * A backend module: everything about one storage backend in one place (docs/backends.md). The
 * registry (registry.ts) reads these, and so do the CLI, the driver-config node, its editor form and
 * the Backups sidebar: no other list of backends exists.
 */
import type { z } from 'zod';
import type { Driver } from '../drivers/driver';

export interface DriverContext {
  log?: { info(message: string): void; warn(message: string): void };
}

/** How the driver-config editor shows one setting (rendered by nodes/driver-config/driver-config.html). */
export interface SettingField {
  /**
   * The driver-config node's property (or credential) name. Backends may share a field (s3 and gcs
   * share bucket, prefix, endpoint) when they declare it alike.
   */
  name: string;
  /** The key in the backend's settings when it differs from `name` (gcs: serviceAccountJson → credentials). */
  setting?: string;
  /** Shown beside the input, and in messages: "Bucket must be 3 to 63 characters long". */
  label: string;
  input: 'text' | 'password' | 'checkbox' | 'select' | 'number';
  /** Kept as a Node-RED credential: never in the flow file, messages or logs. */
  secret?: boolean;
  placeholder?: string;
  /** For `select`: the choices ('' = the backend's default). */
  options?: Array<{ value: string; label: string }>;
  /** The value a new driver-config starts with. */
  initial?: string | boolean | number;
  /** Font Awesome 4 icon name, without "fa-". */
  icon?: string;
  /** Node-RED fills in an empty value (posix path: <userDir>/volume-backups), so its editor does not require one. */
  defaultInNodeRed?: boolean;
}

/** What the rest of the package may rely on a backend's store for. */
export interface Capabilities {
  /**
   * How putIfAbsent/replaceIfMatch are made safe. 'local': this process enforces them (link(2), lock
   * files) and nothing is probed; 'store': the remote store enforces them, and openRepository probes it
   * once before anything relies on them (lib/drivers/conditional-probe.ts).
   */
  conditionalWrites: 'local' | 'store';
  /** Large objects go up in parts (S3 multipart, GCS resumable). */
  multipart: boolean;
  /** Driver.localDirectory answers: a restore refuses to write inside the repository. */
  localDirectory: boolean;
  /** Every write sends the data's MD5 for the store to check (Driver.wantsMd5). */
  md5: boolean;
}

export interface RepositoryUrl<S> {
  /** URL schemes without ":" ("s3"; "gs" and "gcs"). */
  schemes: string[];
  /** True for the one backend a repository given as a plain path belongs to (posix). */
  plainPath?: boolean;
  /**
   * Settings from a URL (or, with plainPath, from `{ pathname }` of a plain path). Never secrets: they
   * come from `env` or the node's credentials. Return the input settings; the schema checks them.
   */
  parse(url: URL | { pathname: string; searchParams: URLSearchParams }, env: NodeJS.ProcessEnv): Record<string, unknown>;
  /** The URL that parses back into these settings (secrets left out). */
  format(settings: S): string;
}

export interface BackendModule<Schema extends z.ZodObject = z.ZodObject> {
  /** The driver-config node's `backend` value, the driver spec's `backend` and the Driver's `kind`. */
  name: string;
  /** The editor's choice: "Amazon S3 or S3-compatible". */
  label: string;
  /** The settings and their defaults (without `backend`); zod is the one check, in the CLI, node and editor. */
  settings: Schema;
  /** The driver-config editor's rows, in order; settings without a field are CLI/API only. */
  fields: SettingField[];
  url: RepositoryUrl<z.infer<Schema>>;
  capabilities: Capabilities;
  /** Where a repository with these settings is, for people: never a secret. Settings may be incomplete. */
  describe(settings: Partial<z.infer<Schema>>): string;
  /** Settings of a throwaway repository under `scratchDir` for the contract suite (npm run test-backend); none: give --repo. */
  testSettings?(scratchDir: string): z.input<Schema>;
  /** Make the driver. Settings have passed the schema. Keep it cheap: load SDKs here, not at module load. */
  create(settings: z.infer<Schema>, context: DriverContext): Driver;
}

/**
 * What a backend package gets from this package when it exports a function instead of a module
 * (docs/backends.md): the same zod and error classes the engine checks with, so a third-party package
 * needs no dependency on this one.
 */
export interface BackendToolkit {
  z: typeof z;
  ObjectNotFoundError: typeof import('../errors').ObjectNotFoundError;
  PreconditionFailedError: typeof import('../errors').PreconditionFailedError;
  invalid: typeof import('../errors').invalid;
  /** Cinder's object-name prefix (volume_<id>/<timestamp>/backup_<id>), for Driver.generateObjectNamePrefix. */
  cinderObjectNamePrefix: typeof import('../drivers/driver').cinderObjectNamePrefix;
}

/** A backend package's export: a module, or a function of the toolkit that makes one. */
export type BackendExport = BackendModule | ((toolkit: BackendToolkit) => BackendModule);
