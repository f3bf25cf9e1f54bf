"""The controller's work queue: object keys, each processed by one worker at a time, deduplicated.

As client-go's workqueue: a key added while it waits is not added twice; a key added while a worker
processes it is processed again once that worker is :meth:`done` with it (never by two workers at once).
Keys can also be added later: at a time (:meth:`add_after`, the engine's ``wake_at`` and the resync), or
after a per-key exponential backoff (:meth:`add_rate_limited`, for errors and conflicts; :meth:`forget`
resets it after a success). Only the earliest pending timer per key is kept: whatever a reconcile decides
then, it names its own next wake.

Keys added in bulk (``add(key, bulk=True)``: the first list of every workload, the periodic resync, all
workloads of a namespace whose spec changed) wait in a second lane, served only when the first is empty: a
workload that changed, a measurement result or a timer due is not queued behind a thousand workloads being
looked at again. A bulk key added again normally moves to the first lane; either way a key waits once.

    queue = WorkQueue()
    queue.add(key); key = queue.get(); ...; queue.done(key)
    queue.shut_down()  # get() answers None from now on; pending keys are dropped
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable


class WorkQueue:
    def __init__(
        self,
        *,
        base_delay: float = 0.05,
        max_delay: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base, self._max = base_delay, max_delay
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: deque[Hashable] = deque()
        self._bulk: deque[Hashable] = deque()  # served when _queue is empty
        self._in_bulk: set[Hashable] = set()
        self._dirty: set[Hashable] = set()  # waiting in _queue, or to be re-queued when done
        self._processing: set[Hashable] = set()
        self._timers: dict[Hashable, float] = {}  # key -> earliest due time (monotonic)
        self._heap: list[tuple[float, int, Hashable]] = []
        self._seq = 0
        self._failures: dict[Hashable, int] = {}
        self._shut = False

    # -- adding ------------------------------------------------------------------------------------
    def add(self, key: Hashable, bulk: bool = False) -> None:
        """Queue ``key``; ``bulk``: in the second lane (see the module documentation)."""
        with self._cond:
            self._add(key, bulk)

    def add_after(self, key: Hashable, delay: float) -> None:
        """Add ``key`` once ``delay`` seconds have passed (at once when ``delay <= 0``)."""
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shut:
                return
            due = self._clock() + delay
            if key in self._timers and self._timers[key] <= due:
                return
            self._timers[key] = due
            self._seq += 1
            heapq.heappush(self._heap, (due, self._seq, key))
            self._cond.notify()

    def add_rate_limited(self, key: Hashable) -> float:
        """Add ``key`` after its backoff (``base * 2**failures``, capped); returns the delay chosen."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        delay: float = min(self._base * 2.0**failures, self._max)
        self.add_after(key, delay)
        return delay

    def forget(self, key: Hashable) -> None:
        """The key succeeded: its next failure starts the backoff from the beginning."""
        with self._cond:
            self._failures.pop(key, None)

    def failures(self, key: Hashable) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    # -- taking ------------------------------------------------------------------------------------
    def get(self, timeout: float | None = None) -> Hashable | None:
        """The next key to process (now marked as processing), or None once shut down or after
        ``timeout`` seconds without one."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while True:
                if self._shut:
                    return None
                self._promote()
                if self._queue or self._bulk:
                    key = self._queue.popleft() if self._queue else self._bulk.popleft()
                    self._in_bulk.discard(key)
                    self._dirty.discard(key)
                    self._processing.add(key)
                    return key
                wait = self._heap[0][0] - self._clock() if self._heap else None
                if deadline is not None:
                    left = deadline - self._clock()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(None if wait is None else max(wait, 0.0))

    def done(self, key: Hashable) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    # -- state -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Keys ready to be processed (not those processing or waiting for a timer)."""
        with self._cond:
            self._promote()
            return len(self._queue) + len(self._bulk)

    def waiting(self) -> int:
        """Keys waiting for a timer (a wake, a backoff)."""
        with self._cond:
            return len(self._timers)

    def shut_down(self) -> None:
        with self._cond:
            self._shut = True
            self._queue.clear()
            self._bulk.clear()
            self._in_bulk.clear()
            self._dirty.clear()
            self._timers.clear()
            self._heap.clear()
            self._cond.notify_all()

    @property
    def is_shut_down(self) -> bool:
        with self._cond:
            return self._shut

    # -- internals (with the lock held) ------------------------------------------------------------
    def _add(self, key: Hashable, bulk: bool = False) -> None:
        if self._shut:
            return
        if key in self._dirty:
            if (
                not bulk and key in self._in_bulk
            ):  # wanted now: out of the bulk lane, to the back of the first
                self._bulk.remove(key)
                self._in_bulk.discard(key)
                self._queue.append(key)
            return
        self._dirty.add(key)
        if key not in self._processing:
            if bulk:
                self._bulk.append(key)
                self._in_bulk.add(key)
            else:
                self._queue.append(key)
            self._cond.notify()

    def _promote(self) -> None:
        now = self._clock()
        while self._heap and self._heap[0][0] <= now:
            due, _, key = heapq.heappop(self._heap)
            if self._timers.get(key) == due:
                del self._timers[key]
                self._add(key)
