"""The scenarios the simulator's tests run: every bundled example and bench/sim_bench.py's scenario."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ebbtide.sim.loop import Prepared
from ebbtide.sim.runner import load_scenario
from ebbtide.sim.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "scenarios").glob("*.yaml"))


def bench_scenario() -> Scenario:
    """The scenario bench/sim_bench.py measures (loaded from the bench file, which is not a package)."""
    spec = importlib.util.spec_from_file_location("sim_bench", ROOT / "bench" / "sim_bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.scenario()  # type: ignore[no-any-return]


def scenarios() -> list[tuple[str, Prepared]]:
    """Every example, prepared, by name, and the bench's scenario as "bench"."""
    found = [(p.stem, load_scenario(p).prepare()) for p in EXAMPLES]
    return [*found, ("bench", bench_scenario().prepare())]
