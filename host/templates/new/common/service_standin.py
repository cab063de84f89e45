#!/usr/bin/env python3
"""A stand-in for the service that the module calls, on a loopback port.

    python3 service_standin.py [--port PORT]

Prints its URL (http://127.0.0.1:PORT) on the first line of stdout once it
listens (port 0, the default, takes any free port), then serves until it is
stopped:

- POST /fulfillments with an `Idempotency-Key` header and a JSON body:
  200 {"reference": "REF-0001"}; the same key gets the same reference again,
  as a real service must answer a retry. No key: 400.
- POST /revocations with an `Idempotency-Key` header: 200 {"revoked": true}.

Replace it with your real service's behaviour as you learn it (its error
answers above all): the module's tests are only as good as this stand-in.
"""

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Service(BaseHTTPRequestHandler):
    references = {}

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        key = self.headers.get("Idempotency-Key")
        if self.path not in ("/fulfillments", "/revocations"):
            return self.answer(404, {"error": f"no such endpoint: {self.path}"})
        if not key:
            return self.answer(400, {"error": "the Idempotency-Key header is missing"})
        try:
            json.loads(body or b"{}")
        except ValueError:
            return self.answer(400, {"error": "the body is not JSON"})
        if self.path == "/revocations":
            return self.answer(200, {"revoked": True})
        reference = Service.references.setdefault(key, f"REF-{len(Service.references) + 1:04d}")
        self.answer(200, {"reference": reference})

    def answer(self, status, document):
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        sys.stderr.write("service stand-in: " + (format % args) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="the port to listen on (0: any free port)")
    port = parser.parse_args().port
    server = ThreadingHTTPServer(("127.0.0.1", port), Service)
    print(f"http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
