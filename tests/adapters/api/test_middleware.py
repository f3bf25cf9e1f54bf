"""The write guard over real HTTP (uvicorn on 127.0.0.1): body size limit, rate limit per caller, audit
lines; reads pass untouched."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from ebbtide.adapters.api.app import create_app
from ebbtide.adapters.api.server import ApiServer

from .fakes import FakeBackend, Tokens

SPECS = "/api/v1/namespaces/shop/specs"
DOC = {"apiVersion": "ebbtide.dev/v1alpha1", "kind": "Strategy", "metadata": {"name": "s"}, "spec": {}}


@pytest.fixture
def server() -> Iterator[tuple[ApiServer, FakeBackend]]:
    backend = FakeBackend()
    tokens = Tokens({"t-alice": "alice", "t-bob": "bob"}, denied={("bob", "delete")})
    with ApiServer(create_app(backend, tokens, write_limit="3/minute", max_body=200)) as srv:
        yield srv, backend


def client(srv: ApiServer, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=srv.url, headers=headers, timeout=10)


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "ebbtide.audit"]


def test_writes_beyond_the_limit_are_429_with_retry_after_per_caller(
    server: tuple[ApiServer, FakeBackend],
) -> None:
    srv, backend = server
    with client(srv, "t-alice") as alice, client(srv, "t-bob") as bob:
        codes = [alice.post(SPECS, json=[DOC]).status_code for _ in range(3)]
        refused = alice.post(SPECS, json=[DOC])
        assert codes == [200, 200, 200] and refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "too many writes by alice" in refused.json()["detail"]
        assert bob.post(SPECS, json=[DOC]).status_code == 200  # another caller has its own window
        assert all(alice.get(f"{SPECS}/Strategy/s").status_code == 200 for _ in range(5))  # reads pass
    assert len([c for c in backend.calls if c[0] == "apply"]) == 4


def test_a_body_over_the_limit_is_413_and_the_limit_itself_passes(
    server: tuple[ApiServer, FakeBackend],
) -> None:
    srv, backend = server
    body = json.dumps([DOC]).encode()
    exact = body + b" " * (200 - len(body))
    with client(srv, "t-alice") as alice:
        assert (
            alice.post(SPECS, content=exact, headers={"Content-Type": "application/json"}).status_code == 200
        )
        over = alice.post(SPECS, content=exact + b" ", headers={"Content-Type": "application/json"})
        chunked = alice.post(SPECS, content=iter([exact, b" "]), headers={"Content-Type": "application/json"})
    assert over.status_code == 413 and chunked.status_code == 413
    assert len(backend.calls) == 1


def test_every_write_is_audited_with_who_what_result_and_request_id(
    server: tuple[ApiServer, FakeBackend], caplog: pytest.LogCaptureFixture
) -> None:
    srv, backend = server
    backend.rollouts[("shop", "orders")] = {"rolloutId": 3}
    caplog.set_level(logging.INFO, logger="ebbtide.audit")
    with client(srv, "t-alice") as alice, client(srv, "t-bob") as bob, client(srv, None) as nobody:
        done = alice.put(
            "/ocean/cd/rollout/shop.orders.3", json={"action": "promote"}, headers={"X-Request-Id": "r-1"}
        )
        assert done.headers["x-request-id"] == "r-1"
        backend.reject = "nothing to promote"
        alice.put("/ocean/cd/rollout/shop.orders.3", json={"action": "promote"})
        bob.delete(f"{SPECS}/Strategy/s")
        nobody.post(SPECS, json=[DOC])
        alice.get("/ocean/cd/rollout/shop.orders.3")  # a read: not audited
    lines = audit_lines(caplog)
    assert [(a["user"], a["verb"], a["object"], a["action"], a["result"], a["status"]) for a in lines] == [
        ("alice", "update", "rollout/shop.orders.3", "promote", "accepted", 200),
        ("alice", "update", "rollout/shop.orders.3", "promote", "rejected", 409),
        ("bob", "delete", "shop/specs/Strategy/s", None, "forbidden", 403),
        (None, "create", "shop/specs", None, "unauthenticated", 401),
    ]
    assert lines[0]["requestId"] == "r-1" and all(len(str(a["requestId"])) >= 3 for a in lines)


def test_refused_writes_are_audited_too(
    server: tuple[ApiServer, FakeBackend], caplog: pytest.LogCaptureFixture
) -> None:
    srv, _ = server
    caplog.set_level(logging.INFO, logger="ebbtide.audit")
    with client(srv, "t-alice") as alice:
        alice.post(SPECS, content=b"x" * 300)
        for _ in range(4):
            alice.post(SPECS, json=[DOC])
    assert [(a["result"], a["status"]) for a in audit_lines(caplog)] == [
        ("too large", 413),  # refused before the rate limit counts it
        ("ok", 200),
        ("ok", 200),
        ("ok", 200),
        ("limited", 429),
    ]
