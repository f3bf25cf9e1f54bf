"""Servers for the provider tests: a real Prometheus started once per session, and a scripted local HTTP
server (``vendor``) that answers as Datadog, New Relic, Jenkins or any web endpoint would, one per test.

The Prometheus server runs the Debian ``prometheus`` binary on 127.0.0.1 (a free port, a temporary data
directory, no scrape targets) and holds one hour of deterministic data backfilled with
``promtool tsdb create-blocks-from openmetrics``. The data (rates per second, constant over the hour):

- ``http_requests_total{service="checkout",code="200"}``: 199/s, ``{service="checkout",code="500"}``: 1/s,
  ``{service="search",code="200"}``: 50/s;
- ``http_request_duration_seconds_bucket{service="checkout"}``: 200 observations/s, cumulative per le
  0.1: 120, 0.25: 180, 0.5: 196, 1: 200, +Inf: 200.

Tests query at ``PromServer.at`` (the middle of the hour), with the ``time=`` parameter. Without the binary
the tests are skipped, unless ``EBBTIDE_REQUIRE_PROMETHEUS`` is set (CI sets it), in which case they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

STEP = 15  # seconds between samples
SPAN = 3600  # one hour of data
COUNTERS = {  # (service, code) -> requests per second
    ("checkout", "200"): 199,
    ("checkout", "500"): 1,
    ("search", "200"): 50,
}
BUCKETS = {"0.1": 120, "0.25": 180, "0.5": 196, "1": 200, "+Inf": 200}  # cumulative observations per second
SUM_PER_SECOND = 40.0  # seconds of latency observed per second (any figure: no test reads the sum)


@dataclass(frozen=True)
class PromServer:
    address: str
    #: first sample time of the backfilled hour (unix seconds)
    start: int
    #: the evaluation time the tests query at: the middle of the hour
    at: int


def openmetrics(start: int) -> str:
    """The backfill file: every series sampled every STEP seconds over SPAN seconds from ``start``."""
    times = range(start, start + SPAN + 1, STEP)
    lines = ["# HELP http_requests Requests served.", "# TYPE http_requests counter"]
    for (service, code), per_second in COUNTERS.items():
        for t in times:
            count = per_second * (t - start)
            lines.append(f'http_requests_total{{service="{service}",code="{code}"}} {count} {t}')
    lines += [
        "# HELP http_request_duration_seconds Request latency.",
        "# TYPE http_request_duration_seconds histogram",
    ]
    for t in times:
        elapsed = t - start
        for le, per_second in BUCKETS.items():
            value = per_second * elapsed
            lines.append(f'http_request_duration_seconds_bucket{{service="checkout",le="{le}"}} {value} {t}')
        lines.append(
            f'http_request_duration_seconds_count{{service="checkout"}} {BUCKETS["+Inf"] * elapsed} {t}'
        )
        lines.append(
            f'http_request_duration_seconds_sum{{service="checkout"}} {SUM_PER_SECOND * elapsed} {t}'
        )
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(address: str, proc: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{address}/-/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"prometheus not ready after 30s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromServer]:
    binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if binary is None or promtool is None:
        if os.environ.get("EBBTIDE_REQUIRE_PROMETHEUS"):
            pytest.fail(
                "EBBTIDE_REQUIRE_PROMETHEUS is set but the prometheus/promtool binaries are not on PATH"
            )
        pytest.skip("the prometheus and promtool binaries are absent (apt-get install prometheus)")
    root = tmp_path_factory.mktemp("prometheus")
    data, source, config, log = (
        root / "data",
        root / "backfill.om",
        root / "prometheus.yml",
        root / "server.log",
    )
    start = (int(time.time()) // 3600 - 4) * 3600  # a whole hour, 3 to 4 hours in the past
    source.write_text(openmetrics(start))
    config.write_text("global: {}\n")
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
    )
    address = f"http://127.0.0.1:{free_port()}"
    args = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        "--storage.tsdb.retention.time=100y",
        f"--web.listen-address={address.removeprefix('http://')}",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(address, proc, log, time.monotonic() + 30)
        yield PromServer(address=address, start=start, at=start + SPAN // 2)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------- a scripted vendor server


@dataclass
class Reply:
    """One answer: status, body (bytes or str sent as is; anything else sent as JSON), headers, delay."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


@dataclass
class Request:
    """What the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


Route = Reply | list[Reply] | Callable[[Request], Reply]


@dataclass
class Vendor:
    """A local HTTP server on 127.0.0.1 answering each (method, path) as scripted.

    A route is a Reply (every time), a list of Replies (one per request, the last one repeated) or a function
    of the Request. An unscripted path is a 404. Every request is recorded in ``requests``.
    """

    url: str
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def route(self, method: str, path: str, reply: Route) -> None:
        self.routes[(method, path)] = reply

    def answer(self, request: Request) -> Reply:
        self.requests.append(request)
        route = self.routes.get((request.method, request.path))
        if route is None:
            return Reply(404, f"no route for {request.method} {request.path}")
        if isinstance(route, list):
            return route.pop(0) if len(route) > 1 else route[0]
        if isinstance(route, Reply):
            return route
        return route(request)


def _handler(vendor: Vendor) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
            )
            reply = vendor.answer(request)
            time.sleep(reply.delay)
            body, content_type = reply.encoded()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def vendor() -> Iterator[Vendor]:
    yield from _serve(tls=False)


@pytest.fixture
def tls_vendor() -> Iterator[Vendor]:
    """The same server over HTTPS, with a certificate from a throwaway CA no client trusts (trustme)."""
    yield from _serve(tls=True)


def _serve(*, tls: bool) -> Iterator[Vendor]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    scheme = "http"
    if tls:
        import ssl

        import trustme

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    fake = Vendor(url=f"{scheme}://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(fake)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def start_of(provider: dict[str, Any], **metric: Any) -> Any:
    """A StartMeasurement of a metric named ``m`` with this provider block (and MetricPlan fields)."""
    from ebbtide.core.effects import StartMeasurement
    from ebbtide.core.plan import MetricPlan

    plan = MetricPlan(name="m", provider=provider, **metric)
    return StartMeasurement(verification="v1", template="t", metric=plan, revision="r2", stable="r1")
