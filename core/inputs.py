"""What :func:`ebbtide.core.step` accepts: embedders get a clear TypeError / ValueError, never a crash deep
inside the engine or a silently wrong decision.

Events are plain frozen dataclasses: building one validates nothing (outside input is validated by
:func:`ebbtide.core.events.parse_event`). So ``step()`` checks what the engine relies on: the event's type,
the types of the fields it branches on (a revision that is a string, pod counts that are integers, a known
command action), and values that are well typed and still meaningless (a negative replica count, a
measurement with both a value and an error). The checks are a handful of comparisons: the engine's hot path
pays well under a microsecond for them.
"""

from __future__ import annotations

import sys
from typing import get_args

from ebbtide.core.events import (
    Command,
    CommandAction,
    Deploy,
    Measurement,
    ReplicasObserved,
    SpecChanged,
    Tick,
)
from ebbtide.core.plan import Plan
from ebbtide.core.state import RolloutState

__all__ = ["check_step_inputs"]

_EVENTS = (Tick, ReplicasObserved, Measurement, Deploy, Command, SpecChanged)
_NAMES = ", ".join(cls.__name__ for cls in _EVENTS)
_ACTIONS: frozenset[str] = frozenset(get_args(CommandAction))
_FLOAT_MAX = sys.float_info.max


def check_step_inputs(state: object, event: object, now: object) -> None:
    """Raise TypeError (wrong type) or ValueError (meaningless value) for an input ``step()`` refuses.

    Ordered for the events that come most (ticks and measurements, with a float ``now``): they pay a few
    comparisons and no further call (``now - now`` is 0.0 for every finite float and NaN for the others)."""
    if type(now) is float:
        if now - now != 0.0:
            raise ValueError(f"now must be a finite number of seconds, not {now!r}")
    elif type(now) is not int:
        raise TypeError(f"now must be a number of seconds (float), not {type(now).__name__}")
    elif not -_FLOAT_MAX <= now <= _FLOAT_MAX:  # an int no float can hold: the engine computes in floats
        raise ValueError(f"now must be a finite number of seconds, not {now!r}")
    if type(state) is not RolloutState and not isinstance(state, RolloutState):
        raise TypeError(f"state must be a RolloutState, not {type(state).__name__}")
    cls = type(event)
    if cls is Tick:
        return
    if cls is Measurement:
        if type(event.verification) is not str or type(event.metric) is not str:  # type: ignore[attr-defined]
            raise TypeError("Measurement: verification and metric must be strings")
        if event.error is not None:  # type: ignore[attr-defined]
            _check_error(event)  # type: ignore[arg-type]
    elif cls is ReplicasObserved:
        rev, desired, ready = event.revision, event.desired, event.ready  # type: ignore[attr-defined]
        available, failed = event.available, event.failed  # type: ignore[attr-defined]
        if not (  # the common observation passes in one expression; anything else is checked in detail
            type(rev) is str
            and rev
            and type(desired) is int
            and type(ready) is int
            and type(available) is int
            and type(failed) is int
            and desired >= 0
            and ready >= 0
            and available >= 0
            and failed >= 0
        ):
            _check_observation(event)  # type: ignore[arg-type]
    elif cls is Deploy:
        _check_revision(event.revision, "Deploy")  # type: ignore[attr-defined]
        if event.plan is not None:  # type: ignore[attr-defined]
            _check_plan(event.plan, "Deploy")  # type: ignore[attr-defined]
    elif cls is Command:
        _check_command(event)  # type: ignore[arg-type]
    elif cls is SpecChanged:
        _check_plan(event.plan, "SpecChanged")  # type: ignore[attr-defined]
    else:
        raise TypeError(f"event must be one of {_NAMES}, not {cls.__name__}")


def _check_command(event: Command) -> None:
    if event.action not in _ACTIONS:
        raise ValueError(f"Command: unknown action {event.action!r} (one of {', '.join(sorted(_ACTIONS))})")
    if event.revision is not None:
        _check_revision(event.revision, "Command")


def _check_error(event: Measurement) -> None:
    """A Measurement that carries an error (the rare case: its strings are checked already)."""
    if type(event.error) is not str:
        raise TypeError(f"Measurement: the error must be a string, not {type(event.error).__name__}")
    if event.value is not None:
        raise ValueError("a Measurement carries either a value or an error, not both")


def _check_observation(event: ReplicasObserved) -> None:
    _check_revision(event.revision, "ReplicasObserved")
    desired, ready, available, failed = event.desired, event.ready, event.available, event.failed
    if (
        type(desired) is not int
        or type(ready) is not int
        or type(available) is not int
        or type(failed) is not int
    ):
        raise TypeError(f"ReplicasObserved of {event.revision!r}: pod counts must be integers")
    if desired < 0 or ready < 0 or available < 0 or failed < 0:
        counts = f"desired={event.desired}, ready={event.ready}, available={event.available}"
        raise ValueError(
            f"ReplicasObserved of {event.revision!r}: pod counts must not be negative "
            f"({counts}, failed={event.failed})"
        )


def _check_plan(plan: object, what: str) -> None:
    if not isinstance(plan, Plan):
        raise TypeError(f"{what}: the plan must be a Plan, not {type(plan).__name__}")


def _check_revision(revision: object, what: str) -> None:
    if not isinstance(revision, str):
        raise TypeError(f"{what}: the revision must be a string, not {type(revision).__name__}")
    if not revision:
        raise ValueError(f"{what}: the revision must not be empty")
