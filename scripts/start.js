#!/usr/bin/env node
'use strict';
// npm start: Node-RED (the devDependency) with a user directory inside the project (.node-red/), this
// package loaded, and on first start the example flows deployed and a demo chain made. The examples need
// no settings: their repository is .node-red/volume-backups (the default for an empty path) and their
// volume the demo image their "demo volume" node makes in the temporary folder. Prints the editor's address.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, execFileSync } = require('child_process');
const { root, writeSettings, exampleTabs, makeDemoImage, request, waitForNodeRed, deployFlows } = require('./node-red-env');

const port = Number(process.env.PORT || 1880);
const userDir = path.join(root, '.node-red');
// Where the examples' driver-config and "demo volume" node put things (see the examples' comments).
const repository = path.join(userDir, 'volume-backups');
const demoImage = path.join(os.tmpdir(), 'volume-backup-demo', 'demo-disk.img');
const env = { VOLUME_BACKUP_STATE_DIR: path.join(userDir, 'volume-backup-state'), ...process.env };

function main() {
  if (!fs.existsSync(path.join(root, 'dist', 'nodes', 'driver-config', 'driver-config.js'))) {
    console.log('Building (dist/ is missing)…');
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build.js')], { stdio: 'inherit', cwd: root });
  }
  const firstStart = !fs.existsSync(path.join(userDir, 'flows.json'));
  if (!fs.existsSync(demoImage)) {
    makeDemoImage(demoImage);
    console.log(`Made a 32 MiB demo image: ${demoImage}`);
  }
  const settingsFile = writeSettings(userDir, { port });
  const redJs = require.resolve('node-red/red.js', { paths: [root] });
  const child = spawn(process.execPath, [redJs, '-u', userDir, '-s', settingsFile], { env, stdio: 'inherit', cwd: root });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(signal ? 0 : code ?? 0));

  waitForNodeRed(port, 120000, child)
    .then(async () => {
      if (firstStart) {
        // Every example but MQTT (it needs a broker on 127.0.0.1:1883; import it from the menu).
        await deployFlows(port, exampleTabs(['01-', '02-', '03-', '05-', '06-']));
        await makeDemoChain();
      }
      console.log(
        [
          '',
          `  Node-RED editor:  http://127.0.0.1:${port}/`,
          `  Demo volume:      ${demoImage}`,
          `  Repository:       ${repository}`,
          `  Try:              curl -X POST http://127.0.0.1:${port}/backup   and   curl http://127.0.0.1:${port}/backups`,
          '  Stop with Ctrl-C. Delete .node-red/ to start over.',
          '',
        ].join('\n'),
      );
    })
    .catch((err) => {
      console.error(`npm start: ${err.message}`);
      child.kill('SIGTERM');
      process.exitCode = 1;
    });
}

/** Fire an inject node, retrying while the deployed flows are still starting (404). */
async function inject(id) {
  for (let attempt = 0; ; attempt++) {
    const res = await request(port, 'POST', `/inject/${id}`);
    if (res.status === 200) return;
    if (res.status !== 404 || attempt >= 50) throw new Error(`could not trigger ${id}: HTTP ${res.status} ${res.text}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Wait until the demo volume has `count` available backups (the flows make them asynchronously). */
async function waitForBackups(count) {
  const { openRepository, listBackups } = require('../dist/lib');
  const deadline = Date.now() + 120000;
  for (;;) {
    const repo = await openRepository(repository).catch(() => null);
    const records = repo ? await listBackups(repo).finally(() => repo.close()) : [];
    if (records.filter((r) => r.status === 'available').length >= count) return;
    if (Date.now() > deadline) throw new Error(`the demo backups did not complete: look at the editor's debug sidebar`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Overwrite a few scattered pieces of the demo image, as a running system would between backups. */
function touchDemoImage(seed) {
  const fd = fs.openSync(demoImage, 'r+');
  try {
    const size = fs.fstatSync(fd).size;
    for (let i = 0; i < 8; i++) {
      const offset = ((seed * 7919 + i * 104729) * 65536) % (size - 65536);
      fs.writeSync(fd, Buffer.alloc(65536, `change ${seed}.${i} `), 0, 65536, offset);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** A full backup and two incrementals, so the editor's Backups sidebar shows a chain from the start. */
async function makeDemoChain() {
  await inject('vb-ex1-now');
  await waitForBackups(1);
  for (let i = 1; i <= 2; i++) {
    touchDemoImage(i);
    await inject('vb-ex1-hourly');
    await waitForBackups(1 + i);
  }
  console.log('Deployed the example flows and made a demo chain: a full backup of the demo image and two incrementals.');
}

main();
