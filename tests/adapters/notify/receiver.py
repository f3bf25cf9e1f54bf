"""A local notification receiver on 127.0.0.1 (real HTTP): verifies signatures, records idempotency keys, and
fails as scripted (HTTP errors, answers too slow for the sender) before it recovers.

``accepted`` is the receiver's view of what was delivered: the requests it processed (answered 2xx) with a
valid signature (when it has a secret), de-duplicated by idempotency key as a real receiver would be, while
``hits`` keeps every request, duplicates included.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Hit:
    key: str | None
    event: str | None
    body: bytes
    signature_ok: bool | None
    answered: int | None
    processed: bool
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    secret: str | None = None
    #: how the first requests are answered, in order: an HTTP status ("500"), "slow" (answers 503 after
    #: ``slow_for`` seconds, too late for the sender), "slow-ok" (processes it, answers 200 too late);
    #: "429-wait" (429 with ``Retry-After: 1``); then 200
    script: list[str] = field(default_factory=list)
    slow_for: float = 0.6
    #: the body of a 200 answer (Slack answers "ok")
    ok_body: bytes = b'{"received": true}'
    port: int = 0
    hits: list[Hit] = field(default_factory=list)
    accepted: dict[str, Hit] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def verify(self, body: bytes, header: str | None) -> bool:
        assert self.secret is not None
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return header is not None and hmac.compare_digest(expected, header)

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length", 0)))
        key = request.headers.get("Idempotency-Key")
        ok = None if self.secret is None else self.verify(body, request.headers.get("X-Ebbtide-Signature"))
        with self.lock:
            n = len(self.hits)
            behaviour = self.script[n] if n < len(self.script) else "200"
            hit = Hit(key, request.headers.get("X-Ebbtide-Event"), body, ok, None, False)
            self.hits.append(hit)
        if ok is False:
            behaviour = "401"
        if behaviour in ("slow", "slow-ok"):
            if behaviour == "slow-ok":
                self._process(hit)
            time.sleep(self.slow_for)
            behaviour = "200" if behaviour == "slow-ok" else "503"
        extra = {}
        if behaviour == "429-wait":  # rate limited, and says for how long
            behaviour, extra = "429", {"Retry-After": "1"}
        status = int(behaviour)
        if status == 200 and behaviour != "slow-ok":
            self._process(hit)
        hit.answered = status
        payload = self.ok_body if status == 200 else b"receiver says no"
        try:
            request.send_response(status)
            request.send_header("Content-Length", str(len(payload)))
            for name, value in extra.items():
                request.send_header(name, value)
            request.end_headers()
            request.wfile.write(payload)
        except OSError:
            pass  # the sender gave up waiting

    def _process(self, hit: Hit) -> None:
        hit.processed = True
        with self.lock:
            if hit.key is not None:
                self.accepted.setdefault(hit.key, hit)  # a duplicate key is dropped, as receivers should

    def processed_keys(self) -> list[str | None]:
        """The key of every request processed, duplicates included."""
        with self.lock:
            return [h.key for h in self.hits if h.processed]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(receiver: Receiver, delay: float = 0.0) -> Iterator[Receiver]:
    """Run ``receiver`` on its port (a free one when 0), after ``delay`` seconds (connection refused until
    then); stopped and closed on exit."""
    if receiver.port == 0:
        receiver.port = free_port()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver.handle(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    servers: list[ThreadingHTTPServer] = []

    def run() -> None:
        time.sleep(delay)
        server = ThreadingHTTPServer(("127.0.0.1", receiver.port), Handler)
        server.daemon_threads = True
        servers.append(server)
        server.serve_forever(poll_interval=0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if delay == 0:
        deadline = time.monotonic() + 5
        while not servers and time.monotonic() < deadline:
            time.sleep(0.005)
    try:
        yield receiver
    finally:
        deadline = time.monotonic() + delay + 5
        while not servers and time.monotonic() < deadline:
            time.sleep(0.01)
        for server in servers:
            server.shutdown()
            server.server_close()
        thread.join(5)
