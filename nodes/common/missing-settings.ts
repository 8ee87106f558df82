/**
 * At deploy, what an operation node's settings need that is not there: a driver-config, or an
 * environment variable a setting reads. Each is a warning in the log and on the node's status, so a flow
 * imported or moved to another machine says what to set up before its first message fails.
 */
import { shorten } from './format';
import type { Node, NodeAPI, NodeDef } from './red';

/** Node-RED replaces "${NAME}" in a setting at deploy when NAME is set: one left means it is not. */
const UNRESOLVED = /^\$\{(\S+)\}$/;

function envIsSet(RED: NodeAPI, node: Node, name: string): boolean {
  let value: unknown;
  // Synchronous for the env type: the callback runs before evaluateNodeProperty returns.
  RED.util.evaluateNodeProperty(name, 'env', node, {}, (err, v) => {
    value = err ? undefined : v;
  });
  return value !== undefined && value !== null && value !== '';
}

export interface MissingSetting {
  /** In words, for the log: what is missing and where. */
  message: string;
  /** For the node's status, which is short. */
  short: string;
}

/** The node's settings that cannot work as they are; empty when all is set up. */
export function missingSettings(RED: NodeAPI, node: Node, def: NodeDef): MissingSetting[] {
  const problems: MissingSetting[] = [];
  if (!def.repository) problems.push({ message: 'no repository: open the node and pick or add a driver-config', short: 'no repository' });
  for (const [key, value] of Object.entries(def)) {
    if (typeof value !== 'string' || value === '' || key.endsWith('Type')) continue;
    if (def[`${key}Type`] === 'env') {
      if (!envIsSet(RED, node, value)) problems.push({ message: `"${key}" reads the environment variable ${value}, which is not set`, short: `env ${value} not set` });
      continue;
    }
    const unresolved = UNRESOLVED.exec(value);
    if (unresolved) problems.push({ message: `"${key}" refers to the environment variable ${unresolved[1]}, which is not set`, short: `env ${unresolved[1]} not set` });
  }
  return problems;
}

/** Warn about the missing settings and show the first on the node's status. */
export function reportMissingSettings(RED: NodeAPI, node: Node, def: NodeDef): void {
  const problems = missingSettings(RED, node, def);
  if (problems.length === 0) return;
  node.warn(`not set up: ${problems.map((p) => p.message).join('; ')}`);
  node.status({ fill: 'red', shape: 'ring', text: shorten(problems[0].short, 48) });
}
