#!/usr/bin/env node
'use strict';
// npm start: Node-RED (the devDependency) with a user directory inside the project (.node-red/), this
// package loaded, a generated demo image and a local repository, and on first start the example flows
// deployed and one backup made. Prints the editor's address.
const fs = require('fs');
const path = require('path');
const { spawn, execFileSync } = require('child_process');
const { root, writeSettings, exampleTabs, makeDemoImage, request, waitForNodeRed, deployFlows } = require('./node-red-env');

const port = Number(process.env.PORT || 1880);
const userDir = path.join(root, '.node-red');
const demoDir = path.join(userDir, 'volume-backup-demo');

// The examples read these; a user's own values win.
const env = {
  VOLUME_BACKUP_REPO: path.join(demoDir, 'repository'),
  VOLUME_BACKUP_VOLUME: path.join(demoDir, 'demo-disk.img'),
  VOLUME_BACKUP_RESTORE_DIR: path.join(demoDir, 'restored'),
  VOLUME_BACKUP_STATE_DIR: path.join(userDir, 'volume-backup-state'),
  ...process.env,
};

function main() {
  if (!fs.existsSync(path.join(root, 'dist', 'nodes', 'driver-config', 'driver-config.js'))) {
    console.log('Building (dist/ is missing)…');
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build.js')], { stdio: 'inherit', cwd: root });
  }
  const firstStart = !fs.existsSync(path.join(userDir, 'flows.json'));
  fs.mkdirSync(env.VOLUME_BACKUP_RESTORE_DIR, { recursive: true });
  if (!fs.existsSync(env.VOLUME_BACKUP_VOLUME)) {
    makeDemoImage(env.VOLUME_BACKUP_VOLUME);
    console.log(`Made a 32 MiB demo image: ${env.VOLUME_BACKUP_VOLUME}`);
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
        const res = await request(port, 'POST', '/inject/vb-ex1-now');
        if (res.status !== 200) throw new Error(`could not start the first backup: HTTP ${res.status} ${res.text}`);
        console.log('Deployed the example flows and started a backup of the demo image.');
      }
      console.log(
        [
          '',
          `  Node-RED editor:  http://127.0.0.1:${port}/`,
          `  Demo volume:      ${env.VOLUME_BACKUP_VOLUME}`,
          `  Repository:       ${env.VOLUME_BACKUP_REPO}`,
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

main();
