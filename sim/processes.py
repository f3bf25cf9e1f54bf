"""Runs on this machine's cores: this process and ``workers - 1`` worker processes share the chunks.

>>> for result in simulate(scenario, runs=10_000, seed=7, workers=2):   # this process and one worker process
...     ...

How the chunks are shared, and why:

- **This process works too.** A parent that only waited for its workers would be one more process on the
  cores they fill (it takes their results off the pipes while they compute), so ``workers=2`` is this process
  and one worker process. Whenever the chunk due next is still with a worker, this process runs the next
  chunk nobody has taken rather than wait for it: the work balances itself however fast each side goes, and
  chunks shrink towards the end, so everyone finishes within a few runs of the others.
- **Started once, fed bounds.** Each worker starts with the prepared scenario (forked where the platform
  forks, so nothing is sent) and keeps one prefix across its chunks (:mod:`ebbtide.sim.prefix`). A chunk goes
  to it as its bounds ``(lo, hi)`` over its own pipe and comes back as its results, in the order sent. At
  most two chunks per worker are out, and as many finished ones wait here for their turn to be yielded.
- **No threads in this process.** It reads the pipes between its own chunks, or when the chunk due is a
  worker's; no thread of it competes with the runs for a core or for the interpreter lock. (A
  :class:`~concurrent.futures.ProcessPoolExecutor`, which this replaced, keeps two: see
  docs/performance.md for what that cost.) A worker writes its results from a thread of its own, so a
  chunk's results that fill the pipe (timelines with measurements: ~4 KB a run) wait there while it runs
  the next chunk, not in its way.
- **Nothing left behind, nothing lost quietly.** A worker that raises fails the call with its exception (the
  worker's traceback as its cause); a worker that dies fails it with :class:`WorkerLost`. When the call ends,
  however it ends, the workers are stopped: asked to, when they are idle; terminated, when they are not.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import queue
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import fields
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from operator import attrgetter
from typing import Any

from ebbtide.sim.chunks import Chunk, run_chunk
from ebbtide.sim.loop import Prepared
from ebbtide.sim.outcome import Outcome, RunResult
from ebbtide.sim.prefix import Prefix

__all__ = ["ProcessExecutor", "WorkerLost"]

#: chunks out with each worker at once: one it runs, one waiting for it in its pipe
AHEAD = 2


class WorkerLost(RuntimeError):
    """A worker process ended while it had chunks to run (killed, out of memory)."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process (the cause of the one re-raised here)."""

    def __str__(self) -> str:
        return str(self.args[0])


class ProcessExecutor:
    """This process and ``workers - 1`` worker processes on this machine (see the module's docstring).

    ``start_method`` is multiprocessing's (``"fork"``, ``"spawn"``, ``"forkserver"``; default: the
    platform's). Forked workers inherit the prepared scenario and start warm; the others are sent it,
    pickled, and import ebbtide first (a second or so).
    """

    def __init__(self, workers: int, start_method: str | None = None) -> None:
        self._workers = max(1, workers)
        self._context = multiprocessing.get_context(start_method)

    @property
    def workers(self) -> int:
        return self._workers

    def map_chunks(
        self, prepared: Prepared, seed: int | str, chunks: list[Chunk], keep: bool, measure: bool
    ) -> Iterator[list[RunResult]]:
        prefix = Prefix()

        def run_here(lo: int, hi: int) -> list[RunResult]:
            return run_chunk(prepared, seed, lo, hi, keep, measure, prefix)

        if self._workers == 1 or len(chunks) == 1:
            for lo, hi in chunks:
                yield run_here(lo, hi)
            return
        workers: list[Worker] = []
        try:
            for _ in range(min(self._workers - 1, len(chunks) - 1)):
                workers.append(Worker(self._context, (prepared, seed, keep, measure)))
            yield from share(chunks, run_here, workers)
        finally:
            for worker in workers:
                worker.stop()


def share(
    chunks: list[Chunk], run_here: Callable[[int, int], list[RunResult]], workers: list[Worker]
) -> Iterator[list[RunResult]]:
    """The results of ``chunks``, in order: each chunk runs once, here or with one of the ``workers``."""
    sharing = _Sharing(chunks, run_here, workers)
    for due in range(len(chunks)):
        yield sharing.result(due)


class _Sharing:
    """Who runs which chunk. Chunks are taken in order: the workers are kept ``AHEAD`` chunks deep, and this
    process takes the due chunk when nobody has it, else the next one, until ``most_done`` finished chunks
    wait for their turn; then it waits for the worker that has the due chunk."""

    def __init__(
        self, chunks: list[Chunk], run_here: Callable[[int, int], list[RunResult]], workers: list[Worker]
    ) -> None:
        self.chunks = chunks
        self.run_here = run_here
        self.workers = workers
        self.owner: dict[int, Worker] = {}  # chunks out with a worker
        self.done: dict[int, list[RunResult]] = {}  # chunks finished, waiting for their turn
        self.taken = 0  # chunks 0 .. taken-1 are out, done or yielded
        self.most_done = AHEAD * (len(workers) + 1)

    def result(self, due: int) -> list[RunResult]:
        while due not in self.done:
            self._collect()
            worker = self.owner.get(due)
            if due in self.done:
                break
            if worker is None or (self.taken < len(self.chunks) and len(self.done) < self.most_done):
                mine = self.taken  # the due chunk itself when nobody has it, else the next one
                self.taken += 1
                self._top_up()  # the workers get theirs before this process starts on its own
                self.done[mine] = self.run_here(*self.chunks[mine])
            else:
                self._top_up()
                self._receive(worker)  # its next result is the due chunk's
        self.owner.pop(due, None)
        return self.done.pop(due)

    def _collect(self) -> None:
        """Every result the workers have sent: their pipes hold no more than a few chunks' worth."""
        for worker in self.workers:
            while worker.has_result():
                self._receive(worker)

    def _receive(self, worker: Worker) -> None:
        index, results = worker.receive()
        self.done[index] = results

    def _top_up(self) -> None:
        for worker in self.workers:
            while self.taken < len(self.chunks) and len(worker.out) < AHEAD:
                worker.send(self.taken, self.chunks[self.taken])
                self.owner[self.taken] = worker
                self.taken += 1


class Worker:
    """One worker process and its pipe; ``out`` holds the chunks sent to it and not received yet, in order."""

    def __init__(self, context: BaseContext, job: tuple[Prepared, int | str, bool, bool]) -> None:
        self.conn, theirs = context.Pipe()
        # typeshed declares Process on the concrete contexts only, not on BaseContext
        self.process = context.Process(target=serve, args=(theirs, *job), daemon=True)  # type: ignore[attr-defined]
        self.process.start()
        theirs.close()  # the worker's end lives in the worker only: its death is an end of file here
        self.out: deque[int] = deque()

    def send(self, index: int, chunk: Chunk) -> None:
        try:
            self.conn.send(chunk)
        except OSError:  # its end is closed: it has died
            raise self._lost(index) from None
        self.out.append(index)

    def has_result(self) -> bool:
        return bool(self.out) and self.conn.poll()

    def receive(self) -> tuple[int, list[RunResult]]:
        try:
            kind, payload = self.conn.recv()
        except (EOFError, OSError):
            raise self._lost(self.out[0]) from None
        index = self.out.popleft()
        if kind == "error":
            error, remote = payload
            raise error from RemoteTraceback(remote)
        return index, unpack(payload)

    def _lost(self, index: int) -> WorkerLost:
        self.process.join(1)
        return WorkerLost(
            f"a worker process ended (exit code {self.process.exitcode}) with chunk {index} to run; "
            "the simulation stopped"
        )

    def stop(self) -> None:
        """Idle: asked to end, and waited for. Busy (the call ended early): terminated."""
        if not self.out and self.process.is_alive():
            with contextlib.suppress(OSError):
                self.conn.send(None)
            self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()
        self.conn.close()


def serve(conn: Connection, prepared: Prepared, seed: int | str, keep: bool, measure: bool) -> None:
    """A worker process: runs the chunks it is sent, in order, until it is sent None or its pipe closes.

    Results go out through a thread of the worker's own: a chunk's results (timelines can make them larger
    than the pipe holds) are written while the next chunk runs, not in its way while this process is busy
    with a chunk of its own and reads nothing."""
    prefix = Prefix()
    outbox: queue.SimpleQueue[Message | None] = queue.SimpleQueue()
    sender = threading.Thread(target=_send_all, args=(conn, outbox), daemon=True)
    sender.start()
    try:
        while (chunk := conn.recv()) is not None:
            lo, hi = chunk
            try:
                outbox.put(("ok", pack(run_chunk(prepared, seed, lo, hi, keep, measure, prefix))))
            except Exception as exc:  # sent back, raised there: the call fails with it
                outbox.put(("error", _portable(exc)))
                return
    except (EOFError, OSError, KeyboardInterrupt):  # the parent is gone, or Ctrl-C (the parent has it too)
        return
    finally:
        outbox.put(None)
        sender.join()
        conn.close()


#: what a worker sends back: ``("ok", rows)`` or ``("error", (exception, traceback text))``
Message = tuple[str, Any]


def _send_all(conn: Connection, outbox: queue.SimpleQueue[Message | None]) -> None:
    with contextlib.suppress(OSError):  # the parent is gone: nothing to send to
        while (message := outbox.get()) is not None:
            try:
                conn.send(message)
            except OSError:
                raise
            except Exception as exc:  # a result that cannot be pickled (nothing was written): the call fails
                conn.send(("error", _portable(exc)))
                return


#: a run's result as it crosses the pipe: plain tuples, which pickle in half the time the objects take
Row = tuple[Any, ...]
_RESULT = attrgetter("index", "seed", "timeline", "notifications", "rejected", "events")
_OUTCOME = attrgetter(*(f.name for f in fields(Outcome)))


def pack(results: list[RunResult]) -> list[Row]:
    return [(_OUTCOME(r.outcome), *_RESULT(r)) for r in results]


def unpack(rows: list[Row]) -> list[RunResult]:
    return [RunResult(i, s, Outcome(*o), t, n, r, e) for o, i, s, t, n, r, e in rows]


def _portable(exc: Exception) -> tuple[BaseException, str]:
    """The exception and its traceback's text, as they can cross the pipe (as a RuntimeError naming it when
    the exception itself cannot be pickled)."""
    remote = "".join(traceback.format_exception(exc))
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}"), remote
    return exc, remote
