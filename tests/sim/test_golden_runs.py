"""Golden runs: the simulator produces exactly the runs it produced when this file was last regenerated.

Issue 8 makes the simulator faster (a compiled cluster, cached observations, chunked workers, a Dask
executor); none of that may change a single result for a given seed. The digests were recorded with the
simulator before that work: for each scenario, a few seeded runs with their full timelines (every state,
weight, replica count, measurement and verdict) and the aggregate of a batch. A mismatch names the scenario
and the run, so the change that moved it can be found with ``ebbtide simulate --timeline``.

The scenarios are every example in ``examples/scenarios``, the benchmark's scenario, and one written here to
reach what the examples do not: ramps, steps, scripted series with gaps, injected provider errors, a
baseline measured on the stable revision, per-pod readiness delays, a crash-looping revision fixed on its
next attempt, a time-armed misbehaviour and header-routed traffic.

After an intended change of behaviour (never for a speed-up), regenerate with
``EBBTIDE_REGENERATE_GOLDEN=1 pytest tests/sim/test_golden_runs.py`` and say why in the commit.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ebbtide.sim.runner import aggregate, load_scenario, simulate
from ebbtide.sim.scenario import Scenario
from tests.sim.examples import EXAMPLES, bench_scenario
from tests.sim.scenarios import TEMPLATE, rollout_spec, scenario_doc, strategy, write

GOLDEN = Path(__file__).parent / "golden" / "runs.json"
REGENERATE = os.environ.get("EBBTIDE_REGENERATE_GOLDEN") == "1"
SEED = 11
TIMELINE_RUNS = 3
BATCH_RUNS = 40


def features_scenario(tmp: Path) -> Scenario:
    template = json.loads(json.dumps(TEMPLATE))
    template["spec"]["metrics"].append(
        {
            "name": "baseline",
            "interval": "20s",
            "count": 3,
            "failureLimit": 1,
            "successCondition": "result[0] >= 0.9",
            "provider": {"prometheus": {"address": "http://prom:9090", "query": "base"}},
        }
    )
    doc = scenario_doc(
        revisions={
            "v1": {
                "readiness": {"delay": "10s", "jitter": "5s"},
                "signals": {
                    "sr": {"value": 0.99, "noise": 0.003, "max": 1},
                    "base": {"series": [{"at": 0, "value": 0.98}, {"at": "6m", "value": None}]},
                },
            },
            "v2": {
                "readiness": {"delay": "10s", "jitter": "5s", "delays": ["3s", "40s"]},
                "misbehaveAt": {"time": "5m"},
                "signals": {
                    "sr": {
                        "value": 0.99,
                        "noise": 0.01,
                        "ramp": {"start": "2m", "end": "8m", "to": 0.93},
                        "step": {"at": "3m", "value": 0.995},
                        "misbehaving": 0.85,
                        "lag": "30s",
                        "min": 0,
                        "max": 1,
                        "errors": {"probability": 0.3, "start": "1m", "end": "20m"},
                    },
                    "base": 0.97,
                },
            },
            "v3": {
                "readiness": {"delay": "20s", "jitter": "10s"},
                "crashLoop": True,
                "signals": {"sr": {"value": 0.99, "noise": 0.004}, "base": {"value": 0.95, "noise": 0.02}},
                "attempts": [{"crashLoop": False}],
            },
        },
        metrics=[
            {"query": "sr", "signal": "sr"},
            {"metric": "baseline", "signal": "base", "of": "stable", "vector": True},
        ],
        traffic={"rps": 50, "headerShare": 0.1},
        actions=[
            {"at": "1m", "action": "deploy", "revision": "v2"},
            {"at": "30m", "action": "deploy", "revision": "v3"},
            {"at": "45m", "action": "retry"},
        ],
    )
    return load_scenario(write(tmp / "features.yaml", doc, [template, strategy(), rollout_spec()]))


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Scenario]:
    found = {p.stem: load_scenario(p) for p in EXAMPLES}
    found["bench"] = bench_scenario()
    found["features"] = features_scenario(tmp_path_factory.mktemp("golden"))
    return found


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def digests(scenario: Scenario) -> dict[str, Any]:
    runs = simulate(scenario, runs=TIMELINE_RUNS, seed=SEED, keep_timelines=True, measurements=True)
    summary = aggregate(simulate(scenario, runs=BATCH_RUNS, seed=SEED))
    return {"runs": [sha(r.to_json()) for r in runs], "summary": sha(summary.to_json())}


def test_golden_runs(scenarios: dict[str, Scenario]) -> None:
    got = {name: digests(sc) for name, sc in sorted(scenarios.items())}
    if REGENERATE:
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = json.loads(GOLDEN.read_text())
    assert sorted(got) == sorted(want), "the scenarios changed: regenerate with EBBTIDE_REGENERATE_GOLDEN=1"
    for name in sorted(want):
        for i, (g, w) in enumerate(zip(got[name]["runs"], want[name]["runs"], strict=True)):
            assert g == w, f"{name}: run {i} (seed {SEED}) differs from the golden run"
        assert got[name]["summary"] == want[name]["summary"], f"{name}: the aggregate of {BATCH_RUNS} runs"


def test_features_scenario_reaches_what_it_is_for(scenarios: dict[str, Scenario]) -> None:
    """The hand-written scenario exercises what it claims to: errors, gaps, a stable baseline, retries."""
    results = list(simulate(scenarios["features"], runs=6, seed=SEED, keep_timelines=True, measurements=True))
    measured = [e["measurement"] for r in results for e in r.timeline if e["measurement"] is not None]
    assert any(m["error"] == "provider error (injected)" for m in measured)
    assert any(m["metric"] == "baseline" and m["value"] is None and m["error"] is None for m in measured)
    assert any(m["metric"] == "baseline" and isinstance(m["value"], list) for m in measured)
    assert any(n["event"] == "rollout-failed" for r in results for n in r.notifications)
    assert any(e["event"] == "command retry" for r in results for e in r.timeline)
