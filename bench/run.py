"""Core benchmarks. Prints one JSON line per figure: {"name", "value", "unit", "baseline"?}.

    python bench/run.py            # all core figures
    python bench/run.py --quick    # fewer rollouts (a smoke run, e.g. in CI)

Figures (issues #2 and #8; none of them fails anything, they are printed and recorded in
docs/performance.md):
- core.step: events/s through ``step`` for an 8-step canary with verification (examples/specs/canary.yaml),
  next to a bare ``transitions`` trigger rate measured in the same run (the baseline) and the ratio of the
  two (``ratio_to_trigger``);
- core.state_bytes: the persisted JSON state of a 10-step canary mid-verification, after a long run
  (thousands of measurements), with and without the embedded plan;
- core.memory_10k: memory held by 10,000 rollout states in one process (tracemalloc).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from transitions import Machine

from ebbtide.adapters.specfiles import load_spec_files
from ebbtide.core import initial_state, step
from ebbtide.core.effects import ScaleRevision, StartMeasurement
from ebbtide.core.events import Command, Deploy, Event, Measurement, ReplicasObserved, Tick
from ebbtide.core.plan import MetricPlan, Plan, StepPlan, TemplatePlan
from ebbtide.core.state import RolloutState
from ebbtide.core.verification import classify

ROOT = Path(__file__).resolve().parent.parent


def emit(name: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit, **extra}), flush=True)


def canary_plan() -> Plan:
    from ebbtide.core.spec import compile_plan

    specs = load_spec_files([ROOT / "examples" / "specs" / "canary.yaml"])
    return compile_plan(specs)


def rollout_events(
    plan: Plan, revision: str, stable_state: RolloutState, start: float
) -> list[tuple[float, Event]]:
    """Drive one rollout with a perfect cluster and passing measurements; return the (now, event) log."""
    log: list[tuple[float, Event]] = []
    state = stable_state
    now = start
    pending: list[tuple[float, int, Event]] = []
    ticks: set[float] = set()
    seq = 0

    def push(t: float, ev: Event) -> None:
        nonlocal seq
        seq += 1
        pending.append((t, seq, ev))

    push(now, Deploy(revision=revision))
    while pending:
        pending.sort(key=lambda p: (p[0], p[1]))
        t, _, ev = pending.pop(0)
        now = max(now, t)
        d = step(state, ev, now)
        log.append((now, ev))
        state = d.state
        for e in d.effects:
            if isinstance(e, ScaleRevision):
                push(
                    now + 5.0,
                    ReplicasObserved(
                        revision=e.revision, desired=e.replicas, ready=e.replicas, available=e.replicas
                    ),
                )
            elif isinstance(e, StartMeasurement):
                push(
                    now,
                    Measurement(
                        verification=e.verification, metric=e.metric.name, value=value_for_metric(e.metric)
                    ),
                )
        if d.wake_at is not None and d.wake_at not in ticks:
            ticks.add(d.wake_at)  # one Tick per wake-up time, as a controller's requeue would do
            push(d.wake_at, Tick())
        if state.phase == "live" and state.stable == revision and not state.scale_downs:
            break
    return log


def value_for_metric(metric: MetricPlan) -> Any:
    """A healthy value for the metric: the first candidate its condition judges successful."""
    for candidate in ([0.999], [0.001], 0.999, 0.001):
        if classify(metric, candidate)[0] == "successful":
            return candidate
    raise ValueError(f"no healthy value for {metric.name}")


def trigger_rate(n: int) -> float:
    """The baseline: bare ``transitions`` triggers per second on a throwaway model (bench/sim_bench.py uses
    it too, so that every ratio is to the same thing)."""
    machine = Machine(
        model=None,
        states=["a", "b"],
        initial="a",
        auto_transitions=False,
        send_event=True,
        transitions=[{"trigger": "go", "source": "a", "dest": "b"}],
    )

    class Cursor:
        __slots__ = ("state",)

        def __init__(self) -> None:
            self.state = "a"

    trigger = machine.events["go"].trigger
    t0 = time.perf_counter()
    for _ in range(n):
        trigger(Cursor())
    return n / (time.perf_counter() - t0)


def bench_step(rollouts: int) -> None:
    plan = canary_plan()
    base = step(initial_state(plan), Deploy(revision="v0"), 0.0).state
    base = step(
        base,
        ReplicasObserved(revision="v0", desired=plan.replicas, ready=plan.replicas, available=plan.replicas),
        0.0,
    ).state
    log = rollout_events(plan, "v1", base, 1.0)
    # replay the same realistic log many times: only step() is timed
    gc.collect()
    t0 = time.perf_counter()
    events = 0
    for _ in range(rollouts):
        state = base
        for now, ev in log:
            state = step(state, ev, now).state
            events += 1
    elapsed = time.perf_counter() - t0
    assert state.phase == "live" and state.stable == "v1", state.phase
    rate = events / elapsed

    baseline = trigger_rate(max(20_000, events // 2))  # same process, same run
    emit(
        "core.step",
        rate,
        "events/s",
        ratio_to_trigger=round(rate / baseline, 3),
        baseline=round(baseline, 1),
        baseline_name="transitions.trigger",
        events=events,
        events_per_rollout=len(log),
    )


def ten_step_plan(count: int = 3) -> Plan:
    metric = MetricPlan(
        name="success-rate",
        interval=30.0,
        count=count,
        success_condition="result[0] >= 0.99",
        provider={"prometheus": {"query": "sum(rate(ok[2m])) / sum(rate(all[2m]))"}},
    )
    bg = MetricPlan(
        name="errors",
        interval=60.0,
        failure_condition="result[0] > 0.05",
        failure_limit=3,
        provider={"prometheus": {"query": "sum(rate(err[5m])) / sum(rate(all[5m]))"}},
    )
    steps: list[StepPlan] = []
    for w in (10, 20, 30, 40, 50):
        steps.append(StepPlan(kind="setWeight", weight=w))
        if w == 30:
            steps.append(StepPlan(kind="verification", templates=("health",)))
    steps += [
        StepPlan(kind="pause", duration=600.0),
        StepPlan(kind="setWeight", weight=75),
        StepPlan(kind="pause", duration=60.0),
        StepPlan(kind="setWeight", weight=100),
    ]
    assert len(steps) == 10
    return Plan(
        name="checkout",
        steps=tuple(steps),
        background_templates=("watch",),
        replicas=10,
        templates={
            "health": TemplatePlan(name="health", metrics=(metric,)),
            "watch": TemplatePlan(name="watch", metrics=(bg,)),
        },
    )


def _observe_all(s: RolloutState, now: float) -> RolloutState:
    for rev, n in sorted(s.replicas.items()):
        if s.ready.get(rev) != n:
            s = step(s, ReplicasObserved(revision=rev, desired=n, ready=n, available=n), now).state
    return s


def bench_state_bytes(measurements: int, earlier_rollouts: int = 200) -> None:
    """The persisted state of a 10-step canary mid-verification after a long life: `earlier_rollouts`
    rollouts before it (each rolled back: history), then `measurements` measurements of its verification."""
    plan = ten_step_plan(count=measurements + 10)
    s = step(initial_state(plan), Deploy(revision="v0"), 0.0).state
    now = 0.0
    s = _observe_all(s, now)
    for i in range(earlier_rollouts):  # a long history: deploy, then abort, many times
        now += 60.0
        s = _observe_all(step(s, Deploy(revision=f"old-{i}"), now).state, now)
        s = step(s, Command(action="abort"), now).state
        now += 60.0
        s = _observe_all(step(s, Tick(), now).state, now)
    now += 60.0
    d = step(s, Deploy(revision="v1"), now)
    taken = 0
    for _ in range(10 * measurements + 1000):
        s = _observe_all(d.state, now)
        for a in [e for e in d.effects if isinstance(e, StartMeasurement)]:
            healthy = value_for_metric(a.metric)
            s = step(
                s, Measurement(verification=a.verification, metric=a.metric.name, value=healthy), now
            ).state
            taken += 1
        if s.phase == "verifying" and taken >= measurements:
            break
        nxt = step(s, Tick(), now).wake_at
        if nxt is None:
            break
        now = nxt
        d = step(s, Tick(), now)
    assert s.phase == "verifying", s.phase
    assert RolloutState.from_json(s.to_json()) == s
    persisted = len(s.to_json())
    emit(
        "core.state_bytes",
        persisted,
        "bytes",
        phase=s.phase,
        measurements=taken,
        earlier_rollouts=earlier_rollouts,
        history=len(s.history),
        plan_bytes=len(s.plan.model_dump_json(exclude_defaults=True)),
        without_plan=len(s.to_json(exclude={"plan", "next_plan"})),
        with_defaults=len(s.to_json(exclude_defaults=False)),
        limit=2048,
    )


def bench_memory(count: int) -> None:
    plan = ten_step_plan()
    s = step(initial_state(plan), Deploy(revision="v1"), 0.0).state
    s = step(s, ReplicasObserved(revision="v1", desired=10, ready=10, available=10), 0.0).state
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    states = []
    for i in range(count):
        # each workload gets its own rollout (distinct revision names), mid-verification
        d = step(s, Deploy(revision=f"app-{i}-v2"), 1.0)
        d = step(d.state, ReplicasObserved(revision=f"app-{i}-v2", desired=1, ready=1, available=1), 2.0)
        states.append(d.state)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    emit(
        "core.memory_10k",
        used / 1e6,
        "MB",
        states=len(states),
        phases=sorted({x.phase for x in states}),
        bytes_per_state=round(used / len(states)),
        limit_mb=20,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = ap.parse_args(argv)
    bench_step(20 if args.quick else 300)
    bench_state_bytes(200 if args.quick else 5000)
    bench_memory(1000 if args.quick else 10_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
