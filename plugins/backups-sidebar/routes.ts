/**
 * The Backups sidebar's admin HTTP endpoints (behind Node-RED's admin authentication and permissions):
 * list a driver-config's backups as chains and run verify, restore, delete and prune, with their
 * progress sent to the editor through comms.
 *
 *   GET  /volume-backup/sidebar/configs                          deployed driver-configs
 *   GET  /volume-backup/sidebar/configs/:configId/backups        volumes and chains, a page of backups [?volumeId=&page=&size=]
 *   POST /volume-backup/sidebar/configs/:configId/operations     {action, …, wait?}
 *   GET  /volume-backup/sidebar/operations[/:operationId]        recent operations
 *   POST /volume-backup/sidebar/operations/:operationId/cancel
 *   POST /volume-backup/sidebar/configs/:configId/backups/:backupId/cancel   stop whatever runs on the backup, on any host
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { VolumeBackupError, errorMessage, invalid } from '../../lib/errors';
import { findConfig, listConfigs } from './configs';
import { ErrorView, OperationView, Operations, errorView } from './operations';
import type { AdminRequest, AdminResponse, PluginAPI } from './red-admin';
import { deployedSecrets, redact } from './redact';
import { parseConfigId, parseListQuery, parseOperationBody, parseOperationId } from './requests';
import { sidebarPage } from './view';
import type { CinderStore } from '../../lib/cinder/store';
import type { BackupRecord } from '../../lib/repository/records';
import { oneLine } from '../../lib/text';
import { cancelRequested, requestCancel } from '../../lib/engine/cancel';
import { checkBackupId } from '../../lib/repository/names';
import { NodeWork } from '../../nodes/common/node-work';

export const ROUTE_PREFIX = '/volume-backup/sidebar';
export const PROGRESS_TOPIC = 'volume-backup/progress';
export const READ_PERMISSION = 'volume-backup.read';
export const WRITE_PERMISSION = 'volume-backup.write';

const STATUS_BY_CODE: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  HAS_DEPENDENTS: 409,
  CONFLICT: 409,
  BUSY: 409,
  PRECONDITION_FAILED: 409,
  INCOMPATIBLE_PARENT: 409,
  CANCELLED: 409,
  AUTH: 502,
  STORAGE: 502,
  ENCRYPTION: 502,
};

export function httpStatusFor(code: string | null): number {
  return (code && STATUS_BY_CODE[code]) || 500;
}

function sendError(res: AdminResponse, error: ErrorView, operation?: OperationView): void {
  res.status(httpStatusFor(error.code)).json({ error: error.message, code: error.code, details: error.details, ...(operation ? { operation } : {}) });
}

/** A restore never overwrites an existing file or device unless the user confirmed it. */
async function checkRestoreTarget(target: string, overwrite: boolean): Promise<void> {
  const existing = await fs.stat(target).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw invalid(`cannot use ${target} as the restore target: ${errorMessage(err)}`);
  });
  if (existing) {
    if (existing.isDirectory()) throw invalid(`${target} is a directory: give the path of a file or block device`);
    if (!overwrite) throw new VolumeBackupError('CONFLICT', `${target} exists: confirm overwriting it, or choose a new file`, { target });
    return;
  }
  const dir = await fs.stat(path.dirname(target)).catch(() => null);
  if (!dir?.isDirectory()) throw invalid(`the directory ${path.dirname(target)} does not exist`);
}

export function registerRoutes(RED: PluginAPI): void {
  const operations = new Operations((view) => RED.comms.publish(PROGRESS_TOPIC, redact(view, deployedSecrets(RED)), false));
  const read = RED.auth.needsPermission(READ_PERMISSION);
  const write = RED.auth.needsPermission(WRITE_PERMISSION);

  /**
   * Express 4 does not catch rejected promises: every handler answers its own errors as JSON. Every
   * reply goes through redact().
   */
  const handle = (fn: (req: AdminRequest, res: AdminResponse) => Promise<void>) => (req: AdminRequest, res: AdminResponse) => {
    const safe: AdminResponse = {
      status: (code) => (res.status(code), safe),
      json: (body) => res.json(redact(body, deployedSecrets(RED))),
    };
    fn(req, safe).catch((err) => sendError(safe, errorView(err)));
  };

  RED.httpAdmin.get(
    `${ROUTE_PREFIX}/configs`,
    read,
    // The restore dialog suggests a file in VOLUME_BACKUP_RESTORE_DIR (as the examples use it), or the temp directory.
    handle(async (_req, res) => res.json({ configs: listConfigs(RED), restoreDir: process.env.VOLUME_BACKUP_RESTORE_DIR || os.tmpdir() })),
  );

  RED.httpAdmin.get(
    `${ROUTE_PREFIX}/configs/:configId/backups`,
    read,
    handle(async (req, res) => {
      const configId = parseConfigId(req.params.configId);
      const { volumeId, page, size } = parseListQuery(req.query);
      const { view, node } = findConfig(RED, configId);
      const problems: string[] = [];
      const source = node.getCinderStore ? await cinderListing(await node.getCinderStore(), volumeId, problems) : null;
      const repo = source ? null : await node.getRepository(false);
      const records = source ? source.records : await repo!.listRecords(volumeId, (name, reason) => problems.push(oneLine(`${name} is not a valid record: ${reason}`)));
      const listing = sidebarPage(records, new Date(), { page, size });
      res.json({
        config: view,
        location: source ? source.location : repo!.location,
        encrypted: repo?.encrypted ?? false,
        readOnly: !!source,
        volumes: listing.volumes,
        page: listing.page,
        problems,
        operations: operations.list().filter((o) => o.configId === configId),
      });
    }),
  );

  RED.httpAdmin.post(
    `${ROUTE_PREFIX}/configs/:configId/operations`,
    write,
    handle(async (req, res) => {
      const configId = parseConfigId(req.params.configId);
      const { request, wait } = parseOperationBody(req.body);
      const { node } = findConfig(RED, configId);
      if (request.action === 'restore') await checkRestoreTarget(request.target, request.overwrite);
      const started = operations.start(configId, node, request);
      if (!wait) {
        res.status(202).json({ operation: started });
        return;
      }
      const finished = await operations.wait(started.id);
      if (finished.state === 'done') res.json({ operation: finished });
      else sendError(res, finished.error ?? { message: `the operation ended ${finished.state}`, code: 'CANCELLED', details: null }, finished);
    }),
  );

  RED.httpAdmin.post(
    `${ROUTE_PREFIX}/configs/:configId/backups/:backupId/cancel`,
    write,
    handle(async (req, res) => {
      const configId = parseConfigId(req.params.configId);
      const { node } = findConfig(RED, configId);
      const repo = await node.getRepository(false);
      const user = req.user?.username ? `${req.user.username} (editor)` : 'editor';
      const record = await requestCancel(repo, checkBackupId(req.params.backupId), { source: 'sidebar', user });
      // Running in this Node-RED (a node's or this sidebar's operation): it stops now, not at its next renewal.
      if (record.cancelRequest) {
        NodeWork.runningOn(record.id)?.abort?.(cancelRequested(record.cancelRequest));
        operations.cancelBackup(record.id, cancelRequested(record.cancelRequest));
      }
      res.json({ record });
    }),
  );

  RED.httpAdmin.get(
    `${ROUTE_PREFIX}/operations`,
    read,
    handle(async (_req, res) => res.json({ operations: operations.list() })),
  );

  RED.httpAdmin.get(
    `${ROUTE_PREFIX}/operations/:operationId`,
    read,
    handle(async (req, res) => {
      const operation = operations.get(parseOperationId(req.params.operationId));
      if (!operation) throw new VolumeBackupError('NOT_FOUND', `no operation ${req.params.operationId}`);
      res.json({ operation });
    }),
  );

  RED.httpAdmin.post(
    `${ROUTE_PREFIX}/operations/:operationId/cancel`,
    write,
    handle(async (req, res) => {
      const id = parseOperationId(req.params.operationId);
      const cancelled = operations.cancel(id);
      res.json({ cancelled, operation: operations.get(id) });
    }),
  );
}

/** A Cinder store's backups as records (read-only: the sidebar offers verify and restore). */
async function cinderListing(store: CinderStore, volumeId: string | undefined, problems: string[]): Promise<{ records: BackupRecord[]; location: string }> {
  const { cinderRecords } = await import('../../lib/cinder/view');
  for (const d of (await store.scan()).damaged) problems.push(oneLine(`${d.name} is not a valid Cinder backup metadata object: ${d.reason}`));
  return { records: await cinderRecords(store, volumeId), location: store.location };
}
