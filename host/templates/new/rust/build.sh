#!/usr/bin/env bash
# Builds the module for wasm32-wasip2 and copies it to ./{{wasm_file}}.
# CARGO_TARGET_DIR is honoured (share one between projects to build the
# dependencies once).
set -euo pipefail
cd "$(dirname "$0")"
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "build.sh: the wasm32-wasip2 target is missing: rustup target add wasm32-wasip2" >&2
    exit 2
fi
cargo build --release --target wasm32-wasip2
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{{crate_file}}.wasm" {{wasm_file}}
echo "built {{wasm_file}}"
