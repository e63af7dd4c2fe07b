"""A local incoming webhook (Slack- or Teams-like) for the tests of alerts: a real HTTP server on
127.0.0.1 that records what it is posted and fails or hangs as told."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Webhook:
    """A local incoming webhook: answers `failures` times with `failure_status`, then 200;
    with `hang`, never answers (until the test ends)."""

    def __init__(self, failures=0, failure_status=500, hang=False):
        self.failures, self.failure_status, self.hang = failures, failure_status, hang
        self.received = []
        self.released = threading.Event()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                webhook.received.append((self.headers["Content-Type"], json.loads(body)))
                if webhook.hang:
                    webhook.released.wait(10)
                    return
                failing = len(webhook.received) <= webhook.failures
                self.send_response(webhook.failure_status if failing else 200)
                self.end_headers()
                self.wfile.write(b"no" if failing else b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        # A short poll: shutdown() waits for the serving loop's next look.
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
