'use strict';
// What `npm start` and the end-to-end test share: the Node-RED settings that load this package, the
// example flows arranged as deployable tabs, the demo image, and the admin API calls.
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');

const root = path.resolve(__dirname, '..');
const examplesDir = path.join(root, 'examples');

/** settings.js for a user directory: this package loaded from the project, nothing phoning home. */
function writeSettings(userDir, { port, extra = {} } = {}) {
  const settings = {
    uiHost: '127.0.0.1',
    uiPort: port,
    flowFile: 'flows.json',
    credentialSecret: false,
    nodesDir: [root],
    telemetry: { enabled: false },
    diagnostics: { enabled: false },
    editorTheme: { tours: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    logging: { console: { level: 'info', metrics: false, audit: false } },
    ...extra,
  };
  const file = path.join(userDir, 'settings.js');
  fs.mkdirSync(userDir, { recursive: true });
  fs.writeFileSync(file, `// Written by scripts/node-red-env.js; rewritten at every start.\nmodule.exports = ${JSON.stringify(settings, null, 2)};\n`);
  return file;
}

/** The example files, each as {file, nodes}. */
function readExamples() {
  return fs
    .readdirSync(examplesDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, nodes: JSON.parse(fs.readFileSync(path.join(examplesDir, file), 'utf8')) }));
}

const CONFIG_TYPES = new Set(['volume-driver-config', 'mqtt-broker']);

/**
 * Example flows as one deployable flow: each example on its own tab (named after its comment), config
 * nodes shared once at the top level. `only` picks examples by file name.
 */
function exampleTabs(only) {
  const flows = [];
  const configs = new Map();
  for (const { file, nodes } of readExamples()) {
    if (only && !only.some((o) => file.includes(o))) continue;
    const tabId = `tab-${file.replace(/\.json$/, '')}`;
    const comment = nodes.find((n) => n.type === 'comment');
    flows.push({ id: tabId, type: 'tab', label: comment ? comment.name : file, info: comment ? comment.info : '' });
    for (const node of nodes) {
      if (CONFIG_TYPES.has(node.type)) configs.set(node.id, node);
      else flows.push({ ...node, z: tabId });
    }
  }
  return [...flows, ...configs.values()];
}

/** A small volume with the usual mix: zero regions (holes), random data, and text. */
function makeDemoImage(file, size = 32 * 1024 * 1024) {
  const region = 1024 * 1024;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'w');
  try {
    for (let offset = 0, i = 0; offset < size; offset += region, i++) {
      const kind = i % 4; // 0: zero (left as a hole), 1: random, 2 and 3: text
      if (kind === 0) continue;
      const length = Math.min(region, size - offset);
      const data = kind === 1 ? crypto.randomBytes(length) : textRegion(i, length);
      fs.writeSync(fd, data, 0, length, offset);
    }
    fs.ftruncateSync(fd, size);
  } finally {
    fs.closeSync(fd);
  }
}

function textRegion(seed, length) {
  const words = ['volume', 'backup', 'chunk', 'block', 'restore', 'snapshot', 'node', 'red', 'flow', 'inject'];
  const lines = [];
  let bytes = 0;
  for (let n = 0; bytes < length; n++) {
    const line = `${new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString()} ${words[(seed + n) % words.length]} ${words[(n * 7) % words.length]} ${n}\n`;
    lines.push(line);
    bytes += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, length);
}

/** A request to Node-RED's admin API (or an HTTP In endpoint); resolves with {status, body}. */
function request(port, method, urlPath, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: urlPath,
        headers: { ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}), ...headers },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, text, body: json });
        });
      },
    );
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

/** Wait until the admin API answers (Node-RED has loaded its nodes). */
async function waitForNodeRed(port, timeoutMs = 60000, child) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`Node-RED exited with code ${child.exitCode} before it was ready`);
    try {
      const res = await request(port, 'GET', '/settings');
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`Node-RED did not answer on 127.0.0.1:${port} within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Replace all flows (a full deploy, as the editor's Deploy button does). */
async function deployFlows(port, flows, credentials) {
  const body = credentials ? { flows, credentials } : { flows };
  const res = await request(port, 'POST', '/flows', body, { 'Node-RED-API-Version': 'v2', 'Node-RED-Deployment-Type': 'full' });
  if (res.status !== 200) throw new Error(`deploy failed with HTTP ${res.status}: ${res.text}`);
  return res.body;
}

module.exports = { root, examplesDir, writeSettings, readExamples, exampleTabs, makeDemoImage, request, waitForNodeRed, deployFlows };
