/**
 * Preload (`node -r`) for the two ways SEEK_DATA can be unavailable, chosen by SEEK_FAULT:
 * - `missing`: fs-ext looks not installed (not built: no compiler, or built for another Node);
 * - `einval`:  every seek fails with EINVAL, as on a kernel or file system without SEEK_DATA (Linux's
 *              own file systems all answer it, so this cannot be made real here);
 * - `count`:   no fault, the real seeks are only counted.
 * Each time the fault (or a seek) is hit, a line goes to SEEK_FAULT_LOG: the test checks that it was.
 */
import { appendFileSync } from 'fs';

// eslint-disable-next-line @typescript-eslint/no-require-imports -- Node's internal Module._load hook, which the typed module does not declare
const Module = require('module') as { _resolveFilename: (request: string, ...rest: unknown[]) => string; _load: (request: string, ...rest: unknown[]) => unknown };
const fault = process.env.SEEK_FAULT;
const hit = (what: string): void => {
  if (process.env.SEEK_FAULT_LOG) appendFileSync(process.env.SEEK_FAULT_LOG, `${what}\n`);
};

if (fault === 'missing') {
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]): string {
    if (request === 'fs-ext') {
      hit('missing');
      throw Object.assign(new Error(`Cannot find module '${request}' (hidden by the test)`), { code: 'MODULE_NOT_FOUND' });
    }
    return resolve.call(this, request, ...rest);
  };
} else if (fault === 'einval' || fault === 'count') {
  const load = Module._load;
  Module._load = function (this: unknown, request: string, ...rest: unknown[]): unknown {
    const loaded = load.call(this, request, ...rest);
    if (request !== 'fs-ext') return loaded;
    const real = loaded as { seek: (fd: number, offset: number, whence: number, callback: (err: NodeJS.ErrnoException | null, position?: number) => void) => void };
    return {
      ...real,
      seek(fd: number, offset: number, whence: number, callback: (err: NodeJS.ErrnoException | null, position?: number) => void): void {
        hit(fault);
        if (fault === 'count') real.seek(fd, offset, whence, callback);
        else setImmediate(() => callback(Object.assign(new Error('EINVAL, Invalid argument'), { code: 'EINVAL', errno: 22 })));
      },
    };
  };
}
