"""Every example scenario runs and tells the story its comment promises."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from ebbtide.sim.runner import aggregate, load_scenario, simulate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


def summary(name: str, runs: int = 20):  # type: ignore[no-untyped-def]
    return aggregate(simulate(load_scenario(EXAMPLES / name), runs=runs, seed=1))


def test_every_example_loads() -> None:
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert len(files) >= 7
    for f in files:
        load_scenario(f)


def test_healthy_release_goes_live_every_time() -> None:
    s = summary("healthy-release.yaml")
    assert s.results["promoted"] == s.runs
    assert s.false_rollbacks == 0 and s.mean_bad_requests == 0
    assert s.time_to_live["p50"] is not None


def test_release_failing_at_40_is_rolled_back() -> None:
    s = summary("fails-at-40.yaml")
    assert s.results["rolled-back"] == s.runs
    assert s.false_rollbacks == 0
    assert s.time_to_detect["p50"] is not None and s.time_to_detect["p50"] >= 60  # the signal lags 1m
    assert s.time_to_rollback["max"] == 0.0  # immediate
    assert s.mean_bad_requests > 0


def test_flaky_metric_causes_false_rollbacks() -> None:
    s = summary("flaky-metric.yaml", runs=100)
    assert 0 < s.false_rollbacks < s.runs
    assert s.results["promoted"] + s.results["rolled-back"] == s.runs
    assert s.false_rollback_rate == s.false_rollbacks / s.runs


def test_crash_loop_under_pause_policy_hits_the_deadline() -> None:
    s = summary("crash-loop-pause.yaml", runs=5)
    assert s.results["rolled-back"] == s.runs
    assert any("progressDeadline" in r for r in s.rollback_reasons)
    assert s.time_to_detect["p50"] == pytest.approx(600.0)


def test_immediate_versus_new_rollout() -> None:
    immediate = summary("rollback-immediate.yaml")
    new = summary("rollback-new-rollout.yaml")
    assert immediate.results["rolled-back"] == new.results["rolled-back"] == 20
    assert immediate.time_to_rollback["p50"] == 0.0
    assert new.time_to_rollback["p50"] is not None and new.time_to_rollback["p50"] > 0


def test_argo_rollout_simulates_unchanged() -> None:
    scenario = load_scenario(EXAMPLES / "argo-rollout.yaml")
    assert scenario.plan.steps  # compiled from argoproj.io/v1alpha1 documents
    s = aggregate(simulate(scenario, runs=10, seed=1))
    assert s.results["rolled-back"] == 10 and s.false_rollbacks == 0


def test_fails_at_40_is_caught_by_the_background_verification_after_50_percent() -> None:
    scenario = load_scenario(EXAMPLES / "fails-at-40.yaml")
    for r in simulate(scenario, runs=10, seed=1, keep_timelines=True):
        reason = r.outcome.rollback_reason or ""
        assert reason.startswith("background verification 'error-watch' failed")
        assert r.outcome.result == "rolled-back" and r.outcome.time_to_rollback == 0.0
        half = next(e["t"] for e in r.timeline if e["weights"].get("v2", 0) >= 50)
        assert r.outcome.detected_at is not None and 60 < r.outcome.detected_at - half < 120


def test_new_rollout_rollback_verifies_v1_at_its_share_then_at_100() -> None:
    scenario = load_scenario(EXAMPLES / "rollback-new-rollout.yaml")
    r = next(simulate(scenario, runs=1, seed=1, keep_timelines=True, measurements=True))
    back = [e for e in r.timeline if e["canary"] == "v1" and e["initiator"] == "failure-policy"]
    # the share v1 had while each of its verifications ran (an entry shows the state after its verdict)
    verified = [
        (v["phase"], before["weights"].get("v1"))
        for before, after in pairwise(r.timeline)
        if before["canary"] == "v1"
        for v in after["verdicts"]
    ]
    assert verified == [("Successful", 50), ("Successful", 100)]
    assert r.outcome.time_to_rollback == pytest.approx(120.0)  # two one-minute verifications
    assert max(e["weights"].get("v2", 0) for e in back) <= 50


def test_retry_after_fix_is_promoted_after_a_rollback() -> None:
    s = summary("retry-after-fix.yaml")
    assert s.results["promoted"] == s.runs and s.false_rollbacks == 0
    assert sum(s.rollback_reasons.values()) == s.runs  # every run rolled back on its way to live
    assert s.time_to_live["max"] is not None and s.time_to_live["max"] < 20 * 60


def test_mid_rollout_start_goes_live_with_the_changed_replicas() -> None:
    scenario = load_scenario(EXAMPLES / "mid-rollout-start.yaml")
    for r in simulate(scenario, runs=5, seed=1, keep_timelines=True):
        first = r.timeline[0]
        assert (first["state"], first["canary"], first["step"]) == ("in-progress", "v2", 5)
        assert first["ready"]["v1"] == 8
        assert r.outcome.result == "promoted" and not r.outcome.rolled_back
        assert r.timeline[-1]["replicas"] == {"v2": 8} and r.timeline[-1]["ready"] == {"v2": 8}


def test_an_external_verification_that_never_answers_fails_with_its_fallback_in_the_timeline() -> None:
    """The run fails on a Tick (its answer is overdue), not on a measurement: the timeline shows that verdict
    and its reason, as the engine keeps the run that failed the rollout."""
    scenario = load_scenario(EXAMPLES / "external-verification-never-answers.yaml")
    r = next(simulate(scenario, runs=1, seed=11, keep_timelines=True, measurements=True))
    verdicts = [v for e in r.timeline for v in e["verdicts"]]
    assert [v["phase"] for v in verdicts] == ["Failed"]
    assert "no answer in time (fallback: fail)" in verdicts[0]["message"]
