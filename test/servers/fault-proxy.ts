/**
 * A fault-injecting HTTP proxy for the object-store tests: in front of the S3 layer or the GCS server
 * it answers 503/500/429, drops connections, or cuts response bodies short, on a schedule the test
 * chooses. Faults are real network events: the client sees the same bytes and resets it would from
 * a misbehaving store.
 */
import * as http from 'http';
import { listen, readBody } from './http-util';

export type Fault =
  | 'status-503' | 'status-500' | 'status-429'
  /** A precondition refused (as a store that wants another form of If-Match refuses it). */
  | 'status-412'
  /** Close the connection before any response. */
  | 'reset'
  /** Forward, then send the headers and half the body and destroy the socket. */
  | 'truncate'
  /** Forward, then send half the body chunked and end cleanly (only a length/digest check notices). */
  | 'short'
  /** Forward, let the store act, then close the connection without answering (a lost reply). */
  | 'drop-reply'
  /** Flip one byte of the request body on its way to the store (a digest must catch it). */
  | 'corrupt-request'
  /** Flip one byte of the response body, its length unchanged (only a digest check notices). */
  | 'corrupt-reply';

export interface ProxiedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** 1-based count of requests seen by the proxy. */
  index: number;
}

export type FaultPlan = (request: ProxiedRequest) => Fault | null;

export interface FaultProxy {
  endpoint: string;
  port: number;
  /** Faults injected so far, in order. */
  readonly injected: Array<{ fault: Fault; method: string; url: string }>;
  /** Change the schedule while running. */
  setPlan(plan: FaultPlan): void;
  stop(): Promise<void>;
}

/** Error bodies in the dialect of the store behind the proxy, so SDKs parse them as they would for real. */
export type Dialect = 's3' | 'gcs';

export async function startFaultProxy(target: string, dialect: Dialect, plan: FaultPlan = () => null, port = 0): Promise<FaultProxy> {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const injected: FaultProxy['injected'] = [];
  let count = 0;
  let current = plan;
  const server = http.createServer((req, res) => {
    const request = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, index: ++count };
    const fault = current(request);
    if (fault) injected.push({ fault, method: request.method, url: request.url });
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault?.startsWith('status-')) {
      req.resume();
      req.on('end', () => sendStatus(res, Number(fault.slice(7)), dialect));
      return;
    }
    const up = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent },
      (upRes) => {
        if (fault === 'truncate' || fault === 'short') return cutShort(upRes, res, fault);
        if (fault === 'corrupt-reply') return flipOneByte(upRes, res);
        if (fault === 'drop-reply') {
          upRes.resume();
          upRes.on('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.on('aborted', () => up.destroy());
    if (fault === 'corrupt-request') {
      void readBody(req).then((body) => {
        if (body.length) body[body.length >> 1] ^= 0xff;
        up.end(body);
      });
    } else req.pipe(up);
  });
  const { port: actual, close } = await listen(server, port);
  return {
    endpoint: `http://127.0.0.1:${actual}`,
    port: actual,
    injected,
    setPlan: (p) => (current = p),
    stop: async () => {
      await close();
      agent.destroy();
    },
  };
}

function flipOneByte(upRes: http.IncomingMessage, res: http.ServerResponse): void {
  void readBody(upRes).then((body) => {
    if (body.length) body[body.length >> 1] ^= 0xff;
    res.writeHead(upRes.statusCode ?? 200, upRes.headers);
    res.end(body);
  });
}

function cutShort(upRes: http.IncomingMessage, res: http.ServerResponse, fault: 'truncate' | 'short'): void {
  const chunks: Buffer[] = [];
  upRes.on('data', (c: Buffer) => chunks.push(c));
  upRes.on('end', () => {
    const body = Buffer.concat(chunks);
    const half = body.subarray(0, Math.floor(body.length / 2));
    const headers = { ...upRes.headers };
    if (fault === 'short') {
      delete headers['content-length'];
      headers['transfer-encoding'] = 'chunked';
      res.writeHead(upRes.statusCode ?? 200, headers);
      res.end(half);
    } else {
      res.writeHead(upRes.statusCode ?? 200, headers);
      res.write(half, () => res.destroy());
    }
  });
}

function sendStatus(res: http.ServerResponse, status: number, dialect: Dialect): void {
  const s3Codes: Record<number, [string, string]> = {
    503: ['SlowDown', 'Please reduce your request rate.'],
    500: ['InternalError', 'We encountered an internal error. Please try again.'],
    429: ['TooManyRequests', 'Too many requests.'],
    412: ['PreconditionFailed', 'At least one of the pre-conditions you specified did not hold'],
  };
  const [code, message] = s3Codes[status] ?? ['InternalError', 'error'];
  if (dialect === 's3') {
    res.writeHead(status, { 'content-type': 'application/xml', connection: 'close' });
    res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>FAULT</RequestId><HostId>fault-proxy</HostId></Error>`);
  } else {
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', connection: 'close' });
    res.end(JSON.stringify({ error: { code: status, message, errors: [{ message, domain: 'global', reason: status === 429 ? 'rateLimitExceeded' : 'backendError' }] } }));
  }
}

/** Schedules the tests use. */
export const plans = {
  /** Every `n`th request gets the next fault of `faults`, in turn. */
  everyNth(n: number, faults: Fault[]): FaultPlan {
    let i = 0;
    return (r) => (r.index % n === 0 ? faults[i++ % faults.length] : null);
  },
  /** Requests matching `match` always fail with `fault`. */
  always(fault: Fault, match: (r: ProxiedRequest) => boolean = () => true): FaultPlan {
    return (r) => (match(r) ? fault : null);
  },
};
