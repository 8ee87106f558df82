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
import type { DriverSpec } from '../../lib/drivers';
import { Compression } from '../../lib/repository/records';
import type { Repository } from '../../lib/repository/repository';
import { cleanupSummary } from '../common/cleanup-summary';
import { Limiter } from '../common/limiter';
import type { Node, NodeAPI, NodeDef } from '../common/red';
import type { RepositoryConfigNode, RepositoryDefaults } from '../common/repository-config';
import { parseSize } from '../common/resolve';

const CONFIG_TYPE = 'volume-driver-config';
const DEFAULT_MAX_CONCURRENT = 2;
/** How long close waits for aborted operations to clean up before it closes the repository. */
const CLOSE_GRACE_MS = 10_000;

const optionalText = z.string().trim().optional().transform((v) => (v ? v : undefined));

const Settings = z.object({
  backend: z.enum(['posix', 's3', 'gcs'], { error: 'backend must be posix, s3 or gcs' }),
  path: optionalText,
  bucket: optionalText,
  prefix: optionalText,
  endpoint: optionalText,
  region: optionalText,
  forcePathStyle: z.boolean().optional(),
  checksums: z.enum(['when_supported', 'when_required']).optional().catch(undefined),
  storageClass: optionalText,
  serverSideEncryption: z.enum(['AES256', 'aws:kms', 'aws:kms:dsse']).optional().catch(undefined),
  kmsKeyId: optionalText,
  conditionalWrites: z.boolean().optional(),
  project: optionalText,
  container: optionalText,
  host: optionalText,
  compression: z.union([Compression, z.literal('')]).optional().transform((v) => (v ? v : undefined)),
  progress: z.boolean().optional(),
  cleanupAtStart: z.boolean().optional(),
  maxConcurrent: z.coerce.number().int().min(1).max(64).optional().catch(undefined),
  /** "cinder": the location is an OpenStack Cinder backup store, read-only (posix: its posix layout; s3/gcs: its object-store layout). */
  layout: z.enum(['repository', 'cinder']).optional().catch(undefined),
});

type Credentials = {
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  serviceAccountJson?: string;
  passphrase?: string;
};

/** An unresolved "${NAME}" means Node-RED found no such environment variable. */
function checkEnvResolved(label: string, value: string | undefined): string | undefined {
  const unresolved = value ? /^\$\{(\S+)\}$/.exec(value) : null;
  if (unresolved) throw invalid(`${label} refers to the environment variable ${unresolved[1]}, which is not set`);
  return value;
}

function driverSpecFrom(settings: z.infer<typeof Settings>, credentials: Credentials): DriverSpec {
  const nonEmpty = (v: string | undefined) => (v ? v : undefined);
  switch (settings.backend) {
    case 'posix': {
      const path = checkEnvResolved('the repository path', settings.path);
      if (!path) throw invalid('the driver-config has no repository path: open it and fill in "Path"');
      return { backend: 'posix', path };
    }
    case 's3':
      if (!settings.bucket) throw invalid('the driver-config has no S3 bucket: open it and fill in "Bucket"');
      return {
        backend: 's3',
        bucket: checkEnvResolved('the bucket', settings.bucket)!,
        prefix: settings.prefix ?? '',
        endpoint: checkEnvResolved('the endpoint', settings.endpoint),
        region: settings.region ?? 'us-east-1',
        forcePathStyle: settings.forcePathStyle ?? false,
        checksums: settings.checksums ?? 'when_supported',
        storageClass: settings.storageClass,
        serverSideEncryption: settings.serverSideEncryption,
        kmsKeyId: settings.kmsKeyId,
        // Configs saved before this setting existed keep the safe default.
        conditionalWrites: settings.conditionalWrites ?? true,
        accessKeyId: nonEmpty(credentials.accessKeyId),
        secretAccessKey: nonEmpty(credentials.secretAccessKey),
        sessionToken: nonEmpty(credentials.sessionToken),
      };
    case 'gcs':
      if (!settings.bucket) throw invalid('the driver-config has no GCS bucket: open it and fill in "Bucket"');
      return {
        backend: 'gcs',
        bucket: checkEnvResolved('the bucket', settings.bucket)!,
        prefix: settings.prefix ?? '',
        project: settings.project,
        endpoint: checkEnvResolved('the endpoint', settings.endpoint),
        credentials: nonEmpty(credentials.serviceAccountJson),
      };
  }
}

interface DriverConfigNode extends RepositoryConfigNode {
  opening: Promise<Repository> | null;
}

export = function register(RED: NodeAPI): void {
  function DriverConfig(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
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
      spec = driverSpecFrom(settings, credentials);
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
    const host = settings?.host ?? os.hostname();
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
        idle.then(async () => (await store?.catch(() => null))?.close()).finally(() => done());
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
          await repo?.close();
        })
        .catch((err) => node.warn(`closing the repository failed: ${err instanceof Error ? err.message : String(err)}`))
        .finally(() => done());
    });
  }

  RED.nodes.registerType(CONFIG_TYPE, DriverConfig, {
    credentials: {
      accessKeyId: { type: 'text' },
      secretAccessKey: { type: 'password' },
      sessionToken: { type: 'password' },
      serviceAccountJson: { type: 'password' },
      passphrase: { type: 'password' },
    },
  });
};
