/**
 * A Google Cloud Storage test server: the JSON API calls the real @google-cloud/storage client makes
 * (see ../shared/reference/test-servers.md), answered as Google documents them. Objects live in memory
 * with generations and metagenerations; writes honour ifGenerationMatch / ifGenerationNotMatch /
 * ifMetagenerationMatch (412 conditionNotMet), checked atomically when the object is committed;
 * multipart and resumable uploads (single-shot and chunked, 308 + Range, status checks); uploads are
 * verified against the md5Hash/crc32c the client sends (400 on mismatch); downloads carry
 * x-goog-hash (crc32c, md5), x-goog-generation and the stored length; listings page by 1000.
 * No authentication: point the client at it with apiEndpoint.
 */
import { createHash, randomBytes } from 'crypto';
import * as http from 'http';
import { listen, readBody } from './http-util';

interface StoredObject {
  data: Buffer;
  generation: string;
  metageneration: number;
  contentType: string;
  metadata?: Record<string, string>;
  md5: string;
  crc32c: string;
  created: string;
  updated: string;
}

interface UploadSession {
  bucket: string;
  name: string;
  metadata: Record<string, unknown>;
  query: URLSearchParams;
  chunks: Buffer[];
  received: number;
  done?: Record<string, unknown>;
}

export interface GcsTestServer {
  endpoint: string;
  port: number;
  /** Counters a test can check: which upload paths the client took. */
  stats: { multipartUploads: number; resumableUploads: number; resumableChunks: number };
  stop(): Promise<void>;
}

class GcsError extends Error {
  constructor(readonly status: number, message: string, readonly reason: string) {
    super(message);
  }
}

export async function startGcsServer(options: { port?: number; buckets?: string[] } = {}): Promise<GcsTestServer> {
  const buckets = new Map<string, Map<string, StoredObject>>();
  for (const b of options.buckets ?? []) buckets.set(b, new Map());
  const sessions = new Map<string, UploadSession>();
  const stats = { multipartUploads: 0, resumableUploads: 0, resumableChunks: 0 };
  let lastGeneration = 0;
  const nextGeneration = () => String((lastGeneration = Math.max(lastGeneration + 1, Date.now() * 1000)));

  const bucketOf = (name: string) => {
    const b = buckets.get(name);
    if (!b) throw new GcsError(404, 'The specified bucket does not exist.', 'notFound');
    return b;
  };

  const resource = (bucket: string, name: string, o: StoredObject) => ({
    kind: 'storage#object',
    id: `${bucket}/${name}/${o.generation}`,
    name,
    bucket,
    generation: o.generation,
    metageneration: String(o.metageneration),
    contentType: o.contentType,
    storageClass: 'STANDARD',
    size: String(o.data.length),
    md5Hash: o.md5,
    crc32c: o.crc32c,
    etag: Buffer.from(`${o.generation}/${o.metageneration}`).toString('base64'),
    timeCreated: o.created,
    updated: o.updated,
    ...(o.metadata ? { metadata: o.metadata } : {}),
  });

  /** Object preconditions as documented: a generation of 0 means "no live object". */
  const checkPreconditions = (q: URLSearchParams, current: StoredObject | undefined) => {
    const gen = current?.generation ?? '0';
    const failed =
      (q.has('ifGenerationMatch') && q.get('ifGenerationMatch') !== gen) ||
      (q.has('ifGenerationNotMatch') && q.get('ifGenerationNotMatch') === gen) ||
      (q.has('ifMetagenerationMatch') && (!current || q.get('ifMetagenerationMatch') !== String(current.metageneration))) ||
      (q.has('ifMetagenerationNotMatch') && current && q.get('ifMetagenerationNotMatch') === String(current.metageneration));
    if (failed) throw new GcsError(412, 'At least one of the pre-conditions you specified did not hold.', 'conditionNotMet');
  };

  /** Verify the hashes the client declared (metadata or X-Goog-Hash), then commit atomically. */
  const commit = (bucket: string, name: string, data: Buffer, metadata: Record<string, unknown>, q: URLSearchParams, hashHeader?: string) => {
    const objects = bucketOf(bucket);
    const md5 = createHash('md5').update(data).digest('base64');
    const crc = crc32cBase64(data);
    const declared = { md5: metadata.md5Hash as string | undefined, crc32c: metadata.crc32c as string | undefined, ...parseHashHeader(hashHeader) };
    if (declared.md5 && declared.md5 !== md5) throw new GcsError(400, `Provided MD5 hash "${declared.md5}" doesn't match calculated MD5 hash "${md5}".`, 'invalid');
    if (declared.crc32c && declared.crc32c !== crc) throw new GcsError(400, `Provided CRC32C "${declared.crc32c}" doesn't match calculated CRC32C "${crc}".`, 'invalid');
    const current = objects.get(name);
    checkPreconditions(q, current);
    const now = new Date().toISOString();
    const stored: StoredObject = {
      data,
      generation: nextGeneration(),
      metageneration: 1,
      contentType: (metadata.contentType as string) || 'application/octet-stream',
      metadata: metadata.metadata as Record<string, string> | undefined,
      md5,
      crc32c: crc,
      created: now,
      updated: now,
    };
    objects.set(name, stored);
    return resource(bucket, name, stored);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    let m: RegExpExecArray | null;

    if ((m = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname))) {
      const bucket = decodeURIComponent(m[1]);
      const uploadType = q.get('uploadType');
      if (method === 'POST' && uploadType === 'multipart') {
        const { metadata, media } = parseMultipart(await readBody(req), String(req.headers['content-type'] ?? ''));
        const name = (metadata.name as string) ?? q.get('name');
        if (!name) throw new GcsError(400, 'Required parameter: name', 'required');
        stats.multipartUploads++;
        return sendJson(res, 200, commit(bucket, name, media, metadata, q));
      }
      if (method === 'POST' && uploadType === 'media') {
        const name = q.get('name');
        if (!name) throw new GcsError(400, 'Required parameter: name', 'required');
        return sendJson(res, 200, commit(bucket, name, await readBody(req), { contentType: req.headers['content-type'] }, q));
      }
      if (method === 'POST' && uploadType === 'resumable' && !q.has('upload_id')) {
        const body = await readBody(req);
        const metadata = body.length ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
        const name = (metadata.name as string) ?? q.get('name');
        if (!name) throw new GcsError(400, 'Required parameter: name', 'required');
        checkPreconditions(q, bucketOf(bucket).get(name)); // fail early; checked again on commit
        const id = randomBytes(12).toString('hex');
        sessions.set(id, { bucket, name, metadata, query: new URLSearchParams(q), chunks: [], received: 0 });
        stats.resumableUploads++;
        const location = `http://${req.headers.host}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
        res.writeHead(200, { location, 'content-length': '0' });
        return void res.end();
      }
      if (method === 'PUT' && q.has('upload_id')) return resumableChunk(req, res, q.get('upload_id')!);
      if (method === 'DELETE' && q.has('upload_id')) {
        sessions.delete(q.get('upload_id')!);
        res.writeHead(499);
        return void res.end();
      }
    }

    if (method === 'POST' && url.pathname === '/storage/v1/b') {
      const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { name?: string };
      if (!body.name) throw new GcsError(400, 'Required parameter: name', 'required');
      if (buckets.has(body.name)) throw new GcsError(409, 'Your previous request to create the named bucket succeeded and you already own it.', 'conflict');
      buckets.set(body.name, new Map());
      return sendJson(res, 200, { kind: 'storage#bucket', id: body.name, name: body.name, projectNumber: '0', location: 'US', storageClass: 'STANDARD' });
    }
    if ((m = /^\/storage\/v1\/b\/([^/]+)$/.exec(url.pathname)) && method === 'GET') {
      const name = decodeURIComponent(m[1]);
      bucketOf(name);
      return sendJson(res, 200, { kind: 'storage#bucket', id: name, name, location: 'US', storageClass: 'STANDARD' });
    }
    if ((m = /^\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname)) && method === 'GET') {
      return sendJson(res, 200, list(bucketOf(decodeURIComponent(m[1])), decodeURIComponent(m[1]), q));
    }
    if ((m = /^\/storage\/v1\/b\/([^/]+)\/o\/(.+)$/.exec(url.pathname))) {
      const bucket = decodeURIComponent(m[1]);
      const name = decodeURIComponent(m[2]);
      const objects = bucketOf(bucket);
      const current = objects.get(name);
      if (!current || (q.has('generation') && q.get('generation') !== current.generation)) {
        req.resume();
        throw new GcsError(404, `No such object: ${bucket}/${name}`, 'notFound');
      }
      checkPreconditions(q, current);
      if (method === 'DELETE') {
        objects.delete(name);
        res.writeHead(204);
        return void res.end();
      }
      if (method === 'GET' && q.get('alt') === 'media') return download(req, res, current);
      if (method === 'GET') return sendJson(res, 200, resource(bucket, name, current));
    }
    req.resume();
    throw new GcsError(404, `Not Found: ${method} ${url.pathname}`, 'notFound');
  };

  const resumableChunk = async (req: http.IncomingMessage, res: http.ServerResponse, id: string): Promise<void> => {
    const session = sessions.get(id);
    const body = await readBody(req).catch(() => null);
    if (!session) throw new GcsError(404, 'No such upload session.', 'notFound');
    if (session.done) return sendJson(res, 200, session.done);
    if (body === null) return; // the client went away mid-chunk: keep what was persisted before
    // Content-Range: "bytes a-b/total", "bytes a-*/total|*" (rest of the object in this request), "bytes */total|*" (status).
    const range = /^bytes (?:(\d+)-(\d+|\*)|\*)\/(\d+|\*)$/.exec(String(req.headers['content-range'] ?? ''));
    if (!range) throw new GcsError(400, `Invalid Content-Range: ${req.headers['content-range']}`, 'invalid');
    const [, startText, endText, totalText] = range;
    if (startText !== undefined) {
      const start = Number(startText);
      if (start > session.received) throw new GcsError(400, `Content-Range starts at ${start} but only ${session.received} bytes were received`, 'invalid');
      const fresh = body.subarray(session.received - start);
      session.chunks.push(fresh);
      session.received += fresh.length;
      stats.resumableChunks++;
    }
    const total = totalText === '*' ? (endText === '*' ? session.received : null) : Number(totalText);
    if (total !== null && session.received > total) throw new GcsError(400, `received ${session.received} bytes, more than the declared ${total}`, 'invalid');
    if (total !== null && session.received === total) {
      const done = commit(session.bucket, session.name, Buffer.concat(session.chunks), session.metadata, session.query, req.headers['x-goog-hash'] as string | undefined);
      session.done = done;
      session.chunks = [];
      return sendJson(res, 200, done);
    }
    const headers: Record<string, string> = { 'content-length': '0' };
    if (session.received > 0) headers.range = `bytes=0-${session.received - 1}`;
    res.writeHead(308, headers);
    res.end();
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      const e = err instanceof GcsError ? err : new GcsError(500, String(err), 'backendError');
      if (res.headersSent) return void res.destroy();
      sendJson(res, e.status, { error: { code: e.status, message: e.message, errors: [{ message: e.message, domain: 'global', reason: e.reason }] } });
    });
  });
  const { port, close } = await listen(server, options.port ?? 0);
  return { endpoint: `http://127.0.0.1:${port}`, port, stats, stop: close };
}

function list(objects: Map<string, StoredObject>, bucket: string, q: URLSearchParams) {
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') ?? '';
  const max = Math.min(Number(q.get('maxResults') ?? 1000) || 1000, 1000);
  const after = q.get('pageToken') ? Buffer.from(q.get('pageToken')!, 'base64url').toString('utf8') : null;
  const names = [...objects.keys()].filter((n) => n.startsWith(prefix) && (after === null || n > after)).sort();
  const items: unknown[] = [];
  const prefixes = new Set<string>();
  let last: string | null = null;
  let truncated = false;
  for (const name of names) {
    if (items.length + prefixes.size >= max) {
      truncated = true;
      break;
    }
    last = name;
    const cut = delimiter ? name.indexOf(delimiter, prefix.length) : -1;
    if (cut >= 0) prefixes.add(name.slice(0, cut + delimiter.length));
    else items.push(listItem(bucket, name, objects.get(name)!));
  }
  return {
    kind: 'storage#objects',
    ...(items.length ? { items } : {}),
    ...(prefixes.size ? { prefixes: [...prefixes] } : {}),
    ...(truncated && last !== null ? { nextPageToken: Buffer.from(last).toString('base64url') } : {}),
  };
}

function listItem(bucket: string, name: string, o: StoredObject) {
  return { kind: 'storage#object', name, bucket, generation: o.generation, metageneration: String(o.metageneration), size: String(o.data.length), md5Hash: o.md5, crc32c: o.crc32c, contentType: o.contentType, updated: o.updated };
}

function download(req: http.IncomingMessage, res: http.ServerResponse, o: StoredObject): void {
  req.resume();
  const headers: Record<string, string> = {
    'content-type': o.contentType,
    'x-goog-generation': o.generation,
    'x-goog-metageneration': String(o.metageneration),
    'x-goog-hash': `crc32c=${o.crc32c},md5=${o.md5}`,
    'x-goog-stored-content-length': String(o.data.length),
    'x-goog-stored-content-encoding': 'identity',
    'accept-ranges': 'bytes',
  };
  const range = /^bytes=(\d*)-(\d*)$/.exec(String(req.headers.range ?? ''));
  if (!range) {
    res.writeHead(200, { ...headers, 'content-length': String(o.data.length) });
    return void res.end(o.data);
  }
  const size = o.data.length;
  let start = range[1] === '' ? size - Number(range[2]) : Number(range[1]);
  let end = range[1] === '' || range[2] === '' ? size - 1 : Math.min(Number(range[2]), size - 1);
  start = Math.max(0, start);
  if (start >= size || start > end) {
    res.writeHead(416, { 'content-range': `bytes */${size}` });
    return void res.end();
  }
  end = Math.max(end, start);
  res.writeHead(206, { ...headers, 'content-length': String(end - start + 1), 'content-range': `bytes ${start}-${end}/${size}` });
  res.end(o.data.subarray(start, end + 1));
}

/** multipart/related: a JSON metadata part, then the media part. */
function parseMultipart(body: Buffer, contentType: string): { metadata: Record<string, unknown>; media: Buffer } {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (!boundary) throw new GcsError(400, 'multipart upload without a boundary', 'invalid');
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Buffer[] = [];
  let pos = body.indexOf(delimiter);
  while (pos >= 0) {
    const start = pos + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), start);
    if (next < 0) throw new GcsError(400, 'malformed multipart body', 'invalid');
    parts.push(body.subarray(start + 2, next)); // skip the CRLF after the delimiter
    pos = next + 2;
  }
  if (parts.length !== 2) throw new GcsError(400, `multipart upload needs 2 parts, got ${parts.length}`, 'invalid');
  const [meta, media] = parts.map((p) => {
    const split = p.indexOf('\r\n\r\n');
    return split < 0 ? p : p.subarray(split + 4);
  });
  return { metadata: JSON.parse(meta.toString('utf8') || '{}') as Record<string, unknown>, media };
}

function parseHashHeader(header: string | undefined): { md5?: string; crc32c?: string } {
  const out: { md5?: string; crc32c?: string } = {};
  for (const pair of (header ?? '').split(',')) {
    const i = pair.indexOf('=');
    if (i < 0) continue;
    const k = pair.slice(0, i).trim();
    if (k === 'md5' || k === 'crc32c') out[k] = pair.slice(i + 1).trim();
  }
  return out;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

const CRC32C_TABLE = (() => {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[i] = c;
  }
  return table;
})();

/** CRC32C (Castagnoli), big-endian, base64: the form GCS uses in `crc32c` and x-goog-hash. */
export function crc32cBase64(data: Buffer): string {
  let crc = -1;
  for (let i = 0; i < data.length; i++) crc = CRC32C_TABLE[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ -1) >>> 0);
  return out.toString('base64');
}
