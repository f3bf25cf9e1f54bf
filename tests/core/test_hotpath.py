"""The hot path decides exactly as the full engine: every short-path decision, on generated event streams
(plans from ``ebbtide.core.testing``, events answering what the engine asks for: replicas becoming ready or
not, measurements passing, failing, erroring or empty, late and duplicate results, ticks to the next wake-up
or past it, commands and deploys), is compared with :func:`ebbtide.core.engine.full_step` on the same input:
state, persisted JSON, effects, ``wake_at`` and rejection all equal."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ebbtide.core import initial_state, step
from ebbtide.core.effects import ScaleRevision, StartMeasurement
from ebbtide.core.engine import full_step, judged_step
from ebbtide.core.events import Command, Deploy, Event, Measurement, ReplicasObserved, Tick
from ebbtide.core.hotpath import Judged, short_step
from ebbtide.core.plan import Plan, TemplatePlan
from ebbtide.core.state import Decision, RolloutState
from ebbtide.core.testing import plans, value_for
from ebbtide.core.verification import run_verdict

ROOT = Path(__file__).resolve().parents[2]
ACTIONS = ("pause", "resume", "promote", "promoteFull", "abort", "retry", "rollback")


def assert_same(short: Decision, full: Decision) -> None:
    assert short.state == full.state
    assert short.state.to_json() == full.state.to_json()
    assert short.effects == full.effects
    assert short.wake_at == full.wake_at
    assert short.rejected == full.rejected


def checked_step(state: RolloutState, event: Event, now: float) -> tuple[Decision, bool]:
    """The full engine's decision, after comparing the short path's with it when it takes one."""
    full = full_step(state, event, now)
    short = short_step(state, event, max(now, state.updated_at))
    if isinstance(short, Judged):  # a result folded in that changes its run's verdict, judged on the way
        assert isinstance(event, Measurement)
        run = short.state.verifications[short.index]
        assert (short.phase, short.message) != (run.phase, run.message)
        assert (short.phase, short.message) == run_verdict(short.state.plan.templates[run.template], run)
        assert_same(judged_step(short, max(now, state.updated_at)), full)
        assert_same(full_step(short.state, Tick(), now), full)
        short = None
    if isinstance(short, RolloutState):  # a result folded in: the full engine goes on from it as at a Tick
        assert isinstance(event, Measurement)
        assert_same(full_step(short, Tick(), now), full)
        short = None
    if short is not None:
        assert_same(short, full)
    assert_same(step(state, event, now), full)
    return full, short is not None


class Driver:
    """Draws events that answer what the engine asked for, as a cluster and providers would."""

    def __init__(self, plan: Plan, data: st.DataObject) -> None:
        self.data = data
        self.state = initial_state(plan)
        self.now = 0.0
        self.asked: dict[str, int] = {}
        self.in_flight: list[StartMeasurement] = []
        self.answered: list[Measurement] = []
        self.wake: float | None = None
        self.short = 0
        #: the kind of the next event drawn, when the test chooses it
        self.kind: str | None = None

    def apply(self, event: Event) -> None:
        d, short = checked_step(self.state, event, self.now)
        self.short += short
        self.state, self.wake = d.state, d.wake_at
        for e in d.effects:
            if isinstance(e, ScaleRevision):
                self.asked[e.revision] = e.replicas
            elif isinstance(e, StartMeasurement):
                self.in_flight.append(e)

    def start_rollout(self, replicas: int, v0_ready: bool = True) -> None:
        """A rollout under way: v0 deployed (and, with ``v0_ready``, live on all its replicas), then v1."""
        self.apply(Deploy(revision="v0"))
        if v0_ready:
            n = replicas
            self.apply(ReplicasObserved(revision="v0", desired=n, ready=n, available=n))
            self.apply(Deploy(revision="v1"))

    def draw(self) -> Event:
        draw = self.data.draw
        kind = self.kind or draw(
            st.sampled_from(("observe", "measure", "measure", "tick", "tick", "late", "other"))
        )
        self.kind = None
        if kind == "observe" and self.asked:
            rev = draw(st.sampled_from(sorted(self.asked)))
            n = self.asked[rev]
            ready = draw(st.sampled_from((n, n, 0, n // 2)))
            return ReplicasObserved(revision=rev, desired=n, ready=ready, available=ready)
        if kind == "measure" and self.in_flight:
            e = self.in_flight.pop(draw(st.integers(0, len(self.in_flight) - 1)))
            outcome = draw(st.sampled_from(("pass", "pass", "pass", "fail", "error", "none")))
            if outcome == "error":
                ev = Measurement(verification=e.verification, metric=e.metric.name, error="timeout")
            elif outcome == "none":
                ev = Measurement(verification=e.verification, metric=e.metric.name, value=None)
            else:
                value = value_for(e.metric, outcome == "pass")
                ev = Measurement(verification=e.verification, metric=e.metric.name, value=value)
            self.answered.append(ev)
            return ev
        if kind == "late" and self.answered:
            return draw(st.sampled_from(self.answered))  # a duplicate or late result
        if kind == "other":
            if draw(st.booleans()):
                return Deploy(revision=draw(st.sampled_from(("v1", "v2", "v3"))))
            action = draw(st.sampled_from(ACTIONS))
            return Command(action=action)  # type: ignore[arg-type]
        if self.wake is not None and draw(st.booleans()):
            self.now = max(self.now, self.wake)
        else:
            self.now += draw(st.sampled_from((0.0, 1.0, 10.0, 61.0, 700.0)))
        return Tick()


@given(plans(), st.data())
def test_short_path_decides_as_the_full_engine(plan: Plan, data: st.DataObject) -> None:
    driver = Driver(plan, data)
    driver.apply(Deploy(revision="v1"))
    for _ in range(data.draw(st.integers(10, 60))):
        driver.apply(driver.draw())


@given(plans(), st.data())
def test_short_path_decides_as_the_full_engine_during_a_rollout(plan: Plan, data: st.DataObject) -> None:
    """The same comparison from a rollout under way (a live revision, then a new one deployed and its first
    replicas ready), where the measurements of step and background verifications come in. Templates of one
    metric make each metric's result decide its run more often."""
    if data.draw(st.booleans()):
        single = {name: TemplatePlan(name=name, metrics=t.metrics[:1]) for name, t in plan.templates.items()}
        plan = plan.model_copy(update={"templates": single})
    driver = Driver(plan, data)
    driver.start_rollout(plan.replicas)
    for _ in range(data.draw(st.integers(10, 60))):
        if driver.in_flight and data.draw(st.booleans()):
            driver.kind = "measure"  # providers answering at once, as in a healthy rollout
        event = driver.draw()
        if isinstance(event, Command | Deploy) and data.draw(st.booleans()):
            continue  # fewer of the events that end the rollout early
        driver.apply(event)


def test_the_bench_rollout_takes_the_short_path_for_most_events() -> None:
    """The short path is not dead code: a healthy canary's counter-only measurements and measurement
    ticks take it (and decide as the full engine, checked at every step)."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from run import canary_plan, rollout_events  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    plan = canary_plan()
    state = step(initial_state(plan), Deploy(revision="v0"), 0.0).state
    n = plan.replicas
    state = step(state, ReplicasObserved(revision="v0", desired=n, ready=n, available=n), 0.0).state
    taken: dict[str, int] = {}
    for now, ev in rollout_events(plan, "v1", state, 1.0):
        d, short = checked_step(state, ev, now)
        taken[type(ev).__name__] = taken.get(type(ev).__name__, 0) + short
        state = d.state
    assert state.phase == "live" and state.stable == "v1"
    assert taken["Measurement"] >= 15, taken
    assert taken["Tick"] >= 8, taken
