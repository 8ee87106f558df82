/**
 * Operations started from the sidebar (verify, restore, delete, prune): each waits for a slot in its
 * driver-config's limiter (the one the nodes share), runs the engine, and reports every change of
 * state and its progress through `publish` (the editor's comms). Finished operations are remembered
 * for a while so an editor opened later can still read their outcome.
 */
import { oneLine } from '../../lib/text';
import { randomUUID } from 'crypto';
import { VolumeBackupError, cancelled, errorMessage } from '../../lib/errors';
import { deleteBackup } from '../../lib/engine/delete';
import { pruneRepository } from '../../lib/engine/prune';
import { restoreBackup } from '../../lib/engine/restore';
import type { Logger, ProgressEvent } from '../../lib/engine/types';
import type { Repository } from '../../lib/repository/repository';
import { refuseWrite, type CinderStore } from '../../lib/cinder/store';
import type { RepositoryConfigNode } from '../../nodes/common/repository-config';
import type { OperationRequest } from './requests';

export type OperationState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface ErrorView {
  message: string;
  code: string | null;
  /** The engine's details, e.g. the dependents that stop a deletion. */
  details: Record<string, unknown> | null;
}

export interface ProgressView {
  percent: number;
  bytesDone: number;
  bytesTotal: number;
  bytesPerSecond: number;
  etaSeconds: number | null;
}

export interface OperationView {
  id: string;
  configId: string;
  action: OperationRequest['action'];
  backupId: string | null;
  volumeId: string | null;
  target: string | null;
  dryRun: boolean;
  state: OperationState;
  queuedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  progress: ProgressView | null;
  result: unknown;
  error: ErrorView | null;
  /** What the operation warned about while it ran (say, a restore from a read-only repository left unmarked). */
  warnings: string[];
}

/** How often a running operation's progress goes out at most (start and end always go out). */
const PROGRESS_INTERVAL_MS = 250;
const KEEP_FINISHED = 50;

export function errorView(err: unknown): ErrorView {
  // One line, control characters escaped: the editor shows it, and an HTTP client may print it.
  if (err instanceof VolumeBackupError) return { message: oneLine(err.message), code: err.code, details: err.details ?? null };
  return { message: oneLine(errorMessage(err)), code: null, details: null };
}

interface Running {
  view: OperationView;
  abort: AbortController;
  finished: Promise<void>;
}

export class Operations {
  private readonly operations = new Map<string, Running>();

  constructor(private readonly publish: (view: OperationView) => void) {}

  /** Queue an operation on a config's limiter; it runs in the background. */
  start(configId: string, config: RepositoryConfigNode, request: OperationRequest): OperationView {
    const view: OperationView = {
      id: randomUUID(),
      configId,
      action: request.action,
      backupId: 'backupId' in request ? request.backupId : null,
      volumeId: 'volumeId' in request ? (request.volumeId ?? null) : null,
      target: request.action === 'restore' ? request.target : null,
      dryRun: request.action === 'prune' ? request.dryRun : false,
      state: 'queued',
      queuedAt: new Date().toISOString(),
      startedAt: null,
      finishedAt: null,
      progress: null,
      result: null,
      error: null,
      warnings: [],
    };
    const abort = new AbortController();
    const running: Running = { view, abort, finished: Promise.resolve() };
    this.operations.set(view.id, running);
    this.forgetOld();
    this.publish(view);
    running.finished = this.run(running, config, request);
    return view;
  }

  get(id: string): OperationView | null {
    return this.operations.get(id)?.view ?? null;
  }

  list(): OperationView[] {
    return [...this.operations.values()].map((r) => r.view);
  }

  /** Resolves when the operation has finished (in any state). */
  async wait(id: string): Promise<OperationView> {
    const running = this.operations.get(id);
    if (!running) throw new VolumeBackupError('NOT_FOUND', `no operation ${id}`);
    await running.finished;
    return running.view;
  }

  /** Ask a queued or running operation to stop; false when it had already finished. */
  cancel(id: string): boolean {
    const running = this.operations.get(id);
    if (!running) throw new VolumeBackupError('NOT_FOUND', `no operation ${id}`);
    if (running.view.finishedAt) return false;
    running.abort.abort(new Error('stopped from the Backups sidebar'));
    return true;
  }

  /** Stop this sidebar's unfinished operations on `backupId` (a cancel request from the Cancel button). */
  cancelBackup(backupId: string, reason: Error): void {
    for (const running of this.operations.values()) {
      if (running.view.backupId === backupId && !running.view.finishedAt) running.abort.abort(reason);
    }
  }

  private async run(running: Running, config: RepositoryConfigNode, request: OperationRequest): Promise<void> {
    const { view, abort } = running;
    let release: (() => void) | null = null;
    try {
      release = await config.limiter.acquire(abort.signal);
      view.state = 'running';
      view.startedAt = new Date().toISOString();
      this.publish(view);
      view.result = config.getCinderStore
        ? await executeOnCinder(await config.getCinderStore(), request, abort.signal, this.progressReporter(view))
        : await execute(await config.getRepository(false), request, abort.signal, this.progressReporter(view), { info: () => undefined, warn: (m) => view.warnings.push(oneLine(m)) });
      view.state = 'done';
    } catch (err) {
      view.state = abort.signal.aborted ? 'cancelled' : 'failed';
      view.error = errorView(abort.signal.aborted && !(err instanceof VolumeBackupError) ? cancelled(abort.signal.reason) : err);
    } finally {
      release?.();
      view.finishedAt = new Date().toISOString();
      this.publish(view);
    }
  }

  private progressReporter(view: OperationView): (event: ProgressEvent) => void {
    let lastSent = 0;
    return (event) => {
      view.progress = {
        percent: event.percent,
        bytesDone: event.bytesDone,
        bytesTotal: event.bytesTotal,
        bytesPerSecond: event.bytesPerSecond,
        etaSeconds: event.etaSeconds,
      };
      const now = Date.now();
      if (event.type !== 'chunk' || now - lastSent >= PROGRESS_INTERVAL_MS) {
        lastSent = now;
        this.publish(view);
      }
    };
  }

  private forgetOld(): void {
    const finished = [...this.operations.values()].filter((r) => r.view.finishedAt);
    for (const r of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) this.operations.delete(r.view.id);
  }
}

async function execute(repo: Repository, request: OperationRequest, signal: AbortSignal, onProgress: (e: ProgressEvent) => void, log: Logger): Promise<unknown> {
  switch (request.action) {
    case 'verify':
      return restoreBackup(repo, { backupId: request.backupId, verifyOnly: true, signal, onProgress, log });
    case 'restore':
      // The route asked the user before writing over an existing target (checkRestoreTarget).
      return restoreBackup(repo, { backupId: request.backupId, target: request.target, overwrite: request.overwrite, signal, onProgress, log });
    case 'delete': {
      const result = await deleteBackup(repo, { backupId: request.backupId, signal });
      return { deleted: result.deleted.map((r) => ({ id: r.id, volumeId: r.volumeId, kind: r.kind })), bytesFreed: result.bytesFreed };
    }
    case 'prune':
      return pruneRepository(repo, { policy: request.policy, volumeId: request.volumeId, dryRun: request.dryRun, signal, onProgress, log });
  }
}

/** A Cinder store is read-only: verify and restore read it, delete and prune are refused. */
async function executeOnCinder(store: CinderStore, request: OperationRequest, signal: AbortSignal, onProgress: (e: ProgressEvent) => void): Promise<unknown> {
  const { restoreCinderBackup } = await import('../../lib/cinder/restore');
  switch (request.action) {
    case 'verify':
      return restoreCinderBackup(store, { backupId: request.backupId, verifyOnly: true, signal, onProgress });
    case 'restore':
      // The route asked the user before writing over an existing target (checkRestoreTarget).
      return restoreCinderBackup(store, { backupId: request.backupId, target: request.target, overwrite: request.overwrite, signal, onProgress });
    default:
      throw refuseWrite();
  }
}
