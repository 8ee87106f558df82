/**
 * The last guard before anything leaves for the editor: the credentials of every deployed
 * driver-config and the user info of URLs are replaced by "***" (engine messages may quote an
 * endpoint as it was configured, user and password included).
 */
import type { PluginAPI } from './red-admin';
import { DRIVER_CONFIG_TYPE } from './configs';

/** Shorter values are too likely to match ordinary text; no real secret is that short. */
const MIN_SECRET_LENGTH = 4;
const URL_USER_INFO = /(\b[a-z][a-z0-9+.-]*:\/\/)[^\s/@"'<>]+@/gi;

export function deployedSecrets(RED: PluginAPI): string[] {
  const secrets = new Set<string>();
  RED.nodes.eachNode((def) => {
    if (def.type !== DRIVER_CONFIG_TYPE) return;
    const credentials = RED.nodes.getNode(def.id)?.credentials ?? {};
    for (const value of Object.values(credentials)) if (typeof value === 'string' && value.length >= MIN_SECRET_LENGTH) secrets.add(value);
  });
  return [...secrets];
}

/** A copy of a JSON value with the secrets and URL user info replaced. */
export function redact<T>(value: T, secrets: readonly string[]): T {
  let text = JSON.stringify(value);
  if (text === undefined) return value;
  // Longest first, so a secret that contains another is replaced whole. Matched as they appear in JSON.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) text = text.split(JSON.stringify(secret).slice(1, -1)).join('***');
  text = text.replace(URL_USER_INFO, '$1***@');
  return JSON.parse(text) as T;
}
