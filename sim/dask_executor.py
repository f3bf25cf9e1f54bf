"""Runs on a Dask distributed cluster: large what-if sweeps beyond one machine.

>>> with DaskExecutor() as executor:                                   # a LocalCluster on 127.0.0.1
...     summary = aggregate(simulate(scenario, runs=100_000, seed=7, executor=executor))
>>> with DaskExecutor("tcp://scheduler:8786") as executor:             # an existing cluster
...     ...

How a sweep maps onto Dask, and what it keeps from one process:

- **Once per worker.** The prepared scenario (the compiled plan, the cluster configuration, the actions) is
  scattered to every worker once, before the first chunk; a chunk task carries only its bounds
  ``(seed, lo, hi)`` and refers to that data. A worker that joins later fetches it from a peer.
- **Identical results.** A run's seed derives from ``(seed, run index)`` only, so where a run goes changes
  nothing. Chunks complete in any order; they are handed on in run order (each chunk waits, at most a window
  of chunks, for the ones before it), so aggregates fold in the same order as in one process, down to the
  order of float additions and of tied counts.
- **Streamed.** At most ``window`` chunks (default: four per worker thread) are submitted or waiting to be
  handed on; a chunk's results are released on the cluster as soon as they are fetched. Memory is flat in
  the number of runs, on both sides.
- **Lost workers.** A worker that dies mid-sweep takes its running chunks with it; the scheduler runs them
  again on the workers left (Dask reschedules the tasks of a lost worker; a task whose workers keep dying is
  given up after ``distributed.scheduler.allowed-failures`` attempts, and the sweep then fails loudly rather
  than losing runs). Runs are pure functions of their seeds, so a re-run gives the same results.

``dask`` and ``distributed`` are an optional extra: ``pip install 'ebbtide[dask]'``.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from ebbtide.sim.chunks import Chunk, run_chunk
from ebbtide.sim.loop import Prepared
from ebbtide.sim.outcome import RunResult

__all__ = ["DaskExecutor", "DaskUnavailable", "dask_available"]


class DaskUnavailable(RuntimeError):
    """The Dask executor was asked for: it needs the dask extra, or a reachable scheduler."""


def _distributed() -> Any:
    """The ``distributed`` module, imported only when a Dask executor is used (the extra is optional)."""
    return importlib.import_module("distributed")


def dask_available() -> bool:
    return (
        importlib.util.find_spec("distributed") is not None and importlib.util.find_spec("dask") is not None
    )


class DaskExecutor:
    """Chunks of runs as tasks on a Dask distributed cluster (a context manager: it owns its client).

    ``address``: an existing scheduler (``tcp://host:8786``); None starts a ``LocalCluster`` of
    ``workers`` single-threaded worker processes listening on 127.0.0.1 only, closed on exit.
    """

    def __init__(
        self,
        address: str | None = None,
        workers: int = 2,
        *,
        window: int | None = None,
        processes: bool = True,
        timeout: float = 10.0,
    ) -> None:
        if not dask_available():
            raise DaskUnavailable("--executor dask needs dask: pip install 'ebbtide[dask]'")
        self.address = address
        self._local_workers = max(1, workers)
        self._window = window
        self._processes = processes
        self._timeout = timeout
        self.cluster: Any = None
        self.client: Any = None

    # ----- lifecycle ---------------------------------------------------------------------------------------
    def __enter__(self) -> DaskExecutor:
        dd = _distributed()
        try:
            if self.address is None:
                # worker processes talk over TCP on 127.0.0.1 only; threads in this process, in-process
                where: dict[str, Any] = {"host": "127.0.0.1"} if self._processes else {}
                self.cluster = dd.LocalCluster(
                    n_workers=self._local_workers,
                    threads_per_worker=1,
                    processes=self._processes,
                    dashboard_address=None,
                    **where,
                )
                self.client = dd.Client(self.cluster, timeout=self._timeout)
            else:
                self.client = dd.Client(self.address, timeout=self._timeout)
        except (OSError, TimeoutError) as exc:
            self.close()
            if self.address is None:
                raise DaskUnavailable(f"cannot start a local Dask cluster: {exc}") from None
            raise DaskUnavailable(f"--dask-scheduler {self.address}: cannot connect: {exc}") from None
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    # ----- the ChunkExecutor protocol ----------------------------------------------------------------------
    @property
    def workers(self) -> int:
        """Worker threads of the cluster now (at least 1): how many chunks run at once."""
        if self.client is None:
            return self._local_workers
        threads: dict[str, int] = self.client.nthreads()
        return max(1, sum(threads.values()))

    def map_chunks(
        self, prepared: Prepared, seed: int | str, chunks: list[Chunk], keep: bool, measure: bool
    ) -> Iterator[list[RunResult]]:
        client = self.client
        if client is None:
            raise RuntimeError("use the DaskExecutor as a context manager: `with DaskExecutor() as ex:`")
        window = self._window or 4 * self.workers
        data = client.scatter(prepared, broadcast=True, hash=False)
        sweep = uuid.uuid4().hex[:12]  # task keys unique on a scheduler shared with other sweeps
        index: dict[str, int] = {}
        futures: dict[str, Any] = {}
        done: dict[int, list[RunResult]] = {}
        todo = iter(enumerate(chunks))
        running = _distributed().as_completed()
        handed = 0  # chunks yielded so far

        def submit() -> None:
            nxt = next(todo, None)
            if nxt is not None:
                i, (lo, hi) = nxt
                future = client.submit(
                    run_chunk, data, seed, lo, hi, keep, measure, key=f"ebbtide-sweep-{sweep}-{i}"
                )
                index[future.key] = i
                futures[future.key] = future
                running.add(future)

        try:
            for _ in range(min(window, len(chunks))):
                submit()
            for future in running:
                done[index.pop(future.key)] = future.result()
                del futures[future.key]
                future.release()
                ready: list[list[RunResult]] = []
                while handed + len(ready) in done:
                    ready.append(done.pop(handed + len(ready)))
                handed += len(ready)
                # refill before handing on: at most `window` chunks submitted or waiting for an earlier one
                while len(index) + len(done) < window and len(index) + len(done) + handed < len(chunks):
                    submit()
                yield from ready
        finally:  # the consumer stopped early (an error, Ctrl-C): nothing of the sweep stays on the cluster
            running.clear()
            client.cancel([*futures.values(), data])
