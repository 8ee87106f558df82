/**
 * The S3 test server: s3rver 3.7.1 in a child process, behind a small HTTP layer that adds what
 * s3rver lacks and the s3 driver relies on, as AWS documents it:
 * - conditional PutObject / CompleteMultipartUpload: `If-None-Match: *` fails with 412 when the key
 *   exists, `If-Match: <etag>` fails with 412 when the ETag differs and 404 NoSuchKey when the key is
 *   gone; writes to one key are serialized here, so check-then-write is atomic;
 * - Content-MD5 on PutObject/UploadPart is checked (400 BadDigest), as AWS does and s3rver does not;
 * - ListMultipartUploads (GET /bucket?uploads) and AbortMultipartUpload (DELETE /bucket/key?uploadId=),
 *   read from and applied to s3rver's own store directory;
 * - atomic writes, as S3 has: s3rver rewrites an object file in place and may answer before the file is
 *   complete, and a read meanwhile gets part of it, with an ETag s3rver computes from that part. Here a
 *   read of a key waits for a write to it in progress, and a write is complete on disk before the key is
 *   free again.
 * Everything else passes through untouched (path-style requests only). Credentials: S3RVER / S3RVER.
 */
import { ChildProcess, spawn } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { createHash } from 'crypto';
import { KeyedLock, freePort, listen, readBody, waitForPort } from './http-util';

export const S3_TEST_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface S3TestServer {
  /** The endpoint clients use (the enforcing layer). */
  endpoint: string;
  port: number;
  /** s3rver's own endpoint, without the layer (it does not enforce preconditions). */
  upstreamEndpoint: string;
  dir: string;
  stop(): Promise<void>;
}

export async function startS3Server(options: { port?: number; dir?: string } = {}): Promise<S3TestServer> {
  const dir = options.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 's3rver-')));
  await fs.mkdir(dir, { recursive: true });
  const upstreamPort = await freePort();
  const child = startS3rver(dir, upstreamPort);
  try {
    await Promise.race([
      waitForPort(upstreamPort),
      new Promise((_, reject) => child.once('exit', (code) => reject(new Error(`s3rver exited with ${code} before listening`)))),
    ]);
  } catch (err) {
    child.kill();
    throw err;
  }
  const layer = http.createServer((req, res) => {
    handle(req, res, upstreamPort, dir).catch((err) => {
      if (!res.headersSent) sendError(res, 500, 'InternalError', String(err));
      else res.destroy();
    });
  });
  const { port, close } = await listen(layer, options.port ?? 0);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    upstreamEndpoint: `http://127.0.0.1:${upstreamPort}`,
    dir,
    stop: async () => {
      await close();
      await stopChild(child);
      if (!options.dir) await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

function startS3rver(dir: string, port: number): ChildProcess {
  const bin = path.join(path.dirname(require.resolve('s3rver/package.json')), 'bin', 's3rver.js');
  // The legacy provider: s3rver encrypts continuation tokens with DES, without it listings > 1000 keys fail.
  const env = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --openssl-legacy-provider`.trim() };
  const child = spawn(process.execPath, [bin, '-d', dir, '-a', '127.0.0.1', '-p', String(port), '--silent'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  // Never outlive the process that started it (a test run that exits early, mocha --exit).
  const reap = () => child.kill();
  process.once('exit', reap);
  child.once('exit', () => process.removeListener('exit', reap));
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

const locks = new KeyedLock();
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

async function handle(req: http.IncomingMessage, res: http.ServerResponse, upstreamPort: number, dir: string): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://layer');
  const [bucket, ...rest] = url.pathname.slice(1).split('/').map(decodeURIComponent);
  const key = rest.join('/');
  const q = url.searchParams;
  if (req.method === 'GET' && bucket && !key && q.has('uploads')) return listUploads(res, dir, bucket, q.get('prefix') ?? '');
  if (req.method === 'DELETE' && key && q.has('uploadId')) return abortUpload(req, res, dir, bucket, q.get('uploadId')!);
  let body: Buffer | undefined;
  const contentMd5 = req.headers['content-md5'];
  if (req.method === 'PUT' && key && typeof contentMd5 === 'string') {
    body = await readBody(req);
    const actual = createHash('md5').update(body).digest('base64');
    if (actual !== contentMd5) return sendError(res, 400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.', { ExpectedDigest: contentMd5, CalculatedDigest: actual });
  }
  const writesKey = key && ((req.method === 'PUT' && !q.has('uploadId') && !q.has('tagging')) || req.method === 'DELETE' || (req.method === 'POST' && q.has('uploadId')));
  const readsKey = key && (req.method === 'GET' || req.method === 'HEAD') && !q.has('uploadId');
  if (readsKey) {
    const release = await locks.acquire(`${bucket}/${key}`);
    try {
      return await forward(req, res, upstreamPort, body);
    } finally {
      release();
    }
  }
  if (!writesKey) return forward(req, res, upstreamPort, body);
  // Writes to one key take turns, so a precondition checked here still holds when s3rver writes.
  const release = await locks.acquire(`${bucket}/${key}`);
  const leaveDirectory = await enterDirectory(`${bucket}/${path.posix.dirname(key)}`, req.method === 'DELETE');
  try {
    const failed = await checkPreconditions(req, upstreamPort, key);
    if (failed) {
      if (!body) await readBody(req);
      return sendError(res, failed.status, failed.code, failed.message, failed.extra);
    }
    await forward(req, res, upstreamPort, body);
    if (req.method === 'PUT' && body && res.statusCode === 200) await untilWritten(path.join(dir, bucket, `${key}._S3rver_object`), body.length);
  } finally {
    leaveDirectory();
    release();
  }
}

/**
 * s3rver removes a directory the DELETE of its last object left empty; a PUT into that directory between
 * its mkdir and its open then fails with ENOENT in an unhandled stream error that kills s3rver (seen with
 * many processes writing and deleting conditional-write probes at once). So a DELETE waits until no write
 * is in its directory, and writes wait while a DELETE is in it: writes share a directory, a DELETE has it alone.
 */
const directories = new Map<string, { writes: number; deleting: boolean }>();

async function enterDirectory(directory: string, deleting: boolean): Promise<() => void> {
  for (;;) {
    const use = directories.get(directory) ?? { writes: 0, deleting: false };
    if (!use.deleting && (!deleting || use.writes === 0)) {
      if (deleting) use.deleting = true;
      else use.writes++;
      directories.set(directory, use);
      return () => {
        if (deleting) use.deleting = false;
        else use.writes--;
        if (!use.deleting && use.writes === 0) directories.delete(directory);
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** Wait until s3rver's file for an object has all its bytes (it may answer a PUT before). */
async function untilWritten(file: string, length: number): Promise<void> {
  for (let waited = 0; waited < 5000; waited += 2) {
    if ((await fs.stat(file).catch(() => null))?.size === length) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

interface Failure {
  status: number;
  code: string;
  message: string;
  extra?: Record<string, string>;
}

async function checkPreconditions(req: http.IncomingMessage, upstreamPort: number, key: string): Promise<Failure | null> {
  const ifNoneMatch = req.headers['if-none-match'];
  const ifMatch = req.headers['if-match'];
  if (req.method === 'DELETE' || (!ifNoneMatch && !ifMatch)) return null;
  if (ifNoneMatch && ifNoneMatch.trim() !== '*') {
    return { status: 501, code: 'NotImplemented', message: 'A header you provided implies functionality that is not implemented', extra: { Header: 'If-None-Match' } };
  }
  const head = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const path = new URL(req.url ?? '/', 'http://layer').pathname;
    http.request({ host: '127.0.0.1', port: upstreamPort, method: 'HEAD', path, agent }, resolve).on('error', reject).end();
  });
  head.resume();
  const current = head.statusCode === 200 ? String(head.headers.etag ?? '') : null;
  if (ifNoneMatch && current !== null) {
    return { status: 412, code: 'PreconditionFailed', message: 'At least one of the pre-conditions you specified did not hold', extra: { Condition: 'If-None-Match' } };
  }
  if (ifMatch) {
    if (current === null) return { status: 404, code: 'NoSuchKey', message: 'The specified key does not exist.', extra: { Key: key } };
    if (normalizeEtag(ifMatch) !== normalizeEtag(current)) {
      return { status: 412, code: 'PreconditionFailed', message: 'At least one of the pre-conditions you specified did not hold', extra: { Condition: 'If-Match' } };
    }
  }
  return null;
}

function normalizeEtag(etag: string): string {
  return etag.trim().replace(/^W\//, '').replace(/"/g, '');
}

/** Pass the request on to s3rver (with `body` when it was already read here) and its answer back. */
function forward(req: http.IncomingMessage, res: http.ServerResponse, upstreamPort: number, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const up = http.request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers, agent }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
      upRes.on('end', () => resolve());
      upRes.on('error', reject);
    });
    up.on('error', reject);
    req.on('aborted', () => up.destroy());
    if (body) up.end(body);
    else req.pipe(up);
  });
}

function uploadsDir(dir: string, bucket: string): string {
  // s3rver keeps multipart uploads in <dir>/<bucket>/._S3rver_uploads/<uploadId>/ with a `key` file.
  return path.join(dir, bucket, '._S3rver_uploads');
}

async function listUploads(res: http.ServerResponse, dir: string, bucket: string, prefix: string): Promise<void> {
  const ids = await fs.readdir(uploadsDir(dir, bucket)).catch(() => [] as string[]);
  const uploads: string[] = [];
  for (const id of ids.sort()) {
    const key = await fs.readFile(path.join(uploadsDir(dir, bucket), id, 'key'), 'utf8').catch(() => null);
    if (key === null || !key.startsWith(prefix)) continue;
    const st = await fs.stat(path.join(uploadsDir(dir, bucket), id));
    uploads.push(`<Upload><Key>${xml(key)}</Key><UploadId>${xml(id)}</UploadId><Initiated>${st.birthtime.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`);
  }
  res.writeHead(200, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${xml(bucket)}</Bucket><Prefix>${xml(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>${uploads.join('')}</ListMultipartUploadsResult>`);
}

async function abortUpload(req: http.IncomingMessage, res: http.ServerResponse, dir: string, bucket: string, uploadId: string): Promise<void> {
  req.resume();
  const target = path.join(uploadsDir(dir, bucket), path.basename(uploadId));
  const exists = await fs.stat(target).then(() => true, () => false);
  if (!exists) return sendError(res, 404, 'NoSuchUpload', 'The specified upload does not exist.', { UploadId: uploadId });
  await fs.rm(target, { recursive: true, force: true });
  res.writeHead(204);
  res.end();
}

function sendError(res: http.ServerResponse, status: number, code: string, message: string, extra: Record<string, string> = {}): void {
  const fields = Object.entries(extra).map(([k, v]) => `<${k}>${xml(v)}</${k}>`).join('');
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xml(message)}</Message>${fields}<RequestId>${randomBytes(8).toString('hex').toUpperCase()}</RequestId><HostId>s3-test-layer</HostId></Error>`);
}

function xml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
