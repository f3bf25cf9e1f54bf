"""The compiled, normalised plan the engine executes.

A plan is what a validated ``RolloutSpec`` + ``Strategy`` + ``VerificationTemplate`` set compiles into
(see :mod:`ebbtide.core.spec`): the implicit final 100% step appended, every default filled, every
``{{args.x}}`` substituted, every duration in seconds, every percentage resolved against the replica
count. The engine never looks at the user-facing spec models, only at this.

All models are frozen pydantic models so that a plan embedded in a :class:`RolloutState` round-trips
through JSON unchanged.
"""

from __future__ import annotations

import math
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from ebbtide.core.duration import MAX_DURATION

#: the most replicas a workload may have (specs, scenarios, plans built in code)
MAX_REPLICAS = 10_000

StepKind = Literal["setWeight", "setCanaryScale", "pause", "verification", "setHeaderRoute", "setMirrorRoute"]
StrategyKind = Literal["canary", "rolling", "blueGreen"]
FailureAction = Literal["rollback", "pause", "promote"]
RollbackMode = Literal["immediate", "newRollout"]
#: what a measurement that did not come back within its timeout counts as: an error (the default, counted
#: towards consecutiveErrorLimit and asked again), or an external verification's fallback (failed: Ocean CD's
#: ``fallback: fail``; successful: ``fallback: continue``)
OnTimeout = Literal["error", "failed", "successful"]

#: the conditions of an external verification metric: its answer is "passed" or anything else (fails)
EXTERNAL_SUCCESS = 'result == "passed"'
EXTERNAL_FAILURE = 'result != "passed"'


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
    #: seconds a measurement may stay unanswered; None: max(60 s, interval) (an external verification's
    #: ``timeout``)
    timeout: float | None = None
    #: what an unanswered measurement counts as once its timeout passed (see :data:`OnTimeout`)
    on_timeout: OnTimeout = "error"

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The two timeout fields are left out of every dump while they hold their defaults, so that the
        dumps of plans without an external verification are what they were before these fields existed."""
        data: dict[str, Any] = handler(self)
        if self.timeout is None:
            data.pop("timeout", None)
        if self.on_timeout == "error":
            data.pop("on_timeout", None)
        return data


class TemplatePlan(Frozen):
    name: str
    metrics: tuple[MetricPlan, ...]


class HeaderMatch(Frozen):
    header_name: str
    #: exactly one of exact / prefix / regex
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None


class ValueMatch(Frozen):
    #: exactly one of exact / prefix / regex
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None


class RequestMatch(Frozen):
    """One rule of a mirror route (Argo's setMirrorRoute.match[]): every condition it gives holds."""

    method: ValueMatch | None = None
    path: ValueMatch | None = None
    headers: tuple[HeaderMatch, ...] = ()


class HeaderRoutePlan(Frozen):
    """A route the router adds beside the weights: a header route sends the matching requests to the canary; a
    mirror route (``mirror_percentage`` set) copies that share of the matching requests to it and drops its
    answers. A route with no matches removes the route of that name."""

    name: str
    matches: tuple[HeaderMatch, ...] = ()
    #: setMirrorRoute: the percentage (0..100) of matching requests copied to the canary
    mirror_percentage: int | None = None
    #: setMirrorRoute: the request rules (a request matching any of them is mirrored)
    request_matches: tuple[RequestMatch, ...] = ()


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
    #: setHeaderRoute / setMirrorRoute; a route with no matches removes the route
    header_route: HeaderRoutePlan | None = None
    #: verification: metrics (by name) this step's runs measure in dry-run mode (Argo's analysis.dryRun)
    dry_run: tuple[str, ...] = ()
    #: the final setWeight 100 the compiler appends when the user's last weight is below 100; the step
    #: index users see does not count it (a finished rollout of N steps shows step N, as in Argo)
    implicit: bool = False


class Plan(Frozen):
    """Everything the engine needs to run one rollout of a workload."""

    name: str = "rollout"
    #: blueGreen: compiled into the same steps (see :mod:`ebbtide.core.bluegreen`); always with a router
    strategy: StrategyKind = "canary"
    steps: tuple[StepPlan, ...] = ()
    background_templates: tuple[str, ...] = ()
    #: metrics (by name) the background runs measure in dry-run mode (Argo's analysis.dryRun)
    background_dry_run: tuple[str, ...] = ()
    #: background verification starts when the rollout reaches this step (Argo's analysis.startingStep)
    background_starting_step: int = Field(default=0, ge=0)
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
    #: at most this many replaced revisions wait for their scale-down delay at once (Argo's
    #: scaleDownDelayRevisionLimit); those due first go at once; None: no limit
    scale_down_delay_revision_limit: int | None = None
    dynamic_stable_scale: bool = False
    max_surge: int = 1
    max_unavailable: int = 0
    #: a traffic router (Istio, NGINX, SMI, ALB, Gateway API, ...) splits requests by weight; False: a basic
    #: canary (Argo's default without trafficRouting): the weight is realised as a pod ratio within
    #: maxSurge / maxUnavailable, and setCanaryScale, header routes and dynamicStableScale do not apply
    traffic_router: bool = True

    def template(self, name: str) -> TemplatePlan:
        return self.templates[name]

    @model_validator(mode="after")
    def _valid(self) -> Plan:
        """A plan built in code is held to the rules a loaded spec is (see :func:`plan_problems`)."""
        problems = plan_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def plan_problems(plan: Plan) -> list[str]:
    """Why ``plan`` cannot run: weights, replica counts, durations, template references."""
    out: list[str] = []
    if not 0 <= plan.replicas <= MAX_REPLICAS:
        out.append(f"replicas must be 0..{MAX_REPLICAS}, not {plan.replicas}")
    for field in ("revision_history_limit", "rollback_window", "max_surge", "max_unavailable"):
        if getattr(plan, field) < 0:
            out.append(f"{field} must not be negative, not {getattr(plan, field)}")
    _durations(out, "", plan, ("progress_deadline", "abort_scale_down_delay", "scale_down_delay"))
    limit = plan.scale_down_delay_revision_limit
    if limit is not None and limit < 0:
        out.append(f"scale_down_delay_revision_limit must not be negative, not {limit}")
    if plan.progress_deadline == 0:
        out.append("progress_deadline must be positive")
    if plan.strategy == "blueGreen":
        out.extend(_blue_green_problems(plan))
    last: int | None = None
    for i, st in enumerate(plan.steps):
        where = f"steps[{i}]"
        out.extend(f"{where}: {p}" for p in _step_problems(st, plan))
        if st.kind == "setWeight" and st.weight is not None:
            if last is not None and st.weight <= last:
                out.append(f"{where}.weight: weights must strictly increase: {st.weight} after {last}")
            last = st.weight
    for name in plan.background_templates:
        if name not in plan.templates:
            out.append(f"background_templates: no template {name!r} in templates")
    for key, template in plan.templates.items():
        if template.name != key:
            out.append(f"templates[{key!r}]: the template is named {template.name!r}")
        for j, metric in enumerate(template.metrics):
            out.extend(_metric_problems(metric, f"templates[{key!r}].metrics[{j}]"))
    return out


def _blue_green_problems(plan: Plan) -> list[str]:
    """A blue-green plan switches Services: all traffic moves at once, both revisions run full replicas."""
    out: list[str] = []
    if not plan.traffic_router:
        out.append("a blueGreen plan switches Services: traffic_router must be true")
    if plan.dynamic_stable_scale:
        out.append("a blueGreen plan keeps the active revision full: dynamic_stable_scale must be false")
    if plan.background_templates:
        out.append("a blueGreen plan has no background verification")
    bad = [st.weight for st in plan.steps if st.kind == "setWeight" and st.weight != 100]
    if bad:
        out.append(f"a blueGreen plan switches all traffic at once: setWeight 100 only, not {bad}")
    return out


def _step_problems(st: StepPlan, plan: Plan) -> list[str]:
    out: list[str] = []
    if st.kind == "setWeight" and (st.weight is None or not 0 <= st.weight <= 100):
        out.append(f"setWeight needs a weight 0..100, not {st.weight}")
    elif st.kind == "setCanaryScale":
        given = (st.weight is not None) + (st.replicas is not None) + st.match_traffic_weight
        if given != 1:
            out.append("setCanaryScale needs exactly one of weight, replicas, match_traffic_weight")
        if st.weight is not None and not 0 <= st.weight <= 100:
            out.append(f"weight must be 0..100, not {st.weight}")
        if st.replicas is not None and not 0 <= st.replicas <= MAX_REPLICAS:
            out.append(f"replicas must be 0..{MAX_REPLICAS}, not {st.replicas}")
    elif st.kind == "pause":
        _durations(out, "", st, ("duration",))
    elif st.kind == "verification":
        if not st.templates:
            out.append("a verification step names at least one template")
        missing = [name for name in st.templates if name not in plan.templates]
        out.extend(f"no template {name!r} in templates" for name in missing)
    elif st.kind in ("setHeaderRoute", "setMirrorRoute") and st.header_route is None:
        out.append(f"{st.kind} needs a header_route")
    return out


def _metric_problems(m: MetricPlan, where: str) -> list[str]:
    out: list[str] = []
    _durations(out, f"{where}.", m, ("interval", "initial_delay"))
    if m.interval == 0:
        out.append(f"{where}.interval must be positive")
    _durations(out, f"{where}.", m, ("timeout",))
    if m.timeout == 0:
        out.append(f"{where}.timeout must be positive")
    if m.on_timeout != "error" and (m.success_condition, m.failure_condition) != (
        EXTERNAL_SUCCESS,
        EXTERNAL_FAILURE,
    ):
        out.append(
            f"{where}.on_timeout {m.on_timeout!r} is an external verification's fallback: it needs "
            f"success_condition {EXTERNAL_SUCCESS!r} and failure_condition {EXTERNAL_FAILURE!r}"
        )
    for field in ("count", "failure_limit", "inconclusive_limit", "consecutive_error_limit"):
        value = getattr(m, field)
        if value is not None and value < 0:
            out.append(f"{where}.{field} must not be negative, not {value}")
    return out


def _durations(out: list[str], prefix: str, model: BaseModel, fields: tuple[str, ...]) -> None:
    for field in fields:
        value = getattr(model, field)
        if value is not None and not (math.isfinite(value) and 0 <= value <= MAX_DURATION):
            out.append(f"{prefix}{field} must be 0..{MAX_DURATION:.0f} seconds, not {value!r}")
