/**
 * A real Node-RED for the sidebar tests: node-red's red.js in a child process with the settings
 * `npm start` uses (scripts/node-red-env.js: this package through nodesDir, 127.0.0.1, nothing phoning
 * home), on a free port, optionally behind adminAuth. Plus the admin API calls the tests need (deploy,
 * login, comms). test/e2e/node-red-process.ts has no adminAuth (its readiness check needs an open
 * /settings), hence this small launcher.
 */
import { ChildProcess, spawn } from 'child_process';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { freePort } from '../servers/http-util';

/** The package root, from test/browser/ or dist/test/browser/. */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', ...(path.basename(path.resolve(__dirname, '..', '..')) === 'dist' ? ['..'] : []));
/** node-red's red.js: from NODE_RED_PATH (a node-red package directory, as scripts/test-node-red-5.sh sets it) or the devDependency. */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a plain CommonJS script (shared with npm start), not part of the compiled project
const nodeRedEnv = require(path.join(PACKAGE_ROOT, 'scripts', 'node-red-env.js')) as {
  writeSettings(userDir: string, options: { port: number; extra?: Record<string, unknown> }): string;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports -- Node-RED's own copy, resolved from its install (not a dependency of ours)
const bcrypt = require(require.resolve('bcryptjs', { paths: [path.dirname(require.resolve('node-red/package.json', { paths: [PACKAGE_ROOT] }))] })) as {
  hashSync(password: string, rounds: number): string;
};
/** The websocket client Node-RED itself depends on (the editor's comms are a plain websocket). */
interface CommsSocket {
  once(event: 'open', listener: () => void): void;
  once(event: 'error', listener: (err: Error) => void): void;
  on(event: 'message', listener: (data: Buffer) => void): void;
  send(text: string): void;
  close(): void;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports -- Node-RED's own copy, resolved from its install (not a dependency of ours)
const WebSocket = require(require.resolve('ws', { paths: [path.dirname(require.resolve('node-red/package.json', { paths: [PACKAGE_ROOT] }))] })) as new (url: string) => CommsSocket;
const RED_JS = process.env.NODE_RED_PATH ? require.resolve(path.join(process.env.NODE_RED_PATH, 'red.js')) : require.resolve('node-red/red.js', { paths: [PACKAGE_ROOT] });

export interface User {
  username: string;
  password: string;
  permissions: string;
}

export interface NodeRedOptions {
  /** Users for adminAuth; none: the admin API is open. */
  users?: User[];
  /** More environment for the Node-RED process (e.g. NODE_OPTIONS with a test preload). */
  env?: Record<string, string>;
}

export interface Reply<T = any> {
  status: number;
  body: T;
  text: string;
}

export class NodeRed {
  private output = '';
  /** How many times the runtime said "Started flows" (counted as lines arrive; the output is trimmed). */
  private flowStarts = 0;

  private constructor(
    readonly url: string,
    readonly userDir: string,
    private readonly child: ChildProcess,
  ) {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.flowStarts += (d.match(/Started flows/g) ?? []).length;
      this.output = (this.output + d).slice(-20_000);
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.output = (this.output + d).slice(-20_000)));
  }

  static async start(options: NodeRedOptions = {}): Promise<NodeRed> {
    const userDir = await fs.mkdtemp(path.join(os.tmpdir(), 'vb-node-red-'));
    const port = await freePort();
    // adminAuth as a user configures it: bcrypt hashes of the (test) passwords.
    const adminAuth = options.users && {
      type: 'credentials',
      users: options.users.map((u) => ({ username: u.username, password: bcrypt.hashSync(u.password, 4), permissions: u.permissions })),
    };
    const file = nodeRedEnv.writeSettings(userDir, { port, extra: adminAuth ? { adminAuth } : {} });
    // The Node-RED runs on the Node that runs the tests (scripts/test-node-red-5.sh: Node 22 for Node-RED 5).
    const child = spawn(process.execPath, [RED_JS, '-u', userDir, '-p', String(port), '-s', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    const red = new NodeRed(`http://127.0.0.1:${port}`, userDir, child);
    await red.waitUntilUp();
    return red;
  }

  /** Output of the Node-RED process (its last 20 kB), for failure messages. */
  get log(): string {
    return this.output;
  }

  private async waitUntilUp(): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`Node-RED exited with ${this.child.exitCode}:\n${this.output}`);
      const ok = await fetch(`${this.url}/settings`).then((r) => r.status === 200 || r.status === 401, () => false);
      // Up once the start-up's own flows have started: Node-RED may say "Server now running" before that line,
      // and a deploy made meanwhile would take the start-up's "Started flows" for its own (and find no node).
      if (ok && this.flowStarts >= 1) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`Node-RED did not start within 30 s:\n${this.output}`);
  }

  async request<T = any>(method: string, route: string, body?: unknown, token?: string): Promise<Reply<T>> {
    const headers: Record<string, string> = { 'Node-RED-API-Version': 'v2' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(`${this.url}${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (Node-RED's own 401/404 replies are plain text)
    }
    return { status: res.status, body: parsed as T, text };
  }

  /** An admin access token (adminAuth's password grant, as the editor's login does). */
  async token(username: string, password: string, scope = '*'): Promise<string> {
    const reply = await this.request('POST', '/auth/token', { client_id: 'node-red-admin', grant_type: 'password', scope, username, password });
    if (reply.status !== 200) throw new Error(`login as ${username} failed: ${reply.status} ${reply.text}`);
    return reply.body.access_token as string;
  }

  /** Full deploy of a flow; resolves when the runtime has started it. */
  async deploy(flows: unknown[], credentials: Record<string, Record<string, string>> = {}, token?: string): Promise<void> {
    // The admin API takes credentials inline on each node, as the editor sends them.
    const withCredentials = flows.map((n) => {
      const node = n as { id: string };
      return credentials[node.id] ? { ...node, credentials: credentials[node.id] } : node;
    });
    // Count the runtime's "Started flows" lines: the one this deploy causes is the next one (the start-up's
    // own may still sit at the end of the output, so looking for the text alone would not wait at all).
    const started = () => this.flowStarts;
    const before = started();
    const reply = await this.request('POST', '/flows', { flows: withCredentials }, token);
    if (reply.status !== 200) throw new Error(`deploy failed: ${reply.status} ${reply.text}`);
    const deadline = Date.now() + 20_000;
    while (started() <= before) {
      if (Date.now() > deadline) throw new Error(`the deployed flows did not start within 20 s:\n${this.output.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Messages published on a comms topic, as the editor receives them over its websocket. */
  async subscribe(topic: string, token?: string): Promise<CommsSubscription> {
    const ws = new WebSocket(`${this.url.replace(/^http/, 'ws')}/comms`);
    const messages: unknown[] = [];
    const waiters: (() => void)[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', (err) => reject(err));
    });
    ws.on('message', (data) => {
      const parsed = JSON.parse(String(data)) as { topic: string; data: unknown }[] | { topic: string; data: unknown };
      for (const m of Array.isArray(parsed) ? parsed : [parsed]) if (m.topic === topic) messages.push(m.data);
      waiters.splice(0).forEach((w) => w());
    });
    if (token) ws.send(JSON.stringify({ auth: token }));
    ws.send(JSON.stringify({ subscribe: topic }));
    return {
      messages,
      async waitFor(predicate, ms = 30_000) {
        const deadline = Date.now() + ms;
        for (;;) {
          const found = messages.find(predicate);
          if (found) return found;
          if (Date.now() > deadline) throw new Error(`no matching message on ${topic} within ${ms} ms; got ${JSON.stringify(messages).slice(0, 800)}`);
          await new Promise<void>((r) => {
            waiters.push(r);
            setTimeout(r, 200);
          });
        }
      },
      close: () => ws.close(),
    };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await fs.rm(this.userDir, { recursive: true, force: true });
  }
}

export interface CommsSubscription {
  messages: unknown[];
  waitFor(predicate: (m: any) => boolean, ms?: number): Promise<any>;
  close(): void;
}
