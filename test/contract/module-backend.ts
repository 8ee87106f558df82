/**
 * Any backend module as the contract suite drives it: a built-in by name, or a package (name or path)
 * loaded as the CLI's --backend-module loads it. Its scratch repository is the module's
 * testSettings(temporary directory), or the repository URL given.
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { BackendModule } from '../../lib/backends/backend';
import { backendNamed, createDriver, loadBackendModules, parseRepositoryUrl } from '../../lib/backends/registry';
import type { ContractBackend } from './driver-contract';

/** The package root, from test/contract/ or dist/test/contract/. */
const ROOT = path.resolve(__dirname, '..', '..', ...(path.basename(path.resolve(__dirname, '..', '..')) === 'dist' ? ['..'] : []));

export function moduleBackend(specifier: string, options: { repo?: string; from?: string } = {}): ContractBackend {
  const module: BackendModule = backendNamed(specifier) ?? loadBackendModules([specifier], options.from ?? ROOT)[0];
  let scratch = '';
  let settings: Record<string, unknown> = {};
  return {
    name: specifier === module.name ? module.name : `${module.name} (${specifier})`,
    hasPrefix: 'prefix' in module.settings.shape,
    async start() {
      if (options.repo) {
        const { backend, ...rest } = parseRepositoryUrl(options.repo);
        if (backend !== module.name) throw new Error(`--repo ${options.repo} is a ${backend} repository, not ${module.name}`);
        settings = rest;
        return;
      }
      if (!module.testSettings) throw new Error(`backend ${module.name} has no testSettings(): give --repo URL of a scratch repository`);
      scratch = await fs.mkdtemp(path.join(os.tmpdir(), `vb-contract-${module.name}-`));
      settings = module.testSettings(scratch) as Record<string, unknown>;
    },
    async stop() {
      if (scratch) await fs.rm(scratch, { recursive: true, force: true });
    },
    driver(o = {}) {
      const prefix = o.prefix ? [settings.prefix, o.prefix].filter(Boolean).join('/') : settings.prefix;
      return createDriver({ ...settings, ...(prefix === undefined ? {} : { prefix }), backend: module.name });
    },
  };
}
