"""The reconciler against the stand-in API server: reconcile in a loop, the stand-in's ReplicaSet controller
making pods ready between calls (synchronously: its thread is stopped, so every run is the same)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from ebbtide.adapters.kubernetes.adapter import HASH_LABEL, KubernetesAdapter, revision_of
from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, VERSION, ReconcileConflict, reconcile
from ebbtide.adapters.kubernetes.routers.base import CannotExpress, Obj, Result, Traffic
from ebbtide.adapters.kubernetes.routers.services import replica_ratio
from ebbtide.core.events import ReplicasObserved
from ebbtide.core.state import RolloutState

from . import fixtures
from .fixtures import (
    NAME,
    NS,
    PLURALS,
    Table,
    errors_template,
    get,
    install,
    replicas,
    rollout_spec,
    selectors,
    set_image,
    standin,
    state_of,
    strategy,
    template,
    workload,
)
from .standin import WRITES, Behaviour, StandIn
from .standin.faults import _Rule

SPECS = [
    errors_template("10s", 2),
    strategy(
        "steps",
        {"setWeight": 20},
        {"verification": {"templateNames": ["errors"]}},
        {"setWeight": 60},
        {"pause": {"duration": "30s"}},
    ),
    rollout_spec("steps", replicas=5),
]
V1, V2 = revision_of(template("orders:1")), revision_of(template("orders:2"))


@contextlib.contextmanager
def standin_cluster() -> Iterator[StandIn]:
    """The CRDs, the namespace, the two Services, the specs and the workload at ``orders:1``."""
    with standin(background=False) as api:  # the tests call sync() themselves, between reconciles
        install(api.client, NS, SPECS, workload=workload(template("orders:1")))
        yield api


@pytest.fixture
def cluster() -> Iterator[StandIn]:
    with standin_cluster() as api:
        yield api


#: the controller dying or giving up a round: the next reconcile starts from the persisted status
run = functools.partial(fixtures.run, tolerant=True, limit=200)


def live(rev: str) -> Callable[[RolloutState], bool]:
    return lambda s: s.phase == "live" and s.stable == rev and s.ready.get(rev) == 5


def test_first_deploy_goes_live_and_writes_the_summary(cluster: StandIn) -> None:
    run(cluster, 0.0, live(V1))
    status = get(cluster)["status"]
    assert status["phase"] == "live" and status["stableRevision"] == V1
    assert status["summary"]["revisions"] == [{"revision": V1, "desired": 5, "ready": 5}]
    assert replicas(cluster) == {V1: 5}
    rs = client.AppsV1Api(cluster.client).read_namespaced_replica_set(f"{NAME}-{V1}", NS)
    assert rs.metadata.owner_references[0].name == NAME and rs.metadata.owner_references[0].controller
    assert rs.spec.template.metadata.labels == {"app": "orders", HASH_LABEL: V1}


def test_a_healthy_canary_rolls_out_to_live(cluster: StandIn) -> None:
    table = Table({V1: 0.01, V2: 0.01})
    now = run(cluster, 0.0, live(V1), table)
    set_image(cluster, "orders:2")
    seen: list[tuple[dict[str, int], dict[str, str | None]]] = []
    run(
        cluster,
        now + 5,
        live(V2),
        table,
        each=lambda _: seen.append((state_of(cluster).weights, selectors(cluster))),
    )
    status = get(cluster)["status"]
    assert (status["phase"], status["stableRevision"], status["weights"]) == ("live", V2, f"{V2}=100")
    assert replicas(cluster) == {V1: 0, V2: 5}
    assert selectors(cluster) == {"orders-stable": V2, "orders-canary": V2}
    # while both serve, the stable Service stays on V1 and the canary Service is on V2, also once the canary
    # carries most of the traffic (pod ratios: no router here)
    split = [(w[V2], sel) for w, sel in seen if 0 < w.get(V2, 0) < 100]
    assert any(w < 50 for w, _ in split) and any(w > 50 for w, _ in split)
    assert all(sel == {"orders-stable": V1, "orders-canary": V2} for _, sel in split)
    assert table.asked and all(s.revision == V2 for s in table.asked)
    reasons = [e.reason for e in client.CoreV1Api(cluster.client).list_namespaced_event(NS).items]
    assert "rollout-started" in reasons and "rollout-finished" in reasons
    assert reasons.count("rollout-started") == 1  # sent once, after the state that caused it was persisted


def test_a_failed_measurement_rolls_back_at_once(cluster: StandIn) -> None:
    table = Table({V1: 0.01, V2: 0.5})
    now = run(cluster, 0.0, live(V1), table)
    set_image(cluster, "orders:2")
    run(cluster, now + 5, lambda s: s.rollback is not None, table)
    state = state_of(cluster)
    assert state.weights == {V1: 100} and state.stable == V1
    assert selectors(cluster) == {"orders-stable": V1, "orders-canary": V1}
    assert get(cluster)["status"]["summary"]["rollback"]["target"] == V1
    run(cluster, now + 600, lambda s: s.phase == "live" and s.degraded and s.replicas.get(V2, 0) == 0, table)
    status = get(cluster)["status"]
    healthy = next(c for c in status["conditions"] if c["type"] == "Healthy")
    assert healthy["status"] == "False" and healthy["reason"] == "Degraded"
    events = client.CoreV1Api(cluster.client).list_namespaced_event(NS).items
    failed = [e for e in events if e.reason == "rollout-failed"]
    assert failed and failed[0].type == "Warning" and failed[0].involved_object.name == NAME


def test_a_manual_rollback_sets_the_template_back(cluster: StandIn) -> None:
    table = Table({V1: 0.01, V2: 0.01})
    now = run(cluster, 0.0, live(V1), table)
    set_image(cluster, "orders:2")
    now = run(cluster, now + 5, lambda s: s.weights.get(V2, 0) >= 20, table)
    set_image(cluster, "orders:1")
    run(cluster, now + 5, lambda s: live(V1)(s) and s.replicas.get(V2, 0) == 0, table)
    assert state_of(cluster).weights == {V1: 100}
    assert selectors(cluster) == {"orders-stable": V1, "orders-canary": V1}


def _outcome(api: StandIn, table: Table) -> tuple[object, ...]:
    """What a rollout leaves behind, without times: the state's revisions and the cluster's objects."""
    s = state_of(api)
    history = tuple((r.revision, r.reached_live) for r in s.history)
    return (
        s.phase,
        s.degraded,
        s.stable,
        s.desired,
        s.weights,
        s.replicas,
        history,
        replicas(api),
        selectors(api),
    )


@pytest.mark.parametrize("values", [{V1: 0.01, V2: 0.01}, {V1: 0.01, V2: 0.5}], ids=["healthy", "rollback"])
def test_a_409_on_every_other_write_converges_to_the_same_end(values: dict[str, float]) -> None:
    ends = []
    for conflicts in (False, True):
        with standin_cluster() as api:
            table = Table(values)
            now = run(api, 0.0, live(V1), table)
            if conflicts:
                api.faults.conflict_every(2)
            set_image(api, "orders:2")
            run(api, now + 5, lambda s: s.phase == "live" and s.desired == V2 and not s.scale_downs, table)
            if conflicts:
                assert len([c for c, status in api.faults.injected if status == 409]) > 5
            ends.append(_outcome(api, table))
    assert ends[0] == ends[1]


def test_killed_at_every_write_of_a_rollback_it_still_completes() -> None:
    """The k-th write after the bad revision is deployed fails (500: the controller dies there); the next
    reconcile starts afresh from the persisted status. Once a rollback is persisted, the failed revision never
    gets traffic again, and every kill point ends live on the old revision with the failed one scaled away."""
    k = 1
    while True:
        with standin_cluster() as api:
            table = Table({V1: 0.01, V2: 0.5})
            now = run(api, 0.0, live(V1), table)
            set_image(api, "orders:2")
            api.faults._rules.append(_Rule(k, 500, WRITES, None, 1))
            rolled_back = False

            def check(_: float) -> None:
                nonlocal rolled_back
                state = state_of(api)
                rolled_back = rolled_back or state.rollback is not None or state.degraded
                if rolled_back:
                    assert state.weights.get(V2, 0) == 0
                    assert V2 not in selectors(api).values()

            run(
                api,
                now + 5,
                lambda s: s.degraded and s.phase == "live" and not s.scale_downs,
                table,
                each=check,
            )
            assert replicas(api) == {V1: 5, V2: 0} and state_of(api).weights == {V1: 100}
            if not api.faults.injected:  # k is past the last write: every kill point was tried
                assert k > 5
                return
            k += 1


def _condition(api: StandIn, kind: str) -> dict[str, Any] | None:
    return next((c for c in get(api)["status"].get("conditions") or [] if c["type"] == kind), None)


def test_an_invalid_spec_is_a_condition_naming_the_field_and_nothing_is_scaled(cluster: StandIn) -> None:
    objects = client.CustomObjectsApi(cluster.client)
    objects.patch_namespaced_custom_object(
        GROUP, VERSION, NS, "strategies", "steps", {"spec": {"canary": {"steps": [{"setWeight": 150}]}}}
    )
    out = reconcile(cluster.client, NS, NAME, 0.0)
    assert out.state is None and out.wake_at is None
    cond = _condition(cluster, "InvalidSpec")
    assert cond is not None and cond["status"] == "True"
    assert "spec.canary.steps[0].setWeight" in cond["message"] and "100" in cond["message"]
    assert replicas(cluster) == {} and "engineState" not in get(cluster)["status"]


def test_an_invalid_workload_is_a_condition(cluster: StandIn) -> None:
    client.CustomObjectsApi(cluster.client).patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, NAME, {"spec": {"selector": {"matchLabels": {"app": "other"}}}}
    )
    reconcile(cluster.client, NS, NAME, 0.0)
    cond = _condition(cluster, "InvalidSpec")
    assert cond is not None and "selector.matchLabels" in cond["message"]
    assert replicas(cluster) == {}


def test_a_status_edited_into_garbage_is_a_condition_and_no_action(cluster: StandIn) -> None:
    now = run(cluster, 0.0, live(V1))
    obj = get(cluster)
    obj["status"]["engineState"] = {"phase": "exploded", "replicas": "many"}
    client.CustomObjectsApi(cluster.client).replace_namespaced_custom_object_status(
        GROUP, VERSION, NS, PLURAL, NAME, obj
    )
    set_image(cluster, "orders:2")
    out = reconcile(cluster.client, NS, NAME, now + 5)
    assert out.state is None
    cond = _condition(cluster, "InvalidState")
    assert cond is not None and "engineState" in cond["message"] and "phase" in cond["message"]
    assert replicas(cluster) == {V1: 5}  # no canary was created


def test_traffic_a_router_cannot_express_holds_the_step(cluster: StandIn) -> None:
    table = Table({V1: 0.01, V2: 0.01})
    now = run(cluster, 0.0, live(V1), table)
    set_image(cluster, "orders:2")
    refuse = True

    def router(stable: Obj, canary: Obj | None, traffic: Traffic, labels: Any) -> Result:
        if refuse and traffic.canary is not None:
            return CannotExpress("this router splits nothing")
        return replica_ratio(stable, canary, traffic, labels)

    for _ in range(10):
        reconcile(cluster.client, NS, NAME, now, measurements=table, router=router)
        cluster.workloads.sync()
        now += 5
    state = state_of(cluster)
    assert state.weights == {V1: 100} and state.step_index == 0  # the setWeight 20 step waits
    cond = _condition(cluster, "TrafficNotApplied")
    assert cond is not None and cond["message"] == "this router splits nothing"
    assert selectors(cluster) == {"orders-stable": V1, "orders-canary": V1}
    refuse = False
    run(cluster, now, live(V2), table, router=router)
    assert _condition(cluster, "TrafficNotApplied") is None


def test_crash_looping_pods_are_failed_not_ready(cluster: StandIn) -> None:
    cluster.workloads.by_image["orders:2"] = Behaviour.crash_loop()
    now = run(cluster, 0.0, live(V1))
    set_image(cluster, "orders:2")
    reconcile(cluster.client, NS, NAME, now + 5)
    cluster.workloads.sync()
    adapter = KubernetesAdapter(cluster.client, get(cluster))
    seen = {e.revision: e for e in adapter.observe(now + 10) if isinstance(e, ReplicasObserved)}
    assert (seen[V2].ready, seen[V2].failed) == (0, seen[V2].desired) and seen[V2].desired > 0
    # past the progress deadline (600s) the engine gives up on the canary
    run(cluster, now + 10, lambda s: s.degraded and s.weights == {V1: 100}, step=60.0)


def test_a_strategy_changed_while_live_drives_the_next_rollout(cluster: StandIn) -> None:
    table = Table({V1: 0.01, V2: 0.01})
    now = run(cluster, 0.0, live(V1), table)
    client.CustomObjectsApi(cluster.client).patch_namespaced_custom_object(
        GROUP, VERSION, NS, "strategies", "steps", {"spec": {"canary": {"steps": [{"setWeight": 40}]}}}
    )
    now = run(cluster, now + 5, lambda s: [st.weight for st in s.plan.steps][:1] == [40], table)
    rv = get(cluster)["metadata"]["resourceVersion"]
    reconcile(cluster.client, NS, NAME, now + 5, measurements=table)
    assert get(cluster)["metadata"]["resourceVersion"] == rv  # adopted once: a quiet reconcile writes nothing
    set_image(cluster, "orders:2")
    run(cluster, now + 10, live(V2), table)
    assert table.asked == []  # the new strategy has no verification step


def test_a_new_rollout_rollback_climbs_back_through_the_steps(cluster: StandIn) -> None:
    """failurePolicy rollback mode newRollout, end to end: the failed revision never gains traffic, the last
    successful one climbs back through the strategy in a rollout of its own and ends live."""
    client.CustomObjectsApi(cluster.client).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        PLURALS["RolloutSpec"],
        "orders",
        {"spec": {"failurePolicy": {"action": "rollback", "rollback": {"mode": "newRollout"}}}},
    )
    table = Table({V1: 0.01, V2: 0.5})
    now = run(cluster, 0.0, live(V1), table)
    set_image(cluster, "orders:2")
    now = run(cluster, now + 5, lambda s: s.initiator == "failure-policy", table)
    state = state_of(cluster)
    assert state.canary == V1 and state.original_rollout_id is not None
    most = state.weights.get(V2, 0)
    assert most <= 20

    def v2_never_gains(_: float) -> None:
        nonlocal most
        share = state_of(cluster).weights.get(V2, 0)
        assert share <= most, f"the failed revision gained traffic: {most} -> {share}"
        most = share

    run(cluster, now + 5, lambda s: live(V1)(s) and s.replicas.get(V2, 0) == 0, table, each=v2_never_gains)
    assert state_of(cluster).weights == {V1: 100}
    assert selectors(cluster) == {"orders-stable": V1, "orders-canary": V1}
    reasons = [e.reason for e in client.CoreV1Api(cluster.client).list_namespaced_event(NS).items]
    assert "rollout-failed" in reasons and "rollout-rolled-back" in reasons


def test_the_workloads_progress_deadline_wins_over_the_rollout_specs(cluster: StandIn) -> None:
    """progressDeadlineSeconds on the workload means what it means on a Deployment (or an Argo Rollout):
    with 60 s, crash-looping canary pods are given up on after a minute, not after the RolloutSpec's 600 s."""
    client.CustomObjectsApi(cluster.client).patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, NAME, {"spec": {"progressDeadlineSeconds": 60}}
    )
    cluster.workloads.by_image["orders:2"] = Behaviour.crash_loop()
    now = run(cluster, 0.0, live(V1))
    set_image(cluster, "orders:2")
    start = now + 5
    end = run(cluster, start, lambda s: s.degraded and s.weights == {V1: 100}, step=10.0)
    assert 60 <= end - start <= 90, end - start


# -- status writes only when they say something new (issue 9: writes per transition) ------------------


def _decided(state: RolloutState) -> tuple[object, ...]:
    """Everything of a state but its ready counts and the time of its last decision."""
    return tuple(getattr(state, f) for f in state.__slots__ if f not in ("ready", "updated_at"))


def _transition(state: RolloutState) -> tuple[object, ...]:
    """What a person follows in a rollout, without times (a kill shifts them)."""
    rollback = state.rollback and (state.rollback.target, state.rollback.mode)
    history = tuple((r.revision, r.status) for r in state.history)
    return (
        state.phase,
        state.step_index,
        state.weights,
        state.stable,
        state.canary,
        state.replicas,
        rollback,
        history,
        state.degraded,
    )


Transitions = list[tuple[object, ...]]


def _stepwise_rollout(manual_rollback: bool, kill_after_skip: bool) -> tuple[Transitions, int]:
    """V1 deployed, then V2 rolled out (with ``manual_rollback``, the template set back to V1 at half the
    traffic), pods becoming ready one per sync; each reconcile's decision is checked against what it
    persisted. With ``kill_after_skip`` the controller dies (500) at its first write after each reconcile
    that skipped its status write. Returns the persisted transitions (repeats folded) and how many skipped
    writes held back ready counts."""
    with standin_cluster() as api:
        api.workloads.default = Behaviour(ready_per_sync=1)
        table = Table({V1: 0.01, V2: 0.01})
        now, end, skipped = 0.0, V1, 0
        seen: Transitions = []
        for _ in range(200):
            now += 5
            try:
                outcome = reconcile(api.client, NS, NAME, now, measurements=table)
            except (ApiException, ReconcileConflict):
                outcome = None
            persisted = state_of(api)
            if outcome is not None and not outcome.written:
                assert outcome.state is not None
                skipped += outcome.state.ready != persisted.ready
                # all the engine decided, but for ready counts, is what the status holds
                assert _decided(outcome.state) == _decided(persisted)
                if kill_after_skip:
                    api.faults.fail_next(1, 500, WRITES)
            if not seen or seen[-1] != _transition(persisted):
                seen.append(_transition(persisted))
            settled = persisted.phase == "live" and persisted.ready == persisted.replicas
            if settled and persisted.stable == end and not persisted.scale_downs:
                if end == V1 and persisted.desired == V1 and not persisted.history[1:]:
                    set_image(api, "orders:2")  # the first deploy is done: roll out V2
                    end = V2
                else:
                    return seen, skipped
            if manual_rollback and end == V2 and persisted.weights.get(V2, 0) >= 50:
                set_image(api, "orders:1")
                end = V1
            api.workloads.sync()
        raise AssertionError(f"not reached: {state_of(api)}")


@pytest.mark.parametrize("manual_rollback", [False, True], ids=["healthy", "manual-rollback"])
def test_a_controller_killed_after_a_skipped_status_write_loses_no_transition(manual_rollback: bool) -> None:
    """Ready counts climbing while pods start are not written (the next reconcile observes them again), so
    a controller killed right after such a skipped write goes through the same persisted transitions as
    one that is never killed; every skipped reconcile had decided nothing else."""
    quiet, skipped = _stepwise_rollout(manual_rollback, kill_after_skip=False)
    killed, _ = _stepwise_rollout(manual_rollback, kill_after_skip=True)
    assert skipped >= 3  # pods started one per reconcile: ready counts were held back
    assert killed == quiet
    assert quiet[-1][0] == "live" and quiet[-1][3] == (V1 if manual_rollback else V2)
