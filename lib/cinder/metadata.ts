/**
 * Cinder's two sidecar objects per backup, as chunkeddriver.py writes them (JSON, sorted keys):
 * `<prefix>_metadata` (the backup's fields and its objects, one {name: {offset, length, compression,
 * md5}} per data object; length and md5 of the uncompressed data) and `<prefix>_sha256file` (the SHA-256
 * of every block of the whole volume, `chunk_size` being the block size, even for an incremental).
 */
import { z } from 'zod';
import { VolumeBackupError } from '../errors';

export const CINDER_COMPRESSIONS = ['none', 'off', 'no', 'zlib', 'gzip', 'bz2', 'bzip2', 'zstd'] as const;

const ObjectEntry = z.object({
  offset: z.number().int().min(0),
  length: z.number().int().min(0),
  compression: z.string().nullable().optional(),
  md5: z.string().regex(/^[0-9a-f]{32}$/i),
});

export const CinderMetadata = z
  .object({
    version: z.string(),
    backup_id: z.string().min(1),
    volume_id: z.string().min(1),
    backup_name: z.string().nullable().optional(),
    backup_description: z.string().nullable().optional(),
    created_at: z.string(),
    parent_id: z.string().nullable().optional(),
    objects: z.array(z.record(z.string(), ObjectEntry).refine((o) => Object.keys(o).length === 1, 'each entry of objects names one object')),
    volume_meta: z.unknown().optional(),
    extra_metadata: z.unknown().optional(),
  })
  .passthrough();
export type CinderMetadata = z.infer<typeof CinderMetadata>;

export const CinderSha256File = z
  .object({
    backup_id: z.string().min(1),
    chunk_size: z.number().int().positive(),
    sha256s: z.array(z.string().regex(/^[0-9a-f]{64}$/)),
  })
  .passthrough();
export type CinderSha256File = z.infer<typeof CinderSha256File>;

/** One data object of a backup, flattened from the metadata's list. */
export interface CinderObject {
  name: string;
  offset: number;
  length: number;
  compression: string;
  md5: string;
}

export function objectsOf(metadata: CinderMetadata): CinderObject[] {
  return metadata.objects.map((entry) => {
    const [name, o] = Object.entries(entry)[0];
    return { name, offset: o.offset, length: o.length, compression: (o.compression ?? 'none').toLowerCase(), md5: o.md5.toLowerCase() };
  });
}

/** Parse a sidecar's JSON against its schema; damage names the backup's object. */
export function parseSidecar<T>(schema: z.ZodType<T>, data: Buffer, what: string): T {
  let json: unknown;
  try {
    json = JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw new VolumeBackupError('CORRUPT', `${what} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new VolumeBackupError('CORRUPT', `${what} is not a Cinder backup sidecar: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

/** Cinder writes created_at as Python's str(datetime): "2026-11-28 11:53:24.043763+00:00" (or without zone: UTC). */
export function parseCinderTime(text: string): Date {
  let t = text.trim().replace(' ', 'T');
  if (!/(Z|[+-]\d\d:?\d\d)$/.test(t)) t += 'Z';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) throw new VolumeBackupError('CORRUPT', `created_at ${JSON.stringify(text)} is not a time`);
  return d;
}
