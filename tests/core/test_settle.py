"""The settle's shortcut decides as a settle that evaluates everything on every pass.

:func:`ebbtide.core.engine._settle_world` skips re-evaluating the weights after a pass that changed only
the counts of revisions that keep running pods (its docstring gives the reasoning). The oracle here is the
plain fixpoint loop written out again below: every pass evaluates both the weights and the replicas. On
generated event streams (the hot path test's driver) every decision of the engine is compared with the
decision the engine makes with the reference settle in its place: state, persisted JSON, effects,
``wake_at`` and rejection all equal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import given
from hypothesis import strategies as st

from ebbtide.core import engine, initial_state, step
from ebbtide.core.engine import full_step
from ebbtide.core.events import Deploy, Event, ReplicasObserved
from ebbtide.core.plan import Plan
from ebbtide.core.state import Decision, RolloutState
from ebbtide.core.testing import plans

from .test_hotpath import ROOT, Driver, assert_same


def reference_settle(w: engine._W, clip: bool = True) -> None:
    """Weights and replicas both evaluated on every pass until a pass changes nothing."""
    for _ in range(8):
        weights = engine._desired_weights(w)
        replicas = engine._desired_replicas(w)
        stale = [r for r in w.ready if r not in replicas and r not in weights]
        over = [r for r, seen in w.ready.items() if clip and seen > replicas.get(r, 0)]
        if not stale and not over and weights == w.weights and replicas == w.replicas:
            return
        w.weights = weights
        w.replicas = replicas
        for rev in stale:
            del w.ready[rev]
        for rev in over:
            if rev in w.ready:
                w.ready[rev] = replicas.get(rev, 0)


@contextmanager
def settled_by(settle: object) -> Iterator[None]:
    real = engine._settle_world
    engine._settle_world = settle  # type: ignore[assignment]
    try:
        yield
    finally:
        engine._settle_world = real


def reference_step(state: RolloutState, event: Event, now: float) -> Decision:
    with settled_by(reference_settle):
        return full_step(state, event, now)


class SettleDriver(Driver):
    def apply(self, event: Event) -> None:
        assert_same(full_step(self.state, event, self.now), reference_step(self.state, event, self.now))
        super().apply(event)


@given(plans(), st.data())
def test_the_settle_decides_as_the_reference_settle(plan: Plan, data: st.DataObject) -> None:
    driver = SettleDriver(plan, data)
    driver.apply(Deploy(revision="v0"))
    n = plan.replicas
    if data.draw(st.booleans()):
        driver.apply(ReplicasObserved(revision="v0", desired=n, ready=n, available=n))
        driver.apply(Deploy(revision="v1"))
    for _ in range(data.draw(st.integers(10, 60))):
        if driver.in_flight and data.draw(st.booleans()):
            driver.kind = "measure"
        driver.apply(driver.draw())


def test_a_basic_canary_evaluates_the_weights_again_after_a_scale_down() -> None:
    """Without a router the split is the ready pods' ratio, capped by the pods asked for: a pass that only
    scales the stable down (10 -> 9, 10 still seen ready, an intermediate world that keeps observations)
    moves the weights, so the router guard of the shortcut is needed (dropping it gives 91/9)."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from run import canary_plan
    finally:
        sys.path.pop(0)
    plan = canary_plan().model_copy(update={"traffic_router": False})
    state = step(initial_state(plan), Deploy(revision="v0"), 0.0).state
    state = step(state, ReplicasObserved(revision="v0", desired=10, ready=10, available=10), 0.0).state
    state = step(state, Deploy(revision="v1"), 1.0).state
    worlds = []
    for settle in (engine._settle_world, reference_settle):
        w = engine._W(state, 2.0)
        w.replicas = {"v0": 10, "v1": 1}
        w.ready = {"v0": 10, "v1": 1}
        w.weights = engine._desired_weights(w)
        settle(w, False)
        worlds.append((w.weights, w.replicas, w.ready))
    assert worlds[0] == worlds[1]
    assert worlds[0][0] == {"v0": 90, "v1": 10}
