"""The advance loop comes to rest without the pass that would only confirm a verification's start.

:func:`ebbtide.core.engine._verify` starts a verification step's runs and tells the loop that the next pass
would change nothing (``_RESTED``) when every run began and has a metric; the reasoning is in its docstring.
The oracle is the loop that always makes that pass: the engine with ``_RESTED`` read as an ordinary move.
On generated event streams every decision is compared with that reference (state, persisted JSON, effects,
``wake_at``, rejection); the example tests pin the two conditions the skip rests on, which generated plans
never break (a template without metrics, a step naming a template the plan lacks)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebbtide.core import engine, initial_state
from ebbtide.core.engine import full_step
from ebbtide.core.events import Deploy, Event, ReplicasObserved, Tick
from ebbtide.core.plan import MetricPlan, Plan, StepPlan, TemplatePlan
from ebbtide.core.state import Decision, RolloutState
from ebbtide.core.testing import plans

from .test_hotpath import Driver, assert_same


@contextmanager
def confirming_pass() -> Iterator[None]:
    """The loop as it was: a pass that starts a verification is an ordinary move, the next pass runs."""
    real = engine._RESTED
    engine._RESTED = engine._MOVED
    try:
        yield
    finally:
        engine._RESTED = real


def reference_step(state: RolloutState, event: Event, now: float) -> Decision:
    with confirming_pass():
        return full_step(state, event, now)


class RestDriver(Driver):
    def apply(self, event: Event) -> None:
        assert_same(full_step(self.state, event, self.now), reference_step(self.state, event, self.now))
        super().apply(event)


@given(plans(), st.data())
def test_the_loop_decides_as_the_loop_that_confirms_every_start(plan: Plan, data: st.DataObject) -> None:
    driver = RestDriver(plan, data)
    driver.start_rollout(plan.replicas)
    for _ in range(data.draw(st.integers(10, 60))):
        if driver.in_flight and data.draw(st.booleans()):
            driver.kind = "measure"
        driver.apply(driver.draw())


METRIC = MetricPlan(name="m", interval=30, count=2, success_condition="result >= 0.95")


def _at_the_verification(
    templates: dict[str, TemplatePlan], names: tuple[str, ...], *, check: bool = True
) -> tuple[RolloutState, Event]:
    """A rollout whose next observation completes its setWeight step, with the verification step next."""
    steps = (StepPlan(kind="setWeight", weight=50), StepPlan(kind="verification", templates=names))
    fields = {"steps": steps, "templates": templates, "replicas": 2, "traffic_router": True}
    plan = Plan(**fields) if check else Plan.model_construct(**{**Plan().__dict__, **fields})
    s = full_step(initial_state(plan), Deploy(revision="v0"), 0.0).state
    s = full_step(s, ReplicasObserved(revision="v0", desired=2, ready=2, available=2), 0.0).state
    s = full_step(s, Deploy(revision="v1"), 1.0).state
    return s, ReplicasObserved(revision="v1", desired=1, ready=1, available=1)


def test_a_run_with_metrics_rests_the_loop_verifying() -> None:
    state, event = _at_the_verification({"t": TemplatePlan(name="t", metrics=(METRIC,))}, ("t",))
    d = full_step(state, event, 2.0)
    assert_same(d, reference_step(state, event, 2.0))
    assert d.state.phase == "verifying" and [r.phase for r in d.state.verifications] == ["Running"]
    assert_same(full_step(d.state, Tick(), 2.0), Decision(d.state, (), d.wake_at))  # a fixpoint


@pytest.mark.parametrize("others", [(), ("t",)])
def test_a_run_without_metrics_is_judged_at_once_and_the_step_passes(others: tuple[str, ...]) -> None:
    """A template without metrics gives a run the judge ends Successful at once: the next pass must run."""
    templates = {
        "t": TemplatePlan(name="t", metrics=(METRIC,)),
        "empty": TemplatePlan(name="empty", metrics=()),
    }
    state, event = _at_the_verification(templates, (*others, "empty"))
    d = full_step(state, event, 2.0)
    assert_same(d, reference_step(state, event, 2.0))
    runs = [(r.template, r.phase) for r in d.state.verifications]
    if others:
        assert d.state.phase == "verifying" and runs == [("t", "Running"), ("empty", "Successful")]
    else:
        assert d.state.phase == "in-progress" and d.state.step_index == 2 and runs == []
    assert_same(full_step(d.state, Tick(), 2.0), Decision(d.state, (), d.wake_at))  # a fixpoint


def test_a_step_naming_no_template_of_the_plan_starts_nothing_and_passes() -> None:
    """A hand-built plan (validation bypassed) may name a template it lacks: no run begins, the step
    passes."""
    state, event = _at_the_verification({}, ("missing",), check=False)
    d = full_step(state, event, 2.0)
    assert_same(d, reference_step(state, event, 2.0))
    assert d.state.phase == "in-progress" and d.state.step_index == 2 and d.state.verifications == ()


def test_the_start_runs_the_deadline_clock_as_the_confirming_pass_would() -> None:
    """The confirming pass asks whether the canary has its pods (:func:`engine._check_canary_ready`); the
    start does it in its place. A progress deadline that fails a rollout under a newRollout policy starts
    the rollback's rollout at the step after its share, here the verification, while its target (the old
    stable) has no ready pod: the target's deadline clock starts there."""
    steps = (StepPlan(kind="setWeight", weight=100), StepPlan(kind="verification", templates=("t",)))
    templates = {"t": TemplatePlan(name="t", metrics=(METRIC,))}
    plan = Plan(
        steps=steps,
        templates=templates,
        replicas=1,
        traffic_router=True,
        rollback_mode="newRollout",
        progress_deadline=60.0,
    )
    s = full_step(initial_state(plan), Deploy(revision="v0"), 0.0).state
    s = full_step(s, ReplicasObserved(revision="v0", desired=1, ready=1, available=1), 0.0).state
    s = full_step(s, Deploy(revision="v1"), 0.0).state
    s = full_step(s, ReplicasObserved(revision="v0", desired=1, ready=0, available=0), 0.0).state
    d = full_step(s, Tick(), 60.0)
    assert_same(d, reference_step(s, Tick(), 60.0))
    assert (d.state.phase, d.state.canary, d.state.initiator) == ("verifying", "v0", "failure-policy")
    assert d.state.waiting_since == 60.0
