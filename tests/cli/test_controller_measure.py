"""``ebbtide controller`` measures with the real providers: its reconciles hand StartMeasurement effects to a
bounded dispatcher (:func:`ebbtide.cli.controller.measure_with_providers`), and a result wakes the workload.

Against the stand-in API server and a metric endpoint on 127.0.0.1 (the ``web`` provider over real HTTP):
the endpoint's answer, not anything the test tells the controller, decides between live and a rollback.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes import client

from ebbtide.adapters.kubernetes.controller import Controller
from ebbtide.adapters.kubernetes.reconcile import GROUP, VERSION
from ebbtide.cli.controller import measure_with_providers

from ..adapters.kubernetes.test_controller import (
    NS,
    V1,
    V2,
    config,
    selectors,
    set_image,
    settled,
    standin_cluster,
    wait_for,
)


@contextlib.contextmanager
def metric_endpoint(value: float) -> Iterator[tuple[str, list[str]]]:
    """A web metric source answering ``{"data": {"errorRate": value}}``; every path asked is kept."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = json.dumps({"data": {"errorRate": value}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/errors", asked
    finally:
        server.shutdown()
        server.server_close()


def use_web_metric(api: object, url: str) -> None:
    metric = {
        "name": "error-rate",
        "interval": "200ms",
        "count": 2,
        "successCondition": "result < 0.05",
        "failureLimit": 0,
        "provider": {"web": {"url": url, "jsonPath": "$.data.errorRate", "timeoutSeconds": 5}},
    }
    client.CustomObjectsApi(api.client).patch_namespaced_custom_object(  # type: ignore[attr-defined]
        GROUP, VERSION, NS, "verificationtemplates", "errors", {"spec": {"metrics": [metric]}}
    )


@pytest.mark.parametrize(("value", "end"), [(0.01, V2), (0.5, V1)], ids=["healthy", "failing"])
def test_the_controller_measures_with_the_providers(value: float, end: str) -> None:
    with standin_cluster() as api, metric_endpoint(value) as (url, asked):
        use_web_metric(api, url)
        ctl = Controller(api.configuration, config())
        dispatcher = measure_with_providers(ctl, workers=2, timeout=5.0)
        try:
            with ctl:
                wait_for(api, settled(V1))
                set_image(api, "orders:2")
                state = wait_for(api, lambda s: s.desired == V2 and settled(end)(s), timeout=30.0)
        finally:
            dispatcher.close()
        assert asked, "the metric endpoint was never asked"
        assert selectors(api)["orders-stable"] == end
    assert state.degraded == (end == V1)
