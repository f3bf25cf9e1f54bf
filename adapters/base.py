"""The adapter protocol: what :class:`ebbtide.adapters.driver.Driver` needs from the outside world.

An adapter is the I/O half of ebbtide. The driver hands it the engine's effects and asks it what happened; the
engine never sees the adapter. Two adapters implement this protocol: the in-memory cluster
(:mod:`ebbtide.adapters.memory`, used by the simulator and the tests) and the Kubernetes adapter.

The contract (checked for every adapter by ``tests/adapters/test_contract.py``):

- ``apply(effect, now)`` is level-based and idempotent: applying the same effect twice leaves the world as
  applying it once (no duplicate pods, no duplicate measurements for the same request).
- ``observe(now)`` returns the events the world produced since the last call: a ``ReplicasObserved`` for each
  revision whose counts changed, and the ``Measurement`` results of ``StartMeasurement`` effects that are
  ready (including those a :class:`PolledProvider` completed since the last call). An unchanged revision
  is not reported again, so feeding the same world twice adds no events.
- ``resync()`` makes the next ``observe`` report every revision again (after a restart or a lost watch).
- ``next_change(now)`` is when the adapter knows the world will change by itself (a pod becoming ready); a
  real cluster does not know and returns None (it is watch driven).
- ``notifications`` lists the ``Notify`` effects delivered, as ``(time, effect)``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ebbtide.core.effects import Effect, Notify, StartMeasurement
from ebbtide.core.events import Event, Measurement


@runtime_checkable
class MeasurementProvider(Protocol):
    """Answers a ``StartMeasurement``: now (return the Measurement) or later (return None and report the
    result through the adapter's ``observe``)."""

    def measure(self, start: StartMeasurement, now: float) -> Measurement | None: ...


@runtime_checkable
class PolledProvider(MeasurementProvider, Protocol):
    """A provider that answers later: ``measure`` returns None and the result comes out of ``poll``, which
    returns the measurements completed since the last call (each exactly once). The adapters drain it in
    ``observe``, so the driver feeds those results to the engine like any other measurement
    (:class:`ebbtide.adapters.providers.dispatch.Dispatcher` makes one of any provider)."""

    def poll(self) -> list[Measurement]: ...


@runtime_checkable
class ReturnableProvider(PolledProvider, Protocol):
    """A polled provider that takes results back: ``give_back`` puts measurements polled but never
    recorded (the decision that took them was not persisted) in front of the next ``poll``."""

    def give_back(self, results: list[Measurement]) -> None: ...


@runtime_checkable
class Adapter(Protocol):
    """The world as the driver sees it.

    Two members are optional, for speed, and the driver looks them up once with ``getattr`` (0.06 µs; an
    ``isinstance`` check against a runtime-checkable protocol takes 4.2 µs, and the simulator builds a
    driver for every run):

    - ``appliers() -> dict[type, Callable[[effect, now], None]]``: the adapter's own handler of each effect
      type, called instead of ``apply`` (types it leaves out still go to ``apply``);
    - ``observe_settles: bool`` (true): once observed at ``now``, the adapter reports nothing more at ``now``
      until an effect is applied, so a batch of events without effects ends the driver's pump.

    :class:`~ebbtide.adapters.memory.MemoryCluster` has both; ``tests/sim/test_settles.py`` checks the
    second promise on every example scenario.
    """

    @property
    def notifications(self) -> list[tuple[float, Notify]]: ...

    def apply(self, effect: Effect, now: float) -> None: ...

    def observe(self, now: float) -> list[Event]: ...

    def resync(self) -> None: ...

    def next_change(self, now: float) -> float | None: ...
