"""Steps and states as users see them (issue 6, section 4): timed pauses show as paused, every setWeight
reaches the router, step indices as Argo shows them."""

from __future__ import annotations

from ebbtide.core.effects import SetTraffic
from ebbtide.core.spec import compile_plan, load_text
from tests.core.helpers import Harness, canary_plan, pause, verify, weight


def _rollout(*steps, **kw) -> Harness:  # type: ignore[no-untyped-def]
    h = Harness(canary_plan(*steps, **kw)).live("v1")
    h.deploy("v2")
    return h


def test_a_timed_pause_is_paused_with_reason_pause_step_and_its_end_time() -> None:
    h = _rollout(weight(20), pause(60), weight(100))
    h.run_for(10)
    s = h.state
    assert (s.phase, s.pause_reason, s.pause_until) == ("paused", "pause-step", 26.0 + 60)
    h.run_until(26 + 59)
    assert h.state.phase == "paused"
    h.run_until(26 + 60)
    assert h.state.phase != "paused" and h.state.step_index >= 2, "the timer moves the rollout on"


def test_promote_skips_a_timed_pause_and_resume_is_rejected_there() -> None:
    h = _rollout(weight(20), pause(600), weight(100))
    h.run_for(10)
    assert h.command("resume").rejected is not None
    d = h.command("promote")
    assert d.rejected is None and d.state.pause_until is None and d.state.step_index == 2


def test_a_failure_during_a_timed_pause_under_pause_policy_stops_the_timer() -> None:
    bad = lambda rev, m, t: 0.5 if rev == "v2" and t > 40 else 0.01  # noqa: E731
    plan = canary_plan(
        weight(20), pause(600), weight(100), failure_action="pause", background_templates=("t",)
    )
    h = Harness(plan, measure=bad).live("v1")
    h.deploy("v2")
    h.run_until(700)
    s = h.state
    assert s.phase == "paused" and s.pause_reason == "failure-policy" and s.pause_until is None
    assert s.weights == {"v1": 80, "v2": 20}, "the pause policy changes no traffic, and the timer is off"


def test_consecutive_set_weight_steps_each_reach_the_router() -> None:
    """Flagger-style 1, 2, 10: the canary needs one pod for all three, so they complete in one decision;
    each weight still goes out as its own SetTraffic, in order, before the next step begins."""
    h = _rollout(weight(1), weight(2), weight(10), pause(None), replicas=4)
    h.run_for(10)
    assert h.weights() == [{"v1": 100}, {"v1": 99, "v2": 1}, {"v1": 98, "v2": 2}, {"v1": 90, "v2": 10}]
    same_decision = [r for r in h.log if sum(isinstance(e, SetTraffic) for e in r.decision.effects) == 3]
    assert len(same_decision) == 1, "the three steps completed in one decision, with three splits"


def test_abort_returns_the_step_index_to_zero() -> None:
    h = _rollout(weight(20), verify(), weight(50), pause(None))
    h.run_for(200)
    assert h.state.step_index == 3
    assert h.command("abort").state.step_index == 0


def test_a_finished_rollout_shows_the_users_step_count_not_the_implicit_final_step() -> None:
    spec = """
apiVersion: spot.io/v1beta1
kind: Strategy
metadata: {name: s}
spec:
  canary:
    steps:
      - setWeight: 20
      - pause: {duration: 10s}
---
apiVersion: spot.io/v1beta1
kind: RolloutSpec
metadata: {name: r}
spec:
  replicas: 2
  strategy: {name: s}
"""
    plan = compile_plan(load_text(spec), "r")
    assert [s.implicit for s in plan.steps] == [False, False, True], "a final 100% step is implied"
    h = Harness(plan).live("v1")
    h.deploy("v2")
    h.run_for(300)
    assert h.state.phase == "live" and h.state.stable == "v2"
    assert h.state.step_index == 2, "2 of 2 user steps"


def test_a_now_earlier_than_the_last_decision_is_clamped_and_never_rewinds_a_timer() -> None:
    """A failover to a controller whose clock lags: the same decisions as with the right clock."""
    from ebbtide.core import step
    from ebbtide.core.events import Tick

    h = _rollout(weight(20), pause(60), weight(100))
    h.run_for(10)
    s = h.state
    assert s.phase == "paused" and s.pause_until == 86.0 and s.updated_at == 26.0
    skewed = step(s, Tick(), h.now - 3600)
    assert skewed.state == s and skewed.effects == () and skewed.wake_at == 86.0
    late = step(s, Tick(), 90.0)
    assert step(s, Tick(), 90.0 - 3600 * 24).state == s, "the skewed Tick does not end the pause early"
    assert late.state.phase != "paused"
