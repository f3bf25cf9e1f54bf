"""The process executor: this process and its worker processes share the chunks, and the results are one
process's, in order, whatever the timing; a worker's error or death fails the call; no worker outlives it.

The sharing is judged against a model (fake workers that finish whenever hypothesis says); the rest runs
real worker processes (forked: the tests that patch a function for the workers to inherit need fork).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebbtide.sim import processes
from ebbtide.sim.chunks import Chunk, chunk_bounds, run_chunk
from ebbtide.sim.outcome import RunResult
from ebbtide.sim.processes import AHEAD, ProcessExecutor, RemoteTraceback, WorkerLost, pack, share, unpack
from ebbtide.sim.runner import load_scenario, simulate
from ebbtide.sim.scenario import Scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
forks = pytest.mark.skipif(
    multiprocessing.get_start_method() != "fork", reason="the workers must inherit a patched function"
)


@pytest.fixture(scope="module")
def flaky() -> Scenario:
    return load_scenario(EXAMPLES / "flaky-metric.yaml")


# ----- the sharing, against a model ------------------------------------------------------------------------
class FakeWorker:
    """A worker whose chunks finish when the test says: ``finish`` draws whether its head chunk is done."""

    def __init__(self, name: str, finish: Callable[[], bool], log: list[tuple[str, int]]) -> None:
        self.name = name
        self.finish = finish
        self.log = log
        self.out: deque[int] = deque()
        self.chunks: deque[Chunk] = deque()

    def send(self, index: int, chunk: Chunk) -> None:
        assert len(self.out) < AHEAD  # never more than AHEAD chunks out with one worker
        self.out.append(index)
        self.chunks.append(chunk)

    def has_result(self) -> bool:
        return bool(self.out) and self.finish()

    def receive(self) -> tuple[int, list[Any]]:
        index, chunk = self.out.popleft(), self.chunks.popleft()
        self.log.append((self.name, index))
        return index, [chunk]


@given(
    runs=st.integers(1, 400),
    workers=st.integers(1, 3),
    size=st.none() | st.integers(1, 60),
    data=st.data(),
)
def test_each_chunk_runs_once_and_comes_back_in_order(
    runs: int, workers: int, size: int | None, data: st.DataObject
) -> None:
    chunks = chunk_bounds(0, runs, workers + 1, size)
    log: list[tuple[str, int]] = []

    def run_here(lo: int, hi: int) -> list[Any]:
        log.append(("here", chunks.index((lo, hi))))
        return [(lo, hi)]

    fakes = [FakeWorker(f"w{i}", lambda: data.draw(st.booleans()), log) for i in range(workers)]
    got = []
    for results in share(chunks, run_here, fakes):  # type: ignore[arg-type]
        got.extend(results)
        # finished chunks waiting their turn: this process stops taking more at AHEAD * (workers + 1),
        # and collects at most what the workers have out besides
        assert sum(1 for _, i in log if i > chunks.index(results[0])) <= AHEAD * (2 * workers + 1)
    assert got == chunks  # in order, every chunk
    assert sorted(i for _, i in log) == list(range(len(chunks)))  # each run exactly once
    assert all(not f.out for f in fakes)


def test_the_due_chunk_goes_to_this_process_when_nobody_has_it() -> None:
    """The first chunk is this process's (its results come first, without waiting for a worker to start);
    the worker gets the next two; this process takes the ones after while the worker's are not back."""
    chunks = [(i, i + 1) for i in range(6)]
    log: list[tuple[str, int]] = []
    worker = FakeWorker("w", lambda: False, log)

    def run_here(lo: int, hi: int) -> list[Any]:
        log.append(("here", lo))
        return [(lo, hi)]

    assert [r for rs in share(chunks, run_here, [worker]) for r in rs] == chunks  # type: ignore[arg-type]
    assert log[:2] == [("here", 0), ("here", 3)]  # the worker has 1 and 2 meanwhile


# ----- real worker processes -------------------------------------------------------------------------------
@pytest.mark.parametrize("workers", [2, 3])
def test_results_are_one_process_results(flaky: Scenario, workers: int) -> None:
    one = [r.to_dict() for r in simulate(flaky, runs=50, seed=4, keep_timelines=True, measurements=True)]
    many = simulate(flaky, runs=50, seed=4, keep_timelines=True, measurements=True, workers=workers)
    assert [r.to_dict() for r in many] == one
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_workers_that_are_not_forked_get_the_scenario_sent(flaky: Scenario, method: str) -> None:
    """Where the platform does not fork (macOS; Linux from Python 3.14 on), the workers are sent the prepared
    scenario, pickled, and import ebbtide themselves: the same results."""
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} here")
    one = [r.to_dict() for r in simulate(flaky, runs=30, seed=6, keep_timelines=True)]
    executor = ProcessExecutor(2, start_method=method)
    many = simulate(flaky, runs=30, seed=6, keep_timelines=True, executor=executor, chunk_size=5)
    assert [r.to_dict() for r in many] == one
    assert multiprocessing.active_children() == []


def test_results_cross_the_pipe_unchanged(flaky: Scenario) -> None:
    results = list(simulate(flaky, runs=6, seed=2, keep_timelines=True, measurements=True))
    assert [r.to_dict() for r in unpack(pack(results))] == [r.to_dict() for r in results]


def test_a_worker_keeps_one_prefix_across_its_chunks(
    flaky: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve`` (a worker's loop), here on a thread over a real pipe: two chunks, then None to stop."""
    made: list[object] = []

    class CountedPrefix(processes.Prefix):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    monkeypatch.setattr(processes, "Prefix", CountedPrefix)
    ours, theirs = multiprocessing.Pipe()
    worker = threading.Thread(target=processes.serve, args=(theirs, flaky.prepare(), 5, False, False))
    worker.start()
    got: list[RunResult] = []
    for chunk in [(0, 4), (4, 8)]:
        ours.send(chunk)
        kind, rows = ours.recv()
        assert kind == "ok"
        got.extend(unpack(rows))
    ours.send(None)
    worker.join(5)
    assert not worker.is_alive() and len(made) == 1
    assert len(made[0]) > 0  # type: ignore[arg-type]
    assert [r.to_dict() for r in got] == [r.to_dict() for r in simulate(flaky, runs=8, seed=5)]


def in_the_workers(
    monkeypatch: pytest.MonkeyPatch,
    before: Callable[[], None] | None = None,
    after: Callable[[list[RunResult]], None] | None = None,
) -> None:
    """Chunks run by the worker processes (forked after this patch), not by this one, call ``before`` and
    then ``after`` with their results."""
    parent = os.getpid()

    def patched(*args: Any, **kwargs: Any) -> list[RunResult]:
        worker = os.getpid() != parent
        if worker and before is not None:
            before()
        results = run_chunk(*args, **kwargs)
        if worker and after is not None:
            after(results)
        return results

    monkeypatch.setattr(processes, "run_chunk", patched)


@forks
def test_an_error_in_a_worker_fails_the_call_with_its_traceback(
    flaky: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail() -> None:
        raise ValueError("the cluster model broke in a worker")

    in_the_workers(monkeypatch, before=fail)
    with pytest.raises(ValueError, match="broke in a worker") as caught:
        list(simulate(flaky, runs=40, seed=1, workers=2, chunk_size=5))
    assert isinstance(caught.value.__cause__, RemoteTraceback)
    assert "ValueError: the cluster model broke in a worker" in str(caught.value.__cause__)
    assert multiprocessing.active_children() == []


@forks
def test_a_result_that_cannot_cross_the_pipe_fails_the_call(
    flaky: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's sending thread cannot pickle it: the call fails with why, it does not wait forever."""
    in_the_workers(monkeypatch, after=lambda results: results[0].timeline.append({"note": lambda: None}))
    with pytest.raises(Exception, match="pickle"):
        list(simulate(flaky, runs=40, seed=1, workers=2, chunk_size=5))
    assert multiprocessing.active_children() == []


@forks
@pytest.mark.parametrize("how", ["exit", "kill"])
def test_a_worker_that_dies_fails_the_call(
    flaky: Scenario, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    def die() -> None:
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
        os._exit(3)

    in_the_workers(monkeypatch, before=die)
    with pytest.raises(WorkerLost, match=r"exit code -9\)" if how == "kill" else r"exit code 3\)"):
        list(simulate(flaky, runs=40, seed=1, workers=2, chunk_size=5))
    assert multiprocessing.active_children() == []


@forks
def test_stopping_early_stops_the_workers_at_once(flaky: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    """A consumer that stops after the first result does not wait for the chunks still out: the workers,
    busy with them, are terminated."""
    in_the_workers(monkeypatch, before=lambda: time.sleep(30))
    results = simulate(flaky, runs=40, seed=1, workers=3, chunk_size=5)
    first = next(results)
    started = time.monotonic()
    results.close()
    assert time.monotonic() - started < 10
    assert first.index == 0 and multiprocessing.active_children() == []
