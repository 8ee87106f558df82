/**
 * The work of an operation node (its queue and the operation running from it) belongs to the runtime,
 * keyed by the node's id, not to one node object. Node-RED re-creates nodes on a full deploy or a flow
 * restart; a re-created node with the same settings takes the work over (deploy-decision.ts says when),
 * and from then on its status, progress (output 2), result (output 1), Complete and Catch go through the
 * new node. A node that was removed, whose settings changed, or that stops with Node-RED cancels its
 * work, with a warning naming the backup and the error through done(err) (Catch, where its flow still runs).
 */
import { oneLine } from '../../lib/text';
import { stopDecision, StopDecision, onFlowsStarted } from './deploy-decision';
import { BoundedQueue } from './queue';
import type { DoneFunction, Node, NodeAPI, NodeMessage, NodeStatus, SendFunction } from './red';
import { isRepositoryConfigNode } from './repository-config';

/** One message's operation, from the node that received it. */
export interface Job {
  msg: NodeMessage;
  /** The node that received the message, and Node-RED's send and done for it. */
  origin: Node;
  send: SendFunction;
  done: DoneFunction;
  /** What the engine reported last (its progress events name the backup and volume). */
  operation?: string;
  backupId?: string;
  volumeId?: string;
  percent?: number;
  /** Stops this operation (its signal fires), as Ctrl-C would. */
  abort?: (reason: Error) => void;
  /** Gives back its slot in the driver-config's concurrency limit. */
  releaseSlot?: () => void;
}

const CANCEL_REASONS: Record<Exclude<StopDecision, 'keep'>, string> = {
  removed: 'its node was removed by a deploy',
  changed: "its node's settings changed in a deploy",
  stopping: 'Node-RED is stopping',
};

/** Node-RED's default for settings.nodeCloseTimeout. */
const DEFAULT_CLOSE_TIMEOUT_MS = 15_000;

const works = new Map<string, NodeWork>();
const watched = new WeakSet<object>();

export class NodeWork {
  /** The node that shows this work now; null between a deploy's stop and the re-created node's start. */
  node: Node | null;
  readonly queue: BoundedQueue;
  current: Job | null = null;
  /** A job waits for a slot of the driver-config's limit (shown as queued). */
  waitingForSlot = 0;
  private lastStatus: NodeStatus | null = null;
  /** Results that finished while no node was attached, for the re-created one. */
  private pending: ((node: Node | null) => void)[] = [];
  /** Taken over by a re-created node whose flows have not all started yet (its wires may lead nowhere yet). */
  private starting = false;

  private constructor(
    private readonly RED: NodeAPI,
    readonly id: string,
    node: Node,
    readonly repositoryId: string,
    queueSize: number,
  ) {
    this.node = node;
    this.queue = new BoundedQueue(queueSize, () => this.showQueued());
  }

  /** The work of a node being constructed: taken over from its predecessor when a deploy kept it, else new. */
  static forNode(RED: NodeAPI, node: Node, repositoryId: string, queueSize: number): NodeWork {
    watchFlowStarts(RED);
    const kept = works.get(node.id);
    if (kept && kept.node === null) {
      kept.takeOver(node);
      return kept;
    }
    const work = new NodeWork(RED, node.id, node, repositoryId, queueSize);
    works.set(node.id, work);
    return work;
  }

  /** The running job of any node of this runtime working on `backupId`. */
  static runningOn(backupId: string): Job | null {
    for (const work of works.values()) if (work.current?.backupId === backupId) return work.current;
    return null;
  }

  status(status: NodeStatus): void {
    this.lastStatus = status;
    this.node?.status(status);
  }

  showQueued(): void {
    const n = this.queue.waitingCount + this.waitingForSlot;
    if (n > 0) this.status({ fill: 'yellow', shape: 'ring', text: `queued ${n}` });
  }

  /** Progress: sent on the node attached now (dropped in the moment between a deploy's stop and start). */
  progress(job: Job, msg: NodeMessage): void {
    if (this.node) this.send(this.node, job, [null, msg]);
  }

  /**
   * The result (output 1, when there is one) and Complete or Catch, through the node attached now; in the
   * moment between a deploy's stop and start, through the re-created node once it is there.
   */
  finish(job: Job, err?: Error): void {
    const deliver = (node: Node | null) => {
      if (!err) this.send(node ?? job.origin, job, [job.msg, null]);
      if (!node || node === job.origin) return job.done(err); // detached for good: the old node logs it
      if (node._complete) node._complete(job.msg, err);
      else if (err) node.error(err, job.msg);
    };
    if ((this.node && !this.starting) || works.get(this.id) !== this) deliver(this.node);
    else this.pending.push(deliver);
  }

  private send(node: Node, job: Job, msgs: (NodeMessage | null)[]): void {
    if (node === job.origin) job.send(msgs);
    else node.send(msgs);
  }

  log(message: string, warn = false): void {
    const target = this.node ?? this.current?.origin;
    if (warn) target?.warn(oneLine(message));
    else target?.log(oneLine(message));
  }

  /**
   * The node's close: keep the work for the re-created node (a deploy that brings it back unchanged),
   * or cancel it and resolve when it has finished cleaning up.
   */
  async close(node: Node, removed: boolean): Promise<void> {
    if (this.node !== node) return;
    const decision = removed ? 'removed' : stopDecision(this.RED, this.id);
    const busy = this.queue.busy || this.queue.waitingCount > 0;
    if (decision === 'keep' && busy) {
      this.node = null;
      // Its old driver-config closes now; the re-created one counts the operation again.
      this.current?.releaseSlot?.();
      node.log(oneLine(`deploy: ${describeJob(this.current)} goes on; the re-created node takes it over`));
      return;
    }
    works.delete(this.id);
    if (decision === 'keep') return;
    await this.cancel(CANCEL_REASONS[decision]);
  }

  private async cancel(reason: string): Promise<void> {
    const waiting = this.queue.waitingCount;
    const job = this.current;
    if (job || waiting > 0) {
      this.log(`${reason}: cancelling ${describeJob(job)}${waiting ? ` and ${waiting} queued message${waiting === 1 ? '' : 's'}` : ''}`, true);
    }
    // Within Node-RED's close timeout: a cancel stops between chunks, but removing what a backup wrote can
    // take longer on a slow store; what is left then is the start-up cleanup's.
    const limitMs = Math.max(1000, Number(this.RED.settings?.nodeCloseTimeout ?? DEFAULT_CLOSE_TIMEOUT_MS) - 1000);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), limitMs);
      timer.unref();
    });
    const timedOut = await Promise.race([this.queue.close(reason).then(() => false), late]);
    clearTimeout(timer);
    if (timedOut) this.log(`${describeJob(job)} is still cleaning up after ${limitMs} ms; the start-up cleanup removes what is left`, true);
  }

  private takeOver(node: Node): void {
    this.node = node;
    this.starting = true;
    if (this.lastStatus) node.status(this.lastStatus);
    const job = this.current;
    if (job) {
      const config = this.RED.nodes.getNode(this.repositoryId);
      if (isRepositoryConfigNode(config)) job.releaseSlot = config.limiter.occupy();
    }
    if (job || this.queue.waitingCount) node.log(oneLine(`took over ${describeJob(job)} after the deploy${this.queue.waitingCount ? ` (and ${this.queue.waitingCount} queued)` : ''}`));
  }

  /**
   * After the flows started: results that finished during the deploy go out through the re-created nodes
   * (now wired to nodes that exist); work whose node did not come back is cancelled.
   */
  static afterFlowsStarted(): void {
    for (const work of [...works.values()]) {
      if (work.node !== null) {
        work.starting = false;
        for (const deliver of work.pending.splice(0)) deliver(work.node);
        continue;
      }
      works.delete(work.id);
      for (const deliver of work.pending.splice(0)) deliver(null);
      void work.cancel('its node did not start again after the deploy');
    }
  }
}

function watchFlowStarts(RED: NodeAPI): void {
  if (!RED.events || watched.has(RED.events)) return;
  watched.add(RED.events);
  onFlowsStarted(RED, () => NodeWork.afterFlowsStarted());
}

/** "the running backup 6f1c… of volume db (42 %)" */
export function describeJob(job: Job | null): string {
  if (!job) return 'the queued work';
  const what = `the running ${job.operation ?? 'operation'}${job.backupId ? ` of backup ${job.backupId}` : ''}`;
  return job.volumeId ? `${what} (volume ${job.volumeId}${job.percent !== undefined ? `, ${job.percent} %` : ''})` : what;
}
