#!/usr/bin/env bash
# Builds the module into ./{{wasm_file}}: installs componentize-js on the
# first run (npm's cache serves later projects), then `npm run build`.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/@bytecodealliance/componentize-js ]; then
    npm install --prefer-offline --no-audit --no-fund
fi
npm run --silent build
