/**
 * The glue every operation node (backup, incremental, snapshot, restore, prune) shares: the bounded
 * queue, the shared concurrency limit, status, progress messages, result message, errors through
 * done(err), and abort on close. A node only says how to turn a message into an engine call.
 */
import { oneLine } from '../../lib/text';
import { errorMessage, shownError } from '../../lib/errors';
import type { CreateBackupOptions, ProgressEvent } from '../../lib/engine/types';
import type { Repository } from '../../lib/repository/repository';
import { refuseWrite, type CinderStore } from '../../lib/cinder/store';
import { shorten } from './format';
import { BoundedQueue } from './queue';
import type { Node, NodeAPI, NodeDef, NodeMessage, SendFunction } from './red';
import { RepositoryConfigNode, isRepositoryConfigNode } from './repository-config';

export const DEFAULT_QUEUE_SIZE = 10;

export interface OperationContext {
  msg: NodeMessage;
  repo: Repository;
  config: RepositoryConfigNode;
  signal: AbortSignal;
  onProgress: (event: ProgressEvent) => void;
  /** The engine waits for another operation's lock on the volume: shown in the status. */
  onLockWait: NonNullable<CreateBackupOptions['onLockWait']>;
  log: { info(message: string): void; warn(message: string): void };
}

/** What a node that can read a Cinder store gets instead of a repository (see RepositoryConfigNode.getCinderStore). */
export interface CinderOperationContext extends Omit<OperationContext, 'repo'> {
  store: CinderStore;
}

export interface OperationSpec<R> {
  /** For a config that points at a Cinder store (read-only); nodes without it are refused there. */
  runCinder?(ctx: CinderOperationContext): Promise<R>;
  /** Backup nodes make the repository when it does not exist yet. */
  createRepository: boolean;
  /** Turn the message into options (may throw a clear error) and run the engine. */
  run(ctx: OperationContext): Promise<R>;
  /** Green status text for a result, e.g. "1.2 GiB 9 s". */
  summary(result: R, durationMs: number): string;
}

/**
 * Registers an operation node type: Node-RED constructs it for each node of the flow, and `makeSpec`
 * says, for that node and its settings, how a message becomes an engine call.
 */
export function registerOperationNode<R>(RED: NodeAPI, type: string, makeSpec: (node: Node, def: NodeDef) => OperationSpec<R>): void {
  function OperationNode(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    operationNode(RED, this, def, makeSpec(this, def));
  }
  RED.nodes.registerType(type, OperationNode);
}

function operationNode<R>(RED: NodeAPI, node: Node, def: NodeDef, spec: OperationSpec<R>): void {
  const queueSize = parseQueueSize(def.queueSize);
  let queuedForSlot = 0;
  const showQueued = () => {
    const n = queue.waitingCount + queuedForSlot;
    if (n > 0) node.status({ fill: 'yellow', shape: 'ring', text: `queued ${n}` });
  };
  const queue = new BoundedQueue(queueSize, showQueued);

  node.on('input', (msg, send, done) => {
    try {
      queue.push({
        run: (signal) => runOne(msg, send, done, signal),
        cancel: (err) => done(shownError(err)),
      });
    } catch (err) {
      done(shownError(err));
    }
  });

  node.on('close', (_removed, done) => {
    queue.close().then(
      () => done(),
      () => done(),
    );
  });

  async function runOne(msg: NodeMessage, send: SendFunction, done: (err?: Error) => void, signal: AbortSignal): Promise<void> {
    let release: (() => void) | null = null;
    try {
      const config = RED.nodes.getNode(String(def.repository ?? ''));
      if (!isRepositoryConfigNode(config)) {
        throw new Error('no repository configured: open the node and pick or add a driver-config');
      }
      if (config.limiter.full) {
        queuedForSlot = 1;
        showQueued();
      }
      try {
        release = await config.limiter.acquire(signal);
      } finally {
        queuedForSlot = 0;
      }
      node.status({ fill: 'blue', shape: 'ring', text: 'starting' });
      const started = Date.now();
      let shownPercent = -1;
      const onProgress = (event: ProgressEvent) => {
        const percent = event.bytesTotal > 0 ? Math.floor((100 * event.bytesDone) / event.bytesTotal) : 0;
        if (percent !== shownPercent) {
          shownPercent = percent;
          node.status({ fill: 'blue', shape: 'ring', text: `${percent}%` });
        }
        if (event.type === 'chunk' && config.defaults.progress) send([null, { topic: 'progress', payload: event }]);
      };
      const onLockWait: OperationContext['onLockWait'] = (holder) => {
        node.status({ fill: 'yellow', shape: 'ring', text: shorten(`waiting: volume busy (host ${holder.host})`, 64) });
      };
      const log = { info: (m: string) => node.log(oneLine(m)), warn: (m: string) => node.warn(oneLine(m)) };
      const result = config.getCinderStore
        ? await runOnCinder(spec, { msg, store: await config.getCinderStore(), config, signal, onProgress, onLockWait, log })
        : await spec.run({ msg, repo: await config.getRepository(spec.createRepository), config, signal, onProgress, onLockWait, log });
      release();
      release = null;
      node.status({ fill: 'green', shape: 'dot', text: shorten(spec.summary(result, Date.now() - started)) });
      msg.payload = result;
      send([msg, null]);
      done();
    } catch (err) {
      release?.();
      node.status({ fill: 'red', shape: 'ring', text: shorten(errorMessage(err)) });
      done(shownError(err));
    } finally {
      if (queue.waitingCount > 0) showQueued();
    }
  }
}

function runOnCinder<R>(spec: OperationSpec<R>, ctx: CinderOperationContext): Promise<R> {
  if (!spec.runCinder) throw refuseWrite();
  return spec.runCinder(ctx);
}

function parseQueueSize(value: unknown): number {
  if (value === undefined || value === null || value === '') return DEFAULT_QUEUE_SIZE;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`queue size must be a whole number ≥ 0, not ${String(value)}`);
  return n;
}
