from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ebbtide.core.spec import SpecError
from ebbtide.sim.outcome import SCHEMA_VERSION, percentile
from ebbtide.sim.runner import aggregate, chunk_bounds, derive_seed, load_scenario, replay_run, simulate
from ebbtide.sim.scenario import Scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


@pytest.fixture(scope="module")
def flaky() -> Scenario:
    return load_scenario(EXAMPLES / "flaky-metric.yaml")


def test_seeds_are_stable() -> None:
    assert derive_seed(7, 3) == derive_seed(7, 3) != derive_seed(7, 4)
    assert derive_seed(7, 3) == 0xAAA6E68B5ADA9A90  # pinned: seeds must never change between versions


def test_same_seed_same_results(flaky: Scenario) -> None:
    a = [r.to_dict() for r in simulate(flaky, runs=20, seed=9, keep_timelines=True)]
    b = [r.to_dict() for r in simulate(flaky, runs=20, seed=9, keep_timelines=True)]
    assert a == b
    c = [r.to_dict() for r in simulate(flaky, runs=20, seed=10)]
    assert [x["outcome"] for x in a] != [x["outcome"] for x in c]


def test_workers_do_not_change_results(flaky: Scenario) -> None:
    one = [r.outcome for r in simulate(flaky, runs=40, seed=5, workers=1)]
    two = [r.outcome for r in simulate(flaky, runs=40, seed=5, workers=2, chunk_size=7)]
    assert one == two


def test_default_workers_do_not_change_results(flaky: Scenario) -> None:
    """The default chunks (shrinking towards the end) and the worker's own prefix across its chunks."""
    one = [r.to_dict() for r in simulate(flaky, runs=90, seed=5, start=3, keep_timelines=True)]
    two = [r.to_dict() for r in simulate(flaky, runs=90, seed=5, start=3, keep_timelines=True, workers=2)]
    assert one == two


@pytest.mark.parametrize(("start", "stop", "workers"), [(0, 2000, 2), (5, 12, 2), (0, 1, 3), (7, 100_007, 8)])
def test_chunks_cover_the_runs_and_shrink_towards_the_end(start: int, stop: int, workers: int) -> None:
    chunks = chunk_bounds(start, stop, workers)
    assert [lo for lo, _ in chunks] == [start] + [hi for _, hi in chunks[:-1]] and chunks[-1][1] == stop
    sizes = [hi - lo for lo, hi in chunks]
    assert sizes == sorted(sizes, reverse=True)[: len(sizes) - 1] + sizes[-1:]  # only the last may be smaller
    assert max(sizes) <= 200 and all(n >= 4 for n in sizes[:-1])
    assert sizes[-2:] <= [4, 4] or len(chunks) <= 2  # the last chunks are a few runs: workers end together
    assert chunk_bounds(start, stop, workers, size=7) == [
        (lo, min(lo + 7, stop)) for lo in range(start, stop, 7)
    ]


def test_any_run_replays_alone(flaky: Scenario) -> None:
    batch = list(simulate(flaky, runs=12, seed=5, keep_timelines=True))
    alone = replay_run(flaky, seed=5, index=11)
    assert alone.to_dict() == batch[11].to_dict()
    assert next(simulate(flaky, runs=1, seed=5, start=11)).outcome == batch[11].outcome


def test_timelines_only_when_asked(flaky: Scenario) -> None:
    r = next(simulate(flaky, runs=1, seed=1))
    assert r.timeline == []
    r = next(simulate(flaky, runs=1, seed=1, keep_timelines=True))
    entry = r.timeline[0]
    assert {"t", "state", "stable", "canary", "weights", "replicas", "step", "event"} <= entry.keys()
    doc = json.loads(r.to_json())
    assert doc["schema"] == SCHEMA_VERSION and doc["outcome"]["final_state"] == "live"
    assert doc["notifications"][0]["event"] == "rollout-started"


def test_two_hour_rollout_simulates_in_milliseconds() -> None:
    scenario = load_scenario(EXAMPLES / "argo-rollout.yaml")
    started = time.perf_counter()
    r = next(simulate(scenario, runs=1, seed=1))
    assert time.perf_counter() - started < 0.5
    assert r.events < 500


def test_aggregate_percentiles() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([], 0.5) is None
    s = aggregate([])
    assert s.runs == 0 and s.false_rollback_rate == 0.0


def test_json_schema_is_generated() -> None:
    schema = Scenario.model_json_schema()
    props = schema["$defs"]["ScenarioSpec"]["properties"]
    assert {"specs", "stable", "revisions", "metrics", "traffic", "actions", "duration"} <= props.keys()


BAD = """\
apiVersion: ebbtide.dev/v1alpha1
kind: Scenario
metadata: {name: bad}
spec:
  specs: [../../examples/specs/canary.yaml]
  stable: {revision: v1}
  revisions:
    v1: {signals: {sr: 0.99}}
  metrics:
    - {metric: success-rate, signal: sr}
  actions:
    - {at: 1m, action: promote}
    - {at: 2m, action: deploy, revision: v9}
    - {at: 3m, action: rollback, revision: v7}
  duration: 1h
"""


def test_bad_scenarios_name_file_document_field_reason(tmp_path: Path) -> None:
    spec_dir = tmp_path / "examples" / "specs"
    spec_dir.mkdir(parents=True)
    (spec_dir / "canary.yaml").write_text((EXAMPLES.parent / "specs" / "canary.yaml").read_text())
    path = tmp_path / "a" / "b" / "bad.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(BAD)
    with pytest.raises(SpecError) as info:
        load_scenario(path)
    problems = info.value.problems
    fields = {p.field for p in problems}
    assert {
        "spec.actions[0].action",
        "spec.actions[1].revision",
        "spec.actions[2].revision",
        "spec.metrics",
    } <= fields
    assert all(p.file == str(path) and p.document == 1 for p in problems)
    reasons = " ".join(p.reason for p in problems)
    assert "v9" in reasons and "p99-latency" in reasons and "acts on nothing" in reasons


def test_structural_errors_and_negative_times(tmp_path: Path) -> None:
    path = tmp_path / "neg.yaml"
    path.write_text(BAD.replace("at: 1m", "at: -1m").replace("duration: 1h", "duration: soon"))
    with pytest.raises(SpecError) as info:
        load_scenario(path)
    fields = {p.field for p in info.value.problems}
    assert "spec.actions[0].at" in fields and "spec.duration" in fields


def test_missing_spec_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    path.write_text(BAD.replace("../../examples/specs/canary.yaml", "nope.yaml"))
    with pytest.raises(SpecError) as info:
        load_scenario(path)
    assert any(p.field == "spec.specs[0]" for p in info.value.problems)
