#!/usr/bin/env node
'use strict';
// V8's compile cache (Node >= 22.1; Node 20 has none built in): later runs skip compiling the CLI's modules.
require('module').enableCompileCache?.();
require('../dist/lib/cli/main').main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
