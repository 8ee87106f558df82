/**
 * The repository the sidebar tests look at, made with the engine directly: two volumes; one with three
 * chains (full → incremental → incremental, full → incremental, and a full backup that was cancelled
 * and failed), one with a single chain. Data timestamps come from (recorded) snapshots spread over
 * the last days, so the timeline reads like a real one. The image's hash at each backup is kept.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { BackupKind, BackupRecord, createBackup, openRepository } from '../../lib';
import { makeImage, scatterWrites, sha256File } from '../helpers/volumes';

export const FIXTURE_HOST = 'backup-host-1';
const MiB = 1024 * 1024;

export interface SidebarFixture {
  repoDir: string;
  /** Named backups: dbFull1, dbIncr1a, dbIncr1b, dbFull2, dbIncr2a, dbFailed, webFull, webIncr. */
  backups: Record<string, BackupRecord>;
  /** sha256 of the volume's image when each named backup was taken. */
  hashes: Record<string, string>;
}

export async function makeSidebarRepository(dir: string): Promise<SidebarFixture> {
  const repoDir = path.join(dir, 'repository');
  const images = path.join(dir, 'images');
  await fs.mkdir(images, { recursive: true });
  const repo = await openRepository({ backend: 'posix', path: repoDir }, { create: true, host: FIXTURE_HOST });
  const backups: Record<string, BackupRecord> = {};
  const hashes: Record<string, string> = {};
  const start = Date.now() - 3 * 24 * 3600_000;
  let hour = 0;
  const backup = async (label: string, volume: string, volumeId: string, mode: BackupKind, signal?: AbortSignal, onChunk?: () => void) => {
    hour += 7;
    const createdAt = new Date(start + hour * 3600_000);
    const snapshot = { id: `snap-${volumeId}-${createdAt.toISOString().slice(0, 13).replace(/[-T:]/g, '')}`, createdAt, provider: 'btrfs' };
    hashes[label] = await sha256File(volume);
    backups[label] = await createBackup(repo, {
      volume, volumeId, mode, snapshot, chunkSize: MiB, name: label, signal,
      onProgress: (e) => e.type === 'chunk' && onChunk?.(),
    });
  };
  try {
    const db = path.join(images, 'db.img');
    await makeImage(db, 6 * MiB, 11);
    await backup('dbFull1', db, 'db-disk', 'full');
    await scatterWrites(db, 0.05, 12);
    await backup('dbIncr1a', db, 'db-disk', 'incremental');
    await scatterWrites(db, 0.05, 13);
    await backup('dbIncr1b', db, 'db-disk', 'incremental');
    await scatterWrites(db, 0.05, 14);
    await backup('dbFull2', db, 'db-disk', 'full');
    await scatterWrites(db, 0.05, 15);
    await backup('dbIncr2a', db, 'db-disk', 'incremental');
    // A full backup stopped halfway: it stays as a failed record with its reason.
    const stop = new AbortController();
    let chunks = 0;
    await backup('dbFailed', db, 'db-disk', 'full', stop.signal, () => ++chunks === 2 && stop.abort(new Error('the operator stopped it'))).catch(() => undefined);
    const failed = (await repo.listRecords('db-disk')).find((r) => r.name === 'dbFailed');
    if (!failed || failed.status !== 'error') throw new Error('the cancelled backup should have left a failed record');
    backups.dbFailed = failed;

    const web = path.join(images, 'web.img');
    await makeImage(web, 3 * MiB, 21);
    await backup('webFull', web, 'web-disk', 'full');
    await scatterWrites(web, 0.1, 22);
    await backup('webIncr', web, 'web-disk', 'incremental');
  } finally {
    await repo.close();
  }
  return { repoDir, backups, hashes };
}

/** The flow the tests deploy: one tab and a driver-config on the fixture repository. */
export function sidebarFlow(repoDir: string, configId = 'a1b2c3d4e5f60718'): { flows: Record<string, unknown>[]; configId: string } {
  return {
    configId,
    flows: [
      { id: 'f1e2d3c4b5a69788', type: 'tab', label: 'Backups' },
      { id: configId, type: 'volume-driver-config', name: 'Demo repository', backend: 'posix', path: repoDir, host: 'node-red-host', maxConcurrent: 2 },
    ],
  };
}
