"""Helpers of the dashboard and native-route tests: the demo's rollouts on a manual clock, served over real
HTTP on 127.0.0.1 by uvicorn in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from ebbtide.adapters.api.app import create_app  # noqa: E402
from ebbtide.adapters.api.auth import AllowLocal, Authorizer  # noqa: E402
from ebbtide.adapters.api.memory import ManualClock, MemoryBackend  # noqa: E402
from ebbtide.cli.demo import Demo  # noqa: E402


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve an ASGI app on 127.0.0.1 (a free port) while the block runs; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def new_demo() -> tuple[MemoryBackend, Demo, ManualClock]:
    clock = ManualClock()
    backend = MemoryBackend(clock)
    return backend, Demo(backend), clock


def run_until(
    backend: MemoryBackend, demo: Demo, clock: ManualClock, ok: Callable[[], bool], limit: float = 1800.0
) -> None:
    """Advance the demo in 1 s steps until ``ok()`` holds (fails past ``limit`` rollout seconds)."""
    while not ok():
        assert clock.now < limit, f"not reached by t={clock.now}"
        clock.advance(1.0)
        demo.tick()


def app_for(backend: MemoryBackend, authorizer: Authorizer | None = None, **state: float) -> Any:
    app = create_app(backend, authorizer or AllowLocal())
    for key, value in state.items():
        setattr(app.state, key, value)
    return app
