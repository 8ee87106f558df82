/**
 * A real Node-RED (the `node-red` package's red.js) in a child process on a loopback port, with this
 * package loaded through the same settings `npm start` writes, and a debug-sidebar listener on /comms.
 */
import { ChildProcess, spawn } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import { freePort } from '../servers/http-util';

// eslint-disable-next-line @typescript-eslint/no-require-imports -- a plain CommonJS script (shared with npm start), not part of the compiled project
const env = require('../../../scripts/node-red-env.js') as {
  root: string;
  writeSettings(userDir: string, options: { port: number; extra?: Record<string, unknown> }): string;
  exampleTabs(only?: string[]): Record<string, unknown>[];
  readExamples(): { file: string; nodes: Record<string, unknown>[] }[];
  makeDemoImage(file: string, size?: number): void;
  request(port: number, method: string, urlPath: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; text: string; body: unknown }>;
  waitForNodeRed(port: number, timeoutMs?: number, child?: ChildProcess): Promise<void>;
  deployFlows(port: number, flows: unknown[], credentials?: unknown): Promise<unknown>;
};
export const nodeRedEnv = env;

export interface DebugMessage {
  /** The debug node's id. */
  id: string;
  name?: string;
  /** The message property the debug node shows, decoded. */
  value: unknown;
}

export class NodeRedProcess {
  private child: ChildProcess | null = null;
  private output: string[] = [];
  port = 0;
  private socket: { close(): void } | null = null;
  readonly debug: DebugMessage[] = [];

  /** `settings`: more Node-RED settings (e.g. nodesDir with another package beside this one). */
  constructor(readonly userDir: string, private readonly environment: Record<string, string>, private readonly settings: Record<string, unknown> = {}) {}

  async start(): Promise<void> {
    this.port = await freePort();
    const settings = env.writeSettings(this.userDir, { port: this.port, extra: { debugMaxLength: 100000, ...this.settings } });
    const redJs = require.resolve('node-red/red.js', { paths: [path.dirname(require.resolve(process.env.NODE_RED_PATH ?? 'node-red'))] });
    this.child = spawn(process.execPath, [redJs, '-u', this.userDir, '-s', settings], {
      env: { ...process.env, ...this.environment },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    for (const stream of [this.child.stdout!, this.child.stderr!]) stream.on('data', (d: Buffer) => this.output.push(d.toString()));
    await env.waitForNodeRed(this.port, 60_000, this.child);
    await this.listenToDebug();
  }

  /** What Node-RED printed (for failure messages and checks for errors). */
  log(): string {
    return this.output.join('');
  }

  request(method: string, urlPath: string, body?: unknown, headers?: Record<string, string>) {
    return env.request(this.port, method, urlPath, body, headers);
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Debug-sidebar messages arrive over the editor's websocket, as the editor receives them. */
  private async listenToDebug(): Promise<void> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- Node-RED's own copy, resolved from its install (not a dependency of ours)
    const WebSocket = require(require.resolve('ws', { paths: [path.dirname(require.resolve('node-red/package.json'))] }));
    const ws = new WebSocket(`ws://127.0.0.1:${this.port}/comms`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ subscribe: 'debug' }));
    ws.on('message', (data: Buffer) => {
      for (const item of JSON.parse(data.toString()) as { topic: string; data: { id: string; name?: string; msg: string; format: string } }[]) {
        if (item.topic !== 'debug') continue;
        let value: unknown = item.data.msg;
        try {
          value = JSON.parse(item.data.msg);
        } catch {
          // plain text
        }
        this.debug.push({ id: item.data.id, name: item.data.name, value });
      }
    });
    this.socket = ws;
  }

  /** Wait for `count` debug messages from the debug node `id`. */
  async debugFrom(id: string, count = 1, timeoutMs = 30_000): Promise<unknown[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.debug.filter((d) => d.id === id).map((d) => d.value);
      if (found.length >= count) return found;
      if (Date.now() > deadline) {
        throw new Error(`expected ${count} debug messages from ${id}, got ${found.length}; all: ${JSON.stringify(this.debug).slice(0, 1500)}\n${this.log().slice(-3000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    this.socket?.close();
    const child = this.child;
    if (!child || !this.running) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 20_000);
      child.once('exit', () => (clearTimeout(timer), resolve()));
      process.kill(-child.pid!, 'SIGTERM');
    });
  }
}

export interface Mosquitto {
  port: number;
  /** Resolves once `clients` different clients have subscribed to `topic` (the broker logs each SUBSCRIBE). */
  subscribed(topic: string, clients?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Debian's mosquitto on a free loopback port, or null (with the reason) when it is not installed. */
export async function startMosquitto(dir: string): Promise<Mosquitto | { skipped: string }> {
  const binary = '/usr/sbin/mosquitto';
  try {
    await fs.access(binary);
  } catch {
    return { skipped: `${binary} is not installed (apt-get install mosquitto)` };
  }
  const port = await freePort();
  const conf = path.join(dir, 'mosquitto.conf');
  // Subscriptions are logged ("<time>: <client id> <qos> <topic>"), so a test can wait for them instead of guessing.
  await fs.writeFile(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type subscribe\n`);
  const child = spawn(binary, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const subscribers = new Map<string, Set<string>>();
  const waiters: { topic: string; clients: number; resolve: () => void }[] = [];
  const settle = () => {
    for (const w of [...waiters]) {
      if ((subscribers.get(w.topic)?.size ?? 0) < w.clients) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    for (const m of d.toString().matchAll(/^\d+: (\S+) \d (.+)$/gm)) subscribers.set(m[2], (subscribers.get(m[2]) ?? new Set()).add(m[1]));
    settle();
  });
  const { waitForPort } = await import('../servers/http-util');
  try {
    await waitForPort(port, 10_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`mosquitto did not start: ${stderr || (err as Error).message}`, { cause: err });
  }
  return {
    port,
    subscribed: (topic, clients = 1) =>
      new Promise<void>((resolve) => {
        waiters.push({ topic, clients, resolve });
        settle();
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
