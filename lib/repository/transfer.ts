/**
 * Cinder's export_record / import_record: a backup's record as one line of base64 JSON, which another
 * repository holding a copy of the backup's objects can adopt. Import checks the objects are there and
 * are the ones the record describes before the record is created.
 */
import { VolumeBackupError, errorMessage } from '../errors';
import { checkRecordTotals, listBackupObjects, loadHashList, ownedObjects, readMetadata } from './backup-objects';
import { recordLayoutProblem } from './layout';
import { checkBackupId } from './names';
import { BackupRecord, parseRecord } from './records';
import type { Repository } from './repository';

const EXPORT_KIND = 'node-red-contrib-volume-backup/record';

export async function exportRecord(repo: Repository, backupId: string): Promise<string> {
  const record = await repo.getRecord(checkBackupId(backupId));
  if (record.status !== 'available') throw new VolumeBackupError('CONFLICT', `backup ${backupId} is ${record.status}: only available backups can be exported`);
  return Buffer.from(JSON.stringify({ kind: EXPORT_KIND, record }), 'utf8').toString('base64');
}

export async function importRecord(repo: Repository, text: string): Promise<BackupRecord> {
  let record: BackupRecord;
  try {
    const decoded = JSON.parse(Buffer.from(String(text).trim(), 'base64').toString('utf8')) as { kind?: string; record?: unknown };
    if (decoded.kind !== EXPORT_KIND) throw new Error('not an exported volume-backup record');
    record = parseRecord(decoded.record);
  } catch (err) {
    throw new VolumeBackupError('INVALID_ARGUMENT', `cannot import: the input is not an exported record (${errorMessage(err)})`);
  }
  // Before anything is read or written: a foreign prefix ("volume_", "r") would make deleting this
  // backup later remove other volumes' objects or the whole repository.
  const layout = recordLayoutProblem(repo.driver, record);
  if (layout) throw new VolumeBackupError('INVALID_ARGUMENT', `cannot import backup ${record.id}: ${layout}; only records whose objects are named as this tool names them can be imported`);
  if (record.status !== 'available') throw new VolumeBackupError('INVALID_ARGUMENT', `cannot import backup ${record.id}: its exported status is ${record.status}`);
  if (record.encrypted !== repo.codec.encrypted) {
    throw new VolumeBackupError('INVALID_ARGUMENT', `cannot import backup ${record.id}: it is ${record.encrypted ? '' : 'not '}encrypted and this repository is ${repo.codec.encrypted ? '' : 'not '}`);
  }
  const existing = await repo.listRecords(record.volumeId);
  if (existing.some((r) => r.id === record.id)) {
    throw new VolumeBackupError('CONFLICT', `backup ${record.id} already exists in ${repo.location}`);
  }
  if (record.parentId && !existing.some((r) => r.id === record.parentId)) {
    throw new VolumeBackupError('INVALID_ARGUMENT', `cannot import backup ${record.id}: its parent ${record.parentId} is not in this repository (import the parent first)`);
  }
  // The objects must already be here and be the ones the record describes.
  const { metadata, storedLength } = await readMetadata(repo, record).catch((err: unknown) => {
    // Intact objects this repository's key cannot open: copied from a repository with another key.
    if (err instanceof VolumeBackupError && err.details?.intact === true) {
      throw new VolumeBackupError('INVALID_ARGUMENT', `cannot import backup ${record.id}: its objects are intact but sealed with another repository's key, which this repository does not have; import into a repository made from a copy of the source's repository.json (same key and passphrase), not one made by init --encrypt`);
    }
    throw err;
  });
  if (metadata.formatVersion === 1) await loadHashList(repo, record, metadata);
  const present = new Map((await listBackupObjects(repo, record)).map((e) => [e.name, e.size]));
  const totals = { objects: 1, bytes: storedLength };
  for await (const obj of ownedObjects(repo, record, metadata)) {
    if (present.get(obj.name) !== obj.length) {
      throw new VolumeBackupError('OBJECT_MISSING', `cannot import backup ${record.id}: object ${obj.name} is ${present.has(obj.name) ? 'the wrong size' : 'missing'}; copy the backup's objects first`);
    }
    totals.objects++;
    totals.bytes += obj.length;
  }
  checkRecordTotals(record, totals);
  const now = new Date().toISOString();
  // A base snapshot belongs to the record it was kept for: an imported copy must never remove it.
  const adopted: BackupRecord = { ...record, host: repo.host, updatedAt: now, leaseExpiresAt: null, baseSnapshot: null };
  const created = (await repo.createRecord(adopted)).record;
  // Set-then-check against prune: with our record in place, the parent must still be there.
  if (record.parentId) {
    const parent = (await repo.listRecords(record.volumeId)).find((r) => r.id === record.parentId);
    if (!parent || (parent.status !== 'available' && parent.status !== 'restoring')) {
      await repo.deleteRecord(created);
      throw new VolumeBackupError('CONFLICT', `cannot import backup ${record.id}: its parent ${record.parentId} was ${parent ? parent.status : 'deleted'} meanwhile`);
    }
  }
  return created;
}
