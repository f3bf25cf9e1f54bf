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
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Protocol

from ebbtide.sim.loop import Prepared, run_once
from ebbtide.sim.outcome import Aggregator, RunResult, Summary, aggregate
from ebbtide.sim.prefix import Prefix
from ebbtide.sim.scenario import Scenario, load_scenario

__all__ = [
    "Aggregator",
    "ChunkExecutor",
    "ProcessExecutor",
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


# ----- executors: where chunks of runs go ---------------------------------------------------------------
Chunk = tuple[int, int]


def run_chunk(
    prepared: Prepared, seed: int | str, lo: int, hi: int, keep: bool, measure: bool
) -> list[RunResult]:
    """Runs ``lo .. hi-1`` of a batch seeded ``seed``: what every executor runs, wherever it runs."""
    prefix = Prefix()
    return [run_once(prepared, i, derive_seed(seed, i), keep, measure, prefix) for i in range(lo, hi)]


class ChunkExecutor(Protocol):
    """Runs chunks of runs somewhere and yields each chunk's results, in chunk order, as they complete.

    ``workers`` is how many chunks it runs at once (it sizes the chunks); an executor keeps at most a few
    chunks per worker in flight or waiting to be yielded, so memory stays flat however many runs.
    """

    @property
    def workers(self) -> int: ...

    def map_chunks(
        self, prepared: Prepared, seed: int | str, chunks: list[Chunk], keep: bool, measure: bool
    ) -> Iterator[list[RunResult]]: ...


_PREPARED: Prepared | None = None
#: the worker process's prefix: every chunk it runs shares the decisions of its first run
_PREFIX: Prefix | None = None


def _init_worker(prepared: Prepared) -> None:
    global _PREPARED, _PREFIX
    _PREPARED = prepared
    _PREFIX = Prefix()


def _run_chunk_here(seed: int | str, lo: int, hi: int, keep: bool, measure: bool) -> list[RunResult]:
    assert _PREPARED is not None and _PREFIX is not None
    prepared, prefix = _PREPARED, _PREFIX
    return [run_once(prepared, i, derive_seed(seed, i), keep, measure, prefix) for i in range(lo, hi)]


class ProcessExecutor:
    """Worker processes on this machine: the prepared scenario goes to each process once, when it starts;
    a chunk is sent as its bounds and comes back as its results. At most four chunks per worker are in
    flight or waiting to be yielded (chunks shrink towards the end, so a window of the later, smaller ones
    keeps every worker busy while the head chunk finishes)."""

    def __init__(self, workers: int) -> None:
        self._workers = max(1, workers)

    @property
    def workers(self) -> int:
        return self._workers

    def map_chunks(
        self, prepared: Prepared, seed: int | str, chunks: list[Chunk], keep: bool, measure: bool
    ) -> Iterator[list[RunResult]]:
        with ProcessPoolExecutor(self._workers, initializer=_init_worker, initargs=(prepared,)) as pool:
            pending: deque[Future[list[RunResult]]] = deque()
            it = iter(chunks)
            for lo, hi in it:
                pending.append(pool.submit(_run_chunk_here, seed, lo, hi, keep, measure))
                if len(pending) >= 4 * self._workers:
                    break
            while pending:
                results = pending.popleft().result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(pool.submit(_run_chunk_here, seed, nxt[0], nxt[1], keep, measure))
                yield results


#: the most and the fewest runs of a chunk (unless ``chunk_size`` says otherwise)
MAX_CHUNK = 200
MIN_CHUNK = 4


def chunk_bounds(start: int, stop: int, workers: int, size: int | None = None) -> list[Chunk]:
    """``start .. stop-1`` cut into chunks of ``size`` runs, or, by default, of a quarter of the runs left per
    worker (between 4 and 200 runs): they shrink towards the end, so the workers finish within a few runs of
    each other however the runs fall, while the early chunks are large enough to cost little to send."""
    if size:
        return [(lo, min(lo + size, stop)) for lo in range(start, stop, size)]
    chunks: list[Chunk] = []
    lo = start
    while lo < stop:
        n = max(MIN_CHUNK, min(MAX_CHUNK, (stop - lo) // (4 * workers)))
        chunks.append((lo, min(lo + n, stop)))
        lo += n
    return chunks


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

    ``runs`` and ``seed`` default to the scenario's. With ``workers > 1`` the runs are spread over a process
    pool in chunks; with an ``executor`` (a :class:`ProcessExecutor`, a
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
