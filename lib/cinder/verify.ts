/**
 * `verify` of a Cinder store: every `_metadata` parses, every chain is complete, every listed object is
 * there and no unlisted one carries a backup's prefix (Cinder's restore refuses such a container), every
 * block of every backup is provided by its chain with the hash its `_sha256file` lists; with readData,
 * every object is read: its MD5 and each block's SHA-256 against its own backup's list.
 */
import { VolumeBackupError, errorMessage, throwIfAborted } from '../errors';
import type { VerifyProblem, VerifyProblemKind, VerifyResult } from '../engine/verify';
import { checkBlocks, imageSize } from './chain';
import type { CinderSha256File } from './metadata';
import type { CinderBackup, CinderScan, CinderStore } from './store';

export interface CinderVerifyOptions {
  backupId?: string;
  readData?: boolean;
  signal?: AbortSignal;
}

type AddProblem = (kind: VerifyProblemKind, message: string, backupIds: string[], objectName?: string) => void;

export async function verifyCinderStore(store: CinderStore, options: CinderVerifyOptions = {}): Promise<VerifyResult> {
  const started = Date.now();
  const problems: VerifyProblem[] = [];
  const add: AddProblem = (kind, message, backupIds, objectName) => problems.push({ kind, message, backupIds, objectName });
  const scan = await store.scan();
  if (!options.backupId) reportUnreadable(scan, add);
  const byId = new Map(scan.backups.map((b) => [b.id, b]));
  const selected = options.backupId ? await chainToVerify(store, options.backupId, add) : scan.backups;
  const shaCache = new Map<string, CinderSha256File | null>();
  const shaOf = async (b: CinderBackup): Promise<CinderSha256File | null> => {
    if (!shaCache.has(b.id)) {
      shaCache.set(b.id, await store.readSha256(b).catch((err) => {
        add(err instanceof VolumeBackupError && err.code === 'OBJECT_MISSING' ? 'missing-object' : 'corrupt', errorMessage(err), [b.id]);
        return null;
      }));
    }
    return shaCache.get(b.id)!;
  };
  let objectsChecked = 0;
  let bytesVerified = 0;
  for (const b of selected) {
    throwIfAborted(options.signal);
    for (const name of b.missing) add('missing-object', `object ${store.key(b, name)} of backup ${b.id} is missing`, [b.id], store.key(b, name));
    if (b.unlisted.length) add('orphaned-objects', `backup ${b.id} has ${b.unlisted.length} object(s) with its prefix that its metadata does not list (Cinder's restore refuses it): ${b.unlisted.slice(0, 5).map((n) => store.key(b, n)).join(', ')}`, [b.id]);
    if (b.parentId && !byId.has(b.parentId)) add('broken-chain', `backup ${b.id} needs its parent ${b.parentId}, which is not in the store`, [b.id]);
    const sha = await shaOf(b);
    objectsChecked += b.objects.length - b.missing.length;
    if (options.readData && sha) bytesVerified += await readObjects(store, b, sha, add, options.signal);
  }
  // Every block of every backup comes from its chain with the hash the backup lists (hash lists only).
  for (const b of options.backupId ? selected.slice(-1) : selected) {
    const chain = await store.chain(b.id).catch(() => null);
    if (!chain) continue;
    const message = await coverageProblem(chain, shaOf);
    if (message) add('corrupt', message, [b.id]);
  }
  return { ok: problems.length === 0, readData: !!options.readData, recordsChecked: selected.length, backupsVerified: selected.length, objectsChecked, bytesVerified, problems, notes: [], durationMs: Date.now() - started };
}

/** Metadata objects that do not parse, and objects of backups that have no _metadata object. */
function reportUnreadable({ damaged, orphans }: CinderScan, add: AddProblem): void {
  for (const d of damaged) add('malformed-record', `${d.name}: ${d.reason}`, [], d.name);
  const byBackup = new Map<string, string[]>();
  for (const name of orphans) {
    const id = /_backup_([^/]+?)(?:-\d{5}|_sha256file)$/.exec(name)?.[1] ?? name;
    byBackup.set(id, [...(byBackup.get(id) ?? []), name]);
  }
  for (const [id, names] of byBackup) {
    add('missing-object', `backup ${id} has ${names.length} object(s) but no _metadata object, so it cannot be restored: ${names.slice(0, 3).join(', ')}`, [id], `${names[0].replace(/(-\d{5}|_sha256file)$/, '')}_metadata`);
  }
}

/** The chain of one backup; a chain with a backup missing is a problem, not an error. */
async function chainToVerify(store: CinderStore, backupId: string, add: AddProblem): Promise<CinderBackup[]> {
  const chain = await store.chain(backupId).catch((err) => {
    if (err instanceof VolumeBackupError && err.code === 'OBJECT_MISSING') {
      add('broken-chain', err.message, [backupId]);
      return null;
    }
    throw err;
  });
  return chain ?? [];
}

/** Read every object of a backup that is there: its MD5 and each block's SHA-256. Returns the bytes read. */
async function readObjects(store: CinderStore, b: CinderBackup, sha: CinderSha256File, add: AddProblem, signal: AbortSignal | undefined): Promise<number> {
  let bytes = 0;
  for (const obj of b.objects) {
    if (b.missing.includes(obj.name)) continue;
    throwIfAborted(signal);
    try {
      const data = await store.readData(b, obj);
      checkBlocks(store, b, obj, data, sha);
      bytes += data.length;
    } catch (err) {
      add(err instanceof VolumeBackupError && err.code === 'OBJECT_MISSING' ? 'missing-object' : 'corrupt', errorMessage(err), [b.id], store.key(b, obj.name));
    }
  }
  return bytes;
}

async function coverageProblem(chain: CinderBackup[], shaOf: (b: CinderBackup) => Promise<CinderSha256File | null>): Promise<string | null> {
  const requested = chain[chain.length - 1];
  const last = await shaOf(requested);
  if (!last) return null; // reported already
  const blocks = Math.ceil(imageSize(chain) / last.chunk_size);
  if (last.sha256s.length !== blocks) return `the _sha256file of backup ${requested.id} lists ${last.sha256s.length} blocks; the volume has ${blocks}`;
  const provider: (string | undefined)[] = new Array(blocks);
  for (const b of chain) {
    const sha = await shaOf(b);
    if (!sha) return null;
    if (sha.chunk_size !== last.chunk_size || sha.sha256s.length !== blocks) return `backup ${b.id} in the chain of ${requested.id} hashes another block size or volume size`;
    for (const o of b.objects) {
      if (o.offset % sha.chunk_size !== 0) return `object ${o.name} of backup ${b.id} does not start on a block`;
      for (let i = o.offset / sha.chunk_size; i * sha.chunk_size < o.offset + o.length; i++) provider[i] = sha.sha256s[i];
    }
  }
  for (let i = 0; i < blocks; i++) {
    if (provider[i] === undefined) return `block ${i} of backup ${requested.id} is in no object of its chain`;
    if (provider[i] !== last.sha256s[i]) return `block ${i} of backup ${requested.id}: the chain gives data whose SHA-256 differs from the one the backup lists`;
  }
  return null;
}
