"""The Ocean CD-compatible routes over real HTTP on a backend from tables: ids, the envelope, actions,
rollout specs in Ocean CD's body shape, and the external verification answer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from ebbtide.adapters.api.app import create_app
from ebbtide.adapters.api.server import ApiServer
from ebbtide.core.events import Measurement
from ebbtide.core.state import RolloutState

from .fakes import FakeBackend, Tokens


@dataclass
class Store:
    answered: list[tuple[str, str, list[Measurement]]] = field(default_factory=list)

    def state(self, namespace: str, name: str) -> RolloutState | None:
        return None  # no such rollout: handle() answers 404

    def answer(self, namespace: str, name: str, events: list[Measurement]) -> None:
        self.answered.append((namespace, name, events))


@pytest.fixture
def ocean() -> Iterator[tuple[httpx.Client, FakeBackend]]:
    backend = FakeBackend(rollouts={("shop", "orders"): {"name": "orders", "rolloutId": 4}})
    backend.external = Store  # type: ignore[method-assign]
    srv = ApiServer(create_app(backend, Tokens({"t": "alice"})))
    with srv, httpx.Client(base_url=srv.url, headers={"Authorization": "Bearer t"}, timeout=10) as http:
        yield http, backend


def test_a_rollout_is_found_by_its_ocean_id_in_ocean_cds_envelope(
    ocean: tuple[httpx.Client, FakeBackend],
) -> None:
    http, _ = ocean
    got = http.get("/ocean/cd/rollout/shop.orders.4", headers={"X-Request-Id": "r-9"})
    assert got.status_code == 200
    assert got.json() == {
        "request": {"id": "r-9", "url": "/ocean/cd/rollout/shop.orders.4", "method": "GET"},
        "response": {
            "status": {"code": 200, "message": "OK"},
            "kind": "oceanCD:rollout",
            "items": [{"id": "shop.orders.4", "name": "orders", "rolloutId": 4}],
            "count": 1,
        },
    }
    assert http.get("/ocean/cd/rollout/shop.orders.3").status_code == 404  # not the current rollout
    assert http.get("/ocean/cd/rollout/orders").status_code == 404  # not an ebbtide rollout id
    assert http.get("/ocean/cd/rollout/shop.nope.1").status_code == 404


def test_an_action_goes_to_the_backend_with_the_caller_and_idempotency_key(
    ocean: tuple[httpx.Client, FakeBackend],
) -> None:
    http, backend = ocean
    got = http.put(
        "/ocean/cd/rollout/shop.orders.4",
        json={"action": "rollback", "to": "abc"},
        headers={"Idempotency-Key": "k"},
    )
    assert got.status_code == 200 and got.json()["response"]["items"][0]["id"] == "k"
    assert backend.calls == [("act", ("shop", "orders", "rollback", "abc", "alice", "k"))]
    stale = http.put("/ocean/cd/rollout/shop.orders.2", json={"action": "promote"})
    assert stale.status_code == 409 and "not the current one" in stale.json()["detail"]["reason"]
    bad_key = http.put(
        "/ocean/cd/rollout/shop.orders.4", json={"action": "pause"}, headers={"Idempotency-Key": "a b"}
    )
    assert bad_key.status_code == 422
    extra = http.put("/ocean/cd/rollout/shop.orders.4", json={"action": "pause", "force": True})
    assert extra.status_code == 422 and extra.json()["detail"][0]["loc"] == ["body", "force"]
    assert len(backend.calls) == 1


def test_a_rollout_spec_in_ocean_cds_shape_is_a_rollout_spec_document(
    ocean: tuple[httpx.Client, FakeBackend],
) -> None:
    http, backend = ocean
    spec = {
        "name": "orders",
        "spotDeployment": {"name": "orders", "namespace": "shop", "clusterId": "c-1"},
        "strategy": {"name": "steps"},
        "failurePolicy": {"action": "rollback", "rollback": {"mode": "newRollout"}},
    }
    created = http.post("/ocean/cd/rolloutSpec", json={"rolloutSpec": spec})
    assert created.status_code == 200, created.text
    doc = backend.specs[("shop", "RolloutSpec", "orders")]
    assert doc == {
        "apiVersion": "ebbtide.dev/v1alpha1",
        "kind": "RolloutSpec",
        "metadata": {"name": "orders"},
        "spec": {k: v for k, v in spec.items() if k != "name"},
    }
    got = http.get("/ocean/cd/rolloutSpec/orders", params={"namespace": "shop"}).json()["response"]["items"]
    assert got == [{**spec, "createdAt": None}]
    nameless = http.post("/ocean/cd/rolloutSpec", json={"rolloutSpec": {"strategy": {"name": "s"}}})
    assert nameless.status_code == 422 and nameless.json()["detail"][0]["loc"] == [
        "body",
        "rolloutSpec",
        "name",
    ]
    assert http.delete("/ocean/cd/rolloutSpec/orders", params={"namespace": "shop"}).status_code == 200
    assert http.get("/ocean/cd/rolloutSpec/orders", params={"namespace": "shop"}).status_code == 404


def test_the_external_verification_answer_is_validated_and_handled(
    ocean: tuple[httpx.Client, FakeBackend],
) -> None:
    http, _ = ocean
    bad = http.put("/ocean/cd/rollout/shop.orders.4/externalVerification", json={"status": "maybe"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "status"]
    missing = http.put("/ocean/cd/rollout/shop.orders.4/externalVerification", json={"status": "passed"})
    assert missing.status_code == 404 and missing.json() == {"detail": "no rollout shop/orders"}
    native = http.put(
        "/api/v1/namespaces/shop/rollouts/orders/externalVerification", json={"status": "failed"}
    )
    assert native.status_code == 404
