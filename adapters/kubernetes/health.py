"""One HTTP port for the probes and the metrics: ``/healthz``, ``/readyz``, ``/metrics``.

``/healthz`` and ``/readyz`` answer 200 ``ok`` or 503 with the reason, from the callables given (the
controller's liveness and readiness checks); ``/metrics`` is the Prometheus text format of the registry.
The server runs on a daemon thread; port 0 picks a free port (:attr:`HealthServer.port` says which).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

#: a check answers None when all is well, else the reason it is not
Check = Callable[[], str | None]


class HealthServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: str, port: int, *, healthy: Check, ready: Check, registry: CollectorRegistry
    ) -> None:
        super().__init__((address, port), _Handler)
        self.checks = {"/healthz": healthy, "/readyz": ready}
        self.registry = registry
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), name="health", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: HealthServer

    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: no access log
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/metrics":
            self._send(200, generate_latest(self.server.registry), CONTENT_TYPE_LATEST)
        elif path in self.server.checks:
            problem = self.server.checks[path]()
            body = b"ok\n" if problem is None else f"{problem}\n".encode()
            self._send(200 if problem is None else 503, body, "text/plain; charset=utf-8")
        else:
            self._send(404, b"not found: /healthz, /readyz, /metrics\n", "text/plain; charset=utf-8")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
