/**
 * The deployed driver-config nodes the sidebar offers, described without their secrets: only the
 * backend and where the repository is (a path or bucket/prefix, an endpoint without user info).
 */
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

/** An endpoint URL as it may be shown: no user, password, query or fragment. */
function safeEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
  } catch {
    return '(invalid endpoint)';
  }
}

export function configView(def: NodeDef): ConfigView {
  const backend = text(def.backend) || 'posix';
  const bucketPath = [text(def.bucket), text(def.prefix)].filter(Boolean).join('/');
  let location: string;
  if (backend === 's3') location = `s3://${bucketPath}${text(def.endpoint) ? ` at ${safeEndpoint(text(def.endpoint))}` : ''}`;
  else if (backend === 'gcs') location = `gs://${bucketPath}${text(def.endpoint) ? ` at ${safeEndpoint(text(def.endpoint))}` : ''}`;
  else location = text(def.path);
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
