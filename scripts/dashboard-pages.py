#!/usr/bin/env python3
"""Times the operator dashboard's pages with many orders in the database:

    scripts/dashboard-pages.py [BINARY] [--orders 100000] [--postgres postgres://postgres@127.0.0.1:5432]
                               [--without-indexes]

Starts `fulfillment-host serve` (BINARY, target/debug/fulfillment-host by
default) on a fresh SQLite file (or a fresh PostgreSQL database made on the
server given, dropped after), places one real donation order through the
API, copies it in SQL into ORDERS orders (1 in 100 Fulfillment Error, 1 in
50 Open, 1,000 users, one a minute back in time), signs in to the
dashboard, and prints the median and the slowest of 15 loads of each page.
Loopback only; nothing is timed in the test suite. Needs the modules built
(`cargo plugins`).
"""

import argparse
import hashlib
import http.cookiejar
import json
import os
import pathlib
import re
import sqlite3
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOKEN = "pages-token"

SEED = """
INSERT INTO orders (number, username, email, date_placed, currency, total_minor, shipping_method, shipping_minor,
                    billing_address, email_opt_in, basket_attributes, status, payment_source_id, created_at, placed_by)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})
SELECT 'SEED-' || CAST(i AS TEXT), 'user' || CAST(i % 1000 AS TEXT), email, date_placed, currency, total_minor,
       shipping_method, shipping_minor, billing_address, email_opt_in, basket_attributes,
       CASE WHEN i % 100 = 0 THEN 'Fulfillment Error' WHEN i % 50 = 0 THEN 'Open' ELSE 'Complete' END,
       payment_source_id, created_at - CAST(i AS BIGINT) * 60000, placed_by
FROM orders, n WHERE orders.id = 1 ORDER BY i DESC;
INSERT INTO lines (order_id, line_id, sku, product_type, title, product_attributes, quantity, unit_price_minor, status,
                   fulfilled_by, attributes)
SELECT o.id, l.line_id, l.sku, l.product_type, l.title, l.product_attributes, l.quantity, l.unit_price_minor,
       l.status, l.fulfilled_by, l.attributes
FROM orders o JOIN lines l ON l.order_id = 1 WHERE o.id > 1;
"""


def settings(folder, database_url):
    donation = ROOT / "target/wasm32-wasip2/plugin/donation.wasm"
    path = pathlib.Path(folder) / "settings.toml"
    path.write_text(f"""[[modules]]
name = "donation"
path = "{donation}"

[server]
bind = "127.0.0.1:0"

[database]
url = "{database_url}"
max_connections = 8

[[api.tokens]]
name = "pages"
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


def place_one(url):
    body = json.dumps({
        "user": {"username": "user0", "email": "user0@example.com"},
        "basket": [{"sku": "DONATION", "quantity": 1}],
        "total": "10.00", "currency": "USD",
        "payment": {"processor": "test", "token": "tok_success"},
    }).encode()
    request = urllib.request.Request(url + "/api/v1/orders", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201, response.status


# --without-indexes: the indexes as they were before migration 0005, to
# measure what its indexes are worth.
BEFORE_0005 = """
DROP INDEX orders_status_id; DROP INDEX orders_username_id; DROP INDEX orders_created_at;
DROP INDEX fulfillment_attempts_order_id;
CREATE INDEX orders_status ON orders (status); CREATE INDEX orders_username ON orders (username);
CREATE INDEX fulfillment_attempts_order ON fulfillment_attempts (order_id);
"""


def seed(database_url, count, sqlite_path, without_indexes):
    sql = SEED.format(count=count)
    if without_indexes:
        sql += BEFORE_0005
    started = time.perf_counter()
    if sqlite_path:
        with sqlite3.connect(sqlite_path, timeout=60) as connection:
            connection.executescript(sql)
    else:
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", database_url, "-c", sql], check=True)
        subprocess.run(["psql", "-q", database_url, "-c", "ANALYZE"], check=True)
    print(f"seeded {count} orders in {time.perf_counter() - started:.1f} s", flush=True)


def signed_in(url):
    jar = http.cookiejar.CookieJar()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    form = opener.open(url + "/dashboard/sign-in").read().decode()
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form).group(1)
    data = urllib.parse.urlencode({"token": TOKEN, "csrf": csrf}).encode()
    try:
        opener.open(urllib.request.Request(url + "/dashboard/sign-in", data=data, headers={"Origin": url}))
    except urllib.error.HTTPError as redirect:
        assert redirect.code == 303, redirect.code
    return opener


def time_page(opener, url, path, loads=15):
    times = []
    for _ in range(loads):
        started = time.perf_counter()
        with opener.open(url + path) as response:
            page = response.read()
            assert response.status == 200, (path, response.status)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times), len(page)


def run(binary, count, postgres, without_indexes):
    with tempfile.TemporaryDirectory() as folder:
        database = None
        if postgres:
            database = f"pages_{os.getpid()}"
            subprocess.run(["psql", "-q", postgres + "/postgres", "-c", f"CREATE DATABASE {database}"], check=True)
            database_url, sqlite_path = f"{postgres}/{database}", None
        else:
            sqlite_path = pathlib.Path(folder) / "orders.db"
            database_url = f"sqlite://{sqlite_path}"
        host = subprocess.Popen([binary, "--settings", str(settings(folder, database_url)), "serve"],
                                stderr=subprocess.PIPE, text=True, env={**os.environ, "RUST_LOG": "warn"})
        try:
            url = None
            for line in host.stderr:
                if "listening on " in line:
                    url = line.split("listening on ")[1].strip()
                    break
            assert url, "the host did not start"
            place_one(url)
            seed(database_url, count, sqlite_path, without_indexes)
            opener = signed_in(url)
            today = time.strftime("%Y-%m-%d", time.gmtime())
            last_page = count // 50
            pages = [
                ("orders, page 1", "/dashboard/orders"),
                ("orders, page 100", "/dashboard/orders?page=100"),
                (f"orders, page {last_page} (the last)", f"/dashboard/orders?page={last_page}"),
                ("status = Fulfillment Error", "/dashboard/orders?status=Fulfillment+Error"),
                ("status = Open, page 20", "/dashboard/orders?status=Open&page=20"),
                ("username = user7", "/dashboard/orders?username=user7"),
                ("number = SEED-4242", "/dashboard/orders?number=SEED-4242"),
                ("placed today", f"/dashboard/orders?from={today}&to={today}"),
                ("an order's page", "/dashboard/orders/SEED-4242"),
                ("modules", "/dashboard/modules"),
            ]
            backend = "PostgreSQL" if postgres else "SQLite"
            indexes = " (with the indexes before migration 0005)" if without_indexes else ""
            print(f"{binary}, {backend}, {count + 1} orders{indexes}:")
            for name, path in pages:
                median, slowest, size = time_page(opener, url, path)
                print(f"  {name:<34} median {median:7.1f} ms, slowest {slowest:7.1f} ms, {size // 1024} KiB", flush=True)
        finally:
            host.terminate()
            host.wait(timeout=30)
            if database:
                subprocess.run(["psql", "-q", postgres + "/postgres", "-c", f"DROP DATABASE {database}"], check=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary", nargs="?", default=str(ROOT / "target/debug/fulfillment-host"))
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL without a database, to make a fresh one on")
    parser.add_argument("--without-indexes", action="store_true", help="the indexes as before migration 0005 (a baseline)")
    arguments = parser.parse_args()
    run(arguments.binary, arguments.orders, arguments.postgres, arguments.without_indexes)
