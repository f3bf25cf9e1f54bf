"""Blue-green in the simulator, the five scenarios users know (examples/scenarios/blue-green*.yaml):
a failed post-promotion analysis with rollback (blue-green.yaml), a healthy promotion, a failed pre-promotion
analysis, a manual promote after a pause and an abort during the preview (the last two over the Argo Rollout
with autoPromotionEnabled: false in examples/manifests/argo-blue-green.yaml).

What a user expects is checked on every run's timeline: who serves the traffic at the end, that the preview
never took a production request before its promotion, where a rollback went, and the notifications sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ebbtide.sim.outcome import RunResult
from ebbtide.sim.runner import aggregate, load_scenario, simulate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCENARIO = EXAMPLES / "scenarios" / "blue-green.yaml"


def runs(name: str, n: int = 10) -> list[RunResult]:
    return list(simulate(load_scenario(EXAMPLES / "scenarios" / name), runs=n, seed=1, keep_timelines=True))


def preview_only_until_the_switch(r: RunResult) -> list[dict[str, Any]]:
    """The timeline entries up to the switch; asserts that in all of them blue took every request, and that
    the switch (if any) gave green all of them at once."""
    tl = r.timeline
    switch = next((i for i, e in enumerate(tl) if e["weights"].get("v2")), len(tl))
    assert all(e["weights"] == {"v1": 100} for e in tl[:switch]), "the preview took production traffic"
    assert all(e["weights"] == {"v2": 100} for e in tl[switch:] if e["weights"].get("v2"))
    return tl[:switch]


def notified(r: RunResult) -> list[tuple[str, str]]:
    return [(n["event"], n["payload"]["revision"]) for n in r.notifications]


def test_post_promotion_failure_switches_back_to_blue_at_once() -> None:
    for r in simulate(load_scenario(SCENARIO), runs=5, seed=1, keep_timelines=True):
        tl = r.timeline
        assert r.outcome.result == "rolled-back" and r.outcome.live_revision == "v1"
        assert r.outcome.time_to_rollback == 0.0 and not r.outcome.false_rollback
        assert (r.outcome.rollback_reason or "").startswith("verification 'success-rate' failed")
        # the preview: 2 replicas of v2 beside the 4 of v1, no production traffic
        preview = [e for e in tl if e["replicas"].get("v2") == 2]
        assert preview and all(e["weights"] == {"v1": 100} for e in preview)
        # the switch: all traffic at once, only once v2 runs 4 ready replicas, v1 still full
        switched = [e for e in tl if e["weights"].get("v2", 0) > 0]
        assert switched and all(e["weights"] == {"v2": 100} for e in switched)
        assert switched[0]["ready"] == {"v1": 4, "v2": 4}
        # v1 kept its 4 replicas from the deploy to the end of the rollout
        assert all(e["replicas"].get("v1") == 4 for e in tl)
        # detected on the post-promotion analysis' third measurement (the signal lags a minute)
        assert r.outcome.time_to_detect == pytest.approx(120.0)
        back = next(e for e in tl if e["t"] > switched[-1]["t"])
        assert back["weights"] == {"v1": 100} and back["t"] == pytest.approx(switched[0]["t"] + 120.0)
        # the failed v2 is scaled down abortScaleDownDelaySeconds (30 s) after the rollback
        assert tl[-1]["replicas"] == {"v1": 4} and tl[-1]["t"] == pytest.approx(back["t"] + 30.0)


def test_a_healthy_blue_green_release_goes_live(tmp_path: Path) -> None:
    doc = yaml.safe_load(SCENARIO.read_text())
    doc["spec"]["specs"] = [str(EXAMPLES / "specs" / "blue-green.yaml")]
    del doc["spec"]["revisions"]["v2"]["misbehaveAt"]
    path = tmp_path / "healthy.yaml"
    path.write_text(yaml.safe_dump(doc))
    results = list(simulate(load_scenario(path), runs=10, seed=1, keep_timelines=True))
    s = aggregate(results)
    assert s.results["promoted"] == s.runs and s.false_rollbacks == 0 and s.mean_bad_requests == 0
    for r in results:
        tl = r.timeline
        deployed = tl[1]["t"]
        switch = next(e for e in tl if e["weights"] == {"v2": 100})
        # preview ready, 3 smoke measurements 20 s apart, then autoPromotionSeconds (60 s) before the switch
        assert switch["t"] - deployed >= 40 + 60
        live = next(e for e in tl if e["state"] == "live" and e["t"] > deployed)
        assert live["t"] == pytest.approx(switch["t"] + 240.0)  # 5 post-promotion measurements, 1 min apart
        # blue is scaled down scaleDownDelaySeconds (120 s) after the rollout finished
        assert tl[-1]["replicas"] == {"v2": 4} and tl[-1]["t"] == pytest.approx(live["t"] + 120.0)


def test_healthy_promotion_example() -> None:
    for r in runs("blue-green-healthy.yaml"):
        o = r.outcome
        assert (o.result, o.live_revision, o.rolled_back, o.bad_requests) == ("promoted", "v2", False, 0.0)
        before = preview_only_until_the_switch(r)
        assert any(e["replicas"].get("v2") == 2 for e in before), "green came up on the preview, 2 replicas"
        assert r.timeline[-1]["weights"] == {"v2": 100} and r.timeline[-1]["replicas"] == {"v2": 4}
        assert notified(r) == [
            ("rollout-started", "v2"),
            ("rollout-paused", "v2"),
            ("rollout-finished", "v2"),
        ]


def test_failed_pre_promotion_analysis_example() -> None:
    for r in runs("blue-green-preview-fails.yaml"):
        o = r.outcome
        assert (o.result, o.live_revision, o.failed_revision) == ("rolled-back", "v1", "v2")
        assert (o.rollback_reason or "").startswith("verification 'smoke-test' failed")
        assert o.bad_requests == 0.0 and not o.false_rollback, "v2 never served a production request"
        assert len(preview_only_until_the_switch(r)) == len(r.timeline), "never switched"
        assert notified(r) == [
            ("rollout-started", "v2"),
            ("rollout-failed", "v2"),
            ("rollout-rolled-back", "v1"),
        ]
        # green's preview pods go abortScaleDownDelaySeconds (30 s) after the abort; blue never shrank
        assert r.timeline[-1]["replicas"] == {"v1": 4}
        assert r.timeline[-1]["t"] == pytest.approx(o.detected_at + 30.0)
        assert all(e["replicas"].get("v1") == 4 for e in r.timeline)


def test_manual_promote_after_a_pause_example() -> None:
    for r in runs("blue-green-manual-promote.yaml"):
        o = r.outcome
        assert (o.result, o.live_revision, o.rolled_back) == ("promoted", "v2", False)
        before = preview_only_until_the_switch(r)
        paused = [e for e in before if e["state"] == "paused"]
        assert paused and all(e["pause_until"] is None for e in paused), "an indefinite pause on the preview"
        # the switch comes with the promote at 10 minutes, not before; the full preview was ready by then
        switch = r.timeline[len(before)]
        assert switch["t"] == 600.0 and switch["event"] == "command promote"
        assert switch["ready"] == {"v1": 3, "v2": 3}
        assert notified(r) == [
            ("rollout-started", "v2"),
            ("rollout-paused", "v2"),
            ("rollout-promoted", "v2"),
            ("rollout-finished", "v2"),
        ]
        # live after the post-promotion analysis (5 measurements a minute apart); blue goes 5 minutes later
        live = next(e for e in r.timeline if e["state"] == "live" and e["t"] > 600.0)
        assert live["t"] == pytest.approx(600.0 + 240.0)
        assert r.timeline[-1]["replicas"] == {"v2": 3} and r.timeline[-1]["t"] == pytest.approx(
            live["t"] + 300
        )


def test_abort_during_the_preview_example() -> None:
    for r in runs("blue-green-abort-preview.yaml"):
        o = r.outcome
        assert (o.result, o.live_revision, o.rollback_reason) == ("rolled-back", "v1", "aborted by user")
        assert o.bad_requests == 0.0 and len(preview_only_until_the_switch(r)) == len(r.timeline)
        aborted = next(e for e in r.timeline if e["event"] == "command abort")
        assert aborted["t"] == 360.0 and aborted["state"] == "live" and aborted["stable"] == "v1"
        assert notified(r) == [
            ("rollout-started", "v2"),
            ("rollout-paused", "v2"),
            ("rollout-rolled-back", "v1"),
        ]
        # green's preview pods go abortScaleDownDelaySeconds (60 s) after the abort
        assert r.timeline[-1]["replicas"] == {"v1": 3} and r.timeline[-1]["t"] == pytest.approx(420.0)


def test_the_post_promotion_failure_example_notifies_the_rollback_to_blue() -> None:
    for r in runs("blue-green.yaml", n=3):
        preview_only_until_the_switch(r)
        assert notified(r)[-2:] == [("rollout-failed", "v2"), ("rollout-rolled-back", "v1")]
        assert r.timeline[-1]["weights"] == {"v1": 100}
