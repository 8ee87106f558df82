/**
 * The part of Node-RED's runtime API an editor plugin uses (admin HTTP routes, permissions, comms,
 * deployed nodes). Node-RED ships no types, and the package must not need @types at run time.
 */
import type { Node, NodeDef } from '../../nodes/common/red';

export interface AdminRequest {
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: unknown;
  /** The editor user (with adminAuth), for the record of who cancelled. */
  user?: { username?: string };
}

export interface AdminResponse {
  status(code: number): AdminResponse;
  json(body: unknown): void;
}

export type Middleware = (req: AdminRequest, res: AdminResponse, next: (err?: unknown) => void) => void;
export type Handler = (req: AdminRequest, res: AdminResponse) => void;

export interface AdminApp {
  get(path: string, ...handlers: (Middleware | Handler)[]): void;
  post(path: string, ...handlers: (Middleware | Handler)[]): void;
}

export interface PluginAPI {
  plugins: { registerPlugin(id: string, definition: { type?: string; onadd?: () => void }): void };
  nodes: {
    getNode(id: string): Node | null;
    /** Calls back with every deployed node's definition (flow JSON, without credentials). */
    eachNode(callback: (def: NodeDef) => void): void;
  };
  httpAdmin: AdminApp;
  auth: { needsPermission(permission: string): Middleware };
  comms: { publish(topic: string, data: unknown, retain?: boolean): void };
  log: { info(message: string): void; warn(message: string): void };
}
