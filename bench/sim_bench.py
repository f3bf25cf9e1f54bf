"""Simulated runs per second: an 8-step canary with three verification phases of three measurements each.

Prints JSON lines (never fails on a time):
  {"name": "sim.runs_per_s", "value": ..., "unit": "runs/s"}            one core
  {"name": "sim.runs_per_s_workers2", "value": ..., "unit": "runs/s"}   simulate(..., workers=2)

Run: .venv/bin/python bench/sim_bench.py [--runs N]
Profile: .venv/bin/python -m cProfile -s tottime bench/sim_bench.py --runs 300 --no-workers
"""

from __future__ import annotations

import argparse
import json
import time

from ebbtide.core.plan import MetricPlan, Plan, StepPlan, TemplatePlan
from ebbtide.sim.outcome import Aggregator
from ebbtide.sim.scenario import Scenario


def scenario() -> Scenario:
    metric = MetricPlan(
        name="success-rate",
        interval=30,
        count=3,
        success_condition="result[0] >= 0.95",
        provider={"prometheus": {"query": "sum(rate(http_requests_total[2m]))"}},
    )
    steps: list[StepPlan] = []
    for i, weight in enumerate((10, 20, 30, 40, 50, 60, 80, 90)):
        steps.append(StepPlan(kind="setWeight", weight=weight))
        if i in (1, 4, 6):
            steps.append(StepPlan(kind="verification", templates=("health",)))
    plan = Plan(
        steps=tuple(steps),
        templates={"health": TemplatePlan(name="health", metrics=(metric,))},
        replicas=5,
    )
    healthy = {
        "readiness": {"delay": "15s", "jitter": "5s"},
        "signals": {"sr": {"value": 0.99, "noise": 0.01}},
    }
    return Scenario.model_validate(
        {
            "spec": {
                "stable": {"revision": "v1"},
                "revisions": {"v1": healthy, "v2": healthy},
                "metrics": [{"metric": "success-rate", "signal": "sr"}],
                "traffic": {"rps": 100},
                "actions": [{"at": "1m", "action": "deploy", "revision": "v2"}],
                "duration": "2h",
            }
        }
    ).bind(plan, file="<bench>")


def measure(runs: int, workers: int) -> float:
    from ebbtide.sim.runner import simulate

    sc = scenario()
    agg = Aggregator()
    started = time.perf_counter()
    for result in simulate(sc, runs=runs, seed=1, workers=workers):
        agg.add(result)
    elapsed = time.perf_counter() - started
    assert agg.runs == runs
    return runs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--no-workers", action="store_true")
    args = parser.parse_args()
    measure(50, 1)  # warm up (imports, condition compilation caches)
    print(json.dumps({"name": "sim.runs_per_s", "value": round(measure(args.runs, 1), 1), "unit": "runs/s"}))
    if not args.no_workers:
        value = round(measure(args.runs, 2), 1)
        print(json.dumps({"name": "sim.runs_per_s_workers2", "value": value, "unit": "runs/s"}))


if __name__ == "__main__":
    main()
