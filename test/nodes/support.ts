/**
 * Shared set-up of the node tests: node-red-node-test-helper on the Node-RED named by NODE_RED_PATH
 * (default: the project's devDependency; scripts/test-node-red-5.sh points it at Node-RED 5), the
 * built nodes, core catch/complete nodes, and small helpers that collect messages.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { makeImage, tempDir } from '../helpers/volumes';

/** Node-RED's main file: NODE_RED_PATH may name the package directory or its main file. */
export const NODE_RED_MAIN = require.resolve(process.env.NODE_RED_PATH ?? 'node-red');

// eslint-disable-next-line @typescript-eslint/no-require-imports -- the helper is CommonJS without types
export const helper = require('node-red-node-test-helper');
helper.init(NODE_RED_MAIN);

export function nodeRedVersion(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the version of the Node-RED under test (NODE_RED_PATH), found at run time
  return require(require.resolve('node-red/package.json', { paths: [path.dirname(NODE_RED_MAIN)] })).version;
}

function coreNode(file: string): unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- core nodes of the Node-RED under test (NODE_RED_PATH), found at run time
  return require(require.resolve(`@node-red/nodes/core/common/${file}`, { paths: [path.dirname(NODE_RED_MAIN)] }));
}

/* eslint-disable @typescript-eslint/no-require-imports -- the node-red-node-test-helper wants the modules' CommonJS exports */
export const NODE_MODULES = [
  require('../../nodes/driver-config/driver-config'),
  require('../../nodes/backup-create/backup-create'),
  require('../../nodes/backup-incremental/backup-incremental'),
  require('../../nodes/snapshot-backup/snapshot-backup'),
  require('../../nodes/restore/restore'),
  require('../../nodes/prune/prune'),
  coreNode('25-catch.js'),
  coreNode('24-complete.js'),
];
/* eslint-enable @typescript-eslint/no-require-imports */

export interface Msg {
  _msgid?: string;
  topic?: string;
  payload?: unknown;
  error?: { message: string; source?: { id: string }; code?: string };
  [key: string]: unknown;
}

export interface TestNode {
  id: string;
  receive(msg: Msg): void;
  on(event: 'input', cb: (msg: Msg) => void): void;
  status: { args: unknown[][]; thisValues: unknown[] };
  log: { args: unknown[][] };
  warn: { args: unknown[][] };
  error: { args: unknown[][] };
}

/** Messages a helper node receives, and a way to wait until there are enough. */
export class Collector {
  readonly messages: Msg[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];

  constructor(node: TestNode | null) {
    if (!node) throw new Error('collector on a node that was not created');
    node.on('input', (msg) => {
      this.messages.push(msg);
      this.waiters = this.waiters.filter((w) => (this.messages.length >= w.count ? (w.resolve(), false) : true));
    });
  }

  /** Resolves when `count` messages have arrived; rejects after `ms` with what did arrive. */
  waitFor(count: number, ms = 20_000): Promise<Msg[]> {
    if (this.messages.length >= count) return Promise.resolve(this.messages);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`expected ${count} messages, got ${this.messages.length}: ${JSON.stringify(this.messages.map((m) => m.error ?? m.payload)).slice(0, 500)}`)), ms);
      this.waiters.push({ count, resolve: () => (clearTimeout(timer), resolve(this.messages)) });
    });
  }
}

/** The status texts a node has shown, in order (the helper's spy sits on Node.prototype: filter by node). */
export function statusTexts(node: TestNode): { fill?: string; shape?: string; text?: string }[] {
  return node.status.args
    .filter((_, i) => node.status.thisValues[i] === node)
    .map((a) => a[0] as { fill?: string; shape?: string; text?: string });
}

/** What a node logged with node.log or node.warn, in order (the helper's spies sit on Node.prototype too). */
export function loggedTexts(node: TestNode, level: 'log' | 'warn'): string[] {
  const spy = node[level] as unknown as { args: unknown[][]; thisValues: unknown[] };
  return spy.args.filter((_, i) => spy.thisValues[i] === node).map((a) => String(a[0]));
}

/** A tab with a posix driver-config on `repoDir`, the given nodes, and helper nodes for outputs, Catch and Complete. */
export function testFlow(repoDir: string, nodes: Record<string, unknown>[], config: Record<string, unknown> = {}): Record<string, unknown>[] {
  const ids = nodes.map((n) => n.id);
  // Nodes need x/y: without them Node-RED takes them for config nodes (and Catch would not work).
  const placed = (n: Record<string, unknown>) => ({ x: 100, y: 100, ...n });
  return [
    { id: 't1', type: 'tab', label: 'test' },
    { id: 'cfg', type: 'volume-driver-config', backend: 'posix', path: repoDir, chunkSize: '1 MiB', blockSize: '32 KiB', compression: 'zstd', progress: true, maxConcurrent: 2, ...config },
    ...nodes.map((n) => placed({ z: 't1', repository: 'cfg', wires: [['out'], ['progress']], ...n })),
    ...[
      { id: 'out', z: 't1', type: 'helper' },
      { id: 'progress', z: 't1', type: 'helper' },
      { id: 'catch', z: 't1', type: 'catch', scope: ids, uncaught: false, wires: [['caught']] },
      { id: 'caught', z: 't1', type: 'helper' },
      { id: 'complete', z: 't1', type: 'complete', scope: ids, uncaught: false, wires: [['completed']] },
      { id: 'completed', z: 't1', type: 'helper' },
    ].map(placed),
  ];
}

/** Deploy testFlow and collect what reaches the outputs, Catch and Complete. */
export async function loadTestFlow(repoDir: string, nodes: Record<string, unknown>[], config: Record<string, unknown> = {}, credentials: Record<string, unknown> = {}) {
  await helper.load(NODE_MODULES, testFlow(repoDir, nodes, config), credentials);
  return {
    out: new Collector(helper.getNode('out')),
    progress: new Collector(helper.getNode('progress')),
    caught: new Collector(helper.getNode('caught')),
    completed: new Collector(helper.getNode('completed')),
    node: (id: string) => helper.getNode(id) as TestNode,
  };
}

/** Where a node test suite works; filled in by the hooks nodeTestSuite registers. */
export interface NodeTestSuite {
  /** The suite's temporary directory (removed after it); the nodes' state directory is `state` in it. */
  work: string;
  /** A test image of the size asked for, `disk.img` in work. */
  image: string;
  /** A repository directory of its own for each test. */
  repoDir: string;
}

/**
 * Registers the hooks of a suite of node tests: a work directory with a test image and the nodes' state
 * directory for the suite; a new repository directory and a started Node-RED test runtime for each test.
 */
export function nodeTestSuite(label: string, image: { size: number; seed: number }): NodeTestSuite {
  const suite = {} as NodeTestSuite;
  let testNumber = 0;
  before(async () => {
    suite.work = await tempDir(label);
    suite.image = path.join(suite.work, 'disk.img');
    await makeImage(suite.image, image.size, image.seed);
    process.env.VOLUME_BACKUP_STATE_DIR = path.join(suite.work, 'state');
  });
  after(async () => {
    delete process.env.VOLUME_BACKUP_STATE_DIR;
    await fs.rm(suite.work, { recursive: true, force: true });
  });
  beforeEach(async () => {
    suite.repoDir = path.join(suite.work, `repo-${++testNumber}`);
    await helper.startServer();
  });
  afterEach(async () => {
    await helper.unload();
    await helper.stopServer();
  });
  return suite;
}
