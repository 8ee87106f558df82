#!/usr/bin/env node
// npm run -s test-backend -- <module> [--repo URL]: the driver contract suite (docs/backends.md) against one
// backend module: a built-in name (posix, s3, gcs), an npm package name, or a path. Without --repo the
// module's testSettings() makes a scratch repository in a temporary directory.
'use strict';
const path = require('path');
const { parseArgs } = require('util');

const root = path.resolve(__dirname, '..');
let parsed;
try {
  parsed = parseArgs({ args: process.argv.slice(2), options: { repo: { type: 'string' }, help: { type: 'boolean' } }, allowPositionals: true });
} catch (err) {
  console.error(`test-backend: ${err.message}`);
  process.exit(2);
}
if (parsed.values.help || parsed.positionals.length !== 1) {
  console.error('usage: npm run -s test-backend -- <module> [--repo URL]   (module: posix, s3, gcs, a package name or a path)');
  process.exit(parsed.values.help ? 0 : 2);
}
require('child_process').execFileSync(process.execPath, [path.join(root, 'scripts', 'build.js')], { stdio: 'inherit', cwd: root });
const specifier = parsed.positionals[0];
try {
  // Refused here in one line (not found, not a backend), before the suite.
  const registry = require(path.join(root, 'dist', 'lib', 'backends', 'registry.js'));
  if (!registry.backendNamed(specifier)) registry.loadBackendModules([specifier], process.env.INIT_CWD || process.cwd());
} catch (err) {
  console.error(`test-backend: ${err.message}`);
  process.exit(2);
}
process.env.VOLUME_BACKUP_CONTRACT_MODULE = specifier;
process.env.VOLUME_BACKUP_CONTRACT_REPO = parsed.values.repo ?? '';
const Mocha = require('mocha');
const mocha = new Mocha({ timeout: 120_000, reporter: 'spec' });
mocha.addFile(path.join(root, 'dist', 'test', 'contract', 'run-backend-contract.js'));
mocha.run((failures) => {
  process.exitCode = failures ? 1 : 0;
});
