"""The controller's parts on their own: the work queue (dedup, one worker per key, timers, backoff), the
rollback labels of its metrics, the write gate of its API client, and its informers' backoff."""

from __future__ import annotations

import threading
import time
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes import client

from ebbtide.adapters.kubernetes.apiclient import ControllerApiClient, NotLeader, resource_of
from ebbtide.adapters.kubernetes.informer import Informer
from ebbtide.adapters.kubernetes.metrics import rollback_reason, rollbacks_in
from ebbtide.adapters.kubernetes.workqueue import BULK, NORMAL, URGENT, WorkQueue
from ebbtide.core.effects import Notify

from .conftest import eventually
from .standin import StandIn


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_added_twice_is_processed_once() -> None:
    q = WorkQueue()
    q.add("a")
    q.add("a")
    q.add("b")
    assert [q.get(0), q.get(0), q.get(0)] == ["a", "b", None]


def test_a_key_added_while_processing_comes_back_after_done_never_to_two_workers() -> None:
    q = WorkQueue()
    q.add("a")
    assert q.get(0) == "a"
    q.add("a")
    assert q.get(0) is None  # not handed to a second worker while the first holds it
    q.done("a")
    assert q.get(0) == "a"
    q.done("a")
    assert q.get(0) is None


@given(
    st.lists(
        st.tuples(st.sampled_from("abc"), st.sampled_from(["add", "urgent", "bulk", "get", "done"])),
        max_size=60,
    )
)
def test_no_key_is_ever_held_twice_and_no_add_is_lost(ops: list[tuple[str, str]]) -> None:
    q = WorkQueue()
    held: set[str] = set()
    owed: set[str] = set()  # added and not yet handed out since
    for key, op in ops:
        if op in ("add", "urgent", "bulk"):
            q.add(key, {"urgent": URGENT, "bulk": BULK}.get(op, NORMAL))
            owed.add(key)
        elif op == "get":
            got = q.get(0)
            if got is not None:
                assert got not in held
                held.add(got)  # type: ignore[arg-type]
                owed.discard(got)  # type: ignore[arg-type]
        elif key in held:
            q.done(key)
            held.discard(key)
    for key in list(held):
        q.done(key)
    drained = set()
    while (got := q.get(0)) is not None:
        drained.add(got)
        q.done(got)
    assert owed <= drained


def test_the_lanes_are_served_in_order_and_a_key_moves_up_when_wanted_sooner() -> None:
    """The first list of 1,000 workloads must not delay a workload someone changed, nor a measurement result:
    urgent keys first, then the others, then the bulk; a waiting key added to a more urgent lane moves."""
    q = WorkQueue()
    for key in ("w1", "w2", "w3", "w4"):
        q.add(key, BULK)
    q.add("pods-moved")
    q.add("changed", URGENT)
    q.add("w3")  # its pods moved too
    q.add("w2", URGENT)  # a result waits
    q.add("w1", BULK)  # already waiting: still once
    q.add("changed")  # already in a more urgent lane: stays there
    assert len(q) == 6
    order = []
    while (got := q.get(0)) is not None:
        order.append(got)
        q.done(got)
    assert order == ["changed", "w2", "pods-moved", "w3", "w1", "w4"]


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.sampled_from([URGENT, NORMAL, BULK])), max_size=40))
def test_a_key_never_waits_behind_a_key_of_a_less_urgent_lane(adds: list[tuple[str, int]]) -> None:
    q = WorkQueue()
    lane: dict[str, int] = {}  # the most urgent lane each key was added to
    for key, wanted in adds:
        q.add(key, wanted)
        lane[key] = min(lane.get(key, BULK), wanted)
    order = []
    while (got := q.get(0)) is not None:
        order.append(got)
        q.done(got)
    assert sorted(order) == sorted(lane)  # each once
    assert [lane[k] for k in order] == sorted(lane[k] for k in order)  # never a less urgent one first


def test_timers_fire_at_their_time_and_only_the_earliest_is_kept() -> None:
    clock = FakeClock()
    q = WorkQueue(clock=clock)
    q.add_after("a", 10)
    q.add_after("a", 5)
    q.add_after("a", 20)
    q.add_after("b", 7)
    assert q.waiting() == 2 and q.get(0) is None
    clock.now += 5
    assert q.get(0) == "a"
    q.done("a")
    assert q.get(0) is None  # the 10 s and 20 s timers of "a" were dropped for the earlier one
    clock.now += 2
    assert q.get(0) == "b"


def test_backoff_doubles_per_failure_up_to_the_cap_and_resets_on_success() -> None:
    q = WorkQueue(base_delay=0.5, max_delay=3.0, clock=FakeClock())
    assert [q.add_rate_limited("k") for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    q.forget("k")
    assert q.add_rate_limited("k") == 0.5 and q.failures("k") == 1


def test_get_blocks_until_a_timer_is_due_and_shut_down_releases_it() -> None:
    q = WorkQueue()
    q.add_after("a", 0.05)
    started = time.monotonic()
    assert q.get(timeout=2) == "a" and time.monotonic() - started >= 0.04
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(q.get()))
    waiter.start()
    q.shut_down()
    waiter.join(2)
    assert got == [None] and q.is_shut_down


def note(event: str, **payload: object) -> tuple[float, Notify]:
    return (0.0, Notify(event=event, payload=payload))  # type: ignore[arg-type]


def test_rollbacks_are_labelled_by_coarse_reason_and_mode() -> None:
    notes = [
        note("rollout-failed", reason="verification 'errors' failed: ..."),
        note("rollout-rolled-back", revision="v1", reason="verification 'errors' failed: ..."),
        note("rollout-finished", revision="v1"),
        note("rollout-rolled-back", revision="v1", reason="ProgressDeadlineExceeded: revision v2 ..."),
        note("rollout-rolled-back", revision="v1", reason="revision v1 deployed again"),
    ]
    assert rollbacks_in(notes) == [
        ("verification", "immediate"),
        ("progress-deadline", "newRollout"),
        ("manual", "immediate"),
    ]
    assert rollback_reason("aborted by user") == "aborted" and rollback_reason("?") == "other"


@pytest.mark.parametrize(
    ("url", "resource"),
    [
        ("http://h/apis/apps/v1/namespaces/shop/replicasets/orders-1", "replicasets"),
        (
            "http://h/apis/ebbtide.dev/v1alpha1/namespaces/shop/ebbtidedeployments/o/status",
            "ebbtidedeployments/status",
        ),
        ("http://h/api/v1/namespaces/shop/events", "events"),
        ("http://h/apis/coordination.k8s.io/v1/namespaces/x/leases/l?dryRun=All", "leases"),
        ("http://h/api/v1/namespaces/shop", "namespaces"),
    ],
)
def test_the_resource_of_a_request_path(url: str, resource: str) -> None:
    assert resource_of(url) == resource


def test_the_gate_refuses_writes_and_lets_reads_through(api: StandIn) -> None:
    allowed = True
    counted: list[tuple[str, str]] = []
    gated = ControllerApiClient(
        api.configuration, may_write=lambda verb, res: allowed, on_write=lambda v, r: counted.append((v, r))
    )
    core = client.CoreV1Api(gated)
    core.create_namespace({"metadata": {"name": "shop"}})
    allowed = False
    with pytest.raises(NotLeader):
        core.create_namespaced_config_map("shop", {"metadata": {"name": "c"}})
    assert core.read_namespace("shop").metadata.name == "shop"  # reads pass
    assert counted == [("create", "namespaces")]
    assert [m for m, _, _ in api.server.requests].count("POST") == 1  # the refused write never left
    gated.close()  # type: ignore[no-untyped-call]


def test_an_informer_whose_watches_keep_being_cut_does_not_back_off_for_ever(api: StandIn) -> None:
    """Each cut watch is retried after the base backoff, not after a delay doubling with every cut."""
    core = client.CoreV1Api(api.client)
    core.create_namespace({"metadata": {"name": "shop"}})
    informer = Informer(partial(core.list_namespaced_config_map, "shop"), backoff=0.05, max_backoff=30)
    thread = threading.Thread(target=informer.run, daemon=True)
    thread.start()
    try:
        assert informer.synced.wait(5)
        for _ in range(8):  # 0.05 * 2**8 = 12.8 s if the delay doubled
            answered = len(api.server.requests)
            api.faults.drop_watches()
            eventually(lambda answered=answered: len(api.server.requests) > answered, timeout=1.0)
        core.create_namespaced_config_map("shop", {"metadata": {"name": "late"}})
        eventually(lambda: informer.get("shop", "late") is not None, timeout=1.0)
    finally:
        informer.stop()
        thread.join(5)


def test_what_a_person_asked_for_is_urgent_and_the_controllers_own_writes_are_not() -> None:
    from ebbtide.adapters.kubernetes import actions
    from ebbtide.adapters.kubernetes.controller import _asked

    written = {"metadata": {"generation": 3}, "status": {"observedGeneration": 3}}
    assert not _asked(written)  # a status write of the controller: nothing new asked
    assert _asked({"metadata": {"generation": 4}, "status": {"observedGeneration": 3}})  # the spec changed
    assert _asked({"metadata": {"generation": 1}})  # never observed
    action = '[{"id": "a1", "action": "rollback"}]'
    asked = {
        "metadata": {"generation": 3, "annotations": {actions.ANNOTATION: action}},
        "status": written["status"],
    }
    assert _asked(asked)
    asked["status"] = {"observedGeneration": 3, "actions": [{"id": "a1", "result": "applied"}]}
    assert not _asked(asked)  # consumed
