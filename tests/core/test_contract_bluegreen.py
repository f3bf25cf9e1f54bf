"""The semantics contract (promises 1-6, 8 and 10, tests/core/test_contract.py) on blue-green plans, and
promise 9 (liveness) with a driver of its own: blue-green compiles into the engine's steps, so every promise
a canary gets holds for it too."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule

from ebbtide.core import initial_state, step
from ebbtide.core.engine import ROLLOUT_PHASES
from ebbtide.core.events import Deploy, Measurement, ReplicasObserved, Tick
from ebbtide.core.plan import Plan
from ebbtide.core.state import RolloutState
from ebbtide.core.testing import blue_green_plans, value_for
from tests.core.test_contract import EngineContract


class BlueGreenContract(EngineContract):
    """The same rules and promises; the plans (first and changed) are blue-green."""

    @initialize(plan=blue_green_plans())
    def setup(self, plan: Plan) -> None:
        super().setup(plan)

    @rule(plan=blue_green_plans())
    def spec_change(self, plan: Plan) -> None:
        super().spec_change(plan)

    @invariant()
    def blue_stays_full_and_green_dark_until_promoted(self) -> None:
        """While a new revision is rolled out, the active one keeps all its replicas (a failure switches
        back at once), and before the promote step the new one serves no production traffic."""
        s = self.state
        if s.phase not in ROLLOUT_PHASES or s.initiator == "failure-policy" or s.stable in (None, s.canary):
            return
        assert s.stable is not None and s.canary is not None
        assert s.replicas.get(s.stable) == s.plan.replicas, "the active revision keeps full replicas"
        promote = next(i for i, st in enumerate(s.plan.steps) if st.kind == "setWeight")
        if s.step_index <= promote and s.canary_weight == 0 and s.weights.get(s.canary, 0) > 0:
            # availability comes first: a revision deployed again while it serves (with ready pods) keeps
            # only the traffic the active revision's ready pods cannot take yet (the test's cluster)
            active = self.cluster.capacity(s.stable, s.plan.replicas)
            assert s.weights[s.canary] <= 100 - active, "the preview serves no production traffic"


BlueGreenContract.TestCase.settings = settings(stateful_step_count=60)
TestBlueGreenContract = BlueGreenContract.TestCase


def drive_to_live(plan: Plan, readiness: float) -> tuple[RolloutState, float]:
    """A perfect cluster: pods ready ``readiness`` s after they are asked for, every measurement passes.
    Returns the state once v2 is live (or nothing more happens) and the time it took."""
    state = step(initial_state(plan), Deploy(revision="v1"), 0.0).state
    n = plan.replicas
    pending: list[tuple[float, int, Any]] = [
        (readiness, 0, ReplicasObserved(revision="v1", desired=n, ready=n, available=n))
    ]
    now, seq = 0.0, 1
    d = step(state, Deploy(revision="v2"), now)
    for _ in range(20_000):
        state = d.state
        if state.phase == "live" and state.stable == "v2":
            break
        for e in d.effects:
            seq += 1
            if e.kind == "scale":
                ready = ReplicasObserved(
                    revision=e.revision, desired=e.replicas, ready=e.replicas, available=e.replicas
                )
                pending.append((now + readiness, seq, ready))
            elif e.kind == "measure":
                value = value_for(e.metric, True)
                pending.append(
                    (now, seq, Measurement(verification=e.verification, metric=e.metric.name, value=value))
                )
        if d.wake_at is not None:
            seq += 1
            pending.append((d.wake_at, seq, Tick()))
        if not pending:
            break
        pending.sort(key=lambda p: (p[0], p[1]))
        t, _, ev = pending.pop(0)
        now = max(now, t)
        d = step(state, ev, now)
    return state, now


def bound(plan: Plan, readiness: float) -> float:
    """Promise 9's bound: pauses + verification windows + a readiness delay per scaling step and the end."""
    total = readiness
    for s in plan.steps:
        if s.kind == "pause":
            total += s.duration or 0.0
        elif s.kind == "verification":
            total += max(
                m.initial_delay + ((m.count or 1) - 1) * (m.interval or 0.0)
                for name in s.templates
                for m in plan.templates[name].metrics
            )
        elif s.kind in ("setWeight", "setCanaryScale"):
            total += readiness
    return total


@given(blue_green_plans(indefinite_pauses=False), st.sampled_from([0.0, 5.0, 40.0]))
def test_promise_9_liveness_blue_green(plan: Plan, readiness: float) -> None:
    state, took = drive_to_live(plan, readiness)
    assert state.phase == "live" and state.stable == "v2", (state.phase, state.failure_reason)
    assert took <= bound(plan, readiness) + 1e-6, (took, bound(plan, readiness))


def _post_promotion_plan(replicas: int, error_limit: int = 4) -> Plan:
    """Blue-green with no pause: preview, promote, then a post-promotion analysis of one metric."""
    from ebbtide.core.plan import MetricPlan, StepPlan, TemplatePlan

    metric = MetricPlan(name="t0-m0", success_condition="result >= 0.5", consecutive_error_limit=error_limit)
    steps = (
        StepPlan(kind="setCanaryScale", name="preview", replicas=replicas),
        StepPlan(kind="setWeight", name="promote", weight=100),
        StepPlan(kind="verification", name="postPromotionAnalysis", templates=("t0",)),
    )
    return Plan(
        strategy="blueGreen",
        steps=steps,
        templates={"t0": TemplatePlan(name="t0", metrics=(metric,))},
        replicas=replicas,
        scale_down_delay=0.0,
        abort_scale_down_delay=0.0,
    )


def test_a_preview_does_not_keep_production_traffic_because_everything_is_down() -> None:
    """Found by a contract search: v4 was promoted, then every pod of v1 and v4 was lost; v1 is deployed
    again (a rollback), then v4 again (a new rollout: v4 is the preview). The traffic v4 kept while nothing
    could serve must go to the active revision, not stay on the preview."""
    m = BlueGreenContract()
    m.setup(_post_promotion_plan(replicas=1, error_limit=0))
    m.deploy("v4", 0.0)
    m.converge()
    for rev in ("v1", "v4"):
        m.cluster.observed(rev, 0)
        m.apply(ReplicasObserved(revision=rev, desired=1, ready=0, available=0))
    m.deploy("v1", 0.0)
    m.deploy("v4", 0.0)
    m.blue_stays_full_and_green_dark_until_promoted()
    assert m.state.weights.get("v4", 0) == 0
    m.converge()
    m.blue_stays_full_and_green_dark_until_promoted()
    m.teardown()


def test_a_serving_revision_deployed_again_as_preview_keeps_traffic_only_while_the_active_is_down() -> None:
    """Found by a contract search: v4 was promoted (post-promotion analysis running) and v1 lost its pods;
    v5 supersedes, then v4 is deployed again and becomes the preview of a new rollout against v1. Moving
    its traffic to v1 would send it to no pods: v4 keeps it until v1 is ready, then the preview goes dark."""
    m = BlueGreenContract()
    m.setup(_post_promotion_plan(replicas=2))
    m.deploy("v4", 0.0)
    m.converge()
    assert m.state.phase == "verifying" and m.state.weights == {"v4": 100}
    m.cluster.observed("v1", 0)
    m.apply(ReplicasObserved(revision="v1", desired=2, ready=0, available=0))
    m.deploy("v5", 0.0)
    m.deploy("v4", 0.0)
    m.blue_stays_full_and_green_dark_until_promoted()
    assert m.state.canary == "v4" and m.state.weights.get("v4", 0) == 100  # v1 has no pods to take it
    m.converge()
    m.blue_stays_full_and_green_dark_until_promoted()
    m.teardown()
