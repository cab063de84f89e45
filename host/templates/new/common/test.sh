#!/usr/bin/env bash
# Builds the module (./build.sh) and runs it through `fulfillment-host
# run-module` against the service stand-in on a loopback port:
#   1. the stand-in answers: the line must come out Complete;
#   2. the stand-in is stopped: the line must come out Fulfillment Network Error.
# Exits 0 only when both hold. The host is `fulfillment-host` on PATH, or
# FULFILLMENT_HOST=/path/to/fulfillment-host.
set -euo pipefail

host="${FULFILLMENT_HOST:-$(command -v fulfillment-host || true)}"
if [ -z "$host" ] || [ ! -x "$host" ]; then
    echo "test.sh: fulfillment-host not found: put it on PATH or set FULFILLMENT_HOST=/path/to/fulfillment-host" >&2
    exit 2
fi
host="$(cd "$(dirname "$host")" && pwd)/$(basename "$host")"
cd "$(dirname "$0")"

./build.sh

# The stand-in prints its URL once it listens: reading that line is the wait.
work="$(mktemp -d)"
standin_pid=""
trap 'kill "$standin_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkfifo "$work/url"
{{standin_command}} >"$work/url" &
standin_pid=$!
exec 3<"$work/url"
read -r url <&3 || true
if [ -z "$url" ]; then
    echo "test.sh: the service stand-in did not start" >&2
    exit 1
fi

# `run-module` exits 0 when the order is Complete, 3 when it is not.
run() {
    "$host" run-module {{wasm_file}} --order order.json --config "service_url=$url" --allow-host "$url"
}

# The status of line 1 in run-module's table ("  1  SKU  TYPE  MODULE  STATUS").
line_status() {
    sed -nE 's/^  1 .* (Complete|Open|Fulfillment [A-Za-z]+ Error)$/\1/p'
}

failures=0
set +e
output="$(run)"
code=$?
set -e
echo "$output"
status="$(line_status <<<"$output")"
if [ "$code" -eq 0 ] && [ "$status" = "Complete" ]; then
    echo "ok: the line is Complete"
else
    echo "FAILED: expected the line Complete, got '$status' (exit $code)" >&2
    failures=$((failures + 1))
fi

kill "$standin_pid"
wait "$standin_pid" 2>/dev/null || true
exec 3<&-
set +e
output="$(run)"
code=$?
set -e
echo "$output"
status="$(line_status <<<"$output")"
if [ "$code" -eq 3 ] && [ "$status" = "Fulfillment Network Error" ]; then
    echo "ok: with the service down, the line is Fulfillment Network Error"
else
    echo "FAILED: with the service down, expected Fulfillment Network Error, got '$status' (exit $code)" >&2
    failures=$((failures + 1))
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures failed" >&2
    exit 1
fi
echo "2 passed, 0 failed"
