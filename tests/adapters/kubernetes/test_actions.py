"""Rollout actions recorded on the ``EbbtideDeployment`` and consumed exactly once by reconcile, against the
stand-in API server over HTTP: a rollback of a live version (a new, linked rollout through all phases), a
rejected action (reason recorded, state unchanged), the same action delivered twice, an action racing a
controller restart, a 409 on the status write."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from ebbtide.adapters.kubernetes import actions
from ebbtide.adapters.kubernetes.adapter import revision_of
from ebbtide.adapters.kubernetes.controller import Controller
from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, VERSION, reconcile
from ebbtide.core.state import RolloutState

from .fixtures import (
    NAME,
    NS,
    get,
    install,
    rollout_spec,
    run,
    set_image,
    standin,
    state_of,
    strategy,
    template,
    workload,
)
from .standin import StandIn

SPECS = [
    strategy("steps", {"setWeight": 20}, {"pause": {}}, {"setWeight": 60}),
    rollout_spec("steps", replicas=5),
]
V1, V2 = revision_of(template("orders:1")), revision_of(template("orders:2"))


@pytest.fixture
def cluster() -> Iterator[StandIn]:
    """CRDs, the namespace, the Services, the spec kinds and the workload (at orders:1); pods become ready
    when the test syncs, between reconciles."""
    with standin(background=False) as api:
        install(api.client, NS, SPECS, workload=workload(template("orders:1")))
        yield api


def v2_live(api: StandIn) -> float:
    """v1 live, then v2 rolled out through its steps (the pause promoted by an action) to live."""
    now = run(api, 0.0, lambda s: s.phase == "live" and s.ready.get(V1) == 5)
    set_image(api, "orders:2")
    now = run(api, now + 5, lambda s: s.phase == "paused")
    actions.request(api.client, NS, NAME, "promote")
    return run(api, now + 5, lambda s: s.phase == "live" and s.stable == V2 and s.ready.get(V2) == 5)


def test_rollback_of_a_live_version_starts_a_linked_rollout_through_all_phases(cluster: StandIn) -> None:
    now = v2_live(cluster)
    before = state_of(cluster)
    req = actions.request(cluster.client, NS, NAME, "rollback")
    now = run(cluster, now + 5, lambda s: s.canary == V1)
    state = state_of(cluster)
    assert state.initiator == "rollback" and state.original_rollout_id == before.rollout_id
    assert state.rollout_id == before.rollout_id + 1 and state.desired == V1
    assert get(cluster)["status"]["lastAction"] | {"at": ""} == {
        "id": req.id,
        "action": "rollback",
        "at": "",
        "result": "applied",
    }
    # through every phase: 20%, the indefinite pause (promoted), 60%, then live
    seen: list[tuple[str, dict[str, int]]] = []

    def record(s: RolloutState) -> bool:
        seen.append((s.phase, dict(s.weights)))
        return s.phase == "paused"

    now = run(cluster, now + 5, record)
    assert state_of(cluster).weights == {V2: 80, V1: 20}
    actions.request(cluster.client, NS, NAME, "promote")
    now = run(cluster, now + 5, lambda s: s.phase == "live" and s.stable == V1)
    history = get(cluster)["status"]["liveHistory"]
    assert [(h["revision"], h["initiator"]) for h in history] == [
        (V1, "deploy"),
        (V2, "deploy"),
        (V1, "rollback"),
    ]
    assert history[-1]["originalRolloutId"] == before.rollout_id


def test_a_rejected_action_records_the_engines_reason_and_changes_nothing(cluster: StandIn) -> None:
    now = run(cluster, 0.0, lambda s: s.phase == "live" and s.ready.get(V1) == 5)
    before = get(cluster)["status"]["engineState"]
    req = actions.request(cluster.client, NS, NAME, "retry")
    reconcile(cluster.client, NS, NAME, now)  # the same instant: nothing else to decide
    status = get(cluster)["status"]
    assert status["lastAction"]["id"] == req.id and status["lastAction"]["result"] == "rejected"
    assert (
        status["lastAction"]["reason"]
        == "retry is only possible after a rollback completed, for the latest revision"
    )
    assert status["engineState"] == before
    assert actions.pending(get(cluster)) == []


def test_the_same_action_delivered_twice_is_applied_once(cluster: StandIn) -> None:
    now = run(cluster, 0.0, lambda s: s.phase == "live" and s.ready.get(V1) == 5)
    set_image(cluster, "orders:2")
    now = run(cluster, now + 5, lambda s: s.phase == "paused")
    req = actions.request(cluster.client, NS, NAME, "promote")
    reconcile(cluster.client, NS, NAME, now)
    step_after = state_of(cluster).step_index
    # a client retrying after a lost answer writes the same request (same id) again
    again = get(cluster)
    again["metadata"]["annotations"][actions.ANNOTATION] = json.dumps([req.as_json()])
    client.CustomObjectsApi(cluster.client).replace_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, NAME, again
    )
    assert actions.pending(get(cluster)) == []  # the status reports it consumed
    for t in (now, now + 1):
        reconcile(cluster.client, NS, NAME, t)
    assert state_of(cluster).step_index == step_after
    assert [r["id"] for r in get(cluster)["status"]["actions"]] == [req.id]


def test_an_action_racing_a_controller_restart_is_applied_exactly_once(cluster: StandIn) -> None:
    """The first controller takes the action but dies before its status write lands (the write fails);
    the restarted controller reconciles from the object and applies it; a further restart after the write
    applies nothing again."""
    now = run(cluster, 0.0, lambda s: s.phase == "live" and s.ready.get(V1) == 5)
    set_image(cluster, "orders:2")
    now = run(cluster, now + 5, lambda s: s.phase == "paused")
    actions.request(cluster.client, NS, NAME, "promote")
    cluster.faults.fail_next(1, 500, frozenset({"update"}), PLURAL)  # the dying controller's status write
    with pytest.raises(client.ApiException):
        reconcile(cluster.client, NS, NAME, now)
    assert "actions" not in get(cluster)["status"] and state_of(cluster).phase == "paused"
    for t in (now, now, now + 5):  # the restarted controller; then another restart at the same instant
        reconcile(cluster.client, NS, NAME, t)
    status = get(cluster)["status"]
    assert [r["result"] for r in status["actions"]] == ["applied"]
    assert state_of(cluster).step_index == 2  # promoted once: past the pause, not past setWeight 60


def test_a_409_storm_on_the_status_write_still_applies_once(cluster: StandIn) -> None:
    now = run(cluster, 0.0, lambda s: s.phase == "live" and s.ready.get(V1) == 5)
    set_image(cluster, "orders:2")
    now = run(cluster, now + 5, lambda s: s.phase == "paused")
    req = actions.request(cluster.client, NS, NAME, "promote")
    cluster.faults.conflict_every(2, plural=PLURAL)
    reconcile(cluster.client, NS, NAME, now)
    cluster.faults.clear()
    reconcile(cluster.client, NS, NAME, now + 1)
    status = get(cluster)["status"]
    assert [(r["id"], r["result"]) for r in status["actions"]] == [(req.id, "applied")]
    assert state_of(cluster).step_index == 2  # promoted once


def test_a_bad_request_is_refused_before_anything_is_written(cluster: StandIn) -> None:
    with pytest.raises(actions.BadAction, match="not one of"):
        actions.request(cluster.client, NS, NAME, "explode")
    with pytest.raises(actions.BadAction, match="'to' is only for rollback"):
        actions.request(cluster.client, NS, NAME, "retry", to="abc")
    with pytest.raises(actions.NoRollout):
        actions.request(cluster.client, NS, "nope", "pause")
    assert actions.ANNOTATION not in (get(cluster)["metadata"].get("annotations") or {})


def test_a_malformed_annotation_entry_is_rejected_with_its_reason(cluster: StandIn) -> None:
    now = run(cluster, 0.0, lambda s: s.phase == "live" and s.ready.get(V1) == 5)
    written = get(cluster)
    written["metadata"].setdefault("annotations", {})[actions.ANNOTATION] = json.dumps(
        [{"id": "x1", "action": "explode"}]
    )
    client.CustomObjectsApi(cluster.client).replace_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, NAME, written
    )
    reconcile(cluster.client, NS, NAME, now)
    last = get(cluster)["status"]["lastAction"]
    assert last["id"] == "x1" and last["result"] == "rejected" and "not one of" in last["reason"]


def test_declaring_the_rollback_target_clears_the_override_and_the_old_template_deploys_again(
    cluster: StandIn,
) -> None:
    now = v2_live(cluster)
    actions.request(cluster.client, NS, NAME, "rollback")
    now = run(cluster, now + 5, lambda s: s.phase == "paused" and s.canary == V1)
    set_image(cluster, "orders:1")  # the spec now says what runs
    reconcile(cluster.client, NS, NAME, now + 5)
    assert get(cluster)["status"]["templateOverride"] == {} and state_of(cluster).canary == V1
    set_image(cluster, "orders:2")  # and v2 again, on purpose: a deploy
    run(cluster, now + 10, lambda s: s.desired == V2)


def test_a_rollback_is_not_undone_by_the_template_and_a_new_template_deploys(cluster: StandIn) -> None:
    """After a rollback of live v2 the spec still declares v2: the controller does not deploy it over the
    rollback (status.templateOverride); a new template (v3) deploys as usual and clears the override."""
    now = v2_live(cluster)
    req = actions.request(cluster.client, NS, NAME, "rollback")
    now = run(cluster, now + 5, lambda s: s.phase == "paused" and s.canary == V1)
    assert get(cluster)["status"]["templateOverride"] == {"revision": V2, "actionId": req.id, "desired": V1}
    for t in (now + 5, now + 10):
        reconcile(cluster.client, NS, NAME, t)
    assert state_of(cluster).canary == V1 and state_of(cluster).desired == V1
    set_image(cluster, "orders:3")
    v3 = revision_of(template("orders:3"))
    run(cluster, now + 15, lambda s: s.canary == v3)
    assert get(cluster)["status"]["templateOverride"] == {}
    assert state_of(cluster).original_rollout_id is not None  # the rollback's rollout was superseded


def test_an_action_racing_a_real_controller_restart_is_applied_exactly_once() -> None:
    """The controller (informers, work queue) that takes a rollback dies at its status write; a new one
    started afresh applies the action from the object: one result, applied, and the rollback completed."""
    from . import test_controller as tc

    with tc.standin_cluster() as api:
        table = tc.Table({tc.V1: 0.01, tc.V2: 0.01})
        recorded, dead = threading.Event(), threading.Event()

        def gate(verb: str, resource: str) -> bool:
            if recorded.is_set() and resource == "ebbtidedeployments/status":
                dead.set()
            return not dead.is_set()

        first = Controller(api.configuration, tc.config("first"), measurements_for=lambda ns, n: table)
        first.client.may_write = gate
        with first:
            tc.wait_for(api, tc.settled(tc.V1))
            tc.set_image(api, "orders:2")
            tc.wait_for(api, tc.settled(tc.V2))
            recorded.set()
            req = actions.request(api.client, tc.NS, tc.NAME, "rollback")
            deadline = time.monotonic() + 10
            while not dead.is_set():
                assert time.monotonic() < deadline, "the first controller never tried to write"
                time.sleep(0.01)
        assert actions.pending(tc.get(api))  # nothing persisted: the action still waits
        with tc.controller(api, table, tc.config("second")):
            end = tc.wait_for(api, lambda s: s.desired == tc.V1 and tc.settled(tc.V1)(s))
        status = tc.get(api)["status"]
        assert [(r["id"], r["result"]) for r in status["actions"]] == [(req.id, "applied")]
        assert end.weights == {tc.V1: 100} and status["liveHistory"][-1]["revision"] == tc.V1
