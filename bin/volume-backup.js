#!/usr/bin/env node
'use strict';
// V8's compile cache (Node >= 22.1; Node 20 has none built in): later runs skip compiling the CLI's modules.
require('module').enableCompileCache?.();
// More of libuv's threads than its default 4: a changed-extent incremental reads scattered ranges of a cold
// volume, and reads wait on the device, not the CPU. Set before the first file operation starts the pool.
process.env.UV_THREADPOOL_SIZE ??= '16';
require('../dist/lib/cli/main').main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
