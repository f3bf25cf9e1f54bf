"""Running scenarios: one run or many, on one core or several, streamed.

>>> scenario = load_scenario("examples/scenarios/fails-at-40.yaml")          # raises SpecError
>>> for result in simulate(scenario, runs=1000, seed=7, workers=2):          # yields RunResult in run order
...     print(result.outcome.result)
>>> summary = aggregate(simulate(scenario, runs=1000))                       # memory flat in the runs

Seeds derive from ``(seed, run index)`` through a stable hash (:func:`derive_seed`), so run 517 of a
10,000-run batch replays alone (``simulate(scenario, runs=1, seed=7, start=517)``), and the results never
depend on the number of workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ebbtide.sim.chunks import ChunkExecutor, chunk_bounds, derive_seed
from ebbtide.sim.loop import Prepared, run_once
from ebbtide.sim.outcome import Aggregator, RunResult, Summary, aggregate
from ebbtide.sim.prefix import Prefix
from ebbtide.sim.processes import ProcessExecutor
from ebbtide.sim.scenario import Scenario, load_scenario

__all__ = [
    "Aggregator",
    "ChunkExecutor",
    "ProcessExecutor",
    "RunResult",
    "Summary",
    "aggregate",
    "chunk_bounds",
    "derive_seed",
    "load_scenario",
    "prepare_scenario",
    "replay_run",
    "simulate",
]


def prepare_scenario(scenario: Scenario) -> Prepared:
    return scenario.prepare()


def simulate(
    scenario: Scenario | Prepared,
    runs: int | None = None,
    seed: int | str | None = None,
    workers: int = 1,
    keep_timelines: bool = False,
    *,
    start: int = 0,
    chunk_size: int | None = None,
    measurements: bool = False,
    executor: ChunkExecutor | None = None,
) -> Iterator[RunResult]:
    """Yield the results of runs ``start .. start+runs-1``, in run order.

    ``runs`` and ``seed`` default to the scenario's. With ``workers > 1`` the runs are shared in chunks
    between this process and ``workers - 1`` worker processes (:mod:`ebbtide.sim.processes`); with an
    ``executor`` (a :class:`ProcessExecutor`, a
    :class:`~ebbtide.sim.dask_executor.DaskExecutor`) they go wherever it sends them. Either way results
    come back in run order and are identical to one process's. Timelines are kept only with
    ``keep_timelines`` (they are what takes memory); with ``measurements`` too, they have an entry for every
    measurement and every verification verdict.
    """
    if isinstance(scenario, Scenario):
        prepared = prepare_scenario(scenario)
        runs = scenario.spec.runs if runs is None else runs
        seed = scenario.spec.seed if seed is None else seed
    else:
        prepared = scenario
        runs = 1 if runs is None else runs
        seed = 0 if seed is None else seed
    stop = start + runs
    if executor is None and workers > 1 and runs > 1:
        executor = ProcessExecutor(workers)
    if executor is None:
        prefix = Prefix()
        for i in range(start, stop):
            yield run_once(prepared, i, derive_seed(seed, i), keep_timelines, measurements, prefix)
        return
    chunks = chunk_bounds(start, stop, executor.workers, chunk_size)
    for results in executor.map_chunks(prepared, seed, chunks, keep_timelines, measurements):
        yield from results


def replay_run(
    scenario: Scenario, seed: int | str, index: int, keep_timeline: bool = True, measurements: bool = False
) -> RunResult:
    """Run ``index`` of a batch seeded ``seed``, alone."""
    return run_once(prepare_scenario(scenario), index, derive_seed(seed, index), keep_timeline, measurements)


def run_file(path: str | Path, **kwargs: object) -> Summary:
    """Load a scenario and aggregate its runs (a convenience for scripts and the README)."""
    return aggregate(simulate(load_scenario(path), **kwargs))  # type: ignore[arg-type]
