"""The compiled, normalised plan the engine executes.

A plan is what a validated ``RolloutSpec`` + ``Strategy`` + ``VerificationTemplate`` set compiles into
(see :mod:`ebbtide.core.spec`): the implicit final 100% step appended, every default filled, every
``{{args.x}}`` substituted, every duration in seconds, every percentage resolved against the replica
count. The engine never looks at the user-facing spec models, only at this.

All models are frozen pydantic models so that a plan embedded in a :class:`RolloutState` round-trips
through JSON unchanged.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

StepKind = Literal["setWeight", "setCanaryScale", "pause", "verification", "setHeaderRoute"]
FailureAction = Literal["rollback", "pause", "promote"]
RollbackMode = Literal["immediate", "newRollout"]


class Frozen(BaseModel):
    """Base for every immutable, JSON round-tripping model of the core."""

    model_config = ConfigDict(frozen=True, extra="forbid")


M = TypeVar("M", bound=BaseModel)


_new = object.__new__  # BaseModel defines no __new__ of its own
_set = object.__setattr__  # what pydantic itself uses to fill an instance's slots


def evolve(model: M, **changes: Any) -> M:
    """A copy of a frozen model with some fields replaced, without validation (the engine's hot path;
    callers pass values of the declared types). Faster than ``model_copy(update=...)``."""
    new = _new(model.__class__)
    data = model.__dict__.copy()
    data.update(changes)
    fields_set = model.__pydantic_fields_set__
    if not fields_set.issuperset(changes):
        fields_set = fields_set | changes.keys()
    _set(new, "__dict__", data)
    _set(new, "__pydantic_fields_set__", fields_set)
    _set(new, "__pydantic_extra__", None)
    _set(new, "__pydantic_private__", None)
    return new


class MetricPlan(Frozen):
    """One metric of a verification template, defaults filled (Argo AnalysisRun rules)."""

    name: str
    #: seconds between measurements; None: only one measurement unless count > 1 (rejected at load)
    interval: float | None = None
    #: total measurements; None with an interval: measure until the phase ends
    count: int | None = None
    initial_delay: float = 0.0
    success_condition: str | None = None
    failure_condition: str | None = None
    failure_limit: int = 0
    inconclusive_limit: int = 0
    consecutive_error_limit: int = 4
    dry_run: bool = False
    #: provider block with args substituted, opaque to the core (e.g. {"prometheus": {"query": "..."}})
    provider: dict[str, Any] = Field(default_factory=dict)


class TemplatePlan(Frozen):
    name: str
    metrics: tuple[MetricPlan, ...]


class HeaderMatch(Frozen):
    header_name: str
    #: exactly one of exact / prefix / regex
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None


class HeaderRoutePlan(Frozen):
    name: str
    matches: tuple[HeaderMatch, ...] = ()


class StepPlan(Frozen):
    kind: StepKind
    name: str | None = None
    #: setWeight / setCanaryScale.weight: percent 0..100
    weight: int | None = None
    #: setCanaryScale.replicas
    replicas: int | None = None
    #: setCanaryScale.matchTrafficWeight
    match_traffic_weight: bool = False
    #: pause.duration in seconds; None means an indefinite pause (pause: {})
    duration: float | None = None
    #: verification.templateNames
    templates: tuple[str, ...] = ()
    #: setHeaderRoute; a route with no matches removes the route
    header_route: HeaderRoutePlan | None = None
    #: the final setWeight 100 the compiler appends when the user's last weight is below 100; the step
    #: index users see does not count it (a finished rollout of N steps shows step N, as in Argo)
    implicit: bool = False


class Plan(Frozen):
    """Everything the engine needs to run one rollout of a workload."""

    name: str = "rollout"
    strategy: Literal["canary", "rolling"] = "canary"
    steps: tuple[StepPlan, ...] = ()
    background_templates: tuple[str, ...] = ()
    templates: dict[str, TemplatePlan] = Field(default_factory=dict)
    replicas: int = 1
    failure_action: FailureAction = "rollback"
    rollback_mode: RollbackMode = "immediate"
    progress_deadline: float = 600.0
    revision_history_limit: int = 10
    #: fast-track a rollback to any of the last N revisions (Argo rollbackWindow.revisions); 0: stable only
    rollback_window: int = 0
    abort_scale_down_delay: float = 30.0
    scale_down_delay: float = 30.0
    dynamic_stable_scale: bool = False
    max_surge: int = 1
    max_unavailable: int = 0

    def template(self, name: str) -> TemplatePlan:
        return self.templates[name]
