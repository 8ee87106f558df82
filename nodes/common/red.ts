/**
 * The small part of Node-RED's runtime API these nodes use. Node-RED ships no types of its own and the
 * nodes must not depend on @types packages at run time, so they are declared here.
 */
export interface NodeMessage {
  _msgid?: string;
  payload?: unknown;
  topic?: string;
  [key: string]: unknown;
}

export interface NodeStatus {
  fill?: 'red' | 'green' | 'yellow' | 'blue' | 'grey';
  shape?: 'ring' | 'dot';
  text?: string;
}

export type SendFunction = (msg: NodeMessage | (NodeMessage | null)[] | null) => void;
export type DoneFunction = (err?: Error) => void;

export interface Node {
  id: string;
  type: string;
  name?: string;
  z?: string;
  credentials?: Record<string, string | undefined>;
  on(event: 'input', listener: (msg: NodeMessage, send: SendFunction, done: DoneFunction) => void): void;
  on(event: 'close', listener: (removed: boolean, done: () => void) => void): void;
  status(status: NodeStatus): void;
  send(msg: NodeMessage | (NodeMessage | null)[] | null): void;
  log(message: string): void;
  warn(message: string): void;
  error(message: unknown, msg?: NodeMessage): void;
  /** Node-RED's own completion of a message (Complete nodes on success, Catch nodes on error); 1.0 and later. */
  _complete?(msg: NodeMessage, error?: Error): void;
}

export interface NodeDef {
  id: string;
  type: string;
  name?: string;
  z?: string;
  [key: string]: unknown;
}

export type EvaluateCallback = (err: Error | null, value?: unknown) => void;

export interface NodeAPI {
  nodes: {
    createNode(node: Node, def: NodeDef): void;
    registerType(type: string, ctor: (this: Node, def: NodeDef) => void, options?: { credentials?: Record<string, { type: 'text' | 'password' }>; settings?: Record<string, unknown> }): void;
    getNode(id: string): Node | null;
  };
  util: {
    evaluateNodeProperty(value: unknown, type: string, node: Node, msg: NodeMessage, callback: EvaluateCallback): void;
  };
  settings: Record<string, unknown>;
  /** The runtime's event bus ("flows:stopping", "flows:started"); absent in minimal test stubs. */
  events?: { on(event: string, listener: (payload: never) => void): void };
  log?: { info(message: unknown): void; warn(message: unknown): void };
  _(key: string, substitutions?: Record<string, unknown>): string;
}
