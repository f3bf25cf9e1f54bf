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

import hashlib
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from ebbtide.sim.loop import Prepared, run_once
from ebbtide.sim.outcome import Aggregator, RunResult, Summary, aggregate
from ebbtide.sim.scenario import Scenario, load_scenario

__all__ = [
    "Aggregator",
    "RunResult",
    "Summary",
    "aggregate",
    "derive_seed",
    "load_scenario",
    "prepare_scenario",
    "replay_run",
    "simulate",
]


def derive_seed(seed: int | str, index: int) -> int:
    """The seed of run ``index``: a stable 64-bit hash of ``"{seed}:{index}"`` (not PYTHONHASHSEED's)."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def prepare_scenario(scenario: Scenario) -> Prepared:
    return scenario.prepare()


# ----- worker processes -----------------------------------------------------------------------------------
_PREPARED: Prepared | None = None


def _init_worker(prepared: Prepared) -> None:
    global _PREPARED
    _PREPARED = prepared


def _run_chunk(seed: int | str, start: int, stop: int, keep: bool, measure: bool) -> list[RunResult]:
    assert _PREPARED is not None
    return [run_once(_PREPARED, i, derive_seed(seed, i), keep, measure) for i in range(start, stop)]


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
) -> Iterator[RunResult]:
    """Yield the results of runs ``start .. start+runs-1``, in run order.

    ``runs`` and ``seed`` default to the scenario's. With ``workers > 1`` the runs are spread over a process
    pool in chunks; at most ``2 * workers`` chunks are in flight, so memory stays flat however many runs.
    Timelines are kept only with ``keep_timelines`` (they are what takes memory); with ``measurements``
    too, they have an entry for every measurement and every verification verdict.
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
    if workers <= 1 or runs <= 1:
        for i in range(start, stop):
            yield run_once(prepared, i, derive_seed(seed, i), keep_timelines, measurements)
        return
    size = chunk_size or max(1, min(500, runs // (workers * 8) or 1))
    chunks = [(lo, min(lo + size, stop)) for lo in range(start, stop, size)]
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(prepared,)) as pool:
        pending: list[Future[list[RunResult]]] = []
        it = iter(chunks)
        for lo, hi in it:
            pending.append(pool.submit(_run_chunk, seed, lo, hi, keep_timelines, measurements))
            if len(pending) >= 2 * workers:
                break
        while pending:
            results = pending.pop(0).result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(_run_chunk, seed, nxt[0], nxt[1], keep_timelines, measurements))
            yield from results


def replay_run(
    scenario: Scenario, seed: int | str, index: int, keep_timeline: bool = True, measurements: bool = False
) -> RunResult:
    """Run ``index`` of a batch seeded ``seed``, alone."""
    return run_once(prepare_scenario(scenario), index, derive_seed(seed, index), keep_timeline, measurements)


def run_file(path: str | Path, **kwargs: object) -> Summary:
    """Load a scenario and aggregate its runs (a convenience for scripts and the README)."""
    return aggregate(simulate(load_scenario(path), **kwargs))  # type: ignore[arg-type]
