"""The native rollout routes over real HTTP (uvicorn on 127.0.0.1), on the demo's MemoryBackend."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from .demoserver import app_for, new_demo, run_until, serving

httpx = pytest.importorskip("httpx")

from ebbtide.adapters.api.auth import Caller  # noqa: E402
from ebbtide.adapters.api.memory import ManualClock, MemoryBackend  # noqa: E402
from ebbtide.cli.demo import Demo  # noqa: E402
from ebbtide.core.engine import step  # noqa: E402
from ebbtide.core.events import Command  # noqa: E402


@dataclass
class Served:
    url: str
    backend: MemoryBackend
    demo: Demo
    clock: ManualClock

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10)

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.post(self.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]

    def until(self, ns: str, name: str, phase: str) -> None:
        run_until(self.backend, self.demo, self.clock, lambda: self.backend.view(ns, name)["phase"] == phase)


@pytest.fixture
def served() -> Iterator[Served]:
    backend, demo, clock = new_demo()
    with serving(app_for(backend)) as url:
        yield Served(url, backend, demo, clock)


ORDERS = "/api/v1/namespaces/shop/rollouts/orders"
CHECKOUT = "/api/v1/namespaces/shop/rollouts/checkout"
SEARCH = "/api/v1/namespaces/web/rollouts/search"


def test_list_all_and_by_namespace(served: Served) -> None:
    got = served.get("/api/v1/rollouts")
    assert got.status_code == 200
    assert [(i["namespace"], i["name"]) for i in got.json()["items"]] == [
        ("shop", "checkout"),
        ("shop", "orders"),
        ("web", "search"),
    ]
    shop = served.get("/api/v1/namespaces/shop/rollouts").json()["items"]
    assert [i["name"] for i in shop] == ["checkout", "orders"]
    assert served.get("/api/v1/namespaces/nowhere/rollouts").json() == {"items": []}
    # a list line is the summary of the rollout's view: v2 deployed over a live v1
    line = shop[1]
    assert line["stable"] == "v1" and line["canary"] == "v2" and line["phase"] == "in-progress"


def test_get_a_rollout_and_404(served: Served) -> None:
    got = served.get(ORDERS)
    assert got.status_code == 200
    body = got.json()
    assert body["name"] == "orders" and body["namespace"] == "shop"
    assert {r["revision"] for r in body["revisions"]} == {"v1", "v2"}
    missing = served.get("/api/v1/namespaces/shop/rollouts/nothing")
    assert missing.status_code == 404
    assert "nothing" in missing.json()["detail"]


def test_history_lists_the_revisions_that_reached_live(served: Served) -> None:
    assert [h["revision"] for h in served.get(f"{CHECKOUT}/history").json()["items"]] == ["v1"]
    served.until("shop", "checkout", "live")
    items = served.get(f"{CHECKOUT}/history").json()["items"]
    assert [(h["revision"], h["initiator"]) for h in items] == [("v1", "deploy"), ("v2", "deploy")]
    assert served.get("/api/v1/namespaces/shop/rollouts/nothing/history").status_code == 404


def test_promote_a_paused_rollout(served: Served) -> None:
    served.until("web", "search", "paused")
    before = served.backend.view("web", "search")
    current = [s["index"] for s in before["steps"] if s["state"] == "current"]
    got = served.post(f"{SEARCH}/actions", json={"action": "promote"})
    assert got.status_code == 200, got.text
    body = got.json()
    assert set(body) == {"id", "action", "result", "reason"}
    assert body["action"] == "promote" and body["result"] == "accepted" and len(body["id"]) == 32
    after = served.backend.view("web", "search")
    assert after["phase"] != "paused"
    assert [s["index"] for s in after["steps"] if s["state"] == "current"] > current
    assert after["lastAction"]["id"] == body["id"]


def test_rejected_action_is_409_with_the_engines_reason_and_changes_nothing(served: Served) -> None:
    entry = served.backend._rollouts[("shop", "checkout")]
    state = entry.driver.state
    # the oracle: the engine itself, asked the same thing at the same time
    expected = step(state, Command(action="retry"), entry.now).rejected
    assert expected
    got = served.post(f"{CHECKOUT}/actions", json={"action": "retry"})
    assert got.status_code == 409
    assert got.json() == {"detail": {"reason": expected}}
    assert entry.driver.state == state


def test_rollback_of_a_live_version_starts_a_new_rollout(served: Served) -> None:
    served.until("shop", "checkout", "live")
    live = served.get(CHECKOUT).json()
    got = served.post(f"{CHECKOUT}/actions", json={"action": "rollback", "to": "v1"})
    assert got.status_code == 200, got.text
    view = served.get(CHECKOUT).json()
    assert view["initiator"] == "rollback"
    assert view["desired"] == "v1" and view["stable"] == "v2"
    assert view["rolloutId"] == live["rolloutId"] + 1
    assert view["phase"] in ("in-progress", "verifying")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "jump"}, "action"),
        ({}, "action"),
        ({"action": "promote", "to": "v1"}, "to"),
        ({"action": "rollback", "to": ""}, "to"),
        ({"action": "promote", "force": True}, "force"),
    ],
)
def test_malformed_body_is_422_naming_the_field(served: Served, body: dict[str, object], field: str) -> None:
    got = served.post(f"{ORDERS}/actions", json=body)
    assert got.status_code == 422
    locs = [e["loc"] for e in got.json()["detail"]]
    assert ["body", field] in locs, locs
    assert served.backend.view("shop", "orders")["lastAction"] is None


def test_a_body_that_is_not_json_is_422(served: Served) -> None:
    got = served.post(f"{ORDERS}/actions", content=b"promote", headers={"Content-Type": "application/json"})
    assert got.status_code == 422
    assert served.backend.view("shop", "orders")["lastAction"] is None


@dataclass(frozen=True)
class ReadOnly:
    """Token ``reader`` may get, list and watch; no other token is anyone."""

    def authenticate(self, token: str | None) -> Caller | None:
        return Caller("reader") if token == "reader" else None

    def allowed(self, caller: Caller, verb: str, namespace: str, resource: str, name: str | None) -> bool:
        return verb in ("get", "list", "watch")


def test_unauthenticated_and_forbidden_callers_change_nothing() -> None:
    backend, _demo, _clock = new_demo()
    with serving(app_for(backend, ReadOnly())) as url:
        reader = {"Authorization": "Bearer reader"}
        assert httpx.get(url + ORDERS, timeout=10).status_code == 401
        assert httpx.get(url + ORDERS, headers=reader, timeout=10).status_code == 200
        anonymous = httpx.post(url + f"{ORDERS}/actions", json={"action": "abort"}, timeout=10)
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
        # authorization comes before the body is even read: a malformed body is still a 401 / 403
        assert httpx.post(url + f"{ORDERS}/actions", json={"action": "x"}, timeout=10).status_code == 401
        forbidden = httpx.post(
            url + f"{ORDERS}/actions", json={"action": "abort"}, headers=reader, timeout=10
        )
        assert forbidden.status_code == 403
        assert "reader may not update rollouts" in forbidden.json()["detail"]
        view = backend.view("shop", "orders")
        assert view["lastAction"] is None and view["phase"] == "in-progress"


def test_the_same_idempotency_key_acts_once(served: Served) -> None:
    served.until("web", "search", "paused")
    key = {"Idempotency-Key": "promote-search-1"}
    first = served.post(f"{SEARCH}/actions", json={"action": "promote"}, headers=key)
    assert first.status_code == 200 and first.json()["id"] == "promote-search-1"
    after = served.backend.view("web", "search")
    again = served.post(f"{SEARCH}/actions", json={"action": "promote"}, headers=key)
    assert again.status_code == 200 and again.json() == first.json()
    assert served.backend.view("web", "search") == after  # nothing acted the second time
    bad = served.post(f"{SEARCH}/actions", json={"action": "promote"}, headers={"Idempotency-Key": "a b"})
    assert bad.status_code == 422


def test_an_action_not_consumed_in_time_is_202_with_its_id() -> None:
    from ebbtide.adapters.api.app import create_app

    from .fakes import FakeBackend, Tokens

    backend = FakeBackend(pending=True)
    with serving(create_app(backend, Tokens({"t": "ann"}))) as url:
        got = httpx.post(
            url + f"{ORDERS}/actions",
            json={"action": "abort"},
            headers={"Authorization": "Bearer t", "Idempotency-Key": "k1"},
            timeout=10,
        )
    assert got.status_code == 202
    assert got.json() == {"id": "k1", "action": "abort", "result": "pending", "reason": None}
    assert backend.calls == [("act", ("shop", "orders", "abort", None, "ann", "k1"))]
