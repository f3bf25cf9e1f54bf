"""Blue-green in the simulator: examples/scenarios/blue-green.yaml (v2 fails once it takes all the traffic)
and the same release healthy, over the Argo Rollout in examples/specs/blue-green.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ebbtide.sim.runner import aggregate, load_scenario, simulate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCENARIO = EXAMPLES / "scenarios" / "blue-green.yaml"


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
