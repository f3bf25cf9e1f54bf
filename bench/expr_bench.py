"""Condition evaluation: µs per evaluation, the compiled closures (what the engine runs) against the reference
tree walk, in the same run. Prints one JSON line per condition: {"name", "value", "unit", "baseline", ...}.

    python bench/expr_bench.py            # best of 7 rounds of 20,000 evaluations per condition
    python bench/expr_bench.py --quick    # best of 3 rounds of 2,000 (a smoke run)

``expr.evaluate``: ``value`` is the compiled form's µs per evaluation, ``baseline`` the reference walk's on
the same value in the same round (the two alternate, so a machine that slows down mid-run slows both),
``speedup`` their ratio. Both include the true/false check of ``Condition.evaluate``; neither includes
parsing or compiling, which happen once per condition source.

``expr.engine_step``: ``core.step`` events/s over bench/run.py's rollout log (an 8-step canary of
examples/specs/canary.yaml, 26 measurements judged by conditions), with the conditions compiled
(``value``, best batch) and with ``Condition.evaluate`` swapped for the reference walk (``baseline``), in
alternating batches of 10 rollouts; ``speedup_median`` is the median ratio of neighbouring batches.

Nothing here fails on a time (issue 8, item 3; docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ebbtide.core import initial_state, step
from ebbtide.core._exprlang import parse
from ebbtide.core._exprref import evaluate_reference
from ebbtide.core.events import Deploy, ReplicasObserved
from ebbtide.core.expr import Condition, compile_condition

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import canary_plan, rollout_events  # bench/run.py: the log core.step replays

#: (condition as written in a template, {{args}} it holds, the measured value)
CASES: list[tuple[str, dict[str, str], Any]] = [
    ("result[0] >= 0.99", {}, [0.995]),  # a Prometheus instant vector
    ("len(result) > 0 && result[0] < {{args.x}}", {"x": "0.05"}, [0.01]),  # with an arg substituted
    ("len(result) > 0 && !isNaN(result[0]) && result[0] < {{args.p99}}", {"p99": "0.5"}, [0.2]),
    ("isNaN(result) || result >= 0.95", {}, 0.97),  # a scalar
    ("result.ok && result.successPercent >= 0.9", {}, {"ok": True, "successPercent": 0.97}),  # web JSON
    ("all(result, # > 0.5)", {}, [0.9] * 10),  # a range vector of 10 samples
    ("all(result, # > 0.5)", {}, [0.9] * 240),  # an hour of 15-second samples
]


def substitute(template: str, args: dict[str, str]) -> str:
    """``{{args.name}}`` replaced by its value, as a RolloutSpec's args are substituted into a template."""
    return re.sub(r"\{\{\s*args\.([A-Za-z0-9_.\-]+)\s*\}\}", lambda m: args[m.group(1)], template)


def reference(src: str) -> Callable[[Any], bool]:
    node = parse(src)

    def evaluate(value: Any) -> bool:
        outcome = evaluate_reference(node, value)
        if not isinstance(outcome, bool):
            raise ValueError(f"{src!r} gave {outcome!r}")
        return outcome

    return evaluate


def best_us(fn: Callable[[Any], bool], value: Any, number: int) -> float:
    return timeit.timeit(lambda: fn(value), number=number) / number * 1e6


def engine_step(rollouts: int, rounds: int) -> None:
    plan = canary_plan()
    base = step(initial_state(plan), Deploy(revision="v0"), 0.0).state
    n = plan.replicas
    base = step(base, ReplicasObserved(revision="v0", desired=n, ready=n, available=n), 0.0).state
    log = rollout_events(plan, "v1", base, 1.0)
    trees: dict[str, Any] = {}

    def walk(self: Condition, result: Any) -> bool:  # Condition.evaluate as it was: the tree walked
        node = trees.get(self.source) or trees.setdefault(self.source, parse(self.source))
        value = evaluate_reference(node, result)
        if not isinstance(value, bool):
            raise ValueError(f"{self.source!r} gave {value!r}")
        return value

    def rate() -> float:
        start = time.perf_counter()
        for _ in range(rollouts):
            state = base
            for now, ev in log:
                state = step(state, ev, now).state
        assert state.phase == "live", state.phase
        return rollouts * len(log) / (time.perf_counter() - start)

    compiled_evaluate = Condition.evaluate
    fast, slow, ratios = 0.0, 0.0, []
    for _ in range(rounds):  # short batches, alternating: each ratio compares two neighbouring batches
        compiled = rate()
        Condition.evaluate = walk  # type: ignore[method-assign]
        try:
            walked = rate()
        finally:
            Condition.evaluate = compiled_evaluate  # type: ignore[method-assign]
        fast, slow = max(fast, compiled), max(slow, walked)
        ratios.append(compiled / walked)
    print(
        json.dumps(
            {
                "name": "expr.engine_step",
                "value": round(fast, 1),
                "unit": "events/s",
                "baseline": round(slow, 1),
                "baseline_name": "same engine, conditions walked by the reference",
                "speedup_median": round(statistics.median(ratios), 3),
                "events_per_rollout": len(log),
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (a smoke run)")
    args = parser.parse_args()
    rounds, number = (3, 2_000) if args.quick else (7, 20_000)
    speedups = []
    for template, template_args, value in CASES:
        src = substitute(template, template_args)
        compiled, walked = compile_condition(src).evaluate, reference(src)
        assert compiled(value) is walked(value), src
        n = max(1, number // max(1, len(value) // 10)) if isinstance(value, list) else number
        fast, slow = math.inf, math.inf
        for _ in range(rounds):  # alternate, so both see the same machine
            fast = min(fast, best_us(compiled, value, n))
            slow = min(slow, best_us(walked, value, n))
        speedups.append(slow / fast)
        size = f"{len(value)} samples" if isinstance(value, list) else type(value).__name__
        print(
            json.dumps(
                {
                    "name": "expr.evaluate",
                    "condition": src,
                    "result": size,
                    "value": round(fast, 3),
                    "unit": "us/eval",
                    "baseline": round(slow, 3),
                    "baseline_name": "reference tree walk",
                    "speedup": round(slow / fast, 2),
                }
            ),
            flush=True,
        )
    geomean = math.exp(sum(math.log(s) for s in speedups) / len(speedups))
    print(json.dumps({"name": "expr.speedup_geomean", "value": round(geomean, 2), "unit": "x"}), flush=True)
    engine_step(rollouts=10, rounds=3 if args.quick else 40)


if __name__ == "__main__":
    main()
