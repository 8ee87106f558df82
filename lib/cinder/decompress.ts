/** Cinder's per-object compressions, by the names its chunked driver records (chunkeddriver._get_compressor). */
import * as zlib from 'zlib';
import { VolumeBackupError } from '../errors';
import { bunzip2 } from './bzip2';

type Zstd = { decompress(buf: Buffer): Promise<Buffer> };

export async function decompressCinder(compression: string, data: Buffer): Promise<Buffer> {
  switch (compression.toLowerCase()) {
    case 'none':
    case 'off':
    case 'no':
      return data;
    case 'zlib':
    case 'gzip': // Cinder's "gzip" is Python's zlib module too: a zlib stream
      return zlib.inflateSync(data);
    case 'bz2':
    case 'bzip2':
      return bunzip2(data);
    case 'zstd': {
      // Python's zstd module writes standard frames.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const zstd = require('@mongodb-js/zstd') as Zstd;
      return zstd.decompress(data);
    }
    default:
      throw new VolumeBackupError('CORRUPT', `unknown compression ${JSON.stringify(compression)} (Cinder writes none, zlib, bz2 or zstd)`);
  }
}
