"""The server-sent event streams over real HTTP: the first event at once, then one per visible change,
heartbeats while nothing changes, and the stream's end when the client goes away."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .demoserver import app_for, new_demo, run_until, serving

httpx = pytest.importorskip("httpx")

ORDERS = "/api/v1/namespaces/shop/rollouts/orders"


def events(response: Any) -> Iterator[tuple[str, Any]]:
    """(event, data) of an event stream; a heartbeat comment is ("heartbeat", None)."""
    name, data = "message", []
    for line in response.iter_lines():
        if line.startswith(":"):
            yield "heartbeat", None
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and data:
            yield name, json.loads("\n".join(data))
            name, data = "message", []


def test_view_stream_sends_the_view_then_each_change() -> None:
    backend, demo, clock = new_demo()
    app = app_for(backend, stream_poll=0.02)
    with serving(app) as url, httpx.stream("GET", url + f"{ORDERS}/watch", timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = events(response)
        kind, first = next(stream)
        assert kind == "view" and first == backend.view("shop", "orders")
        # the rollout moves on (the clock is the test's): the next event is the new view
        run_until(backend, demo, clock, lambda: backend.view("shop", "orders")["phase"] == "verifying")
        want = backend.view("shop", "orders")
        seen = []
        for kind, data in stream:
            assert kind == "view"
            seen.append(data)
            if data == want:
                break
        assert all(a != b for a, b in zip(seen, [first, *seen], strict=False)), "an event repeats the last"


def test_list_stream_and_its_namespace_filter() -> None:
    backend, _demo, _clock = new_demo()
    app = app_for(backend, stream_poll=0.02)
    with serving(app) as url:
        with httpx.stream("GET", url + "/api/v1/watch/rollouts?namespace=web", timeout=10) as response:
            kind, data = next(events(response))
        assert kind == "list" and [i["name"] for i in data["items"]] == ["search"]
        with httpx.stream("GET", url + "/api/v1/watch/rollouts", timeout=10) as response:
            stream = events(response)
            kind, data = next(stream)
            assert kind == "list" and data == {"items": backend.list_rollouts(None)}
            backend.act("shop", "orders", "pause", None, "test")
            kind, data = next(stream)
            assert kind == "list"
            orders = next(i for i in data["items"] if i["name"] == "orders")
            assert orders["phase"] == "paused"


def test_heartbeat_while_nothing_changes() -> None:
    backend, _demo, _clock = new_demo()
    app = app_for(backend, stream_poll=0.02, stream_heartbeat=0.1)
    with serving(app) as url, httpx.stream("GET", url + f"{ORDERS}/watch", timeout=10) as response:
        stream = events(response)
        assert next(stream)[0] == "view"
        assert next(stream) == ("heartbeat", None)
        assert next(stream) == ("heartbeat", None)


def test_watch_of_an_unknown_rollout_is_404() -> None:
    backend, _demo, _clock = new_demo()
    with serving(app_for(backend)) as url:
        got = httpx.get(url + "/api/v1/namespaces/shop/rollouts/nothing/watch", timeout=10)
        assert got.status_code == 404


def test_the_stream_ends_when_the_client_goes_away() -> None:
    backend, _demo, _clock = new_demo()
    app = app_for(backend, stream_poll=0.02)
    with serving(app) as url:
        clients = 3
        opened = threading.Barrier(clients + 1)

        def watch() -> None:
            with httpx.stream("GET", url + f"{ORDERS}/watch", timeout=10) as response:
                stream = events(response)  # kept: a dropped reader closes the response
                next(stream)
                opened.wait(timeout=10)
                opened.wait(timeout=10)  # the test has counted the open streams

        threads = [threading.Thread(target=watch) for _ in range(clients)]
        for t in threads:
            t.start()
        opened.wait(timeout=10)
        assert app.state.open_streams == clients
        opened.wait(timeout=10)
        for t in threads:
            t.join(timeout=10)
        deadline = time.monotonic() + 5
        while app.state.open_streams:
            assert time.monotonic() < deadline, f"{app.state.open_streams} streams still open"
            time.sleep(0.02)
