#!/usr/bin/env bash
# Builds the module with componentize-py into ./{{wasm_file}}; the first run
# makes a virtual environment (.venv) with requirements.txt (pip's cache
# serves later ones).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/componentize-py ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
fi
.venv/bin/componentize-py --wit-path wit --world fulfillment-module componentize app -o {{wasm_file}}
echo "built {{wasm_file}}"
