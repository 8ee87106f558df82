/**
 * Preload (`node -r`) that makes the optional zstd-napi look not built, as on a machine where its
 * install script could not compile: the engine must fall back to @mongodb-js/zstd.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- Node's internal Module._resolveFilename hook, which the typed module does not declare
const Module = require('module') as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
const resolve = Module._resolveFilename;
Module._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]): string {
  if (request.startsWith('zstd-napi')) throw Object.assign(new Error(`Cannot find module '${request}' (hidden by the test)`), { code: 'MODULE_NOT_FOUND' });
  return resolve.call(this, request, ...rest);
};
