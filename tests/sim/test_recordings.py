"""Scenarios replaying recorded provider answers (``spec.recordings``): validation with located errors, paths
relative to the scenario file, and the replay rules (values, errors, no data) as the engine sees them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ebbtide.adapters.recorded import FORMAT
from ebbtide.core.spec import SpecError
from ebbtide.sim.runner import load_scenario, simulate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "scenarios" / "replay-recorded-incident.yaml"
SPECS = ROOT / "examples" / "specs" / "canary.yaml"


def scenario_with(tmp_path: Path, samples: list[dict[str, object]] | None, **ref: object) -> Path:
    """The example scenario, in ``tmp_path``, replaying a recording of ``samples`` (None: no recording)."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"]["specs"] = [str(SPECS)]
    if samples is None:
        del doc["spec"]["recordings"]
    else:
        (tmp_path / "data").mkdir(exist_ok=True)
        rec = tmp_path / "data" / "rec.jsonl"
        rec.write_text("\n".join(json.dumps(s) for s in [{"recording": FORMAT}, *samples]) + "\n")
        doc["spec"]["recordings"] = [{"file": "data/rec.jsonl", **ref}]
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def error_rate(values: list[object], every: int = 30) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i, v in enumerate(values):
        sample: dict[str, object] = {"t": i * every, "metric": "error-rate"}
        if isinstance(v, str):
            sample["error"] = v
        else:
            sample["value"] = v
        out.append(sample)
    return out


def outcome(path: Path, runs: int = 3) -> list[object]:
    return [r.outcome for r in simulate(load_scenario(path), runs=runs, seed=3)]


def test_the_example_replays_the_recorded_incident(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the recording's path is relative to the scenario file, not to the cwd
    results = list(simulate(load_scenario(EXAMPLE), runs=10, seed=1))
    assert {r.outcome.result for r in results} == {"rolled-back"}
    assert all("error-rate" in (r.outcome.rollback_reason or "") for r in results)
    twice = [r.to_json() for r in simulate(load_scenario(EXAMPLE), runs=10, seed=1)]
    assert [r.to_json() for r in results] == twice


def test_a_healthy_recording_promotes(tmp_path: Path) -> None:
    path = scenario_with(tmp_path, error_rate([[0.001]] * 200), offset="0s")
    assert {o.result for o in outcome(path)} == {"promoted"}  # type: ignore[attr-defined]


def test_recorded_errors_are_error_measurements(tmp_path: Path) -> None:
    """error-watch has consecutiveErrorLimit 3: the 4th consecutive recorded error fails it."""
    path = scenario_with(tmp_path, error_rate(["timeout: no answer"] * 200))
    for o in outcome(path):
        assert o.result == "rolled-back"  # type: ignore[attr-defined]
        assert "consecutive" in (o.rollback_reason or "") or "error" in (o.rollback_reason or "")  # type: ignore[attr-defined]


def test_missing_data_is_inconclusive(tmp_path: Path) -> None:
    """null samples (and the time before the first sample) are no data: error-watch's condition
    ``len(result) > 0 && ...`` cannot be judged, the measurement is inconclusive (inconclusiveLimit 0), and
    an inconclusive verification pauses the rollout (paused: inconclusive), nothing rolls back."""
    path = scenario_with(tmp_path, error_rate([None] * 200))
    for o in outcome(path):
        assert (o.result, o.rolled_back, o.failure_reason) == ("paused", False, None)  # type: ignore[attr-defined]


def test_a_recorded_metric_needs_no_signal_but_an_unrecorded_one_does(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_scenario(scenario_with(tmp_path, None))
    assert any(p.field == "spec.metrics" and "'error-rate'" in p.reason for p in info.value.problems)


@pytest.mark.parametrize(
    ("content", "ref", "field", "reason"),
    [
        (None, {}, "spec.recordings[0].file", "cannot read the file"),
        ('{"t": 0, "metric": "error-rate", "value": 1}\n{"t": x}\n', {}, "spec.recordings[0].file", "line 2"),
        (
            '{"t": 0, "metric": "error-rate", "value": 1}\n',
            {"metric": "latency"},
            "spec.recordings[0].metric",
            "holds no metric 'latency'",
        ),
    ],
)
def test_bad_recordings_are_located_in_the_scenario(
    tmp_path: Path, content: str | None, ref: dict[str, str], field: str, reason: str
) -> None:
    path = scenario_with(tmp_path, [], **ref)
    rec = tmp_path / "data" / "rec.jsonl"
    if content is None:
        rec.unlink()
    else:
        rec.write_text(content)
    with pytest.raises(SpecError) as info:
        load_scenario(path)
    hits = [p for p in info.value.problems if p.field == field and reason in p.reason]
    assert hits, info.value.problems
    assert hits[0].file == str(path) and "data/rec.jsonl" in hits[0].reason


def test_a_negative_offset_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_scenario(scenario_with(tmp_path, error_rate([[0.001]]), offset=-5))
    assert any(p.field == "spec.recordings[0].offset" for p in info.value.problems)
