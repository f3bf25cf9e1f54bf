"""Simulated runs per second: an 8-step canary with three verification phases of three measurements each.

Prints JSON lines (never fails on a time); every rate sits beside a baseline measured in the same run,
because this machine's speed swings from minute to minute while ratios hold steady:
  {"name": "sim.runs_per_s", ...}               one core, with the bare ``transitions`` trigger rate
  {"name": "sim.runs_per_1k_triggers", ...}     full runs per 1,000 bare triggers (issue 8: must >= 11)
  {"name": "sim.outside_engine", ...}           CPU microseconds per run spent outside ``core.step`` (the
                                                memory cluster, the driver, the event loop, the tracker),
                                                beside those in it and the ``core.step`` calls per run,
                                                and ``replayed_us_per_run``: the simulator alone, every
                                                step answered from a recording (see outside_engine)
  {"name": "sim.runs_per_s_workers2", ...}      simulate(..., workers=2) (this process and one worker
                                                process, see ebbtide.sim.processes), with the one-core
                                                rate of the same round and the ratio (issue 8: must
                                                >= 1.8 on 2 cores),
                                                and ``cpu_ratio``: the ratio the CPU time spent promises
                                                on two idle cores

Run: .venv/bin/python bench/sim_bench.py [--runs N] [--rounds R]
Instructions (load-independent): see callgrind_part, ``--callgrind setup|whole|alone --runs 40``
Profile: .venv/bin/python -m cProfile -s tottime bench/sim_bench.py --runs 300 --no-workers
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def trigger_rate(n: int = 50_000) -> float:
    """Bare ``transitions`` triggers per second, measured as bench/run.py measures them."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        from run import trigger_rate as bare  # bench/run.py
    finally:
        sys.path.pop(0)
    return float(bare(n))


def measure(sc: Scenario, runs: int, workers: int) -> tuple[float, float]:
    """Runs per second of ``simulate(sc, runs, seed=1, workers)``, folded into an aggregate as they come,
    and the CPU seconds it took (this process and its worker processes, which have ended by then)."""
    from ebbtide.sim.runner import simulate

    agg = Aggregator()
    gc.collect()
    before = os.times()
    started = time.perf_counter()
    for result in simulate(sc, runs=runs, seed=1, workers=workers):
        agg.add(result)
    elapsed = time.perf_counter() - started
    after = os.times()
    assert agg.runs == runs
    cpu = sum(after[k] - before[k] for k in range(4))  # user, system, children's user, children's system
    return runs / elapsed, cpu


def recorded_steps(
    sc: Scenario, runs: int, decisions: list[Any] | None = None
) -> list[tuple[Any, Any, float]]:
    """Every ``core.step`` call ``(state, event, now)`` of ``runs`` runs, in order (and their decisions, in
    ``decisions`` when given)."""
    from ebbtide.core import engine
    from ebbtide.sim.runner import simulate

    calls: list[tuple[Any, Any, float]] = []
    real: Callable[..., Any] = engine.step

    def recording(state: Any, event: Any, now: float) -> Any:
        calls.append((state, event, now))
        decision = real(state, event, now)
        if decisions is not None:
            decisions.append(decision)
        return decision

    engine.step = recording  # the driver looks the engine's step up when it is built
    try:
        for _ in simulate(sc, runs=runs, seed=1):
            pass
    finally:
        engine.step = real
    return calls


def replaying(decisions: list[Any]) -> Callable[..., Any]:
    """A stand-in for ``core.step`` that answers each call with the next recorded decision."""
    answers = iter(decisions)

    def replay(state: Any, event: Any, now: float) -> Any:
        return next(answers)

    return replay


def simulate_replayed(sc: Scenario, runs: int, decisions: list[Any]) -> None:
    """The runs again, every ``core.step`` call answered from ``decisions`` (the simulator alone)."""
    from ebbtide.core import engine
    from ebbtide.sim.runner import simulate

    real = engine.step
    engine.step = replaying(decisions)  # the prefix of the runs looks the engine's step up when it is built
    try:
        for _ in simulate(sc, runs=runs, seed=1):
            pass
    finally:
        engine.step = real


def callgrind_part(sc: Scenario, runs: int, part: str) -> None:
    """One part of the load-independent split, for an instruction counter (prints nothing):
    ``setup`` records the steps of the runs; ``whole`` then runs them again; ``alone`` replays the steps;
    ``replayed`` runs them again with every step answered from the recording (the simulator alone).

        valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/sim_bench.py --callgrind PART
    instructions per run outside the engine = (whole - alone) / runs, or (replayed - setup) / runs; in it =
    (alone - setup) / runs."""
    from ebbtide.core import engine
    from ebbtide.sim.runner import simulate

    decisions: list[Any] = []
    calls = recorded_steps(sc, runs, decisions)
    if part == "whole":
        for _ in simulate(sc, runs=runs, seed=1):
            pass
    elif part == "alone":
        for state, event, now in calls:
            engine.step(state, event, now)
    elif part == "replayed":
        simulate_replayed(sc, runs, decisions)


def outside_engine(sc: Scenario, runs: int, repeat: int = 3) -> tuple[float, float, float, float]:
    """CPU seconds per run spent in ``core.step`` and outside it (the memory cluster, the driver, the
    event loop, the tracker), the ``core.step`` calls per run, and the CPU seconds per run of the
    simulator alone.

    Every step call of the runs is recorded, then replayed through ``step`` alone; the two are timed in
    CPU time (steadier than wall time on a shared machine), best of ``repeat`` each; outside = whole runs
    less the steps alone. That difference also holds what the engine loses to running between the
    simulator's work rather than in a tight loop (its caches are colder: the same instructions take
    longer), so the runs are timed a third way, with every step answered from the recording: the
    simulator alone, the figure its own changes move.
    """
    from ebbtide.core import engine
    from ebbtide.sim.runner import simulate

    decisions: list[Any] = []
    calls = recorded_steps(sc, runs, decisions)
    real = engine.step
    whole: list[float] = []
    alone: list[float] = []
    replayed: list[float] = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.process_time()
        for _ in simulate(sc, runs=runs, seed=1):
            pass
        whole.append(time.process_time() - t0)
        gc.collect()
        t0 = time.process_time()
        for state, event, now in calls:
            real(state, event, now)
        alone.append(time.process_time() - t0)
        gc.collect()
        t0 = time.process_time()
        simulate_replayed(sc, runs, decisions)
        replayed.append(time.process_time() - t0)
    engine_s = min(alone) / runs
    return engine_s, max(0.0, min(whole) - min(alone)) / runs, len(calls) / runs, min(replayed) / runs


def emit(name: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit, **extra}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating one-core / workers rounds")
    parser.add_argument("--no-workers", action="store_true")
    parser.add_argument(
        "--callgrind", choices=["setup", "whole", "alone", "replayed"], help="see callgrind_part"
    )
    args = parser.parse_args()
    sc = scenario()
    if args.callgrind:
        callgrind_part(sc, args.runs, args.callgrind)
        return
    measure(sc, 50, 1)  # warm up (imports, condition compilation caches)

    singles: list[float] = []
    triggers: list[float] = []
    pairs: list[tuple[float, float, float]] = []
    for _ in range(1 if args.no_workers else args.rounds):
        before = trigger_rate()
        one, cpu_one = measure(sc, args.runs, 1)
        triggers.append((before + trigger_rate()) / 2)
        singles.append(one)
        if not args.no_workers:
            two, cpu_two = measure(sc, args.runs, 2)
            pairs.append((two, two / one, 2 * cpu_one / cpu_two))
    # the round with the median one-core rate, its own baseline beside it
    i = singles.index(statistics.median_low(singles))
    emit(
        "sim.runs_per_s",
        singles[i],
        "runs/s",
        baseline=round(triggers[i], 1),
        baseline_name="transitions.trigger",
    )
    emit("sim.runs_per_1k_triggers", 1000 * singles[i] / triggers[i], "runs per 1k triggers")

    engine, outside, calls, alone = outside_engine(sc, min(args.runs, 1000))
    emit(
        "sim.outside_engine",
        1e6 * outside,
        "us/run",
        engine_us_per_run=round(1e6 * engine, 1),
        engine_calls_per_run=round(calls, 2),
        share=round(outside / (outside + engine), 3),
        # the simulator alone: the runs with every core.step answered from a recording of its decisions
        replayed_us_per_run=round(1e6 * alone, 1),
    )
    if pairs:
        ratios = [r for _, r, _ in pairs]
        j = ratios.index(statistics.median_low(ratios))
        emit(
            "sim.runs_per_s_workers2",
            pairs[j][0],
            "runs/s",
            baseline=round(singles[j], 1),
            baseline_name="sim.runs_per_s (same round)",
            ratio=round(ratios[j], 3),
            ratios=[round(r, 3) for r in ratios],
            # 2 x the CPU time of one core / the CPU time of all processes with two workers: the ratio two
            # otherwise idle cores give (the wall-clock ratio drops when other sessions load the machine,
            # since the kernel's autogroup gives a session, not a process, its share)
            cpu_ratio=round(statistics.median_low([c for _, _, c in pairs]), 3),
        )


if __name__ == "__main__":
    main()
