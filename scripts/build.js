#!/usr/bin/env node
// Compiles the TypeScript, then copies what Node-RED's loader looks for beside each built node file:
// the editor .html, icons/ and locales/ (the loader never looks in the source tree).
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit', cwd: root });

const srcNodes = path.join(root, 'nodes');
const distNodes = path.join(root, 'dist', 'nodes');
function copyTree(from, to, filter) {
  if (!fs.existsSync(from)) return;
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) copyTree(src, dst, filter);
    else if (filter(src)) {
      fs.mkdirSync(to, { recursive: true });
      fs.copyFileSync(src, dst);
    }
  }
}
// Editor files and locales live beside the sources; icons come from the top-level icons/.
copyTree(srcNodes, distNodes, (f) => !f.endsWith('.ts'));
// Editor plugins (package.json node-red.plugins): their .html must sit beside the built .js, too.
copyTree(path.join(root, 'plugins'), path.join(root, 'dist', 'plugins'), (f) => !f.endsWith('.ts'));
if (fs.existsSync(distNodes)) {
  const nodeDirs = new Set([distNodes]);
  for (const entry of fs.readdirSync(distNodes, { withFileTypes: true })) {
    if (entry.isDirectory() && entry.name !== 'common' && entry.name !== 'icons' && entry.name !== 'locales') {
      nodeDirs.add(path.join(distNodes, entry.name));
    }
  }
  for (const dir of nodeDirs) copyTree(path.join(root, 'icons'), path.join(dir, 'icons'), () => true);
}
