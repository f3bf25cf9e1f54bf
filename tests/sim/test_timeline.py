"""What a run's timeline carries: rollout ids, desired/degraded, pause ends, the state at t=0, and (with
``measurements``) every measurement and every verification verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from ebbtide.sim.runner import replay_run, simulate

from .scenarios import HEALTHY, load

ENTRY_KEYS = {
    "t",
    "state",
    "rollout_id",
    "initiator",
    "stable",
    "canary",
    "desired",
    "degraded",
    "weights",
    "replicas",
    "ready",
    "step",
    "pause_reason",
    "pause_until",
    "event",
    "rejected",
    "measurement",
    "verdicts",
}


def test_entries_carry_rollout_desired_degraded_and_pause_end(tmp_path: Path) -> None:
    r = replay_run(load(tmp_path), 1, 0)  # v2 fails its first verification: immediate rollback
    for e in r.timeline:
        assert set(e) == ENTRY_KEYS
    deploy = next(e for e in r.timeline if e["event"] == "deploy v2")
    assert deploy["rollout_id"] == 1 and deploy["desired"] == "v2" and deploy["canary"] == "v2"
    last = r.timeline[-1]
    assert last["stable"] == "v1" and last["desired"] == "v2" and last["degraded"] is True


def test_pause_end_is_in_the_timeline(tmp_path: Path) -> None:
    r = replay_run(load(tmp_path, revisions={"v1": HEALTHY, "v2": HEALTHY}), 1, 0)
    paused = [e for e in r.timeline if e["pause_until"] is not None]
    assert paused, "the strategy's 1m pause shows its end"
    assert paused[0]["pause_until"] == pytest.approx(paused[0]["t"] + 60.0)


def test_the_first_entry_is_the_state_the_run_starts_from(tmp_path: Path) -> None:
    first = replay_run(load(tmp_path), 1, 0).timeline[0]
    assert first["t"] == 0.0 and first["event"] == "start"
    assert first["ready"] == {"v1": 4} and first["weights"] == {"v1": 100}


def test_measurements_and_verdicts_only_with_the_flag(tmp_path: Path) -> None:
    sc = load(tmp_path, revisions={"v1": HEALTHY, "v2": HEALTHY})
    plain = replay_run(sc, 1, 0)
    full = replay_run(sc, 1, 0, measurements=True)
    measured = [e for e in full.timeline if e["measurement"] is not None]
    # two verification phases of two measurements each, all passing
    assert [e["measurement"]["metric"] for e in measured] == ["success-rate"] * 4
    assert all(e["measurement"]["verdict"] == "successful" for e in measured)
    assert all(isinstance(e["measurement"]["value"], float) for e in measured)
    assert all(e["measurement"]["template"] == "health" for e in measured)
    verdicts = [v for e in full.timeline for v in e["verdicts"]]
    assert [(v["template"], v["phase"]) for v in verdicts] == [("health", "Successful")] * 2
    assert full.outcome == plain.outcome  # the flag changes what is recorded, never the run
    assert len(plain.timeline) < len(full.timeline)
    assert not any(v for e in plain.timeline for v in e["verdicts"])


def test_a_failed_measurement_and_its_verdict(tmp_path: Path) -> None:
    r = replay_run(load(tmp_path), 1, 0, measurements=True)
    measured = [e["measurement"] for e in r.timeline if e["measurement"] is not None]
    assert [m["verdict"] for m in measured] == ["failed"]
    verdicts = [v for e in r.timeline for v in e["verdicts"]]
    assert [v["phase"] for v in verdicts] == ["Failed"]
    assert "success-rate" in verdicts[0]["message"]


def test_measurement_errors_are_recorded(tmp_path: Path) -> None:
    broken = {
        "readiness": {"delay": "10s"},
        "signals": {"sr": {"value": 0.99, "errors": {"probability": 1.0, "message": "prometheus: timeout"}}},
    }
    r = replay_run(load(tmp_path, revisions={"v1": HEALTHY, "v2": broken}), 1, 0, measurements=True)
    measured = [e["measurement"] for e in r.timeline if e["measurement"] is not None]
    assert measured and all(m["verdict"] == "error" and m["value"] is None for m in measured)
    assert measured[0]["error"] == "prometheus: timeout"


def test_simulate_passes_the_flag_to_every_worker(tmp_path: Path) -> None:
    sc = load(tmp_path, revisions={"v1": HEALTHY, "v2": HEALTHY})
    one = [r.to_dict() for r in simulate(sc, runs=4, seed=2, keep_timelines=True, measurements=True)]
    two = [
        r.to_dict()
        for r in simulate(sc, runs=4, seed=2, workers=2, chunk_size=1, keep_timelines=True, measurements=True)
    ]
    assert one == two
    assert all(any(e["measurement"] for e in d["timeline"]) for d in one)
