/**
 * Cinder's real backup code (Debian's python3-cinder) run by test/cinder/harness.py: backups made,
 * restored and records imported exactly as a Cinder backup service does, without OpenStack.
 */
import { execFile, execFileSync } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import { Prng, textRegion } from './volumes';

/** Debian's python, which has the cinder package (another python may come first on the PATH). */
export const CINDER_PYTHON = '/usr/bin/python3';
export const HARNESS = path.resolve(__dirname, '..', '..', ...(path.basename(path.resolve(__dirname, '..', '..')) === 'dist' ? ['..'] : []), 'test', 'cinder', 'harness.py');

/** Why Cinder's code cannot run here, or null when it can. */
export function cinderMissing(): string | null {
  try {
    execFileSync(CINDER_PYTHON, ['-c', 'import cinder.backup.drivers.posix, zstd'], { stdio: 'pipe' });
    return null;
  } catch (err) {
    return `${CINDER_PYTHON} cannot import cinder.backup.drivers.posix and zstd (install Debian's python3-cinder python3-zstd): ${String((err as { stderr?: Buffer }).stderr ?? err).trim().split('\n').pop()}`;
  }
}

function harness(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(CINDER_PYTHON, [HARNESS, ...args], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`harness ${args[0]} failed: ${stderr.split('\n').filter((l) => /Error|error/.test(l)).slice(-3).join(' | ') || stderr.slice(-2000)}`));
      else resolve(stdout);
    });
  });
}

export interface CinderBackupOptions {
  store: string;
  volumeFile: string;
  volumeId: string;
  backupId: string;
  parent?: string;
  compression?: 'zlib' | 'bz2' | 'zstd' | 'none';
  chunkSize?: number;
  blockSize?: number;
  name?: string;
  description?: string;
}

export interface CinderBackupFields {
  id: string;
  volume_id: string;
  parent_id: string | null;
  container: string;
  service_metadata: string;
  display_name: string;
  display_description: string;
  created_at: string;
}

/** Cinder's PosixBackupDriver.backup() of a volume file into `store` (a full one, or an incremental on `parent`). */
export async function cinderBackup(o: CinderBackupOptions): Promise<CinderBackupFields> {
  const args = ['backup', '--store', o.store, '--volume-file', o.volumeFile, '--volume-id', o.volumeId, '--backup-id', o.backupId, '--compression', o.compression ?? 'zlib'];
  if (o.parent) args.push('--parent', o.parent);
  if (o.chunkSize) args.push('--chunk-size', String(o.chunkSize));
  if (o.blockSize) args.push('--block-size', String(o.blockSize));
  if (o.name !== undefined) args.push('--name', o.name);
  if (o.description !== undefined) args.push('--description', o.description);
  return JSON.parse(await harness(args)) as CinderBackupFields;
}

/** Cinder's restore() of a backup (and its chain) into `target`. */
export async function cinderRestore(store: string, backupId: string, target: string): Promise<void> {
  await harness(['restore', '--store', store, '--backup-id', backupId, '--target', target]);
}

/** What `cinder backup-import` does with a backup_url: the backup is in the store's database after. */
export async function cinderImportRecord(store: string, backupUrl: string): Promise<CinderBackupFields> {
  return JSON.parse(await harness(['import-record', '--store', store, '--backup-url', backupUrl])) as CinderBackupFields;
}

/** Every file of a Cinder posix store: its path relative to the store. */
export async function storeFiles(store: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(store, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(path.relative(store, path.join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name)));
  }
  return out.sort();
}

/** Overwrite 40 KiB pieces of an image at the given offsets: text (compressible) or random. */
export async function overwritePieces(file: string, offsets: number[], kind: 'text' | 'random', seed: number): Promise<void> {
  const prng = new Prng(seed);
  const handle = await fs.open(file, 'r+');
  try {
    for (const offset of offsets) {
      const piece = kind === 'text' ? textRegion(prng, 40 * 1024) : prng.fill(Buffer.alloc(40 * 1024));
      await handle.write(piece, 0, piece.length, offset);
    }
  } finally {
    await handle.close();
  }
}
