"""A tiny HTTP endpoint on a free loopback port, for probes that are plain HTTP scripts (health checks).

The real server's behaviour is tested in tests/integration (test_k8s_probes.py kills a real stub); here a
handler answers as tritonserver would, so each probe's own logic can be checked in milliseconds.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from typing import Iterator


class JsonHandler(http.server.BaseHTTPRequestHandler):
    """Base handler: `answer(code, dict)` writes a JSON response; no request logging."""

    def body(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def answer(self, code: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(handler: type[JsonHandler]) -> Iterator[int]:
    """Serve `handler` on a free loopback port; yields the port and stops the server afterwards."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
