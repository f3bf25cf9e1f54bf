"""Events: everything that can happen to a rollout. The caller feeds them to :func:`ebbtide.core.step`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from typing_extensions import TypeAliasType

from ebbtide.core.plan import Frozen, Plan

CommandAction = Literal["promote", "promoteFull", "pause", "resume", "abort", "retry", "rollback"]

#: a measured value as a provider returns it: a scalar, a vector (Prometheus instant vector), a JSON
#: object (the web provider) nested as deep as the data is, or nothing
MeasuredValue = TypeAliasType(
    "MeasuredValue", "float | int | bool | str | list[MeasuredValue] | dict[str, MeasuredValue] | None"
)


class Deploy(Frozen):
    """The user applied a new revision of the workload (image / template change)."""

    kind: Literal["deploy"] = "deploy"
    revision: str
    #: the plan to roll it out with; None keeps the plan the state already has
    plan: Plan | None = None


class Tick(Frozen):
    """Time passed; the caller sends one at (or after) the ``wake_at`` of the last decision."""

    kind: Literal["tick"] = "tick"


class ReplicasObserved(Frozen):
    """What the cluster reports for one revision's pods."""

    kind: Literal["replicas"] = "replicas"
    revision: str
    desired: int
    ready: int
    available: int
    failed: int = 0


class Measurement(Frozen):
    """The result of a :class:`~ebbtide.core.effects.StartMeasurement` the engine asked for."""

    kind: Literal["measurement"] = "measurement"
    #: the verification run id from the StartMeasurement effect
    verification: str
    metric: str
    value: MeasuredValue = None
    #: a provider error (timeout, bad query, ...): counts towards consecutiveErrorLimit
    error: str | None = None


class Command(Frozen):
    """A rollout action from a person or a tool (Ocean CD rollout actions, Argo's kubectl plugin)."""

    kind: Literal["command"] = "command"
    action: CommandAction
    #: for rollback: the revision to roll back to (default: the previous successful revision)
    revision: str | None = None


class SpecChanged(Frozen):
    """The rollout spec (strategy, templates, policies) changed; takes effect for the next rollout."""

    kind: Literal["spec-changed"] = "spec-changed"
    plan: Plan


Event = Annotated[
    Deploy | Tick | ReplicasObserved | Measurement | Command | SpecChanged, Field(discriminator="kind")
]
