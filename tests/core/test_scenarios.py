"""The rollout and rollback scenarios users know, as examples over the engine (tests/core/helpers.py).

Each test asserts concrete phases, weights, replicas and notifications (Ocean CD webhook event names).
Default plan (helpers.canary_plan): 4 replicas, 20% -> verify -> 50% -> pause 60s -> 80% -> verify -> 100%,
template ``t`` = one metric, 3 measurements 10 s apart, ``result < 0.05``; replicas are ready 5 s after
they are asked for.
"""

from __future__ import annotations

import pytest

from ebbtide.core import step
from ebbtide.core.effects import ScaleRevision, SetTraffic, StartMeasurement
from ebbtide.core.events import Command
from ebbtide.core.plan import HeaderMatch, HeaderRoutePlan, MetricPlan, Plan, StepPlan
from tests.core.helpers import (
    BAD,
    ERROR,
    GOOD,
    Harness,
    by_revision,
    canary_plan,
    pause,
    template,
    verify,
    weight,
)


def rollout(plan: Plan, measure=None, **kw) -> Harness:  # type: ignore[no-untyped-def]
    """v1 live and ready, then v2 deployed (at t=21)."""
    h = Harness(plan, measure=measure or (lambda rev, m, t: GOOD), **kw).live("v1")
    h.deploy("v2")
    return h


def bad_after(t0: float, revision: str = "v2"):  # type: ignore[no-untyped-def]
    """``revision`` is healthy until ``t0``, then fails every measurement."""
    return lambda rev, metric, now: BAD if rev == revision and now > t0 else GOOD


def rollout_ids(h: Harness, name: str) -> list[int]:
    return [p["rolloutId"] for _, n, p in h.notifications() if n == name]


def assert_never_gains(weights: list[dict[str, int]], rev: str) -> None:
    shares = [w.get(rev, 0) for w in weights]
    assert shares == sorted(shares, reverse=True), f"{rev} gained traffic: {shares}"


# ---------------------------------------------------------------------------------------------------
# first deploy, healthy rollouts
# ---------------------------------------------------------------------------------------------------


def test_first_deploy_goes_live_at_once() -> None:
    h = Harness(canary_plan())
    d = h.deploy("v1")
    assert d.state.phase == "live" and d.state.stable == d.state.desired == "v1"
    assert d.state.weights == {"v1": 100} and d.state.replicas == {"v1": 4}
    assert ScaleRevision(revision="v1", replicas=4) in d.effects
    assert h.notified() == [], "no rollout, no rollout notifications"
    assert d.state.history[-1].reached_live


def test_healthy_canary_walks_every_step_to_live() -> None:
    h = rollout(canary_plan())
    h.run_until(1000)
    assert h.state.phase == "live" and h.state.stable == "v2" and not h.state.degraded
    assert h.weights() == [
        {"v1": 100},
        {"v1": 80, "v2": 20},
        {"v1": 50, "v2": 50},
        {"v1": 20, "v2": 80},
        {"v2": 100},
    ]
    assert h.notified() == ["rollout-started", "rollout-paused", "rollout-finished"]
    assert h.phases() == [
        "live",
        "in-progress",
        "verifying",
        "in-progress",
        "paused",  # the timed pause step shows as paused (pause-step), as in Argo and Ocean CD
        "in-progress",
        "verifying",
        "live",
    ]
    # v1 scaled down scaleDownDelaySeconds (30 s) after v2 took all traffic
    assert h.state.replicas == {"v2": 4}


def test_rolling_strategy_takes_all_traffic_at_start_then_verifies() -> None:
    plan = Plan(
        strategy="rolling",
        steps=(weight(100), verify(), pause(30)),
        templates={"t": template()},
        replicas=3,
    )
    h = rollout(plan)
    h.run_for(5)  # v2 ready
    assert h.state.phase == "verifying"
    assert h.state.weights == {"v2": 100}
    assert h.state.replicas["v2"] == 3
    h.run_until(1000)
    assert h.state.phase == "live" and h.state.stable == "v2"
    assert h.weights() == [{"v1": 100}, {"v2": 100}]


def test_header_route_step_routes_matching_requests_to_the_canary() -> None:
    route = HeaderRoutePlan(name="beta", matches=(HeaderMatch(header_name="x-beta", exact="1"),))
    plan = canary_plan(
        weight(10), StepPlan(kind="setHeaderRoute", header_route=route), pause(60), weight(100)
    )
    h = rollout(plan)
    h.run_for(10)
    assert h.state.phase == "paused" and h.state.header_routes == (route,)
    traffic = [e for r in h.log for e in r.decision.effects if isinstance(e, SetTraffic) and e.header_routes]
    assert traffic and traffic[-1].header_routes == (route,) and traffic[-1].header_route_revision == "v2"
    h.run_until(1000)
    assert h.state.phase == "live" and h.state.header_routes == ()
    last = [e for r in h.log for e in r.decision.effects if isinstance(e, SetTraffic)][-1]
    assert last.header_routes == () and last.weights == {"v2": 100}


def test_revision_history_is_bounded_by_revision_history_limit() -> None:
    h = Harness(canary_plan(weight(100), revision_history_limit=3)).live("v1")
    for rev in ("v2", "v3", "v4", "v5"):
        h.deploy(rev)
        h.run_for(100)
        assert h.state.stable == rev
    assert [r.revision for r in h.state.history] == ["v3", "v4", "v5"]
    assert h.state.last_successful == "v5"


# ---------------------------------------------------------------------------------------------------
# failure policy rollback: immediate vs newRollout
# ---------------------------------------------------------------------------------------------------


def test_immediate_rollback_stable_takes_all_traffic_in_the_same_decision() -> None:
    h = rollout(canary_plan(), measure=by_revision({"v2"}))
    h.run_until(1000)
    failing = next(
        r for r in h.log if any(getattr(e, "event", None) == "rollout-failed" for e in r.decision.effects)
    )
    assert failing.t == 26.0, "the first measurement at 20% fails"
    traffic = [e for e in failing.decision.effects if isinstance(e, SetTraffic)]
    assert traffic and traffic[0].weights == {"v1": 100}, "stable takes 100% in the failing decision"
    s = h.state
    assert s.phase == "live" and s.stable == "v1" and s.desired == "v2" and s.degraded
    assert h.notified() == ["rollout-started", "rollout-failed", "rollout-rolled-back"]
    assert set(rollout_ids(h, "rollout-rolled-back")) == {1}, "immediate: the same rollout"
    assert s.record("v2") is not None and s.record("v2").status == "failed"  # type: ignore[union-attr]
    # the failed canary is scaled down abortScaleDownDelaySeconds (30 s) later
    assert h.at(55).replicas.get("v2") == 1 and h.at(56).replicas.get("v2") is None


def test_new_rollout_rollback_takes_the_last_successful_revision_through_the_strategy() -> None:
    # the 20% verification passes (t=26..46); v2 fails at the 80% verification (t=116)
    h = rollout(canary_plan(rollback_mode="newRollout"), measure=bad_after(100))
    h.run_until(1000)
    failed_at = 116.0
    started = [p for _, n, p in h.notifications() if n == "rollout-started"]
    assert [p["rolloutId"] for p in started] == [1, 2]
    assert started[1]["initiator"] == "failure-policy" and started[1]["originalRolloutId"] == 1
    assert started[1]["revision"] == "v1"
    # v1 (20% when v2 failed) climbs from its share through the strategy's weights: 50 at once, then 80, 100
    after = h.weights_from("rollout-failed")
    assert [w.get("v1", 0) for w in after] == [50, 80, 100]
    assert_never_gains(after, "v2")
    assert h.notified()[-2:] == ["rollout-finished", "rollout-rolled-back"]
    assert h.payload("rollout-rolled-back")["originalRolloutId"] == 1
    s = h.state
    assert s.phase == "live" and s.stable == "v1" and s.degraded and s.desired == "v2"
    assert s.record("v2").status == "rolled-back"  # type: ignore[union-attr]
    # the linked rollout verifies v1 like any new revision (the 80% verification ran again)
    runs = [
        e.verification
        for r in h.log
        if r.t > failed_at
        for e in r.decision.effects
        if isinstance(e, StartMeasurement)
    ]
    assert runs and all(run.startswith("2-") for run in runs)


def test_same_failure_immediate_vs_new_rollout() -> None:
    immediate = rollout(canary_plan(rollback_mode="immediate"), measure=bad_after(100))
    immediate.run_until(1000)
    new = rollout(canary_plan(rollback_mode="newRollout"), measure=bad_after(100))
    new.run_until(1000)
    assert immediate.weights_from("rollout-failed") == [{"v1": 100}]
    assert [w["v2"] for w in new.weights_from("rollout-failed")[:-1]] == [50, 20]
    for h in (immediate, new):
        assert h.state.phase == "live" and h.state.stable == "v1" and h.state.degraded
        assert_never_gains(h.weights_from("rollout-failed"), "v2")


# ---------------------------------------------------------------------------------------------------
# other failure policies, deadlines
# ---------------------------------------------------------------------------------------------------


def test_pause_policy_pauses_with_weights_unchanged_then_promote_continues() -> None:
    h = rollout(canary_plan(failure_action="pause"), measure=by_revision({"v2"}))
    h.run_until(500)
    s = h.state
    assert s.phase == "paused" and s.pause_reason == "failure-policy"
    assert s.weights == {"v1": 80, "v2": 20}, "pause changes no traffic"
    assert h.notified() == ["rollout-started", "rollout-paused"]
    assert h.payload("rollout-paused")["reason"] == "failure-policy"
    d = h.command("promote")
    assert d.rejected is None and d.state.phase == "in-progress"
    h.measure = lambda rev, m, t: GOOD
    h.run_until(2000)
    assert h.state.phase == "live" and h.state.stable == "v2"
    assert "rollout-promoted" in h.notified()


def test_pause_policy_then_abort_rolls_back() -> None:
    h = rollout(canary_plan(failure_action="pause"), measure=by_revision({"v2"}))
    h.run_until(500)
    d = h.command("abort")
    assert d.rejected is None and d.state.phase in ("rolling-back", "live")
    assert d.state.weights == {"v1": 100}
    h.run_until(1000)
    assert h.state.phase == "live" and h.state.stable == "v1" and h.state.degraded
    assert h.notified()[-1] == "rollout-rolled-back"


def test_promote_policy_continues_and_records_the_failure() -> None:
    h = rollout(canary_plan(failure_action="promote"), measure=by_revision({"v2"}))
    h.run_until(1000)
    assert h.state.phase == "live" and h.state.stable == "v2"
    assert h.notified() == ["rollout-started", "rollout-paused", "rollout-finished"]
    recorded = h.payload("rollout-finished")["recordedFailures"]
    assert len(recorded) == 2 and all("error-rate" in r for r in recorded)


def test_progress_deadline_rolls_back_a_crash_looping_canary_even_under_pause_policy() -> None:
    plan = canary_plan(failure_action="pause", progress_deadline=120)
    h = rollout(plan, crashing={"v2"})
    h.run_until(140)
    assert h.state.phase == "in-progress" and h.state.weights == {"v1": 100}, "no traffic to unready v2"
    h.run_until(1000)
    s = h.state
    assert s.phase == "live" and s.stable == "v1" and s.degraded
    assert h.payload("rollout-failed")["reason"].startswith("ProgressDeadlineExceeded")
    failed_at = next(t for t, n, _ in h.notifications() if n == "rollout-failed")
    assert failed_at == 21 + 120
    assert "rollout-paused" not in h.notified()
    assert h.weights() == [{"v1": 100}], "v2 never served traffic"


def _failed_rollback() -> tuple[Harness, float]:
    """v2 at 75% with dynamicStableScale (v1 scaled to 1 replica), then aborted while v1's pods crash-loop."""
    plan = canary_plan(
        weight(25), weight(75), pause(None), weight(100), dynamic_stable_scale=True, progress_deadline=100
    )
    h = rollout(plan, gradual=True)
    h.run_until(200)
    assert h.state.replicas["v1"] == 1
    h.crashing.add("v1")  # v1's new pods crash-loop: the rollback cannot complete
    t = h.now
    h.command("abort")
    h.run_until(t + 500)
    return h, t


def test_rollback_fails_when_the_target_never_becomes_ready() -> None:
    h, t = _failed_rollback()
    s = h.state
    assert s.phase == "failed" and s.failure_reason and "not ready" in s.failure_reason
    assert h.notified(since=t) == ["rollout-failed-to-roll-back"]
    failed_at = next(tt for tt, n, _ in h.notifications() if n == "rollout-failed-to-roll-back")
    assert failed_at == t + 100, "progressDeadlineSeconds after the rollback began"
    # from a resting failed state, only retry, deploy, rollback and abort act
    for action in ("pause", "promote", "promoteFull", "resume"):
        assert h.command(action).rejected, action


def test_failed_rollback_keeps_the_serving_canary_and_its_traffic() -> None:
    h, _ = _failed_rollback()
    s = h.state
    assert s.phase == "failed"
    assert s.replicas.get("v2") == 3, "a revision serving traffic is not scaled down"
    assert s.weights == {"v1": 25, "v2": 75}, "traffic stays where the ready capacity is"


# ---------------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------------


def test_abort_after_full_promotion_is_a_no_op() -> None:
    h = rollout(canary_plan())
    h.run_until(1000)
    before = h.state
    d = h.command("abort")
    assert d.rejected is None and d.effects == () and d.state == before


def test_abort_mid_rollout_rolls_back_to_stable() -> None:
    h = rollout(canary_plan())
    h.run_until(60)  # at 50%
    assert h.state.weights == {"v1": 50, "v2": 50}
    d = h.command("abort")
    assert d.rejected is None and d.state.weights == {"v1": 100}
    h.run_until(1000)
    assert h.state.phase == "live" and h.state.stable == "v1" and h.state.degraded
    assert h.state.record("v2").status == "rolled-back"  # type: ignore[union-attr]


def test_retry_after_rollback_reruns_the_rolled_back_revision() -> None:
    h = rollout(canary_plan(), measure=bad_after(0))
    h.run_until(500)
    assert h.state.phase == "live" and h.state.degraded
    h.measure = lambda rev, m, t: GOOD
    d = h.command("retry")
    assert d.rejected is None and d.state.phase == "in-progress" and d.state.canary == "v2"
    assert d.state.initiator == "retry" and d.state.original_rollout_id == 1 and d.state.rollout_id == 2
    h.run_until(2000)
    assert h.state.phase == "live" and h.state.stable == "v2" and not h.state.degraded


def test_retry_is_rejected_unless_a_rollback_completed() -> None:
    h = rollout(canary_plan())
    h.run_until(30)
    mid = h.command("retry")
    assert mid.rejected and "retry" in mid.rejected and mid.state == h.log[-2].decision.state
    h.run_until(1000)
    live = h.command("retry")
    assert live.rejected, "a successful rollout has nothing to retry"


def test_rollback_after_success_runs_the_previous_revision_through_all_phases() -> None:
    h = rollout(canary_plan())
    h.run_until(1000)
    t = h.now
    d = h.command("rollback")
    s = d.state
    assert d.rejected is None and s.phase == "in-progress" and s.canary == "v1" and s.stable == "v2"
    assert s.initiator == "rollback" and s.original_rollout_id == 1 and s.desired == "v1"
    h.run_until(3000)
    assert h.state.phase == "live" and h.state.stable == "v1" and not h.state.degraded
    assert [w.get("v1", 0) for w in h.weights(since=t)] == [20, 50, 80, 100]
    assert any(isinstance(e, StartMeasurement) for r in h.log if r.t >= t for e in r.decision.effects)


def test_rollback_within_rollback_window_is_fast_tracked() -> None:
    h = rollout(canary_plan(rollback_window=2))
    h.run_until(1000)
    t = h.now
    d = h.command("rollback")
    s = d.state
    assert d.rejected is None and s.phase == "rolling-back"
    assert s.rollback is not None and s.rollback.fast_track and s.rollback.target == "v1"
    assert s.replicas["v1"] == 4, "the target is scaled back up"
    h.run_until(3000)
    assert h.state.phase == "live" and h.state.stable == "v1" and not h.state.degraded
    assert h.weights(since=t) == [{"v1": 100}], "no steps"
    assert not any(isinstance(e, StartMeasurement) for r in h.log if r.t >= t for e in r.decision.effects)


def test_rollback_to_an_older_revision_in_history() -> None:
    h = Harness(canary_plan(weight(50), weight(100))).live("v1")
    for rev in ("v2", "v3"):
        h.deploy(rev)
        h.run_for(200)
    assert h.state.stable == "v3"
    d = h.command("rollback", "v1")
    assert d.rejected is None and d.state.canary == "v1" and d.state.desired == "v1"
    h.run_for(500)
    assert h.state.phase == "live" and h.state.stable == "v1"


def test_rollback_to_a_revision_not_in_history_is_rejected() -> None:
    h = rollout(canary_plan())
    h.run_until(1000)
    before = h.state
    d = h.command("rollback", "v9")
    assert d.rejected and "v9" in d.rejected and d.state == before and d.effects == ()


@pytest.mark.parametrize(
    ("when", "action", "words"),
    [
        ("live", "pause", "pause"),
        ("live", "promote", "promote"),
        ("live", "promoteFull", "promote"),
        ("live", "resume", "not paused"),
        ("live", "retry", "retry"),
        ("in-progress", "resume", "not paused"),
        ("rolling-back", "promote", "rolling-back"),
        ("rolling-back", "abort", "rollback"),
        ("rolling-back", "pause", "rolling-back"),
        ("paused", "pause", "paused"),
        ("paused-step", "resume", "promote"),
        ("paused-timed", "resume", "promote skips it"),
        ("paused-timed", "abort", None),
    ],
)
def test_rejected_commands_change_nothing_and_say_why(when: str, action: str, words: str | None) -> None:
    plan = canary_plan(
        weight(25),
        weight(75),
        pause(None) if when == "paused-step" else pause(600),
        weight(100),
        dynamic_stable_scale=True,
    )
    h = Harness(plan, gradual=True).live("v1")
    if when != "live":
        h.deploy("v2")
        h.run_for(3 if when == "in-progress" else 40)  # in-progress: v2's first pod is not ready yet
    if when == "paused":
        h.command("pause")
    if when == "rolling-back":
        h.command("abort")  # v1 was scaled down to its 25%: the rollback waits for its pods
    expected = {"paused-step": "paused", "paused-timed": "paused"}.get(when, when)
    assert h.state.phase == expected
    before = h.state
    d = step(before, Command(action=action), h.now)  # type: ignore[arg-type]
    if words is None:
        assert d.rejected is None, d.rejected  # the contrast: this command is accepted at that moment
        return
    assert d.rejected is not None and words in d.rejected, d.rejected
    assert d.state == before and d.effects == ()


def test_promote_while_rolling_back_is_rejected() -> None:
    plan = canary_plan(weight(25), weight(75), pause(None), weight(100), dynamic_stable_scale=True)
    h = rollout(plan, gradual=True)
    h.run_until(200)
    h.command("abort")
    assert h.state.phase == "rolling-back"
    d = h.command("promote")
    assert d.rejected and "rolling-back" in d.rejected and d.effects == ()


def test_manual_pause_during_a_timed_pause_is_not_resumed_by_the_timer() -> None:
    h = rollout(canary_plan(weight(20), pause(60), weight(100)))
    h.run_for(10)
    assert h.state.phase == "paused" and h.state.pause_reason == "pause-step"
    assert h.state.pause_until == 26 + 60
    d = h.command("pause")
    assert d.state.phase == "paused" and d.state.pause_reason == "manual" and d.state.pause_until is None
    h.run_until(500)
    assert h.state.phase == "paused" and h.state.weights == {"v1": 80, "v2": 20}
    d = h.command("resume")
    assert d.rejected is None and d.state.phase == "paused" and d.state.pause_reason == "pause-step"
    assert d.state.pause_until == h.now + 60, "resume restarts the timed pause from its full duration"
    h.run_until(h.now + 59)
    assert h.state.phase == "paused"
    h.run_until(h.now + 10)
    assert h.state.phase == "live"


# ---------------------------------------------------------------------------------------------------
# verification: inconclusive, dry run, limits
# ---------------------------------------------------------------------------------------------------


def test_inconclusive_verification_pauses_then_resume_restarts_it() -> None:
    h = rollout(canary_plan(), measure=lambda rev, m, t: None if rev == "v2" else GOOD)
    h.run_until(300)
    s = h.state
    assert s.phase == "paused" and s.pause_reason == "inconclusive"
    assert s.weights == {"v1": 80, "v2": 20}
    old_runs = {r.id for r in s.verifications}
    h.measure = lambda rev, m, t: GOOD
    d = h.command("resume")
    assert d.state.phase == "verifying"
    new_runs = {e.verification for e in d.effects if isinstance(e, StartMeasurement)}
    assert new_runs and not (new_runs & old_runs), "the verification restarts with a new run"
    h.run_until(2000)
    assert h.state.phase == "live" and h.state.stable == "v2"


def test_inconclusive_verification_then_promote_skips_it() -> None:
    h = rollout(canary_plan(), measure=lambda rev, m, t: None if rev == "v2" else GOOD)
    h.run_until(300)
    assert h.state.pause_reason == "inconclusive" and h.state.step_index == 1
    h.measure = lambda rev, m, t: GOOD
    d = h.command("promote")
    assert d.state.phase == "in-progress" and d.state.step_index == 2
    assert not any(isinstance(e, StartMeasurement) for e in d.effects)
    h.run_until(2000)
    assert h.state.phase == "live"


def test_a_failing_dry_run_metric_changes_nothing() -> None:
    dry = MetricPlan(name="latency", success_condition="result < 100", dry_run=True)
    plan = canary_plan(
        templates={"t": template(MetricPlan(name="error-rate", success_condition="result < 0.05"), dry)}
    )
    h = rollout(plan, measure=lambda rev, m, t: 500.0 if m == "latency" else GOOD)
    h.run_until(1000)
    assert h.state.phase == "live" and h.state.stable == "v2"
    assert "rollout-failed" not in h.notified()
    baseline = rollout(
        canary_plan(
            templates={"t": template(MetricPlan(name="error-rate", success_condition="result < 0.05"))}
        )
    )
    baseline.run_until(1000)
    assert h.weights() == baseline.weights()


LIMITS = {
    "failure_limit": (BAD, "rollout-failed"),
    "consecutive_error_limit": (ERROR, "rollout-failed"),
    "inconclusive_limit": (None, "rollout-paused"),
}


@pytest.mark.parametrize("limit", sorted(LIMITS))
@pytest.mark.parametrize("n", [0, 1, 2])
def test_limits_trip_strictly_above_their_value(limit: str, n: int) -> None:
    bad_value, verdict_event = LIMITS[limit]
    metric = MetricPlan(
        name="error-rate",
        interval=10.0,
        count=6,
        success_condition="result < 0.05",
        **{limit: n},  # type: ignore[arg-type]
    )

    def plan() -> Plan:
        return canary_plan(weight(20), verify(), weight(100), templates={"t": template(metric)})

    def measure(k: int):  # type: ignore[no-untyped-def]
        calls: list[int] = []

        def f(rev: str, m: str, t: float) -> object:
            if rev != "v2":
                return GOOD
            calls.append(1)
            return bad_value if len(calls) <= k else GOOD

        return f

    passing = rollout(plan(), measure=measure(n))
    passing.run_until(2000)
    assert passing.state.phase == "live" and passing.state.stable == "v2", f"{n} x {limit}: passes"
    tripping = rollout(plan(), measure=measure(n + 1))
    tripping.run_until(2000)
    assert verdict_event in tripping.notified(), f"{n + 1} x {limit}: trips"
    assert tripping.state.stable == "v1"


# ---------------------------------------------------------------------------------------------------
# replicas: dynamicStableScale, scale-down delays, supersede, rollback progress
# ---------------------------------------------------------------------------------------------------


def test_dynamic_stable_scale_abort_steps_canary_weight_down_as_stable_becomes_ready() -> None:
    plan = canary_plan(weight(25), weight(75), pause(None), weight(100), dynamic_stable_scale=True)
    h = rollout(plan, gradual=True)
    h.run_until(200)
    s = h.state
    assert s.phase == "paused" and s.weights == {"v1": 25, "v2": 75}
    assert s.replicas == {"v1": 1, "v2": 3}, "stable scaled down to its share"
    t = h.now
    d = h.command("abort")
    assert d.state.phase == "rolling-back"
    assert d.state.weights == {"v1": 25, "v2": 75}, "stable takes no more than its ready capacity"
    assert d.state.replicas["v1"] == 4
    h.run_until(t + 100)
    steps = h.weights(since=t)
    assert [w.get("v1") for w in steps] == [50, 75, 100], "one ready replica = 25% more"
    assert_never_gains(steps, "v2")
    assert h.state.phase == "live" and h.state.stable == "v1"


def test_rollback_progress_fraction_while_rolling_back() -> None:
    plan = canary_plan(weight(25), weight(75), pause(None), weight(100), dynamic_stable_scale=True)
    h = rollout(plan, gradual=True)
    h.run_until(200)
    assert h.state.rollback_progress is None
    t = h.now
    h.command("abort")
    assert h.state.rollback_progress == 0.25
    h.run_until(t + 5)
    assert h.state.rollback_progress == 0.5
    h.run_until(t + 10)
    assert h.state.rollback_progress == 0.75
    h.run_until(t + 15)
    assert h.state.phase == "live" and h.state.rollback_progress is None


@pytest.mark.parametrize(("delay", "abort_delay"), [(30.0, 30.0), (0.0, 90.0), (120.0, 0.0)])
def test_scale_down_delays_are_respected(delay: float, abort_delay: float) -> None:
    plan = canary_plan(scale_down_delay=delay, abort_scale_down_delay=abort_delay)
    ok = rollout(plan)
    ok.run_until(2000)
    finished_at = next(t for t, n, _ in ok.notifications() if n == "rollout-finished")
    scaled = [
        r.t for r in ok.log for e in r.decision.effects if e == ScaleRevision(revision="v1", replicas=0)
    ]
    assert scaled == [finished_at + delay], "old stable scaled down after scaleDownDelaySeconds"
    bad = rollout(plan, measure=by_revision({"v2"}))
    bad.run_until(2000)
    failed_at = next(t for t, n, _ in bad.notifications() if n == "rollout-failed")
    scaled = [
        r.t for r in bad.log for e in r.decision.effects if e == ScaleRevision(revision="v2", replicas=0)
    ]
    assert scaled == [failed_at + abort_delay], "aborted canary scaled down after abortScaleDownDelaySeconds"


def test_new_revision_mid_rollout_supersedes_the_running_one() -> None:
    h = rollout(canary_plan())
    h.run_until(60)
    assert h.state.weights == {"v1": 50, "v2": 50} and h.state.rollout_id == 1
    d = h.deploy("v3")
    s = d.state
    assert s.phase == "in-progress" and s.canary == "v3" and s.stable == "v1" and s.step_index == 0
    assert s.rollout_id == 2 and s.original_rollout_id == 1
    assert h.notified(since=60) == ["rollout-canceled", "rollout-started"]
    assert h.payload("rollout-started")["originalRolloutId"] == 1
    assert s.record("v2").status == "superseded"  # type: ignore[union-attr]
    h.run_until(2000)
    assert h.state.phase == "live" and h.state.stable == "v3"
    # v2 kept its replicas (2, for 50%) as long as it served traffic
    for r in h.log:
        st = r.decision.state
        if r.t >= 60 and st.weights.get("v2", 0) > 0:
            assert st.replicas.get("v2", 0) == 2, (r.t, st.weights, st.replicas)
    assert_never_gains(h.weights(since=60), "v2")
    assert "v2" not in h.state.replicas
