"""The controller's work queue: object keys, each processed by one worker at a time, deduplicated.

As client-go's workqueue: a key added while it waits is not added twice; a key added while a worker
processes it is processed again once that worker is :meth:`done` with it (never by two workers at once).
Keys can also be added later: at a time (:meth:`add_after`, the engine's ``wake_at`` and the resync), or
after a per-key exponential backoff (:meth:`add_rate_limited`, for errors and conflicts; :meth:`forget`
resets it after a success). Only the earliest pending timer per key is kept: whatever a reconcile decides
then, it names its own next wake.

Keys wait in one of three lanes, served in order: ``URGENT`` (what a person asked for: a spec changed, an
action recorded; a measurement result), ``NORMAL`` (the workload's own pods and ReplicaSets moved, a timer
came due) and ``BULK`` (the first list of every workload, the periodic resync, all workloads of a namespace
whose spec changed). So a rollback someone asked for, or a failing measurement, is not queued behind a
thousand workloads being looked at again. A waiting key added again to a more urgent lane moves there; either
way a key waits once.

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

#: the lanes, served in this order
URGENT, NORMAL, BULK = 0, 1, 2


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
        self._lanes: tuple[deque[Hashable], ...] = (deque(), deque(), deque())
        self._lane_of: dict[Hashable, int] = {}  # the lane a waiting key is in
        self._dirty: set[Hashable] = set()  # waiting in a lane, or to be re-queued when done
        self._processing: set[Hashable] = set()
        self._timers: dict[Hashable, float] = {}  # key -> earliest due time (monotonic)
        self._heap: list[tuple[float, int, Hashable]] = []
        self._seq = 0
        self._failures: dict[Hashable, int] = {}
        self._shut = False

    # -- adding ------------------------------------------------------------------------------------
    def add(self, key: Hashable, lane: int = NORMAL) -> None:
        """Queue ``key`` in ``lane`` (see the module documentation)."""
        with self._cond:
            self._add(key, lane)

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
                key = self._next()
                if key is not None:
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
                self._lanes[NORMAL].append(key)
                self._lane_of[key] = NORMAL
                self._cond.notify()

    # -- state -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Keys ready to be processed (not those processing or waiting for a timer)."""
        with self._cond:
            self._promote()
            return len(self._lane_of)

    def waiting(self) -> int:
        """Keys waiting for a timer (a wake, a backoff)."""
        with self._cond:
            return len(self._timers)

    def shut_down(self) -> None:
        with self._cond:
            self._shut = True
            for lane in self._lanes:
                lane.clear()
            self._lane_of.clear()
            self._dirty.clear()
            self._timers.clear()
            self._heap.clear()
            self._cond.notify_all()

    @property
    def is_shut_down(self) -> bool:
        with self._cond:
            return self._shut

    # -- internals (with the lock held) ------------------------------------------------------------
    def _add(self, key: Hashable, lane: int = NORMAL) -> None:
        if self._shut:
            return
        if key in self._dirty:
            waiting = self._lane_of.get(key)
            if waiting is not None and lane < waiting:  # wanted sooner: to the back of the more urgent lane
                self._lanes[waiting].remove(key)
                self._lanes[lane].append(key)
                self._lane_of[key] = lane
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._lanes[lane].append(key)
            self._lane_of[key] = lane
            self._cond.notify()

    def _next(self) -> Hashable | None:
        for lane in self._lanes:
            if lane:
                key = lane.popleft()
                del self._lane_of[key]
                return key
        return None

    def _promote(self) -> None:
        now = self._clock()
        while self._heap and self._heap[0][0] <= now:
            due, _, key = heapq.heappop(self._heap)
            if self._timers.get(key) == due:
                del self._timers[key]
                self._add(key)
