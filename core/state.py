"""The rollout state: immutable, JSON round-tripping, small and bounded.

The records are slotted frozen dataclasses: the engine builds and copies them on every step, so they cost
no validation there (and little memory: no per-instance ``__dict__``). Validation happens where state enters
from outside: :meth:`RolloutState.from_json` loads through a pydantic ``TypeAdapter``, which checks every
field against the annotations below. :meth:`RolloutState.to_json` writes the compact form (defaults left
out), byte for byte what the state's earlier pydantic models wrote, so persisted statuses keep loading.
"""

from __future__ import annotations

import keyword
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal, TypeVar

from pydantic import TypeAdapter
from typing_extensions import dataclass_transform

from ebbtide.core.effects import Effect
from ebbtide.core.plan import HeaderRoutePlan, Plan, RollbackMode

Phase = Literal["live", "in-progress", "verifying", "paused", "failed", "rolling-back"]
PHASES: tuple[Phase, ...] = ("live", "in-progress", "verifying", "paused", "failed", "rolling-back")
PauseReason = Literal["manual", "pause-step", "failure-policy", "inconclusive"]
#: Argo's AnalysisRun phases, in the order a verdict takes the worst of them
VerdictPhase = Literal["Pending", "Running", "Successful", "Inconclusive", "Error", "Failed"]
Initiator = Literal["deploy", "failure-policy", "rollback", "retry", "supersede"]
RevisionStatus = Literal["pending", "live", "failed", "superseded", "rolled-back"]


T = TypeVar("T")


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(field,))
def record(cls: type[T]) -> type[T]:
    """A state record: a slotted dataclass, frozen by contract. mypy (strict on the core) refuses any
    assignment to its fields, as for ``frozen=True``; at run time it is a plain slotted class, so that the
    engine's copies (:func:`evolve`) cost plain attribute stores rather than ``object.__setattr__`` calls
    (ten times cheaper for a RolloutState). Change a field with :func:`evolve` or ``dataclasses.replace``."""
    return dataclass(slots=True, kw_only=True, unsafe_hash=True)(cls)


@record
class MetricStatus:
    """Counters of one metric of one verification run (the measurements themselves are not kept)."""

    name: str
    phase: VerdictPhase = "Pending"
    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    consecutive_error: int = 0
    #: short text of the last value or error, for status and explain output
    last: str | None = None
    #: when the next measurement is due; None when no more are due
    next_at: float | None = None
    #: a StartMeasurement was emitted and its Measurement has not come back yet
    in_flight: bool = False


@record
class VerificationRun:
    id: str
    template: str
    background: bool = False
    started_at: float = 0.0
    phase: VerdictPhase = "Running"
    metrics: tuple[MetricStatus, ...] = ()
    #: why the run ended Failed / Error / Inconclusive
    message: str | None = None
    #: metrics this run measures in dry-run mode besides their own dryRun (Argo's step-level analysis.dryRun)
    dry_run: tuple[str, ...] = ()


@record
class RevisionRecord:
    revision: str
    status: RevisionStatus = "pending"
    #: true once the revision has served 100% as the stable revision
    reached_live: bool = False


@record
class RollbackStatus:
    target: str
    #: the revision traffic is taken away from
    source: str | None = None
    reason: str
    mode: RollbackMode = "immediate"
    started_at: float = 0.0
    #: fast-tracked: no steps and no verification (target is stable or within rollbackWindow)
    fast_track: bool = False
    #: an explicit user rollback (desired follows the target) rather than a failure
    manual: bool = False


@record
class RolloutState:
    """Everything the engine needs to continue a rollout; persisted as JSON in the resource's status."""

    plan: Plan = field(default_factory=Plan)
    #: a spec change that arrived mid-rollout; it takes effect when the rollout ends
    next_plan: Plan | None = None
    phase: Phase = "live"
    #: desired (latest deployed) revision is not the live one, e.g. after an automatic rollback
    degraded: bool = False
    #: the revision serving the remainder of traffic during a rollout (the live one when no rollout runs)
    stable: str | None = None
    #: the revision the user deployed last (the spec's template)
    desired: str | None = None
    #: the revision being rolled out
    canary: str | None = None
    rollout_id: int = 0
    #: the rollout this one replaces (supersede, or a newRollout rollback)
    original_rollout_id: int | None = None
    initiator: Initiator = "deploy"
    step_index: int = 0
    step_started_at: float = 0.0
    #: the weight the current step wants for the canary (the weight actually routed is in ``weights``)
    canary_weight: int = 0
    #: setCanaryScale override: (replicas, weight); None follows the traffic weight
    canary_scale_replicas: int | None = None
    canary_scale_weight: int | None = None
    pause_reason: PauseReason | None = None
    pause_until: float | None = None
    #: effective traffic split sent to the router
    weights: dict[str, int] = field(default_factory=dict)
    header_routes: tuple[HeaderRoutePlan, ...] = ()
    #: desired replica count per revision sent to the cluster
    replicas: dict[str, int] = field(default_factory=dict)
    #: last observed ready replicas per revision
    ready: dict[str, int] = field(default_factory=dict)
    verifications: tuple[VerificationRun, ...] = ()
    #: metric failures recorded under the promote policy (bounded)
    recorded_failures: tuple[str, ...] = ()
    rollback: RollbackStatus | None = None
    #: revision -> time its replicas go to zero
    scale_downs: dict[str, float] = field(default_factory=dict)
    #: revisions in the order they last reached live (or were deployed), bounded by revisionHistoryLimit
    history: tuple[RevisionRecord, ...] = ()
    #: since when the engine waits for replicas to become ready (progress deadline), None when not waiting
    waiting_since: float | None = None
    failure_reason: str | None = None
    #: monotone counter for verification run ids
    seq: int = 0
    #: the latest ``now`` of a decision that changed this state; an earlier ``now`` (a failover to a
    #: controller whose clock lags) is clamped to it, so timers never run backwards
    updated_at: float = 0.0

    # ----- persistence -----------------------------------------------------------------------------
    def to_json(self, *, exclude: set[str] | None = None, exclude_defaults: bool = True) -> str:
        """The compact persisted form (defaults left out); :meth:`from_json` restores the same state.
        ``exclude`` (field names) and ``exclude_defaults=False`` are for measuring, not for persisting."""
        return _ADAPTER.dump_json(self, exclude=exclude, exclude_defaults=exclude_defaults).decode()

    @classmethod
    def from_json(cls, data: str | bytes) -> RolloutState:
        """Load a persisted state; raises pydantic's ValidationError naming the field that is wrong."""
        return _ADAPTER.validate_json(data)

    # ----- derived views ---------------------------------------------------------------------------
    @property
    def last_successful(self) -> str | None:
        """The revision that reached live most recently (the rollback target)."""
        for rec in reversed(self.history):
            if rec.reached_live:
                return rec.revision
        return None

    @property
    def rollback_progress(self) -> float | None:
        """Fraction of the rollback target's desired replicas that are ready, while rolling back."""
        if self.rollback is None or self.phase != "rolling-back":
            return None
        want = self.replicas.get(self.rollback.target, 0)
        if want <= 0:
            return 1.0
        return min(1.0, self.ready.get(self.rollback.target, 0) / want)

    def record(self, revision: str) -> RevisionRecord | None:
        for rec in self.history:
            if rec.revision == revision:
                return rec
        return None


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def _decision(cls: type[T]) -> type[T]:
    return dataclass(slots=True, unsafe_hash=True)(cls)


@_decision
class Decision:
    """The outcome of one ``step``: a plain record, frozen by contract like the state records (never
    persisted; the state is what round-trips). Built once per step, so it skips ``object.__setattr__``."""

    state: RolloutState
    effects: tuple[Effect, ...] = ()
    wake_at: float | None = None
    #: None, or why a command is not allowed now (the state is then unchanged)
    rejected: str | None = None


_ADAPTER: TypeAdapter[RolloutState] = TypeAdapter(RolloutState)


R = TypeVar("R")
#: per record class: a function copying an instance field by field (generated once, as dataclasses does)
_COPIERS: dict[type, Any] = {}


def evolve(rec: R, **changes: Any) -> R:
    """A copy of a state record with some fields replaced: ``dataclasses.replace`` without re-running
    ``__init__`` (the engine's hot path; callers pass values of the declared types)."""
    copier = _COPIERS.get(rec.__class__)
    if copier is None:
        copier = _COPIERS[rec.__class__] = _copier(rec.__class__)
    new = copier(rec)
    for name, value in changes.items():
        setattr(new, name, value)
    return new  # type: ignore[no-any-return]


def generated_function(
    signature: str, lines: list[str], names: list[str], namespace: dict[str, Any] | None = None
) -> Any:
    """A function built once from source lines, as ``dataclasses`` builds ``__init__``: straight-line
    attribute copies of a record's fields, without a loop or a ``getattr`` by name (the engine's hot path).

    The only names that reach the source are ``names``, the field names of ebbtide's own record classes,
    checked here to be plain identifiers; no user input (spec, condition, event) is ever part of it."""
    for name in names:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"not a field name: {name!r}")
    body = "".join(f"    {line}\n" for line in lines)
    scope: dict[str, Any] = dict(namespace or {})
    fn_name = signature.split("(", 1)[0]
    exec(f"def {signature}:\n{body}", scope)
    return scope[fn_name]


def _copier(cls: type) -> Any:
    names = [f.name for f in fields(cls)]
    lines = ["new = make(cls)", *(f"new.{name} = old.{name}" for name in names), "return new"]
    return generated_function("copy(old)", lines, names, {"make": object.__new__, "cls": cls})


def replacer(cls: type[R], *changed: str) -> Any:
    """A function ``(old, *values) -> copy`` for records of ``cls`` that replaces the fields ``changed``, in
    that order, by positional values: :func:`evolve` for one fixed set of fields, without the keyword
    dictionary and the ``setattr`` by name (the hot path's copies: a metric put in flight, a run with new
    metrics, a state with new runs)."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    unknown = [name for name in changed if name not in names or name in ("old", "new", "make", "cls")]
    if unknown:
        raise ValueError(f"{cls.__name__}: cannot replace {unknown[0]!r}")
    copied = [f"new.{name} = old.{name}" for name in names if name not in changed]
    lines = ["new = make(cls)", *copied, *(f"new.{name} = {name}" for name in changed), "return new"]
    signature = f"replace(old, {', '.join(changed)})"
    return generated_function(signature, lines, names, {"make": object.__new__, "cls": cls})


def builder(cls: type[R], *given: str) -> Any:
    """A function ``(*values) -> record`` building a record of ``cls`` from the fields ``given``, in that
    order, positionally; every other field takes its (plain, not factory) default. The record's own
    ``__init__`` with keywords costs twice as much (the hot path builds a StartMeasurement per measurement
    it asks for). Callers pass values of the declared types: nothing is checked, as with :func:`replacer`."""
    defaults: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in given:
            continue
        if f.default is MISSING:
            raise ValueError(f"{cls.__name__}: {f.name!r} has no plain default; give it")
        defaults[f"_default_{f.name}"] = f.default
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    unknown = [name for name in given if name not in names or name in ("new", "make", "cls")]
    if unknown:
        raise ValueError(f"{cls.__name__}: no field {unknown[0]!r}")
    stores = [f"new.{name} = {name if name in given else '_default_' + name}" for name in names]
    lines = ["new = make(cls)", *stores, "return new"]
    signature = f"build({', '.join(given)})"
    return generated_function(signature, lines, names, {"make": object.__new__, "cls": cls, **defaults})
