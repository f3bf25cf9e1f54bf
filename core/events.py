"""Events: everything that can happen to a rollout. The caller feeds them to :func:`ebbtide.core.step`.

Events are slotted dataclasses, frozen by contract like the state records and the effects (see
:func:`event`): building one costs no validation and plain attribute stores, because most are built by the
engine's own caller from values it already trusts (the driver answering a StartMeasurement, a simulator).
Input from outside (a request body, a scenario file, a provider's JSON) goes through :func:`parse_event`,
which validates every field against the annotations below; and :func:`ebbtide.core.step` itself refuses a
meaningless event with a clear error (:mod:`ebbtide.core.inputs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, TypeAdapter
from typing_extensions import TypeAliasType, dataclass_transform

from ebbtide.core.plan import Plan

CommandAction = Literal["promote", "promoteFull", "pause", "resume", "abort", "retry", "rollback"]

#: a measured value as a provider returns it: a scalar, a vector (Prometheus instant vector), a JSON
#: object (the web provider) nested as deep as the data is, or nothing
MeasuredValue = TypeAliasType(
    "MeasuredValue", "float | int | bool | str | list[MeasuredValue] | dict[str, MeasuredValue] | None"
)

T = TypeVar("T")


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(field,))
def event(cls: type[T]) -> type[T]:
    """An event: a slotted dataclass, frozen by contract (mypy refuses any assignment to its fields, as for
    ``frozen=True``; at run time its ``__init__`` makes plain stores, not ``object.__setattr__`` calls: a
    Measurement costs 0.6 µs to build instead of 1.8 µs). Hashable and compared by value."""
    return dataclass(slots=True, kw_only=True, unsafe_hash=True)(cls)


@event
class Deploy:
    """The user applied a new revision of the workload (image / template change)."""

    kind: Literal["deploy"] = "deploy"
    revision: str
    #: the plan to roll it out with; None keeps the plan the state already has
    plan: Plan | None = None


@event
class Tick:
    """Time passed; the caller sends one at (or after) the ``wake_at`` of the last decision."""

    kind: Literal["tick"] = "tick"


@event
class ReplicasObserved:
    """What the cluster reports for one revision's pods."""

    kind: Literal["replicas"] = "replicas"
    revision: str
    desired: int
    ready: int
    available: int
    failed: int = 0


@event
class Measurement:
    """The result of a :class:`~ebbtide.core.effects.StartMeasurement` the engine asked for."""

    kind: Literal["measurement"] = "measurement"
    #: the verification run id from the StartMeasurement effect
    verification: str
    metric: str
    value: MeasuredValue = None
    #: a provider error (timeout, bad query, ...): counts towards consecutiveErrorLimit
    error: str | None = None


@event
class Command:
    """A rollout action from a person or a tool (Ocean CD rollout actions, Argo's kubectl plugin)."""

    kind: Literal["command"] = "command"
    action: CommandAction
    #: for rollback: the revision to roll back to (default: the previous successful revision)
    revision: str | None = None


@event
class SpecChanged:
    """The rollout spec (strategy, templates, policies) changed; takes effect for the next rollout."""

    kind: Literal["spec-changed"] = "spec-changed"
    plan: Plan


Event = Annotated[
    Deploy | Tick | ReplicasObserved | Measurement | Command | SpecChanged, Field(discriminator="kind")
]


_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: Any) -> Event:
    """An event from outside input (a dict, e.g. a request body or a scenario's action; ``kind`` selects the
    event), validated field by field: raises pydantic's ValidationError naming the field and the reason."""
    return _ADAPTER.validate_python(data)


def parse_event_json(data: str | bytes) -> Event:
    """:func:`parse_event` of a JSON document."""
    return _ADAPTER.validate_json(data)
