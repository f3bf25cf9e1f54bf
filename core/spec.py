"""The user-facing spec: Ocean CD v2 dialect YAML (and Argo Rollouts YAML) -> validated SpecSet -> Plan.

Pure: text in, models out; reading files is :mod:`ebbtide.adapters.specfiles`' job.

- :func:`parse_documents` splits multi-document YAML into :class:`Document` objects;
- :meth:`SpecSet.from_documents` validates every document and the cross references between them,
  collecting *all* problems of all documents before raising one :class:`SpecError`;
- :func:`compile_plan` turns one ``RolloutSpec`` (with its ``Strategy``, ``VerificationTemplate`` and
  ``VerificationProvider`` documents) into the engine's :class:`~ebbtide.core.plan.Plan`.

Field names are Ocean CD's exact camelCase names; see docs/spec-reference.md.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake

from ebbtide.core.bluegreen import blue_green_steps

if TYPE_CHECKING:
    from .manifests import Skipped, Workload

from ebbtide.core.duration import MAX_DURATION, parse_duration
from ebbtide.core.expr import ExpressionError, compile_condition
from ebbtide.core.plan import (
    EXTERNAL_FAILURE,
    EXTERNAL_SUCCESS,
    MAX_REPLICAS,
    HeaderMatch,
    HeaderRoutePlan,
    MetricPlan,
    Plan,
    RequestMatch,
    StepPlan,
    StrategyKind,
    TemplatePlan,
    ValueMatch,
)
from ebbtide.core.verification import MEASUREMENT_TIMEOUT
from ebbtide.core.yamlsafe import YamlProblem, load_documents

__all__ = [
    "API_VERSION",
    "Document",
    "Problem",
    "RolloutSpec",
    "SpecError",
    "SpecSet",
    "SpecWarning",
    "Strategy",
    "VerificationProvider",
    "VerificationTemplate",
    "compile_plan",
    "load_text",
    "parse_documents",
]

API_VERSION = "ebbtide.dev/v1alpha1"
#: apiVersions accepted for the Ocean CD dialect kinds
OCEAN_API_VERSIONS = frozenset({API_VERSION, "spot.io/v1beta1", "spot.io/v1alpha1"})
ARGO_API_VERSION = "argoproj.io/v1alpha1"
ARGO_KINDS = frozenset({"Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate"})


# --------------------------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, located by file, document, object and dotted field path."""

    file: str
    document: int
    kind: str | None
    name: str | None
    field: str
    reason: str

    def __str__(self) -> str:
        obj = f" ({self.kind or '?'}/{self.name or '?'})" if (self.kind or self.name) else ""
        where = f"{self.field}: " if self.field else ""
        return f"{self.file}: document {self.document}{obj}: {where}{self.reason}"


@dataclass(frozen=True)
class SpecWarning:
    """A field accepted and ignored that a user could expect to change behaviour (not an error)."""

    file: str
    document: int
    kind: str | None
    name: str | None
    field: str
    #: what ebbtide does instead
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.kind or '?'}/{self.name or '?'}: {self.field}: {self.reason}"


class SpecError(ValueError):
    """The specs are invalid; ``problems`` lists every problem found (never only the first)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


# ------------------------------------------------------------------------------------------ documents


@dataclass(frozen=True)
class Document:
    """One YAML document of a spec file."""

    file: str
    index: int  # 1-based position in its file
    body: Any
    line: int = 1
    #: (prefix in the converted body, prefix in the original) pairs used to report problems of a
    #: document converted from Argo YAML in the user's own field names
    path_map: tuple[tuple[str, str], ...] = ()
    #: the kind the user wrote, when this document was converted from another (e.g. Argo ``Rollout``)
    source_kind: str | None = None
    #: how the user wrote it: "wrapped" (apiVersion/kind/metadata/spec), "flat" (an Ocean CD entity with
    #: kind and name at the top level, see :mod:`ebbtide.core.manifests`) or "argo" (converted Argo YAML)
    form: str = "wrapped"

    @property
    def api_version(self) -> str | None:
        v = self.body.get("apiVersion") if isinstance(self.body, dict) else None
        return v if isinstance(v, str) else None

    @property
    def kind(self) -> str | None:
        v = self.body.get("kind") if isinstance(self.body, dict) else None
        return v if isinstance(v, str) else None

    @property
    def name(self) -> str | None:
        if not isinstance(self.body, dict):
            return None
        meta = self.body.get("metadata")
        v = meta.get("name") if isinstance(meta, dict) else None
        return v if isinstance(v, str) else None

    def problem(self, field_path: str, reason: str) -> Problem:
        for converted, original in self.path_map:
            if (
                field_path == converted
                or field_path.startswith(converted + ".")
                or field_path.startswith(converted + "[")
            ):
                field_path = (original + field_path[len(converted) :]).lstrip(".")
                break
        return Problem(self.file, self.index, self.source_kind or self.kind, self.name, field_path, reason)

    def warning(self, field_path: str, reason: str) -> SpecWarning:
        """A warning at a field path of this document as the user wrote it."""
        p = self.problem(field_path, reason)
        return SpecWarning(p.file, p.document, p.kind, p.name, p.field, p.reason)


def parse_documents(text: str, file: str) -> list[Document]:
    """Split multi-document YAML (bounded by :mod:`ebbtide.core.yamlsafe`); a syntax error or a document
    beyond the limits is a SpecError naming the file, the document and the line."""
    try:
        loaded = load_documents(text)
    except YamlProblem as exc:
        raise SpecError([Problem(file, exc.document, None, None, "", exc.reason)]) from None
    return [Document(file, d.index, d.body, d.line) for d in loaded]


# ------------------------------------------------------------------------------------- shared types


def _duration(v: Any) -> float:
    return parse_duration(v)


Duration = Annotated[float, BeforeValidator(_duration)]
NonNegInt = Annotated[StrictInt, Field(ge=0)]
Replicas = Annotated[StrictInt, Field(ge=0, le=MAX_REPLICAS)]
Seconds = Annotated[StrictInt, Field(ge=0, le=int(MAX_DURATION))]
_PERCENT = re.compile(r"^(\d+)%$")
#: an ``{{args.NAME}}`` placeholder (Argo's and Ocean CD's), substituted when the plan is compiled
_ARG_REF = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.\-]+)\s*\}\}")


def _int_or_percent(v: Any) -> int | str:
    if isinstance(v, bool):
        raise ValueError("must be an integer or a percentage like '25%'")
    if isinstance(v, int):
        if v < 0:
            raise ValueError("must not be negative")
        return v
    if isinstance(v, str):
        m = _PERCENT.match(v.strip())
        if m:
            if int(m.group(1)) > 100:
                raise ValueError("a percentage must be 0%..100%")
            return v.strip()
        if v.strip().isdigit():
            return int(v.strip())
    raise ValueError(f"must be an integer or a percentage like '25%', not {v!r}")


IntOrPercent = Annotated[int | str, BeforeValidator(_int_or_percent)]


class Model(BaseModel):
    """Spec models: exact camelCase field names, unknown fields rejected, immutable."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True)


class Metadata(Model):
    name: Annotated[str, Field(min_length=1)]
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


# ------------------------------------------------------------------------------------------ Strategy


class SetCanaryScale(Model):
    weight: StrictInt | None = None
    replicas: Replicas | None = None
    match_traffic_weight: StrictBool | None = None


class Pause(Model):
    #: None: indefinite (``pause: {}``), until promoted
    duration: Duration | None = None


class DryRunRule(Model):
    """Argo's ``dryRun`` entry: the metrics whose names match ``metricName`` (a regular expression found
    anywhere in the name, as Argo matches it; ``*`` for all) are measured but never change the verdict."""

    metric_name: Annotated[str, Field(min_length=1)]


class VerificationStep(Model):
    template_names: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    #: metrics measured in dry-run mode in this step's runs (Argo's step-level ``analysis.dryRun``)
    dry_run: list[DryRunRule] = Field(default_factory=list)


class HeaderValue(Model):
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None


class HeaderRouteMatch(Model):
    header_name: Annotated[str, Field(min_length=1)]
    header_value: HeaderValue


class SetHeaderRoute(Model):
    name: Annotated[str, Field(min_length=1)]
    match: list[HeaderRouteMatch] = Field(default_factory=list)


class MirrorMatch(Model):
    """One rule of Argo's setMirrorRoute.match: every condition given holds."""

    method: HeaderValue | None = None
    path: HeaderValue | None = None
    headers: dict[str, HeaderValue] = Field(default_factory=dict)


class SetMirrorRoute(Model):
    name: Annotated[str, Field(min_length=1)]
    #: the percentage of matching requests mirrored (Argo's default: all of them)
    percentage: Annotated[StrictInt, Field(ge=0, le=100)] = 100
    match: list[MirrorMatch] = Field(default_factory=list)


class CanaryStep(Model):
    name: str | None = None
    set_weight: StrictInt | None = None
    set_canary_scale: SetCanaryScale | None = None
    pause: Pause | None = None
    verification: VerificationStep | None = None
    set_header_route: SetHeaderRoute | None = None
    set_mirror_route: SetMirrorRoute | None = None


class RollingStep(Model):
    name: str | None = None
    verification: VerificationStep | None = None
    pause: Pause | None = None


class BackgroundVerification(Model):
    template_names: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    #: metrics measured in dry-run mode in the background runs (Argo's ``analysis.dryRun``)
    dry_run: list[DryRunRule] = Field(default_factory=list)
    #: the step at which background verification starts (Argo's ``analysis.startingStep``); 0: at once
    starting_step: NonNegInt = 0


class Canary(Model):
    steps: list[CanaryStep] = Field(default_factory=list)
    background_verification: BackgroundVerification | None = None


class Rolling(Model):
    steps: list[RollingStep] = Field(default_factory=list)


class BlueGreen(Model):
    """Argo Rollouts' ``strategy.blueGreen`` fields (the delays live in the RolloutSpec, as for a canary);
    compiled by :func:`ebbtide.core.bluegreen.blue_green_steps`."""

    #: required (checked in :func:`_check_strategy`, so that a missing one does not hide the rest)
    active_service: Annotated[str, Field(min_length=1)] | None = None
    preview_service: str | None = None
    preview_replica_count: Replicas | None = None
    auto_promotion_enabled: StrictBool = True
    auto_promotion_seconds: Seconds | None = None
    pre_promotion_analysis: VerificationStep | None = None
    post_promotion_analysis: VerificationStep | None = None
    scale_down_delay_revision_limit: NonNegInt | None = None
    #: accepted and ignored: pod placement is the cluster scheduler's business
    anti_affinity: dict[str, Any] | None = None


class StrategySpec(Model):
    canary: Canary | None = None
    rolling: Rolling | None = None
    blue_green: BlueGreen | None = None


class Strategy(Model):
    api_version: str
    kind: Literal["Strategy"]
    metadata: Metadata
    spec: StrategySpec


# --------------------------------------------------------------------------------------- RolloutSpec


class WorkloadRef(Model):
    name: Annotated[str, Field(min_length=1)]
    namespace: str | None = None
    #: Ocean CD's RolloutSpec API names the cluster of a SpotDeployment; accepted, not used
    cluster_id: str | None = None


class Arg(Model):
    name: Annotated[str, Field(min_length=1)]
    value: str | None = None
    #: resolved at measurement time (fieldRef, secretKeyRef, podTemplateHashValue); kept opaque
    value_from: dict[str, Any] | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _scalar_to_str(cls, v: Any) -> Any:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return str(v)
        return v


class StrategyRef(Model):
    name: Annotated[str, Field(min_length=1)]
    args: list[Arg] = Field(default_factory=list)


class Traffic(Model):
    canary_service: str | None = None
    stable_service: str | None = None
    istio: dict[str, Any] | None = None
    nginx: dict[str, Any] | None = None
    smi: dict[str, Any] | None = None
    alb: dict[str, Any] | None = None
    ambassador: dict[str, Any] | None = None
    gateway_api: dict[str, Any] | None = Field(default=None, alias="gatewayAPI")
    ping_pong: dict[str, Any] | None = None
    traefik: dict[str, Any] | None = None
    apisix: dict[str, Any] | None = None
    appmesh: dict[str, Any] | None = None
    #: Argo traffic router plugins (e.g. the Gateway API plugin), by plugin name
    plugins: dict[str, Any] | None = None
    managed_routes: list[dict[str, Any]] | None = None

    @property
    def router(self) -> str | None:
        """The traffic router that splits requests by weight, or None (services only: a basic canary)."""
        for name in ROUTERS:
            if getattr(self, name) is not None:
                return name
        return None


#: Traffic fields that name a router; without one the canary is basic (the weight is a pod ratio)
ROUTERS = ("istio", "nginx", "smi", "alb", "ambassador", "gateway_api", "ping_pong", "traefik", "apisix",
           "appmesh", "plugins")  # fmt: skip


class RollbackOptions(Model):
    mode: Literal["immediate", "newRollout"] = "immediate"


class FailurePolicy(Model):
    action: Literal["rollback", "abort", "pause", "promote"] = "rollback"
    rollback: RollbackOptions | None = None


class RollbackWindow(Model):
    revisions: NonNegInt


class RolloutSpecSpec(Model):
    spot_deployment: WorkloadRef | None = None
    spot_deployments: list[WorkloadRef] | None = None
    workload: WorkloadRef | None = None
    strategy: StrategyRef
    traffic: Traffic | None = None
    failure_policy: FailurePolicy = Field(default_factory=FailurePolicy)
    progress_deadline_seconds: Annotated[StrictInt, Field(gt=0, le=int(MAX_DURATION))] = 600
    revision_history_limit: NonNegInt = 10
    rollback_window: RollbackWindow | None = None
    abort_scale_down_delay_seconds: Seconds = 30
    scale_down_delay_seconds: Seconds = 30
    #: Argo canary's scaleDownDelayRevisionLimit (a blue-green Strategy's own, when it gives one, wins)
    scale_down_delay_revision_limit: NonNegInt | None = None
    dynamic_stable_scale: StrictBool = False
    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = "25%"
    replicas: Replicas | None = None


class RolloutSpec(Model):
    api_version: str
    kind: Literal["RolloutSpec"]
    metadata: Metadata
    spec: RolloutSpecSpec


# ------------------------------------------------------------------------------ VerificationTemplate


class PrometheusQuery(Model):
    query: Annotated[str, Field(min_length=1)]
    address: str | None = None
    timeout: StrictInt | None = None
    insecure: StrictBool | None = None
    headers: list[dict[str, str]] | None = None
    authentication: dict[str, Any] | None = None


class DatadogQuery(Model):
    query: str | None = None
    queries: dict[str, str] | None = None
    formula: str | None = None
    duration: str | None = None
    interval: str | None = None
    api_version: str | None = None
    aggregator: str | None = None


class NewRelicQuery(Model):
    query: Annotated[str, Field(min_length=1)]
    profile: str | None = None


class CloudWatchDimension(Model):
    name: Annotated[str, Field(min_length=1)]
    value: Annotated[str, Field(min_length=1)]


class CloudWatchMetric(Model):
    namespace: str | None = None
    metric_name: Annotated[str, Field(min_length=1)]
    dimensions: list[CloudWatchDimension] | None = None


class CloudWatchMetricStat(Model):
    metric: CloudWatchMetric
    period: Annotated[StrictInt, Field(gt=0)]
    stat: Annotated[str, Field(min_length=1)]
    unit: str | None = None


class CloudWatchDataQuery(Model):
    """One GetMetricData query (Argo's camelCase of AWS's MetricDataQuery): an expression or a metricStat."""

    id: Annotated[str, Field(pattern=r"^[a-z][A-Za-z0-9_]*$")]
    expression: str | None = None
    metric_stat: CloudWatchMetricStat | None = None
    label: str | None = None
    period: Annotated[StrictInt, Field(gt=0)] | None = None
    return_data: StrictBool | None = None
    account_id: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> CloudWatchDataQuery:
        if (self.expression is None) == (self.metric_stat is None):
            raise ValueError("give exactly one of expression and metricStat")
        return self


class CloudWatchQuery(Model):
    duration: str | None = None
    interval: str | None = None
    metric_data_queries: Annotated[list[CloudWatchDataQuery], Field(min_length=1)]
    #: else AWS_REGION / AWS_DEFAULT_REGION in the controller's environment
    region: str | None = None
    #: replaces https://monitoring.<region>.amazonaws.com (a VPC endpoint, a proxy)
    endpoint: str | None = None
    #: credentials, e.g. "{{args.aws-key}}" from Secret args; else AWS_ACCESS_KEY_ID, ... in the environment
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    timeout: Duration | None = None


class WebHeader(Model):
    key: str
    value: str


class WebQuery(Model):
    url: Annotated[str, Field(min_length=1)]
    json_path: str | None = None
    headers: list[WebHeader] | None = None
    method: Literal["GET", "POST", "PUT"] | None = None
    body: str | None = None
    json_body: Any = None
    timeout_seconds: NonNegInt | None = None
    insecure: StrictBool | None = None


class JobQuery(Model):
    metadata: dict[str, Any] | None = None
    spec: dict[str, Any]


class JenkinsQuery(Model):
    pipeline_name: str
    tls_verification: StrictBool | None = None
    timeout: Any = None
    interval: Any = None
    parameters: list[dict[str, Any]] | None = None


class ExternalVerification(Model):
    """Ocean CD v1 external verification: ebbtide sends ``start-external-verification`` and waits for an
    outside system to answer passed or failed (``ebbtide verify``, ``PUT .../externalVerification``)."""

    #: how long to wait for the answer (default 5m)
    timeout: Duration | None = None
    #: what happens when no answer came in time: fail (the failure policy acts) or continue (as passed)
    fallback: Literal["fail", "continue"] = "fail"


#: how long an external verification waits for its answer when its ``timeout`` is not given
DEFAULT_EXTERNAL_TIMEOUT = 300.0
#: fields an external verification metric does not take: its one answer decides it
_NOT_EXTERNAL = (
    ("interval", "interval"),
    ("count", "count"),
    ("success_condition", "successCondition"),
    ("failure_condition", "failureCondition"),
    ("failure_limit", "failureLimit"),
    ("inconclusive_limit", "inconclusiveLimit"),
    ("consecutive_error_limit", "consecutiveErrorLimit"),
    ("baseline", "baseline"),
)


class MetricProvider(Model):
    prometheus: PrometheusQuery | None = None
    datadog: DatadogQuery | None = None
    new_relic: NewRelicQuery | None = None
    cloud_watch: CloudWatchQuery | None = None
    web: WebQuery | None = None
    job: JobQuery | None = None
    jenkins: JenkinsQuery | None = None
    #: answered by someone else (Ocean CD v1 external verification): passed or failed, within a timeout
    external: ExternalVerification | None = None


class Baseline(Model):
    """Ocean CD's baseline: the canary's figure against the stable version's (``threshold`` an operator, or
    ``range`` with ``minRange`` / ``maxRange`` percentages of the baseline figure)."""

    threshold: Literal["<", "<=", ">", ">=", "=", "range"]
    min_range: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    max_range: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    provider: MetricProvider


class ArgText(str):
    """A metric's number written with ``{{args.x}}`` placeholders (``"{{args.runs}}"``, ``"{{args.m}}m"``),
    resolved and checked as the literal would be when the plan is compiled (:func:`_resolve_numbers`)."""


def _or_args(v: Any, literal: ValidatorFunctionWrapHandler) -> Any:
    """A string holding ``{{args.x}}`` is kept for the plan compiler; anything else is checked as is."""
    if isinstance(v, str) and _ARG_REF.search(v):
        return ArgText(v)
    return literal(v)


_DIGITS = re.compile(r"^\s*[0-9]+\s*$")


def _int_or_args(v: Any, literal: ValidatorFunctionWrapHandler) -> Any:
    """As :func:`_or_args`, and a string of digits is its number (Argo's IntOrString: ``count: "3"``)."""
    if isinstance(v, str) and _DIGITS.match(v):
        return int(v)
    return _or_args(v, literal)


def _as_written(v: Any) -> Any:
    """A number, or the string of args it was written as (dumped unchanged)."""
    return v


if TYPE_CHECKING:
    IntOrArgs = int | ArgText
    DurationOrArgs = float | ArgText
else:
    #: Argo's IntOrString metric fields: a non-negative integer (also written as a string of digits), or a
    #: string of args (int-or-string in a CRD)
    IntOrArgs = Annotated[
        NonNegInt,
        WrapValidator(_int_or_args),
        PlainSerializer(_as_written),
        WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]}),
    ]
    DurationOrArgs = Annotated[Duration, WrapValidator(_or_args), PlainSerializer(_as_written)]


class Metric(Model):
    name: Annotated[str, Field(min_length=1)]
    interval: DurationOrArgs | None = None
    count: IntOrArgs | None = None
    initial_delay: DurationOrArgs | None = None
    success_condition: str | None = None
    failure_condition: str | None = None
    failure_limit: IntOrArgs | None = None
    inconclusive_limit: IntOrArgs | None = None
    consecutive_error_limit: IntOrArgs | None = None
    dry_run: StrictBool = False
    provider: MetricProvider
    baseline: Baseline | None = None


class TemplateArg(Arg):
    """A template's argument: ``value`` is the default, overridden by the RolloutSpec's strategy args."""


class VerificationTemplateSpec(Model):
    args: list[TemplateArg] = Field(default_factory=list)
    metrics: Annotated[list[Metric], Field(min_length=1)]


class VerificationTemplate(Model):
    api_version: str
    kind: Literal["VerificationTemplate"]
    metadata: Metadata
    spec: VerificationTemplateSpec


# ------------------------------------------------------------------------------ VerificationProvider


class VerificationProviderSpec(Model):
    cluster_ids: list[str] | None = None
    prometheus: dict[str, Any] | None = None
    datadog: dict[str, Any] | None = None
    new_relic: dict[str, Any] | None = None
    cloud_watch: dict[str, Any] | None = None
    jenkins: dict[str, Any] | None = None
    web: dict[str, Any] | None = None


class VerificationProvider(Model):
    api_version: str
    kind: Literal["VerificationProvider"]
    metadata: Metadata
    spec: VerificationProviderSpec


KINDS: dict[str, type[Model]] = {
    "Strategy": Strategy,
    "RolloutSpec": RolloutSpec,
    "VerificationTemplate": VerificationTemplate,
    "VerificationProvider": VerificationProvider,
}


# ----------------------------------------------------------------------------------------- checking


def loc_path(loc: Iterable[int | str]) -> str:
    """A pydantic error location as a field path: spec.steps[2].setWeight."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def error_reason(err: Mapping[str, Any]) -> str:
    """A pydantic error as a short reason for a Problem."""
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    ctx = err.get("ctx") or {}
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if kind in bounds and ctx:
        limit = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {limit}, not {err.get('input')!r}"
    if kind == "literal_error" and err.get("ctx"):
        return f"must be one of {err['ctx'].get('expected')}, not {err.get('input')!r}"
    msg = str(err.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return msg


def _validation_problems(doc: Document, exc: ValidationError) -> list[Problem]:
    return [doc.problem(loc_path(err["loc"]), error_reason(err)) for err in exc.errors()]


def _condition_problem(src: str) -> str | None:
    # `{{args.x}}` is substituted when the plan is compiled (and checked again then); until then a stand-in
    # that is not a constant, so that `1 / ({{args.a}} - {{args.b}})` is not taken for a division by zero
    try:
        compile_condition(_ARG_REF.sub("result", src))
    except ExpressionError as exc:
        return f"invalid condition: {exc}"
    return None


def _value_problems(doc: Document, at: str, value: HeaderValue) -> list[Problem]:
    """A string match (``{exact | prefix | regex}``) gives exactly one, and a regex compiles."""
    out: list[Problem] = []
    if sum(x is not None for x in (value.exact, value.prefix, value.regex)) != 1:
        out.append(doc.problem(at, "exactly one of exact, prefix, regex is required"))
    if value.regex is not None:
        try:
            re.compile(value.regex)
        except re.error as exc:
            out.append(doc.problem(f"{at}.regex", f"bad regex: {exc}"))
    return out


def _check_strategy(doc: Document, s: Strategy) -> list[Problem]:
    out: list[Problem] = []
    spec = s.spec
    if sum(x is not None for x in (spec.canary, spec.rolling, spec.blue_green)) != 1:
        out.append(doc.problem("spec", "exactly one of canary, rolling or blueGreen is required"))
    if spec.blue_green is not None and spec.blue_green.active_service is None:
        out.append(doc.problem("spec.blueGreen.activeService", "required field is missing"))
    if spec.canary is not None:
        last: int | None = None
        last_at = ""
        for i, step in enumerate(spec.canary.steps):
            at = f"spec.canary.steps[{i}]"
            set_actions = [
                a
                for a, v in (
                    ("setWeight", step.set_weight),
                    ("setCanaryScale", step.set_canary_scale),
                    ("pause", step.pause),
                    ("verification", step.verification),
                    ("setHeaderRoute", step.set_header_route),
                    ("setMirrorRoute", step.set_mirror_route),
                )
                if v is not None
            ]
            if len(set_actions) != 1:
                out.append(
                    doc.problem(
                        at,
                        "a step needs exactly one action (setWeight, setCanaryScale, pause, verification, "
                        f"setHeaderRoute, setMirrorRoute), found {len(set_actions)}"
                        + (f": {', '.join(set_actions)}" if set_actions else ""),
                    )
                )
            if step.set_weight is not None:
                w = step.set_weight
                if not 0 <= w <= 100:
                    out.append(doc.problem(f"{at}.setWeight", f"weight must be 0..100, not {w}"))
                elif last is not None and w <= last:
                    out.append(
                        doc.problem(
                            f"{at}.setWeight",
                            f"weights must strictly increase: {w} after {last} at {last_at}",
                        )
                    )
                if 0 <= w <= 100 and (last is None or w > last):
                    last, last_at = w, doc.problem(f"{at}.setWeight", "").field  # as the user wrote it
            if step.set_canary_scale is not None:
                cs = step.set_canary_scale
                given = [x for x in (cs.weight, cs.replicas, cs.match_traffic_weight) if x is not None]
                if len(given) != 1:
                    out.append(
                        doc.problem(
                            f"{at}.setCanaryScale",
                            "exactly one of weight, replicas, matchTrafficWeight is required",
                        )
                    )
                if cs.weight is not None and not 0 <= cs.weight <= 100:
                    out.append(
                        doc.problem(f"{at}.setCanaryScale.weight", f"weight must be 0..100, not {cs.weight}")
                    )
                if cs.match_traffic_weight is False:
                    out.append(
                        doc.problem(f"{at}.setCanaryScale.matchTrafficWeight", "must be true when given")
                    )
            if step.set_header_route is not None:
                for j, m in enumerate(step.set_header_route.match):
                    out += _value_problems(doc, f"{at}.setHeaderRoute.match[{j}].headerValue", m.header_value)
            if step.set_mirror_route is not None:
                for j, mm in enumerate(step.set_mirror_route.match):
                    where = f"{at}.setMirrorRoute.match[{j}]"
                    if mm.method is None and mm.path is None and not mm.headers:
                        out.append(doc.problem(where, "give at least one of method, path, headers"))
                    values = [(f"{where}.method", mm.method), (f"{where}.path", mm.path)]
                    values += [(f"{where}.headers.{k}", v) for k, v in mm.headers.items()]
                    for path, value in values:
                        if value is not None:
                            out += _value_problems(doc, path, value)
    for at, rules in _dry_run_rules(spec):
        for j, rule in enumerate(rules):
            bad = pattern_problem(rule.metric_name)
            if bad:
                out.append(doc.problem(f"{at}.dryRun[{j}].metricName", bad))
    canary_steps = spec.canary.steps if spec.canary is not None else []
    bg = spec.canary.background_verification if spec.canary is not None else None
    if bg is not None and bg.starting_step and bg.starting_step >= len(canary_steps):
        n = len(canary_steps)
        out.append(
            doc.problem(
                "spec.canary.backgroundVerification.startingStep",
                f"startingStep {bg.starting_step} is past the last step (the strategy has {n} steps)",
            )
        )
    if spec.rolling is not None:
        for i, rstep in enumerate(spec.rolling.steps):
            n = (rstep.verification is not None) + (rstep.pause is not None)
            if n != 1:
                out.append(
                    doc.problem(
                        f"spec.rolling.steps[{i}]",
                        f"a rolling step needs exactly one action (verification or pause), found {n}",
                    )
                )
    return out


def dry_run_matches(pattern: str, metric: str) -> bool:
    """Whether a ``dryRun`` rule names a metric: ``*``, or a regular expression found in the name (Argo)."""
    return pattern == "*" or re.search(pattern, metric) is not None


def pattern_problem(pattern: str) -> str | None:
    if pattern == "*":
        return None
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"not a regular expression: {exc}"
    return None


def _dry_run_rules(spec: StrategySpec) -> list[tuple[str, list[DryRunRule]]]:
    """Every dryRun list of a strategy, with the field path of its owner."""
    found: list[tuple[str, list[DryRunRule]]] = []
    if spec.canary is not None:
        for i, cstep in enumerate(spec.canary.steps):
            if cstep.verification is not None and cstep.verification.dry_run:
                found.append((f"spec.canary.steps[{i}].verification", cstep.verification.dry_run))
        bg = spec.canary.background_verification
        if bg is not None and bg.dry_run:
            found.append(("spec.canary.backgroundVerification", bg.dry_run))
    if spec.rolling is not None:
        for i, rstep in enumerate(spec.rolling.steps):
            if rstep.verification is not None and rstep.verification.dry_run:
                found.append((f"spec.rolling.steps[{i}].verification", rstep.verification.dry_run))
    if spec.blue_green is not None:
        for name in ("prePromotionAnalysis", "postPromotionAnalysis"):
            analysis = getattr(spec.blue_green, to_snake(name))
            if analysis is not None and analysis.dry_run:
                found.append((f"spec.blueGreen.{name}", analysis.dry_run))
    return found


def _dry_run_names(
    doc: Document, at: str, rules: list[DryRunRule], metrics: list[str], problems: list[Problem]
) -> tuple[str, ...]:
    """The metric names a dryRun list selects; a rule that selects none is a problem (as in Argo)."""
    names: list[str] = []
    for j, rule in enumerate(rules):
        if pattern_problem(rule.metric_name):
            continue  # reported by _check_strategy
        hits = [m for m in metrics if dry_run_matches(rule.metric_name, m)]
        if not hits:
            problems.append(
                doc.problem(
                    f"{at}.dryRun[{j}].metricName",
                    f"{rule.metric_name!r} matches no metric of the verification "
                    f"(metrics: {', '.join(metrics)})",
                )
            )
        names += [m for m in hits if m not in names]
    return tuple(names)


def _check_rollout(doc: Document, r: RolloutSpec) -> list[Problem]:
    out: list[Problem] = []
    spec = r.spec
    refs = sum(x is not None for x in (spec.spot_deployment, spec.spot_deployments, spec.workload))
    if refs > 1:
        out.append(doc.problem("spec", "give only one of spotDeployment, spotDeployments, workload"))
    fp = spec.failure_policy
    if fp.rollback is not None and fp.action not in ("rollback", "abort"):
        out.append(
            doc.problem(
                "spec.failurePolicy.rollback", f"rollback options need action rollback, not {fp.action}"
            )
        )
    if spec.max_surge in (0, "0%") and spec.max_unavailable in (0, "0%"):
        out.append(doc.problem("spec.maxUnavailable", "maxSurge and maxUnavailable cannot both be 0"))
    seen: set[str] = set()
    for i, arg in enumerate(spec.strategy.args):
        if arg.name in seen:
            out.append(doc.problem(f"spec.strategy.args[{i}].name", f"duplicate arg {arg.name!r}"))
        seen.add(arg.name)
        if (arg.value is None) == (arg.value_from is None):
            out.append(
                doc.problem(f"spec.strategy.args[{i}]", "exactly one of value or valueFrom is required")
            )
        out += _value_from_problems(doc, f"spec.strategy.args[{i}]", arg)
    return out


#: the Rollout fields an arg's ``valueFrom.fieldRef.fieldPath`` may name (as Argo's AnalysisTemplate args)
_FIELD_PATH = re.compile(r"^metadata\.(?:(name|namespace)|(labels|annotations)\[(['\"])(.+)\3\])$")
#: what a ``podTemplateHashValue`` arg becomes in the plan: the adapter measuring it puts in the revision
POD_TEMPLATE_HASH = {
    "Stable": "{{ebbtide.podTemplateHash.Stable}}",
    "Latest": "{{ebbtide.podTemplateHash.Latest}}",
}


def _value_from_problems(doc: Document, at: str, arg: Arg) -> list[Problem]:
    """``valueFrom`` names one source Argo knows, and a fieldRef or podTemplateHashValue it can read."""
    vf = arg.value_from
    if vf is None:
        return []
    kinds = sorted(k for k in vf if k in ("secretKeyRef", "fieldRef", "podTemplateHashValue"))
    other = sorted(set(vf) - set(kinds))
    if other or len(kinds) != 1:
        return [
            doc.problem(
                f"{at}.valueFrom",
                "give exactly one of secretKeyRef, fieldRef, podTemplateHashValue"
                + (f" (unknown: {', '.join(other)})" if other else ""),
            )
        ]
    if kinds == ["fieldRef"]:
        ref = vf["fieldRef"]
        path = ref.get("fieldPath") if isinstance(ref, dict) else None
        if not isinstance(path, str) or not _FIELD_PATH.match(path):
            return [
                doc.problem(
                    f"{at}.valueFrom.fieldRef.fieldPath",
                    f"{path!r} is not one of metadata.name, metadata.namespace, metadata.labels['KEY'], "
                    "metadata.annotations['KEY']",
                )
            ]
    if kinds == ["podTemplateHashValue"] and vf["podTemplateHashValue"] not in POD_TEMPLATE_HASH:
        return [
            doc.problem(
                f"{at}.valueFrom.podTemplateHashValue",
                f"must be Stable or Latest, not {vf['podTemplateHashValue']!r}",
            )
        ]
    return []


def _value_from(vf: dict[str, Any], rollout: RolloutSpec) -> str | None:
    """The value of a checked ``valueFrom`` known when the plan is compiled: a fieldRef of the RolloutSpec
    (the Rollout of Argo's args; namespace ``default`` when it names none), the plan's placeholder of a
    podTemplateHashValue; None for a secretKeyRef (read by the controller, just before measuring) and for
    a label or annotation the RolloutSpec does not have."""
    if "podTemplateHashValue" in vf:
        return POD_TEMPLATE_HASH[vf["podTemplateHashValue"]]
    if "fieldRef" not in vf:
        return None
    found = _FIELD_PATH.match(vf["fieldRef"]["fieldPath"])
    assert found is not None  # checked at load time
    meta = rollout.metadata
    if found[1] == "name":
        return meta.name
    if found[1] == "namespace":
        return meta.namespace or "default"
    return (getattr(meta, found[2]) or {}).get(found[4])


def _jenkins_problems(doc: Document, at: str, jenkins: JenkinsQuery | None) -> list[Problem]:
    """A Jenkins metric's ``timeout`` and ``interval`` are durations greater than 0."""
    out: list[Problem] = []
    for name in ("timeout", "interval"):
        raw = getattr(jenkins, name) if jenkins is not None else None
        if raw is None:
            continue
        try:
            ok = parse_duration(raw) > 0
        except ValueError as exc:
            out.append(doc.problem(f"{at}.provider.jenkins.{name}", str(exc)))
            continue
        if not ok:
            out.append(doc.problem(f"{at}.provider.jenkins.{name}", f"{name} must be greater than 0"))
    return out


def _baseline_problems(doc: Document, at: str, baseline: Baseline | None) -> list[Problem]:
    """A ``range`` baseline needs both percentages; an operator takes none."""
    if baseline is None:
        return []
    given = {"minRange": baseline.min_range, "maxRange": baseline.max_range}
    if baseline.threshold == "range":
        return [
            doc.problem(f"{at}.baseline.{name}", "threshold range needs minRange and maxRange")
            for name, value in given.items()
            if value is None
        ]
    return [
        doc.problem(
            f"{at}.baseline.{name}", f"{name} applies to threshold range only, not {baseline.threshold!r}"
        )
        for name, value in given.items()
        if value is not None
    ]


def _check_template(doc: Document, t: VerificationTemplate) -> list[Problem]:
    out: list[Problem] = []
    seen: set[str] = set()
    for i, arg in enumerate(t.spec.args):
        if arg.name in seen:
            out.append(doc.problem(f"spec.args[{i}].name", f"duplicate arg {arg.name!r}"))
        seen.add(arg.name)
        if arg.value is not None and arg.value_from is not None:
            out.append(doc.problem(f"spec.args[{i}]", "give value or valueFrom, not both"))
        out += _value_from_problems(doc, f"spec.args[{i}]", arg)
    names: set[str] = set()
    for i, m in enumerate(t.spec.metrics):
        at = f"spec.metrics[{i}]"
        if m.name in names:
            out.append(doc.problem(f"{at}.name", f"duplicate metric name {m.name!r}"))
        names.add(m.name)
        for fname, src in (
            ("successCondition", m.success_condition),
            ("failureCondition", m.failure_condition),
        ):
            if src is not None:
                bad = _condition_problem(src)
                if bad:
                    out.append(doc.problem(f"{at}.{fname}", bad))
        # a field of args is checked once its value is known, when the plan is compiled (_resolve_numbers)
        if isinstance(m.count, int) and m.count > 1 and m.interval is None:
            out.append(doc.problem(f"{at}.count", f"count {m.count} needs an interval"))
        out.extend(_baseline_problems(doc, at, m.baseline))
        out.extend(_jenkins_problems(doc, at, m.provider.jenkins))
        if isinstance(m.interval, float) and m.interval <= 0:
            out.append(doc.problem(f"{at}.interval", "interval must be greater than 0"))
        kinds = [k for k, v in m.provider if v is not None]
        if len(kinds) != 1:
            out.append(
                doc.problem(
                    f"{at}.provider",
                    "exactly one provider is required (prometheus, datadog, newRelic, cloudWatch, web, job, "
                    f"jenkins, external), found {len(kinds)}",
                )
            )
        if m.provider.external is not None:
            out.extend(_external_problems(doc, at, m))
        for name in sorted(_referenced_args(m.model_dump(by_alias=True, exclude_none=True)) - seen):
            out.append(doc.problem(at, f"uses {{{{args.{name}}}}} but spec.args does not declare {name!r}"))
    return out


def _external_problems(doc: Document, at: str, m: Metric) -> list[Problem]:
    """An external verification takes one answer, passed or failed, judged by ebbtide itself."""
    out: list[Problem] = []
    for attr, fname in _NOT_EXTERNAL:
        if getattr(m, attr) is not None:
            out.append(
                doc.problem(
                    f"{at}.{fname}",
                    f"an external verification takes one answer (passed or failed): {fname} does not apply",
                )
            )
    external = m.provider.external
    if external is not None and external.timeout is not None and external.timeout <= 0:
        out.append(doc.problem(f"{at}.provider.external.timeout", "the timeout must be greater than 0"))
    return out


def _check_provider(doc: Document, p: VerificationProvider) -> list[Problem]:
    kinds = [k for k, v in p.spec if v is not None and k != "cluster_ids"]
    if not kinds:
        return [doc.problem("spec", "at least one provider (prometheus, datadog, newRelic, ...) is required")]
    return []


def _referenced_args(obj: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(obj, str):
        found.update(_ARG_REF.findall(obj))
    elif isinstance(obj, dict):
        for v in obj.values():
            found |= _referenced_args(v)
    elif isinstance(obj, list):
        for v in obj:
            found |= _referenced_args(v)
    return found


def _substitute(obj: Any, values: Mapping[str, str]) -> Any:
    if isinstance(obj, str):
        return _ARG_REF.sub(lambda m: values.get(m.group(1), m.group(0)), obj)
    if isinstance(obj, dict):
        return {k: _substitute(v, values) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute(v, values) for v in obj]
    return obj


# ---------------------------------------------------------------------------- metric numbers of args

#: the metric fields that take ``{{args.x}}`` (Argo's IntOrString counts and limits, and durations)
_NUMBER_FIELDS = (
    ("interval", "interval"),
    ("count", "count"),
    ("initial_delay", "initialDelay"),
    ("failure_limit", "failureLimit"),
    ("inconclusive_limit", "inconclusiveLimit"),
    ("consecutive_error_limit", "consecutiveErrorLimit"),
)
_DURATION_FIELDS = frozenset({"interval", "initial_delay"})
#: the ``valueFrom`` sources whose value is read only at run time (not when the plan is compiled)
_RUN_TIME = ("secretKeyRef", "podTemplateHashValue")
_WHOLE_NUMBER = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class TemplateArgs:
    """A template's args for one rollout."""

    #: the values known when the plan is compiled, by arg name
    values: Mapping[str, str]
    #: the args whose value comes only at run time, with its ``valueFrom`` source (e.g. secretKeyRef)
    late: Mapping[str, str]
    #: who gave an arg's value when it is not the template's default (e.g. "Rollout 'orders'")
    given_by: Mapping[str, str]

    def source(self, raw: str) -> str:
        """Where the values of a field's args came from, when a rollout gave them (else nothing)."""
        given = [
            f"arg {n!r} given by {self.given_by[n]}" for n in _ARG_REF.findall(raw) if n in self.given_by
        ]
        return f" ({', '.join(given)})" if given else ""


@dataclass(frozen=True)
class MetricNumbers:
    """A metric's counts, limits and durations with their args substituted (None: not given)."""

    interval: float | None
    count: int | None
    initial_delay: float | None
    failure_limit: int | None
    inconclusive_limit: int | None
    consecutive_error_limit: int | None


def _number_of_args(attr: str, raw: ArgText, args: TemplateArgs) -> int | float | str | None:
    """The value of a field written with args; a str is the reason it has none; None when an arg has no
    value (a problem already reported where the arg is given)."""
    names = _ARG_REF.findall(raw)
    run_time = [n for n in names if args.late.get(n)]
    if run_time:
        name = run_time[0]
        return (
            f'"{raw}" uses arg {name!r}, whose value ({args.late[name]}) is known only at run time; this '
            "field needs a value when the plan is compiled (give the arg a value)"
        )
    if any(n not in args.values for n in names):
        return None
    text = _substitute(str(raw), args.values)
    if attr in _DURATION_FIELDS:
        try:
            return parse_duration(text)
        except ValueError as exc:
            return f'"{raw}" is "{text}" after substituting args, not a duration: {exc}'
    if not _WHOLE_NUMBER.fullmatch(text.strip()):
        return f'"{raw}" is "{text}" after substituting args, not a non-negative integer'
    return int(text.strip())


def _resolve_numbers(
    doc: Document,
    at: str,
    m: Metric,
    args: TemplateArgs,
    problems: list[Problem],
) -> MetricNumbers | None:
    """The metric's numbers with args substituted and checked as literals are (:func:`_check_template`);
    None, with the problems added, when one is not valid."""
    found: dict[str, Any] = {}
    ok = True
    for attr, fname in _NUMBER_FIELDS:
        raw = getattr(m, attr)
        if not isinstance(raw, ArgText):
            found[attr] = raw
            continue
        value = _number_of_args(attr, raw, args)
        if isinstance(value, str):
            problems.append(doc.problem(f"{at}.{fname}", value + args.source(raw)))
        ok = ok and value is not None and not isinstance(value, str)
        found[attr] = value
    if not ok:
        return None
    numbers = MetricNumbers(**found)
    # the cross-field rules of _check_template, for the fields it could not check (an interval of args is
    # never missing)
    if (
        isinstance(m.count, ArgText)
        and numbers.count is not None
        and numbers.count > 1
        and m.interval is None
    ):
        given = args.source(m.count)
        problems.append(
            doc.problem(f"{at}.count", f"count {numbers.count} (from args) needs an interval{given}")
        )
        return None
    if isinstance(m.interval, ArgText) and numbers.interval is not None and numbers.interval <= 0:
        problems.append(
            doc.problem(
                f"{at}.interval",
                f'"{m.interval}" is "{_substitute(str(m.interval), args.values)}" after substituting args: '
                f"the interval must be greater than 0{args.source(m.interval)}",
            )
        )
        return None
    return numbers


#: a job metric without conditions: successful when its Job completed, failed when it failed (Argo's rule)
JOB_SUCCESS = 'result.phase == "Complete"'
JOB_FAILURE = 'result.phase != "Complete"'
#: how much longer than a Jenkins metric's own ``timeout`` the engine waits for its answer (a last poll and
#: the request's own round trip), so it never asks for a second build while the first one is still followed
JENKINS_GRACE = 30.0


def _provider_timeout(provider: MetricProvider) -> dict[str, Any]:
    """The in-flight timeout of a provider that waits longer than the engine's default (a Jenkins build, a
    Job with ``spec.activeDeadlineSeconds``)."""
    deadline = provider.job.spec.get("activeDeadlineSeconds") if provider.job is not None else None
    if isinstance(deadline, int) and not isinstance(deadline, bool) and deadline > 0:
        return {"timeout": max(MEASUREMENT_TIMEOUT, deadline + JENKINS_GRACE)}
    jenkins = provider.jenkins
    if jenkins is None or jenkins.timeout is None:
        return {}
    try:
        wait = parse_duration(jenkins.timeout)
    except ValueError:
        return {}  # reported by the template check
    return {"timeout": max(MEASUREMENT_TIMEOUT, wait + JENKINS_GRACE)}


def _external_timeout(external: ExternalVerification | None) -> dict[str, Any]:
    """The MetricPlan fields of an external verification: its timeout and what its fallback counts as."""
    if external is None:
        return {}
    timeout = external.timeout if external.timeout is not None else DEFAULT_EXTERNAL_TIMEOUT
    return {"timeout": timeout, "on_timeout": "failed" if external.fallback == "fail" else "successful"}


# ------------------------------------------------------------------------------------------ SpecSet

AnySpec = Strategy | RolloutSpec | VerificationTemplate | VerificationProvider


@dataclass
class SpecSet:
    """A validated set of specs, by kind and name (cross references checked)."""

    rollout_specs: dict[str, RolloutSpec] = field(default_factory=dict)
    strategies: dict[str, Strategy] = field(default_factory=dict)
    templates: dict[str, VerificationTemplate] = field(default_factory=dict)
    providers: dict[str, VerificationProvider] = field(default_factory=dict)
    #: the document each spec came from, by (kind, name), for error reporting
    origins: dict[tuple[str, str], Document] = field(default_factory=dict)
    #: SpotDeployments and Deployments of the set, by (kind, name)
    workloads: dict[tuple[str, str], Workload] = field(default_factory=dict)
    #: documents of kinds ebbtide does not own (Service, Ingress, an unreferenced Deployment, ...), skipped
    skipped: list[Skipped] = field(default_factory=list)
    #: Argo fields accepted and ignored that a user could expect to change behaviour (core/argo_ignored.py)
    warnings: tuple[SpecWarning, ...] = ()

    @classmethod
    def from_documents(cls, docs: Iterable[Document], ignore_kinds: Iterable[str] = ()) -> SpecSet:
        """Validate every document and the references between them; SpecError lists all problems."""
        # argo and manifests build on this module's Document/Problem (relative: one module for mypy)
        from .argo import convert_argo
        from .argo_ignored import ignored_warnings
        from .manifests import Skipped, service_problems, sort_documents

        sorted_docs = sort_documents(docs, ignore_kinds)
        problems: list[Problem] = [*sorted_docs.problems]
        problems += service_problems(sorted_docs.specs, sorted_docs.services)
        out = cls(workloads=sorted_docs.workloads)
        warnings: list[SpecWarning] = []
        by_kind: dict[str, dict[str, AnySpec]] = {
            "RolloutSpec": out.rollout_specs,  # type: ignore[dict-item]
            "Strategy": out.strategies,  # type: ignore[dict-item]
            "VerificationTemplate": out.templates,  # type: ignore[dict-item]
            "VerificationProvider": out.providers,  # type: ignore[dict-item]
        }
        for doc in sorted_docs.specs:
            kind, api = doc.kind, doc.api_version
            if kind is None:
                problems.append(doc.problem("kind", "required field is missing"))
                continue
            if api is None:
                problems.append(
                    doc.problem(
                        "apiVersion",
                        "required field is missing (or write the flat Ocean CD form: kind and name at the "
                        "top level, no metadata)",
                    )
                )
                continue
            if api == ARGO_API_VERSION or (kind in ARGO_KINDS and api.startswith("argoproj.io/")):
                if kind not in ARGO_KINDS:
                    problems.append(
                        doc.problem(
                            "kind", f"unknown Argo kind {kind!r} (known: {', '.join(sorted(ARGO_KINDS))})"
                        )
                    )
                    continue
                converted, argo_problems = convert_argo(doc)
                problems.extend(argo_problems)
                warnings += ignored_warnings(doc)
                subdocs = converted
            else:
                if kind not in KINDS:
                    known = ", ".join([*sorted(KINDS), *sorted(ARGO_KINDS)])
                    problems.append(doc.problem("kind", f"unknown kind {kind!r} (known: {known})"))
                    continue
                if api not in OCEAN_API_VERSIONS and not api.startswith("ocean.spot.io/"):
                    problems.append(
                        doc.problem(
                            "apiVersion", f"unknown apiVersion {api!r} for {kind} (use {API_VERSION})"
                        )
                    )
                    continue
                subdocs = [doc]
            for sub in subdocs:
                spec, spec_problems = _validate(sub)
                problems.extend(spec_problems)
                if spec is None:
                    continue
                name = spec.metadata.name
                table = by_kind[spec.kind]
                if name in table:
                    first = out.origins[(spec.kind, name)]
                    problems.append(
                        sub.problem(
                            "metadata.name",
                            f"duplicate {spec.kind} name {name!r} (first defined in {first.file} document "
                            f"{first.index})",
                        )
                    )
                    continue
                table[name] = spec
                out.origins[(spec.kind, name)] = sub
        problems.extend(out._check_references())
        used = {out.workload_key(name) for name in out.rollout_specs}
        problems += [w.problem for key, w in out.workloads.items() if key in used and w.problem is not None]
        unused = [w for key, w in out.workloads.items() if w.kind == "Deployment" and key not in used]
        out.skipped = sorted(
            [*sorted_docs.skipped, *(Skipped(w.file, w.index, w.kind, w.name) for w in unused)],
            key=lambda s: (s.file, s.index),
        )
        if not problems:
            for name in out.rollout_specs:
                try:
                    compile_plan(out, name)
                except SpecError as exc:  # a template's problem found by two rollouts is one problem
                    problems.extend(p for p in exc.problems if p not in problems)
        if problems:
            raise SpecError(sorted(problems, key=lambda p: (p.file, p.document)))
        out.warnings = tuple(warnings)
        return out

    def workload_key(self, rollout: str) -> tuple[str, str] | None:
        """The (kind, name) of the SpotDeployment or Deployment in the set that a RolloutSpec names."""
        spec = self.rollout_specs[rollout].spec
        refs = [("SpotDeployment", spec.spot_deployment), ("Deployment", spec.workload),
                ("SpotDeployment", spec.workload)]  # fmt: skip
        refs += [("SpotDeployment", ref) for ref in spec.spot_deployments or ()]
        for kind, ref in refs:
            if ref is not None and (kind, ref.name) in self.workloads:
                return (kind, ref.name)
        return None

    def _check_references(self) -> list[Problem]:
        out: list[Problem] = []
        for name, s in self.strategies.items():
            doc = self.origins[("Strategy", name)]
            if s.spec.canary is not None:
                for i, cstep in enumerate(s.spec.canary.steps):
                    if cstep.verification is not None:
                        out += self._check_template_names(
                            doc, f"spec.canary.steps[{i}].verification", cstep.verification.template_names
                        )
                bg = s.spec.canary.background_verification
                if bg is not None:
                    out += self._check_template_names(
                        doc, "spec.canary.backgroundVerification", bg.template_names
                    )
            if s.spec.rolling is not None:
                for i, rstep in enumerate(s.spec.rolling.steps):
                    if rstep.verification is not None:
                        out += self._check_template_names(
                            doc, f"spec.rolling.steps[{i}].verification", rstep.verification.template_names
                        )
            if s.spec.blue_green is not None:
                for field_name in ("prePromotionAnalysis", "postPromotionAnalysis"):
                    analysis = getattr(s.spec.blue_green, to_snake(field_name))
                    if analysis is not None:
                        at = f"spec.blueGreen.{field_name}"
                        out += self._check_template_names(doc, at, analysis.template_names)
        # a template missing from several steps is one problem: where it is first used
        out = list({(p.file, p.document, p.kind, p.name, p.reason): p for p in reversed(out)}.values())[::-1]
        for name, r in self.rollout_specs.items():
            if r.spec.strategy.name not in self.strategies:
                from .manifests import missing_reference

                reason = missing_reference("Strategy", r.spec.strategy.name, sorted(self.strategies))
                out.append(self.origins[("RolloutSpec", name)].problem("spec.strategy.name", reason))
        return out

    def _check_template_names(self, doc: Document, at: str, names: Sequence[str]) -> list[Problem]:
        out: list[Problem] = []
        for j, t in enumerate(names):
            if t not in self.templates:
                from .manifests import missing_reference

                where = f"{at}.templateNames[{j}]"
                if doc.form == "argo":  # Argo's analysis: templates[j].templateName
                    where = f"{at}.templates[{j}].templateName"
                word = "AnalysisTemplate" if doc.form == "argo" else "VerificationTemplate"
                reason = missing_reference(word, t, sorted(self.templates))
                out.append(doc.problem(where, reason))
        return out


def _validate(doc: Document) -> tuple[AnySpec | None, list[Problem]]:
    kind = doc.kind
    model = KINDS.get(kind) if kind is not None else None
    if model is None:
        return None, [doc.problem("kind", f"unknown kind {kind!r}")]
    try:
        spec = model.model_validate(doc.body)
    except ValidationError as exc:
        # report every problem, not only the structural ones: validate a copy with the broken parts cut
        # out, then run the semantic checks on what is left (their problems at other paths are added)
        problems = _validation_problems(doc, exc)
        repair = repair_model(model, doc.body, exc)
        if repair is None:
            return None, problems
        repaired = repair.model
        assert isinstance(repaired, Strategy | RolloutSpec | VerificationTemplate | VerificationProvider)
        seen = {p.field for p in problems}
        for p in _semantic_checks(doc, repaired):
            p = dataclasses.replace(p, field=repair.original_path(p.field))
            if p.field not in seen:
                problems.append(p)
        return repaired, problems
    assert isinstance(spec, Strategy | RolloutSpec | VerificationTemplate | VerificationProvider)
    return spec, _semantic_checks(doc, spec)


def _semantic_checks(doc: Document, spec: AnySpec) -> list[Problem]:
    if isinstance(spec, Strategy):
        return _check_strategy(doc, spec)
    if isinstance(spec, RolloutSpec):
        return _check_rollout(doc, spec)
    if isinstance(spec, VerificationTemplate):
        return _check_template(doc, spec)
    assert isinstance(spec, VerificationProvider)
    return _check_provider(doc, spec)


@dataclass
class Repair:
    """A document with the parts pydantic rejected cut out, and how to map paths in it back."""

    model: Any
    #: (list path, index) of every list item removed, in the order they were removed
    removed: list[tuple[tuple[Any, ...], int]] = field(default_factory=list)

    def original_path(self, dotted: str) -> str:
        """A field path in the repaired document as the path in the document the user wrote."""
        parts: list[Any] = [int(i) if i else k for k, i in _PATH_PART.findall(dotted)]
        for container, index in reversed(self.removed):
            n = len(container)
            if (
                len(parts) > n
                and tuple(parts[:n]) == container
                and isinstance(parts[n], int)
                and parts[n] >= index
            ):
                parts[n] += 1
        return loc_path(parts)


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def repair_model(model: type[BaseModel], body: Any, exc: ValidationError) -> Repair | None:
    """The document with every part pydantic rejected removed (a list item missing a required field is
    removed whole), validated; None when that does not give a valid model within a few rounds. Used to run
    the semantic checks on the rest of a broken document, so that every problem is reported at once."""
    data = copy.deepcopy(body)
    removed: list[tuple[tuple[Any, ...], int]] = []
    for _ in range(5):
        paths = set()
        for err in exc.errors():
            loc = tuple(err["loc"])
            if err.get("type") == "missing":
                loc = loc[:-1]
            paths.add(loc)
        # deepest and highest indices first, so that earlier removals do not shift later ones
        for loc in sorted(
            paths, key=lambda p: [(0, x) if isinstance(x, int) else (1, str(x)) for x in p], reverse=True
        ):
            if not loc or not _delete(data, loc):
                return None
            if isinstance(loc[-1], int):
                removed.append((loc[:-1], loc[-1]))
        try:
            return Repair(model.model_validate(data), removed)
        except ValidationError as again:
            exc = again
    return None


def _delete(data: Any, loc: tuple[Any, ...]) -> bool:
    node = data
    for part in loc[:-1]:
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if (isinstance(node, dict) and part in node) or in_list:
            node = node[part]
        else:
            return False
    last = loc[-1]
    if isinstance(node, dict) and last in node:
        del node[last]
        return True
    if isinstance(node, list) and isinstance(last, int) and 0 <= last < len(node):
        del node[last]
        return True
    return False


def load_text(text: str, file: str = "<string>", ignore_kinds: Iterable[str] = ()) -> SpecSet:
    """Parse and validate YAML text in one go."""
    return SpecSet.from_documents(parse_documents(text, file), ignore_kinds=ignore_kinds)


# ------------------------------------------------------------------------------------------ compile


def _has_router(r: RolloutSpec) -> bool:
    return r.spec.traffic is not None and r.spec.traffic.router is not None


def _router_problems(
    rdoc: Document, sdoc: Document, r: RolloutSpec, steps: list[StepPlan], kind: str
) -> list[Problem]:
    """What needs a traffic router (Argo requires trafficRouting for it) in a basic canary; with a router,
    the header and mirror routes the steps set must be listed in managedRoutes."""
    if kind != "canary":
        return []
    if _has_router(r):
        return _managed_route_problems(sdoc, r, steps)
    why = (
        f"needs a traffic router in RolloutSpec {r.metadata.name}'s spec.traffic (istio, nginx, smi, alb, "
        "...); without one the canary is basic: its weight is the ratio of pods"
    )
    out = []
    if r.spec.dynamic_stable_scale:
        out.append(rdoc.problem("spec.dynamicStableScale", f"dynamicStableScale {why}"))
    for i, st in enumerate(steps):
        if st.kind in ("setCanaryScale", "setHeaderRoute", "setMirrorRoute"):
            out.append(sdoc.problem(f"spec.canary.steps[{i}].{st.kind}", f"{st.kind} {why}"))
    return out


def _managed_route_problems(sdoc: Document, r: RolloutSpec, steps: list[StepPlan]) -> list[Problem]:
    """A header or mirror route a step sets must be listed in ``spec.traffic.managedRoutes`` (as Argo
    validates it): the routers add, replace and remove only the routes listed there, so an unlisted one would
    hold its step at run time (TrafficNotApplied) instead of being refused now."""
    routes = r.spec.traffic.managed_routes if r.spec.traffic else None
    listed = {m.get("name") for m in routes or [] if isinstance(m, dict)}
    out = []
    for i, st in enumerate(steps):
        route = st.header_route
        if st.kind in ("setHeaderRoute", "setMirrorRoute") and route is not None and route.name not in listed:
            out.append(
                sdoc.problem(
                    f"spec.canary.steps[{i}].{st.kind}.name",
                    f"route {route.name!r} is not listed in RolloutSpec {r.metadata.name}'s "
                    "spec.traffic.managedRoutes (the router changes only the routes listed there)",
                )
            )
    return out


def _resolve(value: int | str, replicas: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    pct = int(value.rstrip("%"))
    exact = replicas * pct / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def _step_plan(step: CanaryStep | RollingStep) -> StepPlan:
    if isinstance(step, CanaryStep):
        if step.set_weight is not None:
            return StepPlan(kind="setWeight", name=step.name, weight=step.set_weight)
        if step.set_canary_scale is not None:
            cs = step.set_canary_scale
            return StepPlan(
                kind="setCanaryScale",
                name=step.name,
                weight=cs.weight,
                replicas=cs.replicas,
                match_traffic_weight=bool(cs.match_traffic_weight),
            )
        if step.set_header_route is not None:
            hr = step.set_header_route
            matches = tuple(
                HeaderMatch(
                    header_name=m.header_name,
                    exact=m.header_value.exact,
                    prefix=m.header_value.prefix,
                    regex=m.header_value.regex,
                )
                for m in hr.match
            )
            return StepPlan(
                kind="setHeaderRoute",
                name=step.name,
                header_route=HeaderRoutePlan(name=hr.name, matches=matches),
            )
        if step.set_mirror_route is not None:
            return StepPlan(
                kind="setMirrorRoute", name=step.name, header_route=_mirror_plan(step.set_mirror_route)
            )
    if step.pause is not None:
        return StepPlan(kind="pause", name=step.name, duration=step.pause.duration)
    assert step.verification is not None
    return StepPlan(kind="verification", name=step.name, templates=tuple(step.verification.template_names))


def _mirror_plan(mr: SetMirrorRoute) -> HeaderRoutePlan:
    def value(v: HeaderValue | None) -> ValueMatch | None:
        return None if v is None else ValueMatch(exact=v.exact, prefix=v.prefix, regex=v.regex)

    rules = tuple(
        RequestMatch(
            method=value(m.method),
            path=value(m.path),
            headers=tuple(
                HeaderMatch(header_name=k, exact=v.exact, prefix=v.prefix, regex=v.regex)
                for k, v in m.headers.items()
            ),
        )
        for m in mr.match
    )
    return HeaderRoutePlan(name=mr.name, mirror_percentage=mr.percentage, request_matches=rules)


def _blue_green_plan(bg: BlueGreen, replicas: int) -> list[StepPlan]:
    pre, post = bg.pre_promotion_analysis, bg.post_promotion_analysis
    return blue_green_steps(
        replicas,
        preview_replicas=bg.preview_replica_count,
        auto_promotion_enabled=bg.auto_promotion_enabled,
        auto_promotion_seconds=float(bg.auto_promotion_seconds) if bg.auto_promotion_seconds else None,
        pre_promotion=tuple(pre.template_names) if pre is not None else (),
        post_promotion=tuple(post.template_names) if post is not None else (),
    )


def _dry_run_step(at: str, steps: list[StepPlan], offset: int) -> int:
    """The plan step a dryRun list's owner (a field path of :func:`_dry_run_rules`) compiled into."""
    if at.startswith("spec.blueGreen."):
        name = at.rsplit(".", 1)[1]
        return next(i for i, st in enumerate(steps) if st.name == name)
    return int(at[at.index("[") + 1 : at.index("]")]) + offset


def _provider_defaults(specs: SpecSet) -> dict[str, dict[str, Any]]:
    """Provider connection settings (e.g. prometheus.address) by provider type, first document wins."""
    out: dict[str, dict[str, Any]] = {}
    for p in specs.providers.values():
        for key, value in p.spec.model_dump(by_alias=True, exclude_none=True).items():
            if key != "clusterIds" and isinstance(value, dict):
                out.setdefault(key, value)
    return out


def _checked_plan(doc: Document, **fields: Any) -> Plan:
    """The plan, or a SpecError located at the RolloutSpec if it breaks a plan rule no check caught."""
    try:
        return Plan(**fields)
    except ValidationError as exc:
        raise SpecError(
            [doc.problem("", str(e["msg"]).removeprefix("Value error, ")) for e in exc.errors()]
        ) from None


def compile_plan(specs: SpecSet, rollout: str | None = None, replicas: int | None = None) -> Plan:
    """Compile one RolloutSpec (the only one when ``rollout`` is None) into the engine's Plan."""
    if rollout is None:
        if len(specs.rollout_specs) != 1:
            names = ", ".join(sorted(specs.rollout_specs)) or "none"
            raise SpecError(
                [
                    Problem(
                        "<specs>",
                        0,
                        "RolloutSpec",
                        None,
                        "",
                        f"name the RolloutSpec to compile (found: {names})",
                    )
                ]
            )
        rollout = next(iter(specs.rollout_specs))
    if rollout not in specs.rollout_specs:
        names = ", ".join(sorted(specs.rollout_specs)) or "none"
        raise SpecError(
            [Problem("<specs>", 0, "RolloutSpec", rollout, "", f"no such RolloutSpec (found: {names})")]
        )
    r = specs.rollout_specs[rollout]
    rdoc = specs.origins[("RolloutSpec", rollout)]
    strategy = specs.strategies[r.spec.strategy.name]
    problems: list[Problem] = []

    workload = specs.workloads.get(specs.workload_key(rollout) or ("", ""))
    n = next(
        (x for x in (replicas, r.spec.replicas, workload.replicas if workload else None) if x is not None), 1
    )
    if not 0 <= n <= MAX_REPLICAS:
        raise SpecError([rdoc.problem("spec.replicas", f"replicas must be 0..{MAX_REPLICAS}, not {n}")])

    steps: list[StepPlan]
    background: tuple[str, ...] = ()
    kind: StrategyKind
    if strategy.spec.blue_green is not None:
        kind = "blueGreen"
        steps = _blue_green_plan(strategy.spec.blue_green, n)
        if r.spec.dynamic_stable_scale:
            problems.append(
                rdoc.problem("spec.dynamicStableScale", "dynamicStableScale applies to canary, not blueGreen")
            )
    elif strategy.spec.canary is not None:
        kind = "canary"
        steps = [_step_plan(s) for s in strategy.spec.canary.steps]
        weights = [s.weight for s in steps if s.kind == "setWeight" and s.weight is not None]
        if not weights or weights[-1] < 100:
            steps.append(StepPlan(kind="setWeight", weight=100, implicit=True))
        if strategy.spec.canary.background_verification is not None:
            background = tuple(strategy.spec.canary.background_verification.template_names)
    else:
        assert strategy.spec.rolling is not None
        kind = "rolling"
        steps = [
            StepPlan(kind="setWeight", weight=100),
            *(_step_plan(s) for s in strategy.spec.rolling.steps),
        ]

    sdoc = specs.origins[("Strategy", strategy.metadata.name)]
    offset = 1 if strategy.spec.rolling is not None else 0  # a rolling plan starts with its setWeight 100
    for at, rules in _dry_run_rules(strategy.spec):
        if at == "spec.canary.backgroundVerification":
            continue
        i = _dry_run_step(at, steps, offset)
        in_step = [m.name for t in steps[i].templates for m in specs.templates[t].spec.metrics]
        steps[i] = steps[i].model_copy(update={"dry_run": _dry_run_names(sdoc, at, rules, in_step, problems)})
    background_dry_run: tuple[str, ...] = ()
    starting_step = 0
    bgv = strategy.spec.canary.background_verification if strategy.spec.canary is not None else None
    if bgv is not None:
        in_bg = [m.name for t in background for m in specs.templates[t].spec.metrics]
        at = "spec.canary.backgroundVerification"
        background_dry_run = _dry_run_names(sdoc, at, bgv.dry_run, in_bg, problems)
        starting_step = bgv.starting_step

    used: list[str] = []
    for s in steps:
        used += [t for t in s.templates if t not in used]
    used += [t for t in background if t not in used]

    rollout_args = {a.name: a for a in r.spec.strategy.args}
    providers = _provider_defaults(specs)
    templates: dict[str, TemplatePlan] = {}
    for tname in used:
        t = specs.templates[tname]
        values: dict[str, str] = {}
        late: dict[str, str] = {}  # arg -> the valueFrom that gives its value only at run time
        given_by: dict[str, str] = {}  # arg -> the rollout that gave its value
        missing: list[str] = []
        for targ in t.spec.args:
            given = rollout_args.get(targ.name)
            source = given if given is not None else targ
            if given is not None:
                given_by[targ.name] = f"{rdoc.source_kind or 'RolloutSpec'} {rollout!r}"
            if given is not None and given.value is not None:
                values[targ.name] = given.value
            elif source.value_from is not None:
                # fieldRef: known now; podTemplateHashValue: a placeholder the measuring adapter fills in;
                # secretKeyRef: the {{args.x}} placeholder stays, filled in by the controller
                late[targ.name] = next((k for k in _RUN_TIME if k in source.value_from), "")
                found = _value_from(source.value_from, r)
                if found is not None:
                    values[targ.name] = found
                elif "fieldRef" in source.value_from:
                    path = source.value_from["fieldRef"]["fieldPath"]
                    where = (
                        (rdoc, f"spec.strategy.args[{list(rollout_args).index(targ.name)}]")
                        if given is not None
                        else (
                            specs.origins[("VerificationTemplate", tname)],
                            f"spec.args[{t.spec.args.index(targ)}]",
                        )
                    )
                    problems.append(
                        where[0].problem(
                            f"{where[1]}.valueFrom.fieldRef.fieldPath",
                            f"RolloutSpec {rollout!r} has no {path} (arg {targ.name!r})",
                        )
                    )
            elif targ.value is not None:
                values[targ.name] = targ.value
            else:
                missing.append(targ.name)
        for name in missing:
            problems.append(
                rdoc.problem(
                    "spec.strategy.args",
                    f"missing value for arg {name!r} required by VerificationTemplate {tname!r} "
                    f"(used by Strategy {strategy.metadata.name!r})",
                )
            )
        if missing:
            continue
        tdoc = specs.origins[("VerificationTemplate", tname)]
        targs = TemplateArgs(values, late, given_by)
        metrics: list[MetricPlan] = []
        for i, m in enumerate(t.spec.metrics):
            numbers = _resolve_numbers(tdoc, f"spec.metrics[{i}]", m, targs, problems)
            if numbers is None:
                continue
            conds: dict[str, str | None] = {}
            for fname, src in (
                ("successCondition", m.success_condition),
                ("failureCondition", m.failure_condition),
            ):
                if src is None:
                    conds[fname] = None
                    continue
                sub = _substitute(src, values)
                try:
                    compile_condition(sub)
                except ExpressionError as exc:
                    problems.append(
                        tdoc.problem(
                            f"spec.metrics[{i}].{fname}", f"invalid condition after substituting args: {exc}"
                        )
                    )
                conds[fname] = sub
            provider = _substitute(m.provider.model_dump(by_alias=True, exclude_none=True), values)
            for ptype, conf in provider.items():
                if isinstance(conf, dict) and ptype in providers:
                    provider[ptype] = {**providers[ptype], **conf}
            if m.baseline is not None:
                provider["baseline"] = _substitute(
                    m.baseline.model_dump(by_alias=True, exclude_none=True), values
                )
            external = m.provider.external
            if external is not None:
                conds = {"successCondition": EXTERNAL_SUCCESS, "failureCondition": EXTERNAL_FAILURE}
            elif m.provider.job is not None and not any(conds.values()):
                conds = {"successCondition": JOB_SUCCESS, "failureCondition": JOB_FAILURE}  # as Argo judges
            metrics.append(
                MetricPlan(
                    name=m.name,
                    interval=numbers.interval,
                    count=numbers.count or None,  # 0 means "not set" (Argo's effective count)
                    initial_delay=numbers.initial_delay or 0.0,
                    success_condition=conds["successCondition"],
                    failure_condition=conds["failureCondition"],
                    failure_limit=numbers.failure_limit if numbers.failure_limit is not None else 0,
                    inconclusive_limit=numbers.inconclusive_limit
                    if numbers.inconclusive_limit is not None
                    else 0,
                    consecutive_error_limit=numbers.consecutive_error_limit
                    if numbers.consecutive_error_limit is not None
                    else 4,
                    dry_run=m.dry_run,
                    provider=provider,
                    **_provider_timeout(m.provider),
                    **_external_timeout(external),
                )
            )
        templates[tname] = TemplatePlan(name=tname, metrics=tuple(metrics))
    sdoc = specs.origins[("Strategy", r.spec.strategy.name)]
    problems += _router_problems(rdoc, sdoc, r, steps, kind)
    if problems:
        raise SpecError(problems)

    fp = r.spec.failure_policy
    surge = _resolve(r.spec.max_surge, n, round_up=True)
    unavailable = _resolve(r.spec.max_unavailable, n, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # Kubernetes' fencepost rule: a rollout must be able to make progress
    return _checked_plan(
        rdoc,
        name=rollout,
        strategy=kind,
        steps=tuple(steps),
        background_templates=background,
        background_dry_run=background_dry_run,
        background_starting_step=starting_step,
        templates=templates,
        replicas=n,
        failure_action="rollback" if fp.action == "abort" else fp.action,
        rollback_mode=fp.rollback.mode if fp.rollback is not None else "immediate",
        progress_deadline=float(r.spec.progress_deadline_seconds),
        revision_history_limit=r.spec.revision_history_limit,
        rollback_window=r.spec.rollback_window.revisions if r.spec.rollback_window is not None else 0,
        abort_scale_down_delay=float(r.spec.abort_scale_down_delay_seconds),
        scale_down_delay=float(r.spec.scale_down_delay_seconds),
        dynamic_stable_scale=r.spec.dynamic_stable_scale,
        traffic_router=kind == "blueGreen" or _has_router(r),
        scale_down_delay_revision_limit=(
            strategy.spec.blue_green.scale_down_delay_revision_limit
            if strategy.spec.blue_green
            and strategy.spec.blue_green.scale_down_delay_revision_limit is not None
            else r.spec.scale_down_delay_revision_limit
        ),
        max_surge=surge,
        max_unavailable=unavailable,
    )
