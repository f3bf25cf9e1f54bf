"""Traffic safety on the way back (issue 6, section 1): a rollback target that has no ready pods gets no
traffic until its pods are ready, and every decision is a fixpoint.

The oracle is the fake cluster of the harness (what it has made ready), never the engine's own ``ready``
map: :class:`SafeHarness` checks every SetTraffic against the pods the cluster really has ready at that
moment, and steps every resulting state again with a Tick at the same ``now`` through the full path.
"""

from __future__ import annotations

from typing import Any

import pytest

from ebbtide.core.effects import SetTraffic
from ebbtide.core.engine import full_step
from ebbtide.core.events import Event, Tick
from ebbtide.core.plan import Plan
from ebbtide.core.state import Decision
from tests.core.helpers import BAD, GOOD, Harness, canary_plan, pause, verify, weight


class SafeHarness(Harness):
    """The harness, checking availability against its own cluster and the fixpoint of every decision."""

    def send(self, event: Event) -> Decision:
        serving_before = dict(self._ready)
        d = super().send(event)
        for e in d.effects:
            if isinstance(e, SetTraffic):
                for rev, share in e.weights.items():
                    others_ready = any(n > 0 for r, n in serving_before.items() if r != rev)
                    if share > 0 and others_ready:
                        assert serving_before.get(rev, 0) > 0, (
                            f"t={self.now}: {share}% routed to {rev}, which has no ready pods "
                            f"(cluster: {serving_before}) after {event!r}"
                        )
        again = full_step(d.state, Tick(), self.now)
        assert again.state == d.state, f"t={self.now}: not a fixpoint after {event!r}"
        assert not again.effects, f"t={self.now}: a Tick at the same time emits {again.effects}"
        return d


def _live(plan: Plan, **kw: Any) -> SafeHarness:
    h = SafeHarness(plan, **kw)
    h.live("v1")
    return h


def _shares(h: Harness, rev: str, since: float) -> list[int]:
    return [w.get(rev, 0) for w in h.weights(since=since)]


def test_abort_with_dynamic_stable_scale_after_canary_reached_100_follows_stable_capacity() -> None:
    plan = canary_plan(weight(50), weight(100), pause(None), dynamic_stable_scale=True, replicas=4)
    h = _live(plan, gradual=True)
    h.deploy("v2")
    h.run_for(200)
    assert h.state.phase == "paused" and h.state.weights == {"v2": 100}
    assert h.state.replicas.get("v1", 0) == 0, "dynamicStableScale scaled the stable to zero"
    t = h.now
    d = h.command("abort")
    assert d.state.phase == "rolling-back" and d.state.weights == {"v2": 100}, "v1 has no pods yet"
    h.run_for(200)
    assert _shares(h, "v1", since=t) == [25, 50, 75, 100], "one ready pod of four = 25% more"
    assert h.state.phase == "live" and h.state.stable == "v1"


def test_immediate_rollback_with_dynamic_stable_scale_at_100_waits_for_stable_pods() -> None:
    bad_late = lambda rev, metric, now: BAD if rev == "v2" and now > 60 else GOOD  # noqa: E731
    plan = canary_plan(weight(50), weight(100), verify(), pause(None), dynamic_stable_scale=True)
    h = _live(plan, measure=bad_late, gradual=True)
    h.deploy("v2")
    h.run_for(400)
    assert h.state.phase == "live" and h.state.stable == "v1" and h.state.degraded
    failed_at = next(t for t, name, _ in h.notifications() if name == "rollout-failed")
    assert _shares(h, "v1", since=failed_at) == [25, 50, 75, 100]


def test_rollback_window_fast_track_to_a_scaled_down_revision_keeps_traffic_until_it_is_ready() -> None:
    h = _live(canary_plan(weight(50), weight(100), rollback_window=2))
    h.deploy("v2")
    h.run_for(300)
    assert h.state.stable == "v2" and h.state.replicas == {"v2": 4}, "v1 scaled down after the delay"
    t = h.now
    d = h.command("rollback")
    assert d.rejected is None and d.state.phase == "rolling-back" and d.state.rollback is not None
    assert d.state.rollback.fast_track
    assert d.state.weights == {"v2": 100}, "no traffic to v1 before its pods are ready"
    h.run_for(100)
    assert h.weights(since=t) == [{"v1": 100}]
    assert h.state.phase == "live" and h.state.stable == "v1"


def test_rollback_command_to_an_old_scaled_down_revision_never_routes_ahead_of_its_pods() -> None:
    h = _live(canary_plan(weight(50), weight(100), rollback_window=3), gradual=True)
    for rev in ("v2", "v3"):
        h.deploy(rev)
        h.run_for(300)
    t = h.now
    d = h.command("rollback", "v1")
    assert d.rejected is None and d.state.weights == {"v3": 100}
    h.run_for(300)
    assert _shares(h, "v1", since=t) == [25, 50, 75, 100]
    assert h.state.stable == "v1"


def test_an_unrelated_event_after_a_scale_down_never_moves_traffic_back() -> None:
    """A revision forgotten after its scale-down has no capacity: later events cannot route to it."""
    h = _live(canary_plan(weight(50), weight(100), pause(None), dynamic_stable_scale=True), gradual=True)
    h.deploy("v2")
    h.run_for(200)
    t = h.now
    h.command("pause")
    h.command("resume")
    h.run_for(10)
    assert all(w == {"v2": 100} for w in h.weights(since=t))


# ---------------------------------------------------------------------------------------------------
# basic canary (no traffic router): the weight is a pod ratio within maxSurge / maxUnavailable
# ---------------------------------------------------------------------------------------------------


class PodBudgetHarness(SafeHarness):
    """Also records, from its own cluster, the most pods ever asked for and the fewest ever ready."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.peak_pods = 0
        self.min_ready: int | None = None

    def send(self, event: Event) -> Decision:
        d = super().send(event)
        for e in d.effects:  # the split reported is the ratio of the pods the cluster has ready and running
            if isinstance(e, SetTraffic) and self.state.stable is not None:
                pods = {r: min(self._ready.get(r, 0), n) for r, n in self._desired.items()}
                if sum(pods.values()):
                    exact = 100 * pods.get("v2", 0) / sum(pods.values())
                    assert abs(e.weights.get("v2", 0) - exact) < 1, (self.now, e.weights, pods)
        self.peak_pods = max(self.peak_pods, sum(self._desired.values()))
        if self.state.stable is not None and sum(self._ready.values()) > 0:
            ready = sum(self._ready.values())
            self.min_ready = ready if self.min_ready is None else min(self.min_ready, ready)
        return d


def _basic(surge: int, unavailable: int, **kw: Any) -> PodBudgetHarness:
    plan = canary_plan(
        weight(20), pause(10), weight(50), pause(10), weight(75), pause(10),
        replicas=4, traffic_router=False, max_surge=surge, max_unavailable=unavailable, **kw,
    )  # fmt: skip
    h = PodBudgetHarness(plan, gradual=True)
    h.live("v1")
    h.min_ready = None
    return h


def test_basic_canary_weights_are_pod_ratios_within_surge_and_unavailable() -> None:
    for surge, unavailable in ((1, 0), (0, 1), (1, 1), (2, 0)):
        h = _basic(surge, unavailable)
        h.deploy("v2")
        h.run_for(600)
        assert h.state.phase == "live" and h.state.stable == "v2", (surge, unavailable)
        assert h.peak_pods <= 4 + surge, f"surge {surge}: {h.peak_pods} pods asked for"
        assert h.min_ready is not None and h.min_ready >= 4 - unavailable, (surge, unavailable, h.min_ready)
        splits = h.weights()
        canary = [s.get("v2", 0) for s in splits]
        assert canary == sorted(canary), f"the canary's pod share only grows during a rollout: {canary}"
        first = 20 if surge else 25  # 1 of 5 pods with a surge pod; 1 of 4 without
        assert first in canary and 50 in canary and 75 in canary and canary[-1] == 100, canary


def test_basic_canary_four_replicas_at_20_percent_runs_one_canary_pod() -> None:
    h = _basic(1, 0)
    h.deploy("v2")
    h.run_for(12)
    assert h.state.phase == "paused" and h.state.replicas == {"v1": 4, "v2": 1}
    assert h.state.weights == {"v1": 80, "v2": 20}


def test_basic_canary_abort_returns_pods_within_the_budget() -> None:
    h = _basic(1, 0)
    h.deploy("v2")
    h.run_for(40)
    assert h.state.weights.get("v2", 0) >= 50
    h.command("abort")
    h.run_for(300)
    assert h.state.phase == "live" and h.state.stable == "v1" and h.state.replicas == {"v1": 4}
    assert h.peak_pods <= 5 and h.min_ready is not None and h.min_ready >= 4


def test_the_basic_canary_example_compiles_without_a_router_and_keeps_its_pod_budget() -> None:
    from pathlib import Path

    from ebbtide.core.spec import compile_plan, load_text

    path = Path(__file__).resolve().parents[2] / "examples" / "specs" / "basic-canary.yaml"
    plan = compile_plan(load_text(path.read_text(), str(path)))
    assert not plan.traffic_router and (plan.max_surge, plan.max_unavailable) == (1, 0)
    h = PodBudgetHarness(plan, gradual=True, measure=lambda rev, m, t: [0.001])
    h.live("v1")
    h.min_ready = None
    h.deploy("v2")
    h.run_for(3600)
    assert h.state.phase == "live" and h.state.stable == "v2"
    assert h.peak_pods <= 6 and h.min_ready is not None and h.min_ready >= 5
    assert h.weights()[:2] == [{"v1": 100}, {"v1": 80, "v2": 20}], "1 canary pod beside 4 stable ones"


def test_router_only_steps_are_spec_errors_in_a_basic_canary() -> None:
    import pytest

    from ebbtide.core.spec import SpecError, compile_plan, load_text

    spec = """
apiVersion: ebbtide.dev/v1alpha1
kind: Strategy
metadata: {name: s}
spec:
  canary:
    steps:
      - setCanaryScale: {replicas: 1}
      - setWeight: 50
---
apiVersion: ebbtide.dev/v1alpha1
kind: RolloutSpec
metadata: {name: r}
spec:
  replicas: 4
  strategy: {name: s}
  dynamicStableScale: true
  traffic: {canaryService: c, stableService: s}
"""
    with pytest.raises(SpecError) as err:
        compile_plan(load_text(spec, "basic.yaml"), "r")
    text = str(err.value)
    assert "spec.canary.steps[0].setCanaryScale: setCanaryScale needs a traffic router" in text
    assert "spec.dynamicStableScale: dynamicStableScale needs a traffic router" in text
    routed = spec.replace("stableService: s}", "nginx: {stableIngress: i}}")
    assert compile_plan(load_text(routed, "routed.yaml"), "r").traffic_router


def test_deploying_the_revision_a_failed_new_rollout_rollback_was_restoring_fast_tracks_to_it() -> None:
    """Found by a 4,000-example search of the contract: v3 is live and loses its pods; v2's rollout fails and
    a newRollout rollback to v3 fails too (v3 not ready in time); v3's pods come back; deploying v3 again
    must fast-track to v3 (it serves, it is the last successful revision), not start a rollout of v3
    against v1, which runs no pods."""
    from ebbtide.core import initial_state, step
    from ebbtide.core.effects import StartMeasurement
    from ebbtide.core.events import Deploy, Measurement, ReplicasObserved, SpecChanged
    from ebbtide.core.plan import MetricPlan, Plan, StepPlan, TemplatePlan

    metric = MetricPlan(name="m", success_condition="result >= 0.5")
    steps = (StepPlan(kind="verification", templates=("t",)), StepPlan(kind="setWeight", weight=100))
    promote = Plan(
        steps=steps,
        templates={"t": TemplatePlan(name="t", metrics=(metric,))},
        replicas=1,
        failure_action="promote",
        progress_deadline=60.0,
        scale_down_delay=0.0,
        abort_scale_down_delay=0.0,
    )
    state, now = initial_state(promote), 0.0

    def send(ev: Event) -> Decision:
        nonlocal state
        d = step(state, ev, now)
        state = d.state
        for e in d.effects:  # every measurement fails
            if isinstance(e, StartMeasurement):
                send(Measurement(verification=e.verification, metric=e.metric.name, value=0.0))
        return d

    def seen(rev: str, ready: int) -> None:
        send(ReplicasObserved(revision=rev, desired=ready, ready=ready, available=ready))

    send(Deploy(revision="v1"))
    seen("v1", 1)
    send(Deploy(revision="v3"))  # fails its verification, promoted anyway by the promote policy
    seen("v3", 1)
    assert state.phase == "live" and state.stable == "v3"
    seen("v3", 0)
    new_rollout = promote.model_copy(update={"failure_action": "rollback", "rollback_mode": "newRollout"})
    send(SpecChanged(plan=new_rollout))
    send(Deploy(revision="v2"))
    now = 60.0
    send(Tick())
    now = 760.0
    send(Tick())
    assert state.phase == "failed" and state.canary == "v3", "the newRollout rollback to v3 failed"
    seen("v1", 0)
    seen("v3", 1)
    d = send(Deploy(revision="v3"))
    routed = [e.weights for e in d.effects if isinstance(e, SetTraffic)]
    assert all(w.get("v1", 0) == 0 for w in routed), routed
    assert state.phase == "live" and state.stable == "v3" and state.weights == {"v3": 100}


@pytest.mark.parametrize("first", ["setWeight 1", "pause"])
def test_deploying_the_serving_revision_during_a_rollback_to_a_podless_stable_keeps_its_traffic(
    first: str,
) -> None:
    """Found by a 4,000-example contract search: v2 took all traffic (dynamicStableScale scaled v1 to 0);
    deploying v1 starts a fast rollback to it, and deploying v2 again before v1 has pods supersedes against
    v1: the traffic stays with v2, the revision that had it, not with v1, which has no ready pods."""
    from ebbtide.core import initial_state, step
    from ebbtide.core.events import Deploy, ReplicasObserved
    from ebbtide.core.plan import Plan, StepPlan

    start = (
        StepPlan(kind="setWeight", weight=1)
        if first == "setWeight 1"
        else StepPlan(kind="pause", duration=60)
    )
    plan = Plan(
        steps=(start, StepPlan(kind="pause"), StepPlan(kind="setWeight", weight=100)),
        replicas=1,
        dynamic_stable_scale=True,
        scale_down_delay=0.0,
    )
    rolling = plan.model_copy(
        update={
            "strategy": "rolling",
            "steps": (StepPlan(kind="setWeight", weight=100), StepPlan(kind="pause")),
        }
    )
    s = initial_state(rolling)
    for ev in (
        Deploy(revision="v1"),
        ReplicasObserved(revision="v1", desired=1, ready=1, available=1),
        Deploy(revision="v2"),
        ReplicasObserved(revision="v2", desired=1, ready=1, available=1),
        Deploy(revision="v1"),
    ):
        s = step(s, ev, 0.0).state
    assert s.phase == "rolling-back" and s.weights == {"v2": 100}, "v1 has no pods yet"
    d = step(s, Deploy(revision="v2", plan=plan), 0.0)
    routed = [e.weights for e in d.effects if isinstance(e, SetTraffic)]
    assert d.state.weights == {"v2": 100} and all(w.get("v1", 0) == 0 for w in routed), (
        d.state.weights,
        routed,
    )
