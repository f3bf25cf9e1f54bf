"""The decisions that the runs of one scenario share before chance first matters.

Every run of a scenario starts from the same engine state and gets the same scripted actions; the seed only
acts through the memory cluster's random draws (readiness delays, signal noise, injected errors). Until a draw
changes what the engine is told, every run hands the engine the very same events at the very same times, and
gets the very same decisions: the stable revision coming up at t=0, a deploy a minute later, the canary's
first pod reported not ready yet. ``core.step`` is a pure function, so those decisions need computing once.

A :class:`Prefix` keeps the engine calls of the first run it serves, in order, as ``(state, event, now,
decision)``. Each later run follows that path while its calls are the same ones: the state must be the very
object the path holds (which it is exactly as long as every earlier call matched, since the run then holds
the decisions of the path), the event and the time must be the same values, compared by type and
``repr``, so that ``1`` and ``1.0``, ``True`` and ``1`` or ``0.0`` and ``-0.0`` never pass for each other.
The first call that differs leaves the path for the rest of the run, and from then on every call goes to the
engine. Only calls are saved: the cluster, the driver and the tracker see every decision as before, so a
run's result is identical, which tests/sim/test_golden_runs.py pins.

One prefix serves the runs of one process (a chunk, a ``simulate`` call); it is never pickled.
"""

from __future__ import annotations

from collections.abc import Callable
from math import copysign
from typing import Any

from ebbtide.core.events import Event
from ebbtide.core.state import Decision, RolloutState

StepFn = Callable[[RolloutState, Event, float], Decision]
#: answers a call from the path, or None (see :meth:`Prefix.answers`)
Answers = Callable[[RolloutState, Event, float], Decision | None]

#: the most engine calls a prefix keeps (a run of the benchmark's scenario makes about 30)
LIMIT = 256


def same(a: Any, b: Any) -> bool:
    """``a`` and ``b`` are the same input for the engine: the same object, or of the same type and
    ``repr`` (events are dataclasses whose repr shows every field); floats (times) equal and of the same
    sign, which is what their repr would say, without formatting them (NaN is never the same)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return bool(a == b and copysign(1.0, a) == copysign(1.0, b))
    return repr(a) == repr(b)


class Prefix:
    """The engine calls of the first run, for the later runs of the same scenario to follow."""

    __slots__ = ("_path", "_recorded", "_step")

    def __init__(self) -> None:
        from ebbtide.core import engine  # looked up now, so that a benchmark's recording step is the one used

        self._step: StepFn = engine.step
        self._path: list[tuple[RolloutState, Event, float, Decision]] = []
        self._recorded = False

    def __len__(self) -> int:
        return len(self._path)

    @property
    def step(self) -> StepFn:
        """The engine's step function the prefix records (looked up when the prefix was built)."""
        return self._step

    def step_fn(self) -> StepFn:
        """The step function of the next run: the first one records its calls, the later ones follow them."""
        answers = self.answers()
        step = self._step

        def shared(state: RolloutState, event: Event, now: float) -> Decision:
            decision = answers(state, event, now)
            return decision if decision is not None else step(state, event, now)

        return shared

    def answers(self) -> Answers:
        """What the next run's calls are answered with, until it returns None (then the run asks the engine
        for every later call itself): the first run's calls, made and recorded (None once ``LIMIT`` calls are
        kept); for a later run, the decisions of the path while its calls are the path's (None from the
        first call that differs on)."""
        step = self._step
        path = self._path
        if not self._recorded:
            self._recorded = True

            def record(state: RolloutState, event: Event, now: float) -> Decision | None:
                if len(path) >= LIMIT:
                    return None
                decision = step(state, event, now)
                path.append((state, event, now, decision))
                return decision

            return record

        i = 0
        n = len(path)

        def follow(state: RolloutState, event: Event, now: float) -> Decision | None:
            nonlocal i
            if i < n:
                s, e, t, decision = path[i]
                if s is state and same(e, event) and same(t, now):
                    i += 1
                    return decision
                i = n  # the run left the path: it never comes back to it
            return None

        return follow
