"""Argo canary's ``scaleDownDelayRevisionLimit`` (``Plan.scale_down_delay_revision_limit``) on canary plans:
at most that many replaced revisions wait out ``scaleDownDelaySeconds`` scaled up; the older ones go at once.

Over tests/core/helpers.py's harness: 4 replicas ready 5 s after they are asked for, a traffic router."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebbtide.core.plan import Plan
from ebbtide.core.state import RolloutState
from tests.core.helpers import Harness, weight


def routed(limit: int | None, delay: float = 600.0) -> Plan:
    return Plan(
        steps=(weight(50), weight(100)),
        replicas=4,
        traffic_router=True,
        scale_down_delay=delay,
        abort_scale_down_delay=delay,
        scale_down_delay_revision_limit=limit,
    )


@pytest.mark.parametrize(("limit", "v1_down_at_v3_live"), [(None, False), (2, False), (1, True), (0, True)])
def test_canary_scale_down_delay_revision_limit(limit: int | None, v1_down_at_v3_live: bool) -> None:
    """v2 then v3 promoted within one scaleDownDelaySeconds (600 s): v1 and v2 would both wait; with a limit
    of 1 the older one (v1) is scaled down as soon as v2 starts waiting; with 0 none waits."""
    h = Harness(routed(limit)).live("v1")
    h.deploy("v2")
    h.run_for(60)
    assert h.state.phase == "live" and h.state.stable == "v2" and h.state.weights == {"v2": 100}
    assert ("v1" in h.state.replicas) == (limit != 0), "with a limit of 0 nothing waits"
    h.deploy("v3")
    h.run_for(60)
    assert h.state.phase == "live" and h.state.stable == "v3"
    assert ("v1" not in h.state.replicas) == v1_down_at_v3_live
    assert ("v2" in h.state.replicas) == (limit != 0), (
        "the newest replaced revision waits unless the limit is 0"
    )
    h.run_for(600)
    assert set(h.state.replicas) == {"v3"}, "the delay still ends for those that waited"


def test_without_the_field_the_plan_decides_as_before() -> None:
    """No limit: every replaced revision waits its full delay (the behaviour of plans that do not set it)."""
    h = Harness(routed(None)).live("v1")
    for rev in ("v2", "v3", "v4"):
        h.deploy(rev)
        h.run_for(60)
    assert set(h.state.replicas) == {"v1", "v2", "v3", "v4"}


def _waiting(s: RolloutState) -> set[str]:
    """Revisions scaled up that serve nothing and are neither stable, canary nor a rollback's target."""
    keep = {s.stable, s.canary, s.rollback.target if s.rollback else None}
    return {r for r, n in s.replicas.items() if n > 0 and not s.weights.get(r) and r not in keep}


@given(
    limit=st.integers(0, 2),
    actions=st.lists(
        st.tuples(st.sampled_from(["deploy", "abort", "wait"]), st.integers(1, 120)), max_size=8
    ),
)
def test_at_most_the_limit_of_replaced_revisions_wait(limit: int, actions: list[tuple[str, int]]) -> None:
    h = Harness(routed(limit)).live("v1")
    revisions = iter(f"v{i}" for i in range(2, 100))
    for action, seconds in actions:
        if action == "deploy":
            h.deploy(next(revisions))
        elif action == "abort":
            h.command("abort")
        h.run_for(seconds)
    for record in h.log:
        s = record.decision.state
        if s.phase != "failed":
            assert len(_waiting(s)) <= limit, (record.t, s.replicas, s.weights)
