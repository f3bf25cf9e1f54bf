"""Rollout actions through the HTTP API (the Ocean CD-compatible action route) on the stand-in cluster with a
running controller, over real HTTP: a rollback of a live version, a rejected action, the same action
delivered twice, an action recorded while the controller restarts, callers without a token or permission,
a malformed body, an oversized body."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from ebbtide.adapters.kubernetes import actions
from ebbtide.adapters.kubernetes.controller import Controller

from ..kubernetes import test_controller as tc
from ..kubernetes.standin import Behaviour
from .kubehelp import VIEWER, Cluster, cluster


def rollout_id(c: Cluster) -> str:
    return f"{tc.NS}.{tc.NAME}.{c.backend.view(tc.NS, tc.NAME)['rolloutId']}"


def annotation(c: Cluster) -> Any:
    raw = (tc.get(c.api)["metadata"].get("annotations") or {}).get(actions.ANNOTATION)
    return None if raw is None else json.loads(raw)


def synced(c: Cluster, rollout: int) -> None:
    """The API's cache shows rollout ``rollout`` (it follows the cluster by a watch)."""
    deadline = time.monotonic() + 5
    while c.backend.view(tc.NS, tc.NAME).get("rolloutId") != rollout:
        assert time.monotonic() < deadline, "the API's cache did not follow"
        time.sleep(0.02)


def v2_live(c: Cluster) -> None:
    tc.wait_for(c.api, tc.settled(tc.V1))
    tc.set_image(c.api, "orders:2")
    end = tc.wait_for(c.api, tc.settled(tc.V2))
    synced(c, end.rollout_id)


def hold_v1_not_ready(c: Cluster) -> None:
    """New orders:1 pods stay not ready, so a rollout back to v1 cannot finish before the test has seen it in
    progress (without the hold a fast machine can finish it between two polls: the test sees only the end)."""
    c.api.workloads.by_image["orders:1"] = Behaviour(ready_per_sync=0)


def rolling_back_to_v1(c: Cluster) -> list[Any]:
    """The states of the rollout back to v1 polled while it is held in progress, then (pods released) until it
    has settled; the last one is the settled end."""
    seen: list[Any] = []
    tc.wait_for(c.api, lambda s: s.canary == tc.V1, each=seen.append)
    del c.api.workloads.by_image["orders:1"]
    tc.wait_for(c.api, lambda s: s.desired == tc.V1 and tc.settled(tc.V1)(s), each=seen.append)
    return seen


def without_rollback_window(c: Cluster) -> None:
    """The spec's rollbackWindow fast-tracks a rollback to a recent revision; without it (Ocean CD's rule) a
    rollback of a live version goes through all phases. Changed through the API's spec route."""
    path = f"/api/v1/namespaces/{tc.NS}/specs/RolloutSpec/orders"
    with c.http() as http:
        doc = http.get(path).json()
        del doc["spec"]["rollbackWindow"]
        assert http.put(path, json=doc).status_code == 200


def test_a_rollback_of_a_live_version_through_the_api_is_a_new_linked_rollout_through_all_phases() -> None:
    with cluster() as c:
        without_rollback_window(c)
        with c.controller():
            rollback_live_v2(c)


def rollback_live_v2(c: Cluster) -> None:
    v2_live(c)
    before = tc.state_of(c.api)
    assert before is not None
    asked = len(c.table.asked)
    hold_v1_not_ready(c)
    with c.http() as http:
        got = http.put(f"/ocean/cd/rollout/{rollout_id(c)}", json={"action": "rollback"})
    assert got.status_code == 200, got.text
    item = got.json()["response"]["items"][0]
    assert item["action"] == "rollback" and item["result"] == "accepted"
    seen = rolling_back_to_v1(c)
    end = seen[-1]
    rolling = [s for s in seen if s.canary == tc.V1]
    assert rolling and all(s.initiator == "rollback" for s in rolling)
    assert {s.original_rollout_id for s in rolling} == {before.rollout_id}
    assert end.rollout_id == before.rollout_id + 1
    assert len(c.table.asked) > asked  # through the phases: the verification ran again
    status = tc.get(c.api)["status"]
    assert [(r["id"], r["result"], r.get("by")) for r in status["actions"]] == [
        (item["id"], "applied", "alice")
    ]
    last = status["liveHistory"][-1]
    assert (last["revision"], last["initiator"], last["originalRolloutId"]) == (
        tc.V1,
        "rollback",
        before.rollout_id,
    )


def test_an_action_the_engine_rejects_is_409_with_its_reason_and_nothing_is_recorded() -> None:
    with cluster() as c, c.controller():
        end = tc.wait_for(c.api, tc.settled(tc.V1))
        synced(c, end.rollout_id)
        before = tc.get(c.api)["status"]["engineState"]
        with c.http() as http:
            got = http.put(f"/ocean/cd/rollout/{rollout_id(c)}", json={"action": "retry"})
        assert got.status_code == 409
        reason = "retry is only possible after a rollback completed, for the latest revision"
        assert got.json() == {"detail": {"reason": reason}}
        assert tc.get(c.api)["status"]["engineState"] == before and annotation(c) is None


def test_an_action_recorded_while_the_controller_restarts_is_applied_once_and_a_retried_key_acts_once() -> (
    None
):
    """No controller runs when the rollback is asked: 202 with the id (it waits on the object); the same
    Idempotency-Key again records nothing more; a new controller applies it once; the key asked again
    afterwards answers the applied result, and nothing happens twice."""
    with cluster(act_timeout=0.3) as c:
        with c.controller("first"):
            v2_live(c)
        path = f"/ocean/cd/rollout/{rollout_id(c)}"
        with c.http() as http:
            for _ in range(2):
                got = http.put(path, json={"action": "rollback"}, headers={"Idempotency-Key": "k-1"})
                assert got.status_code == 202, got.text
                assert got.json()["response"]["items"][0] | {"reason": None} == {
                    "id": "k-1",
                    "action": "rollback",
                    "result": "pending",
                    "reason": None,
                }
            assert [a["id"] for a in annotation(c)] == ["k-1"]
            with c.controller("second"):
                end = tc.wait_for(c.api, lambda s: s.desired == tc.V1 and tc.settled(tc.V1)(s))
                synced(c, end.rollout_id)
                again = http.put(
                    f"/ocean/cd/rollout/{rollout_id(c)}",
                    json={"action": "rollback"},
                    headers={"Idempotency-Key": "k-1"},
                )
        assert again.status_code == 200  # the id is consumed: its result, nothing done again
        assert again.json()["response"]["items"][0]["id"] == "k-1"
        status = tc.get(c.api)["status"]
        assert [(r["id"], r["result"]) for r in status["actions"]] == [("k-1", "applied")]
        assert tc.get(c.api)["status"]["liveHistory"][-1]["revision"] == tc.V1
        assert tc.state_of(c.api) == end


def test_no_token_is_401_and_a_caller_without_permission_is_403_and_nothing_changes() -> None:
    with cluster() as c, c.controller():
        end = tc.wait_for(c.api, tc.settled(tc.V1))
        synced(c, end.rollout_id)
        path = f"/ocean/cd/rollout/{rollout_id(c)}"
        with c.http(None) as anonymous, c.http(VIEWER) as viewer, c.http("t-unknown") as stranger:
            assert anonymous.put(path, json={"action": "pause"}).status_code == 401
            assert stranger.put(path, json={"action": "pause"}).status_code == 401
            denied = viewer.put(path, json={"action": "pause"})
            assert denied.status_code == 403 and "bob may not update rollouts" in denied.json()["detail"]
            assert viewer.get(path).status_code == 200  # reading is allowed
        assert annotation(c) is None and tc.state_of(c.api) == end
        asked = [spec for kind, spec in c.api.reviews.calls if kind == "SubjectAccessReview"]
        assert {"verb": "update", "resource": "ebbtidedeployments", "namespace": tc.NS, "name": tc.NAME} in [
            {k: s["resourceAttributes"].get(k) for k in ("verb", "resource", "namespace", "name")}
            for s in asked
        ]


def test_a_malformed_body_is_422_naming_the_field() -> None:
    with cluster() as c:
        path = "/ocean/cd/rollout/shop.orders.0"
        with c.http() as http:
            unknown = http.put(path, json={"action": "explode"})
            missing = http.put(path, json={"to": "abc"})
            not_json = http.put(path, content=b"{nope", headers={"Content-Type": "application/json"})
        assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "action"]
        assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "action"]
        assert missing.json()["detail"][0]["type"] == "missing"
        assert not_json.status_code == 422
        assert annotation(c) is None


def test_an_oversized_body_is_413_and_nothing_reaches_the_cluster() -> None:
    with cluster() as c:
        writes = len(c.api.server.requests)
        big = json.dumps({"action": "pause", "to": "x" * (1 << 20)}).encode()
        with c.http() as http:
            got = http.put("/ocean/cd/rollout/shop.orders.0", content=big)
            streamed = http.put(
                "/ocean/cd/rollout/shop.orders.0", content=iter([big[:600_000], big[600_000:]])
            )
        assert got.status_code == 413 and streamed.status_code == 413
        assert "larger than 1048576 bytes" in got.json()["detail"]
        later = [r for r in c.api.server.requests[writes:] if r[0] != "GET"]
        assert [r[1] for r in later if "reviews" not in r[1]] == []  # only the token review
        assert annotation(c) is None


def test_an_action_racing_a_controller_that_dies_at_its_write_is_applied_once_by_the_next() -> None:
    """The controller that takes the API's rollback dies at its status write (nothing persisted): the API
    answers 202 with the id when no result comes in time; a new controller applies it, once."""
    with cluster(act_timeout=1.0) as c:
        recorded, dead = threading.Event(), threading.Event()

        def gate(verb: str, resource: str) -> bool:
            if recorded.is_set() and resource == "ebbtidedeployments/status":
                dead.set()
            return not dead.is_set()

        first = Controller(c.api.configuration, tc.config("first"), measurements_for=lambda ns, n: c.table)
        first.client.may_write = gate
        with first:
            v2_live(c)
            recorded.set()
            with c.http() as http:
                got = http.put(f"/ocean/cd/rollout/{rollout_id(c)}", json={"action": "rollback"})
            assert dead.is_set(), "the first controller never tried to write"
        assert got.status_code == 202 and got.json()["response"]["items"][0]["result"] == "pending"
        action_id = got.json()["response"]["items"][0]["id"]
        assert [a["id"] for a in actions.pending(tc.get(c.api))] == [action_id]
        with c.controller("second"):
            tc.wait_for(c.api, lambda s: s.desired == tc.V1 and tc.settled(tc.V1)(s))
        status = tc.get(c.api)["status"]
        assert [(r["id"], r["result"]) for r in status["actions"]] == [(action_id, "applied")]
