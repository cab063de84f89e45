#!/usr/bin/env python3
"""Places donation orders against `fulfillment-host serve` and prints
orders/s and p50/p99 latency, for each binary given, alternating, so that a
change can be compared with a baseline in the same run:

    scripts/load.py target/debug/fulfillment-host /tmp/base/target/debug/fulfillment-host

Each run: a fresh SQLite file in a temporary folder, sync mode, the donation
module only (no LMS), 50 warm-up orders, then 400 orders from 1 client and
800 from 8. Bounded in count; loopback only. Needs the modules built
(`cargo plugins`).
"""

import concurrent.futures
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOKEN = "load-token"
BODY = json.dumps({
    "user": {"username": "load", "email": "load@example.com"},
    "basket": [{"sku": "DONATION", "quantity": 1}],
    "total": "10.00",
    "currency": "USD",
    "payment": {"processor": "test", "token": "tok_success"},
}).encode()


def settings(folder):
    donation = ROOT / "target/wasm32-wasip2/plugin/donation.wasm"
    path = pathlib.Path(folder) / "settings.toml"
    path.write_text(f"""[[modules]]
name = "donation"
path = "{donation}"

[server]
bind = "127.0.0.1:0"

[database]
url = "sqlite://orders.db"
max_connections = 8

[[api.tokens]]
name = "load"
sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
role = "admin"

[[products]]
sku = "DONATION"
product_type = "Donation"
title = "Donation"
price = "10.00"
currency = "USD"
""")
    return path


def place(url):
    started = time.perf_counter()
    request = urllib.request.Request(url + "/api/v1/orders", data=BODY, method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        order = json.load(response)
        assert response.status in (200, 201), response.status
        assert order["status"] == "Complete", order["status"]
    return (time.perf_counter() - started) * 1000


def load(url, count, clients):
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        times = sorted(pool.map(lambda _: place(url), range(count)))
    elapsed = time.perf_counter() - started
    return f"{count} orders, {clients} clients: {count / elapsed:.0f} orders/s, " \
           f"p50 {times[len(times) // 2]:.1f} ms, p99 {times[int(len(times) * 0.99) - 1]:.1f} ms"


def run(binary):
    with tempfile.TemporaryDirectory() as folder:
        path = settings(folder)
        host = subprocess.Popen([binary, "--settings", str(path), "serve"], stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "RUST_LOG": "warn"})
        try:
            url = None
            for line in host.stderr:
                if "listening on " in line:
                    url = line.split("listening on ")[1].strip()
                    break
            assert url, "the host did not start"
            load(url, 50, 1)
            for count, clients in ((400, 1), (800, 8)):
                print(f"{binary}: {load(url, count, clients)}", flush=True)
        finally:
            host.terminate()
            host.wait(timeout=30)


if __name__ == "__main__":
    binaries = sys.argv[1:] or [str(ROOT / "target/debug/fulfillment-host")]
    for _ in range(2):
        for binary in binaries:
            run(binary)
