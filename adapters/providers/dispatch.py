"""The dispatcher: a provider's ``measure`` on a bounded thread pool, so no provider ever blocks the engine.

A controller reconciles many rollouts on one thread; a provider that answers in seconds (or never) must not
hold it. :class:`Dispatcher` wraps any synchronous :class:`~ebbtide.adapters.base.MeasurementProvider`:

- ``dispatcher.for_scope(scope)`` is a provider for one rollout (``scope`` is any key, e.g.
  ``"namespace/name"``). Its ``measure`` submits the request and returns None at once (the engine's
  "answered later"); ``poll()`` returns the results completed since the last poll, as ``Measurement`` events.
  The adapters poll it in ``observe`` (:class:`~ebbtide.adapters.base.PolledProvider`).
- A request for a ``(scope, verification, metric)`` that is still in flight, or whose answer waits to be
  polled, is not sent again (a controller restoring a persisted state re-sends what it has in flight).
- ``give_back(scope, results)`` puts results polled but never recorded (the decision that took them was not
  persisted) in front of the scope's next poll.
- Every request is answered exactly once: with the provider's measurement, or with an Error measurement when
  the provider raises (``provider raised ...``), answers None, or does not answer within ``timeout``
  seconds (``timeout: ...``). A provider's answer after its timeout is discarded (counted in ``late``).
- At most ``workers + queue`` provider calls are outstanding (running, waiting for a thread, or still running
  past their timeout). A request beyond that is answered at once with the Error measurement
  ``provider pool saturated``: the pool never queues without bound, and the engine counts the error towards
  ``consecutiveErrorLimit`` as it would a provider outage.
- ``on_result(scope)`` is called (from a worker or the timer thread) whenever a result for ``scope`` is ready:
  a controller uses it to enqueue the rollout, so the result reaches the engine without waiting for a resync.

A thread cannot be killed: a provider call that hangs past its timeout keeps its thread until it returns (it
still counts towards the bound). Providers should carry their own timeouts (the HTTP ones do); the
dispatcher's timeout is the guarantee that a rollout never waits longer. Keep it below the engine's own
measurement timeout (60 s, :data:`ebbtide.core.verification.MEASUREMENT_TIMEOUT`), after which the
engine asks again.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ebbtide.adapters.base import MeasurementProvider
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import Measurement

#: seconds a provider call may take before it is answered with an Error measurement
DEFAULT_TIMEOUT = 30.0

_log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # (scope, verification, metric)


@dataclass(eq=False)
class _Job:
    key: Key
    start: StartMeasurement
    now: float
    deadline: float
    answered: bool = field(default=False)


class Dispatcher:
    """A bounded thread pool in front of one synchronous provider (see the module documentation)."""

    def __init__(
        self,
        provider: MeasurementProvider,
        *,
        workers: int = 4,
        queue: int = 16,
        timeout: float = DEFAULT_TIMEOUT,
        on_result: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if workers < 1 or queue < 0:
            raise ValueError(f"workers must be >= 1 and queue >= 0 (got {workers}, {queue})")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive (got {timeout})")
        self.provider = provider
        self.workers = workers
        self.capacity = workers + queue
        self.timeout = timeout
        self.on_result = on_result
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ebbtide-measure")
        self._cond = threading.Condition()
        self._in_flight: dict[Key, _Job] = {}
        self._results: dict[str, list[Measurement]] = {}
        self._deadlines: list[tuple[float, int, _Job]] = []
        self._seq = itertools.count()
        self._outstanding = 0  # provider calls not returned yet (answered by timeout or not)
        self._closed = False
        #: counters: requests submitted, answered by timeout, refused as saturated, late answers discarded
        self.submitted = 0
        self.timeouts = 0
        self.saturated = 0
        self.late = 0
        self._timer = threading.Thread(target=self._watch, name="ebbtide-measure-timer", daemon=True)
        self._timer.start()

    # ----- the provider side -------------------------------------------------------------------------
    def for_scope(self, scope: str) -> ScopedProvider:
        """The provider one rollout's adapter uses: submits to this pool and polls ``scope``'s results."""
        return ScopedProvider(self, scope)

    def submit(self, scope: str, start: StartMeasurement, now: float) -> Measurement | None:
        """Start measuring; None (answered later through :meth:`poll`) or an Error measurement now."""
        key = (scope, start.verification, start.metric.name)
        with self._cond:
            if self._closed:
                return _error(start, "measurement dispatcher is closed")
            if key in self._in_flight or self._answered(key):
                return None  # asked again (a controller restoring its state re-sends what is in flight)
            if self._outstanding >= self.capacity:
                self.saturated += 1
                return _error(
                    start, f"provider pool saturated: {self._outstanding} measurements already in flight"
                )
            job = _Job(key, start, now, self._clock() + self._timeout_of(start))
            self._in_flight[key] = job
            self._outstanding += 1
            self.submitted += 1
            heapq.heappush(self._deadlines, (job.deadline, next(self._seq), job))
            self._cond.notify_all()
        self._pool.submit(self._run, job)
        return None

    def _answered(self, key: Key) -> bool:
        """An answer to ``key`` waits to be polled: asking again would measure twice, and the second
        answer would later be taken for the metric's next measurement."""
        scope, verification, metric = key
        return any(
            m.verification == verification and m.metric == metric for m in self._results.get(scope, ())
        )

    def _timeout_of(self, start: StartMeasurement) -> float:
        """The dispatcher's timeout, or the metric's own when it waits longer (a Jenkins build's)."""
        own = start.metric.timeout
        return self.timeout if own is None or own <= self.timeout else own

    def poll(self, scope: str) -> list[Measurement]:
        """The results for ``scope`` completed since the last poll, in the order they completed."""
        with self._cond:
            return self._results.pop(scope, [])

    def give_back(self, scope: str, results: list[Measurement]) -> None:
        """Put ``results``, polled from ``scope`` but never recorded, in front of its next poll. Nobody is
        told (``on_result`` is not called): the reconcile that gave them back is retried with backoff."""
        if not results:
            return
        with self._cond:
            self._results[scope] = [*results, *self._results.get(scope, [])]
            self._cond.notify_all()

    def forget(self, scope: str) -> None:
        """Drop ``scope``'s unpolled results (its rollout is gone) and the answers still to come."""
        with self._cond:
            self._results.pop(scope, None)
            for key in [k for k in self._in_flight if k[0] == scope]:
                self._in_flight.pop(key).answered = True

    def in_flight(self, scope: str | None = None) -> int:
        """Requests not answered yet (for ``scope``, or in all)."""
        with self._cond:
            return sum(1 for key in self._in_flight if scope is None or key[0] == scope)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every request is answered (tests, lock-step simulation); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._in_flight, timeout)

    def close(self) -> None:
        """Stop accepting requests and stop the timer; running provider calls finish on their own."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._timer.join(timeout=5)

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- the workers -------------------------------------------------------------------------------
    def _run(self, job: _Job) -> None:
        try:
            result = self.provider.measure(job.start, job.now)
            if result is None:
                result = _error(job.start, "provider answered nothing (it must answer synchronously)")
        except Exception as exc:  # a provider bug must not lose the request: it becomes its answer
            result = _error(job.start, f"provider raised {type(exc).__name__}: {exc}")
        with self._cond:
            self._outstanding -= 1
            if job.answered:
                self.late += 1
                return
        self._answer(job, result)

    def _watch(self) -> None:
        """The timer thread: answers every request still open at its deadline with a timeout error."""
        while True:
            expired: list[_Job] = []
            with self._cond:
                if self._closed:
                    return
                if not self._deadlines:
                    self._cond.wait()
                    continue
                delay = self._deadlines[0][0] - self._clock()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                while self._deadlines and self._deadlines[0][0] <= self._clock():
                    job = heapq.heappop(self._deadlines)[2]
                    if not job.answered:
                        expired.append(job)
            for job in expired:
                message = f"timeout: the provider did not answer within {self.timeout:g}s"
                if self._answer(job, _error(job.start, message)):
                    with self._cond:
                        self.timeouts += 1

    def _answer(self, job: _Job, result: Measurement) -> bool:
        """Record ``job``'s one answer (False: it was answered already) and tell ``on_result``."""
        scope = job.key[0]
        with self._cond:
            if job.answered:
                return False
            job.answered = True
            if self._in_flight.get(job.key) is job:
                del self._in_flight[job.key]
            self._results.setdefault(scope, []).append(result)
            self._cond.notify_all()
        if self.on_result is not None:
            try:
                self.on_result(scope)
            except Exception:  # the callback's failure must not lose the result (it is already queued)
                _log.exception("on_result(%r) failed", scope)
        return True


class ScopedProvider:
    """One scope's view of a :class:`Dispatcher`: a :class:`~ebbtide.adapters.base.PolledProvider`."""

    def __init__(self, dispatcher: Dispatcher, scope: str) -> None:
        self.dispatcher = dispatcher
        self.scope = scope

    def measure(self, start: StartMeasurement, now: float) -> Measurement | None:
        return self.dispatcher.submit(self.scope, start, now)

    def poll(self) -> list[Measurement]:
        return self.dispatcher.poll(self.scope)

    def give_back(self, results: list[Measurement]) -> None:
        self.dispatcher.give_back(self.scope, results)


def _error(start: StartMeasurement, reason: str) -> Measurement:
    return Measurement(verification=start.verification, metric=start.metric.name, error=reason)
