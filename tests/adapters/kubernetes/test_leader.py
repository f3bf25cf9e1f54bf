"""Leader election on a Lease, over HTTP against the stand-in, with a shared fake clock."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes import client

from ebbtide.adapters.kubernetes.leader import LeaderElector

from .standin import WRITES, StandIn

NS = "ebbtide-system"
_names = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def shared() -> Iterator[StandIn]:
    with StandIn() as standin:
        yield standin


def electors(api: StandIn, clock: Clock, count: int = 2) -> list[LeaderElector]:
    coordination = client.CoordinationV1Api(api.client)
    lease = f"lease-{next(_names)}"
    return [
        LeaderElector(
            coordination, NS, lease, f"replica-{i}", lease_duration=15, renew_deadline=10, clock=clock
        )
        for i in range(count)
    ]


def test_one_holds_the_other_takes_over_only_once_it_expired(shared: StandIn) -> None:
    clock = Clock()
    a, b = electors(shared, clock)
    assert a.try_acquire_or_renew() and a.is_leader()
    assert not b.try_acquire_or_renew() and not b.is_leader()
    clock.now += 5
    assert a.try_acquire_or_renew()  # renewed
    assert not b.try_acquire_or_renew()
    clock.now += 14  # b has seen a's last renewal 14 s ago: not yet expired for b
    assert not b.try_acquire_or_renew()
    assert not a.is_leader()  # a missed its renew deadline: it no longer acts
    clock.now += 1
    assert b.try_acquire_or_renew() and b.is_leader()
    assert not a.try_acquire_or_renew() and not a.is_leader()
    lease = client.CoordinationV1Api(shared.client).read_namespaced_lease(a.name, NS)
    assert lease.spec.holder_identity == "replica-1" and lease.spec.lease_transitions == 1


def test_a_released_lease_is_taken_at_once(shared: StandIn) -> None:
    clock = Clock()
    a, b = electors(shared, clock)
    assert a.try_acquire_or_renew()
    a.release()
    assert not a.is_leader()
    assert b.try_acquire_or_renew()


def test_a_conflict_leaves_the_loser_a_follower(shared: StandIn) -> None:
    clock = Clock()
    a, b = electors(shared, clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()  # b observes a's record
    clock.now += 16  # expired for b; another replica writes the Lease first
    shared.faults.fail_next(1, status=409, verbs=WRITES, plural="leases")
    try:
        assert not b.try_acquire_or_renew()
        assert not b.is_leader()
    finally:
        shared.faults.clear()


def test_renew_deadline_must_be_shorter_than_the_lease() -> None:
    with pytest.raises(ValueError, match="renew_deadline"):
        LeaderElector(client.CoordinationV1Api(), NS, "x", "me", lease_duration=10, renew_deadline=10)


@settings(deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2), st.floats(0, 12)), min_size=1, max_size=25),
    st.sampled_from([None, 2, 3]),
)
def test_never_two_leaders(
    shared: StandIn, schedule: list[tuple[int, float]], conflict_every: int | None
) -> None:
    """Whatever the order and timing of the replicas' attempts, and with 409 storms, at most one acts."""
    clock = Clock()
    replicas = electors(shared, clock, count=3)
    if conflict_every:
        shared.faults.conflict_every(conflict_every, plural="leases")
    try:
        for who, wait in schedule:
            clock.now += wait
            replicas[who].try_acquire_or_renew()
            assert sum(r.is_leader() for r in replicas) <= 1
    finally:
        shared.faults.clear()
