/**
 * The deployed driver-config nodes the sidebar offers, described without their secrets: only the
 * backend and where the repository is (a path or bucket/prefix, an endpoint without user info).
 */
import { backendNamed, settingOf } from '../../lib/backends/registry';
import { VolumeBackupError } from '../../lib/errors';
import type { NodeDef } from '../../nodes/common/red';
import { RepositoryConfigNode, isRepositoryConfigNode } from '../../nodes/common/repository-config';
import type { PluginAPI } from './red-admin';

/** The node type nodes/driver-config registers (package.json node-red.nodes). */
export const DRIVER_CONFIG_TYPE = 'volume-driver-config';

export interface ConfigView {
  id: string;
  name: string;
  backend: string;
  location: string;
}

/** A setting as the deployed node sees it: "${NAME}" is replaced by the environment variable, as Node-RED does. */
const text = (v: unknown): string =>
  typeof v === 'string' ? v.trim().replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name: string) => process.env[name] ?? whole) : '';

export function configView(def: NodeDef): ConfigView {
  const backend = text(def.backend);
  // The backend module says where its repository is (never a secret); settings as the node holds them.
  const module = backendNamed(backend);
  const settings = Object.fromEntries((module?.fields ?? []).filter((f) => !f.secret).map((f) => [settingOf(f), typeof def[f.name] === 'string' ? text(def[f.name]) || undefined : def[f.name]]));
  let location = module ? module.describe(settings) : `(backend "${backend}" is not installed)`;
  if (text(def.container)) location += ` (container ${text(def.container)})`;
  return { id: def.id, name: text(def.name) || location || def.id, backend, location };
}

export function listConfigs(RED: PluginAPI): ConfigView[] {
  const out: ConfigView[] = [];
  RED.nodes.eachNode((def) => {
    if (def.type === DRIVER_CONFIG_TYPE && def.d !== true) out.push(configView(def));
  });
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
}

/** The running config node with this id; NOT_FOUND when no such driver-config is deployed. */
export function findConfig(RED: PluginAPI, id: string): { view: ConfigView; node: RepositoryConfigNode } {
  let def: NodeDef | null = null;
  RED.nodes.eachNode((d) => {
    if (d.id === id && d.type === DRIVER_CONFIG_TYPE) def = d;
  });
  const node = def ? RED.nodes.getNode(id) : null;
  if (!def || !isRepositoryConfigNode(node)) {
    throw new VolumeBackupError('NOT_FOUND', `no driver-config ${id} is deployed: deploy the flow that holds it, or pick another`, { configId: id });
  }
  return { view: configView(def), node };
}
