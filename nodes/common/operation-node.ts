/**
 * The glue every operation node (backup, incremental, snapshot, restore, prune) shares: the bounded
 * queue, the shared concurrency limit, status, progress messages, result message, errors through
 * done(err), msg.cancel, and what a deploy does to running work (node-work.ts: a re-created node takes
 * it over). A node only says how to turn a message into an engine call.
 */
import { describeValue } from '../../lib/text';
import { errorMessage, shownError } from '../../lib/errors';
import type { CreateBackupOptions, ProgressEvent } from '../../lib/engine/types';
import type { Repository } from '../../lib/repository/repository';
import { refuseWrite, type CinderStore } from '../../lib/cinder/store';
import { cancelRequested, requestCancel } from '../../lib/engine/cancel';
import { VolumeBackupError, invalid } from '../../lib/errors';
import { trackDeploys } from './deploy-decision';
import { shorten } from './format';
import { reportMissingSettings } from './missing-settings';
import { Job, NodeWork } from './node-work';
import type { Node, NodeAPI, NodeDef, NodeMessage } from './red';
import { RepositoryConfigNode, isRepositoryConfigNode } from './repository-config';
import { useRepository } from './repository-users';

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
  trackDeploys(RED);
  function OperationNode(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    reportMissingSettings(RED, this, def);
    operationNode(RED, this, def, makeSpec(this, def));
  }
  RED.nodes.registerType(type, OperationNode);
}

function operationNode<R>(RED: NodeAPI, node: Node, def: NodeDef, spec: OperationSpec<R>): void {
  // Taken over from the node this one replaces when a deploy kept its work (node-work.ts).
  const work = NodeWork.forNode(RED, node, typeof def.repository === 'string' ? def.repository : '', parseQueueSize(def.queueSize));

  node.on('input', (msg, send, done) => {
    if (msg.cancel === true || msg.cancel === 'true') {
      cancelFromMessage(RED, node, work, msg).then(
        (record) => {
          msg.payload = record;
          send([msg, null]);
          done();
        },
        (err) => done(shownError(err)),
      );
      return;
    }
    try {
      const job: Job = { msg, origin: node, send, done };
      work.queue.push({
        run: (signal) => runOne(RED, work, job, spec, signal),
        cancel: (err) => work.finish(job, shownError(err)),
      });
    } catch (err) {
      done(shownError(err));
    }
  });

  node.on('close', (removed, done) => {
    work.close(node, removed).then(
      () => done(),
      () => done(),
    );
  });
}

async function runOne<R>(RED: NodeAPI, work: NodeWork, job: Job, spec: OperationSpec<R>, queueSignal: AbortSignal): Promise<void> {
  // msg.cancel (and a cancel request recorded for the backup) stops this operation alone.
  const own = new AbortController();
  const signal = AbortSignal.any([queueSignal, own.signal]);
  job.abort = (reason) => own.abort(reason);
  work.current = job;
  let stopUsing: (() => void) | null = null;
  try {
    const config = RED.nodes.getNode(work.repositoryId);
    if (!isRepositoryConfigNode(config)) {
      throw new Error('no repository configured: open the node and pick or add a driver-config');
    }
    if (config.limiter.full) {
      work.waitingForSlot = 1;
      work.showQueued();
    }
    try {
      job.releaseSlot = await config.limiter.acquire(signal);
    } finally {
      work.waitingForSlot = 0;
    }
    work.status({ fill: 'blue', shape: 'ring', text: 'starting' });
    const started = Date.now();
    let shownPercent = -1;
    const onProgress = (event: ProgressEvent) => {
      // The engine's percent never goes back; whole percents keep the status updates few.
      const percent = Math.floor(event.percent);
      Object.assign(job, { operation: event.operation, backupId: event.backupId, volumeId: event.volumeId, percent });
      if (percent !== shownPercent) {
        shownPercent = percent;
        work.status({ fill: 'blue', shape: 'ring', text: `${percent}%, ${event.chunksDone}/${event.chunkCount} chunks` });
      }
      if (event.type === 'chunk' && config.defaults.progress) work.progress(job, { topic: 'progress', payload: event });
    };
    const onLockWait: OperationContext['onLockWait'] = (holder) => {
      work.status({ fill: 'yellow', shape: 'ring', text: shorten(`waiting: volume busy (host ${holder.host})`, 64) });
    };
    const log = { info: (m: string) => work.log(m), warn: (m: string) => work.log(m, true) };
    const common = { msg: job.msg, config, signal, onProgress, onLockWait, log };
    let result: R;
    if (config.getCinderStore) {
      result = await runOnCinder(spec, { ...common, store: await config.getCinderStore() });
    } else {
      const repo = await config.getRepository(spec.createRepository);
      stopUsing = useRepository(repo);
      result = await spec.run({ ...common, repo });
    }
    job.releaseSlot?.();
    work.status({ fill: 'green', shape: 'dot', text: shorten(spec.summary(result, Date.now() - started), 48) });
    job.msg.payload = result;
    work.finish(job);
  } catch (err) {
    job.releaseSlot?.();
    work.status({ fill: 'red', shape: 'ring', text: shorten(errorMessage(err)) });
    work.finish(job, shownError(err));
  } finally {
    stopUsing?.();
    work.current = null;
    if (work.queue.waitingCount > 0) work.showQueued();
  }
}

function runOnCinder<R>(spec: OperationSpec<R>, ctx: CinderOperationContext): Promise<R> {
  if (!spec.runCinder) throw refuseWrite();
  return spec.runCinder(ctx);
}

/**
 * msg.cancel: stop the operation on msg.backupId (running anywhere: the request is recorded in the
 * repository and its owner stops at its next lease renewal; at once when it runs in this Node-RED), or
 * without msg.backupId this node's running operation. Resolves with the record.
 */
async function cancelFromMessage(RED: NodeAPI, node: Node, work: NodeWork, msg: NodeMessage): Promise<unknown> {
  const given = typeof msg.backupId === 'string' && msg.backupId ? msg.backupId : undefined;
  const backupId = given ?? work.current?.backupId;
  if (!backupId) {
    if (!work.current) throw invalid('msg.cancel: nothing to cancel: this node runs no operation; give msg.backupId to cancel a backup running elsewhere');
    // Started, but the engine has not named its backup yet: stop it here.
    work.current.abort?.(new VolumeBackupError('CANCELLED', `cancelled by msg.cancel to node ${node.name || node.id}`));
    return { cancelled: true, backupId: null };
  }
  const config = RED.nodes.getNode(work.repositoryId);
  if (!isRepositoryConfigNode(config)) throw new Error('no repository configured: open the node and pick or add a driver-config');
  // A Cinder store holds no record to ask in: only an operation reading it here can be stopped.
  if (config.getCinderStore) return cancelHere(node, backupId);
  const repo = await config.getRepository(false);
  const record = await requestCancel(repo, backupId, { source: 'node', user: `node ${node.name || node.id}` });
  const local = NodeWork.runningOn(backupId);
  if (local && record.cancelRequest) local.abort?.(cancelRequested(record.cancelRequest));
  return record;
}

function cancelHere(node: Node, backupId: string): { cancelled: true; backupId: string } {
  const local = NodeWork.runningOn(backupId);
  if (!local) throw invalid(`msg.cancel: no operation on backup ${backupId} runs in this Node-RED (a Cinder store is read-only: nothing else can be running on it)`);
  local.abort?.(new VolumeBackupError('CANCELLED', `cancelled by msg.cancel to node ${node.name || node.id}`));
  return { cancelled: true, backupId };
}

function parseQueueSize(value: unknown): number {
  if (value === undefined || value === null || value === '') return DEFAULT_QUEUE_SIZE;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`queue size must be a whole number ≥ 0, not ${describeValue(value)}`);
  return n;
}
