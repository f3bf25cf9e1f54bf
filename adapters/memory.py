"""An in-memory cluster: replica sets, a traffic router and metric signals, deterministic for a seed.

What is modelled (and what is not):

- **Replica sets.** One per revision, as the Kubernetes adapter creates one ReplicaSet per revision. Scaling
  up creates the missing pods at once; each becomes ready ``readiness.delay + U(0, readiness.jitter)`` seconds
  after it was created, or, with ``readiness.delays``, the k-th pod an attempt creates after ``delays[k]``
  (pods past the list: delay + jitter); ``available`` == ``ready`` (minReadySeconds is 0). Scaling down
  removes not-ready pods first, then the newest ready ones (what a ReplicaSet controller does), so a
  scale-down never costs ready capacity it does not have to. Pods of a ``crashLoop`` revision never become
  ready: each crashes ``readiness.delay + U(0, jitter)`` after it starts, and ``failed`` counts the pods
  that have crashed so far.
- **maxSurge / maxUnavailable** are properties of how the engine sizes the revisions (it decides every
  ``ScaleRevision``); a ReplicaSet itself has no surge. The cluster therefore does not second-guess the
  engine: it *measures* what the limits are about, ``peak_pods`` (the most pods alive at once, to compare with
  ``replicas + maxSurge``) and ``min_ready`` (the least ready pods of the revisions serving traffic, to
  compare with ``replicas - maxUnavailable``), which tests and the simulator check.
- **Traffic router.** ``SetTraffic`` weights (and header routes: a ``header_share`` of the requests carries
  the header and goes to the header-route revision; mirror routes copy requests whose answers no one gets, so
  they change no split) split ``rps`` requests per second. Requests are integrated
  over virtual time: ``served`` per revision, ``bad_requests`` (served by a revision while it misbehaves) and
  ``dropped_requests`` (routed to a revision with no ready pod).
- **Signals.** Each revision has named signals (``errorRate``, ``latency``, ``success_rate``, anything): a
  base value, a step change at a time, a linear ramp, a scripted series, gaussian noise, a value used while
  the revision misbehaves (shown ``lag`` seconds after it starts), clamping, and injected provider errors.
  Times are absolute simulation times.
- **Misbehaviour.** ``misbehaveAt: {time}`` starts at that time (or when the revision is first created, if
  later); ``misbehaveAt: {weight}`` starts when the routed weight first reaches that percentage; it never
  stops within an attempt.
- **Attempts.** A revision's attempt number counts its rollouts: 1 for its first (or its creation as the
  stable revision), then one more at every ``rollout-started`` notification for it (a retry, a redeploy, a
  rollback through a new rollout). ``attempts[n-2]`` of a behaviour overrides the given fields for attempt
  ``n`` (the last entry holds for later attempts): a retried revision can be fixed, or break differently.
  A new attempt re-arms the misbehaviour and re-draws the readiness of the pods not ready yet.
- **Measurements.** A ``StartMeasurement`` is answered at once: the metric is mapped to a signal by metric
  name, else by a substring of the provider query; the signal of the measured revision (the canary, or the
  stable one with ``of: stable``) is evaluated at ``now``; the value is returned as a scalar or, for
  conditions over ``result[0]`` (or with ``vector: true``), as ``[value]``. The result is reported by the next
  ``observe``. An external verification's metric is answered by the scenario's ``ExternalVerifier`` instead,
  ``after`` seconds later (or never), judged at that time; answers given at or after the metric's timeout are
  kept in ``late_answers``. A metric held by one of ``config.recordings`` is answered from the recording
  instead (:mod:`ebbtide.adapters.recorded`: the last recorded answer at or before ``now``).

Every random draw comes from one ``random.Random(seed)``, in the order the driver calls the cluster, so a run
is reproducible from its seed.
"""

from __future__ import annotations

import functools
import heapq
import math
import random
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SkipValidation, model_validator
from pydantic.alias_generators import to_camel

from ebbtide.adapters.recorded import Recording, replay
from ebbtide.core.duration import parse_duration
from ebbtide.core.effects import (
    Effect,
    Notify,
    ScaleRevision,
    SetTraffic,
    StartMeasurement,
    StopVerification,
)
from ebbtide.core.events import Event, MeasuredValue, Measurement, ReplicasObserved
from ebbtide.core.plan import MetricPlan

INF = math.inf

# durations: Go / Kubernetes notation ("30s", "5m", "1h30m") or a number of seconds
to_seconds = parse_duration


Duration = Annotated[float, BeforeValidator(to_seconds)]


# ----------------------------------------------------------------------------------------------------------
# configuration models (reused by the simulator's Scenario)
# ----------------------------------------------------------------------------------------------------------
class Model(BaseModel):
    #: no Infinity / NaN anywhere: a result must stay plain JSON, and such a figure is always a typo
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True, allow_inf_nan=False
    )


class Readiness(Model):
    """When a pod becomes ready: ``delay + U(0, jitter)`` seconds after it is created, or, per pod, the
    k-th pod of an attempt after ``delays[k]`` (pods past the list: ``delay + U(0, jitter)``)."""

    delay: Duration = 5.0
    jitter: Duration = 0.0
    delays: tuple[Duration, ...] = ()

    def draw(self, k: int, rng: random.Random) -> float:
        """The readiness delay of the k-th pod an attempt creates."""
        if k < len(self.delays):
            return self.delays[k]
        return self.delay + (rng.random() * self.jitter if self.jitter else 0.0)


class StepChange(Model):
    """The signal takes ``value`` from time ``at`` on."""

    at: Duration
    value: float


class Ramp(Model):
    """The signal moves linearly from its value at ``start`` to ``to`` at ``end``, and stays there."""

    start: Duration
    end: Duration
    to: float

    @model_validator(mode="after")
    def _order(self) -> Ramp:
        if self.end < self.start:
            raise ValueError("ramp end must not be before its start")
        return self


class SeriesPoint(Model):
    """A scripted value from time ``at`` on (``value: null`` means the provider returns no data)."""

    at: Duration
    value: float | None


class ProviderErrors(Model):
    """Injected provider errors: each measurement in ``[start, end)`` fails with ``probability``."""

    probability: float = Field(1.0, ge=0.0, le=1.0)
    start: Duration = 0.0
    end: Duration | None = None
    message: str = "provider error (injected)"


class Signal(Model):
    """A metric signal of one revision. A bare number is a constant signal."""

    value: float = 0.0
    #: standard deviation of gaussian noise added to every measurement
    noise: float = Field(0.0, ge=0.0)
    step: StepChange | None = None
    ramp: Ramp | None = None
    series: tuple[SeriesPoint, ...] = ()
    #: the value while the revision misbehaves (see ``misbehaveAt``); None: misbehaviour does not show here
    misbehaving: float | None = None
    #: how long after the misbehaviour starts the signal shows it (a metric's rate window, scrape delay)
    lag: Duration = 0.0
    min: float | None = None
    max: float | None = None
    errors: ProviderErrors | None = None

    @model_validator(mode="before")
    @classmethod
    def _scalar(cls, data: Any) -> Any:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return {"value": data}
        return data

    def evaluate(self, now: float, misbehave_since: float | None, rng: random.Random) -> float | None:
        """The signal's value at ``now`` for a revision misbehaving since ``misbehave_since`` (or not)."""
        value: float | None = self.value
        if self.series:
            for point in self.series:
                if point.at <= now:
                    value = point.value
                else:
                    break
        if self.step is not None and now >= self.step.at:
            value = self.step.value
        if self.ramp is not None and now >= self.ramp.start:
            ramp = self.ramp
            base = value if value is not None else 0.0
            if now >= ramp.end or ramp.end == ramp.start:
                value = ramp.to
            else:
                value = base + (ramp.to - base) * (now - ramp.start) / (ramp.end - ramp.start)
        if self.misbehaving is not None and misbehave_since is not None and now >= misbehave_since + self.lag:
            value = self.misbehaving
        if value is None:
            return None
        if self.noise:
            value = rng.gauss(value, self.noise)
        if self.min is not None and value < self.min:
            value = self.min
        if self.max is not None and value > self.max:
            value = self.max
        return value


class MisbehaveAt(Model):
    """When a revision starts misbehaving: at a time, or once its routed weight reaches a percentage."""

    time: Duration | None = None
    weight: int | None = Field(None, ge=0, le=100)

    @model_validator(mode="after")
    def _one(self) -> MisbehaveAt:
        if (self.time is None) == (self.weight is None):
            raise ValueError("misbehaveAt needs exactly one of time or weight")
        return self


class AttemptBehaviour(Model):
    """How a revision behaves on a later rollout attempt: each field given replaces the revision's own
    (``misbehaveAt: null`` makes a misbehaving revision healthy on that attempt)."""

    readiness: Readiness | None = None
    crash_loop: bool | None = None
    misbehave_at: MisbehaveAt | None = None
    signals: dict[str, Signal] | None = None


class RevisionBehaviour(Model):
    readiness: Readiness = Field(default_factory=Readiness)
    crash_loop: bool = False
    misbehave_at: MisbehaveAt | None = None
    signals: dict[str, Signal] = Field(default_factory=dict)
    #: the behaviour of attempts 2, 3, ... (the last entry holds for later attempts); see AttemptBehaviour
    attempts: tuple[AttemptBehaviour, ...] = ()

    @property
    def bad(self) -> bool:
        """A revision the scenario makes fail (crash loop or misbehaviour): rolling it back is right."""
        return self.crash_loop or self.misbehave_at is not None

    def for_attempt(self, n: int) -> RevisionBehaviour:
        """The behaviour of rollout attempt ``n`` (1-based) of the revision."""
        if n <= 1 or not self.attempts:
            return self
        override = self.attempts[min(n - 2, len(self.attempts) - 1)]
        changes = {name: getattr(override, name) for name in override.model_fields_set}
        return self.model_copy(update=changes)


class MetricMapping(Model):
    """Which signal answers a metric: matched by metric name, else by a substring of its provider query."""

    metric: str | None = None
    query: str | None = None
    signal: str
    #: return ``[value]`` rather than ``value``; None: a vector when the condition indexes ``result[...]``
    vector: bool | None = None
    #: measure the canary (the revision under test) or the stable revision (a baseline)
    of: Literal["canary", "stable"] = "canary"

    @model_validator(mode="after")
    def _one(self) -> MetricMapping:
        if (self.metric is None) == (self.query is None):
            raise ValueError("a metric mapping needs exactly one of metric or query")
        return self


class ExternalVerifier(Model):
    """The outside system answering an external verification (Ocean CD v1), ``after`` seconds after it is
    asked: ``correct`` answers failed while the measured revision misbehaves and passed otherwise, ``wrong``
    the opposite, ``passed`` / ``failed`` always that, ``never`` never answers (the fallback acts)."""

    #: the external metric it answers (by name); None: every external metric no other verifier names
    metric: str | None = None
    answer: Literal["correct", "wrong", "passed", "failed", "never"] = "correct"
    after: Duration = 0.0


class ClusterConfig(Model):
    revisions: dict[str, RevisionBehaviour] = Field(default_factory=dict)
    metrics: tuple[MetricMapping, ...] = ()
    #: who answers the external verifications (an external metric no verifier answers is never answered)
    external: tuple[ExternalVerifier, ...] = ()
    #: requests per second reaching the router
    rps: float = Field(0.0, ge=0.0)
    #: share (0..1) of the requests that carry the header of the header routes
    header_share: float = Field(0.0, ge=0.0, le=1.0)
    #: recorded provider answers: a metric they hold is answered from them, not from the signals
    recordings: SkipValidation[tuple[Recording, ...]] = ()


def provider_text(provider: Mapping[str, Any]) -> str:
    """Every string of a provider block, joined: what a ``query`` mapping matches a substring of."""
    parts: list[str] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, str):
            parts.append(obj)
        elif isinstance(obj, Mapping):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list | tuple):
            for v in obj:
                walk(v)

    walk(provider)
    return "\n".join(parts)


def find_verifier(verifiers: tuple[ExternalVerifier, ...], name: str) -> ExternalVerifier | None:
    """The verifier answering external metric ``name``: the one naming it, else one naming no metric."""
    for v in verifiers:
        if v.metric == name:
            return v
    return next((v for v in verifiers if v.metric is None), None)


def find_mapping(
    mappings: tuple[MetricMapping, ...], name: str, provider: Mapping[str, Any]
) -> MetricMapping | None:
    for m in mappings:
        if m.metric is not None and m.metric == name:
            return m
    text: str | None = None
    for m in mappings:
        if m.query is not None:
            if text is None:
                text = provider_text(provider)
            if m.query in text:
                return m
    return None


_VECTOR_HINT = re.compile(r"result\s*\[")


Sampler = Callable[[float, float | None, random.Random], float | None]
#: a metric plan, the mapping answering it, with a vector?, of the canary?, the signal it reads, external?,
#: the metric's name (see MemoryCluster._mapping)
_Mapped = tuple[MetricPlan, MetricMapping | None, bool, bool, str, bool, str]


def _sampler(signal: Signal) -> Sampler:
    """``signal.evaluate``, compiled for a signal without a series, a step or a ramp (most of them: a value,
    noise, a misbehaving value, bounds): the same steps on plain values, so the same draws and results."""
    if signal.series or signal.step is not None or signal.ramp is not None:
        return signal.evaluate
    base = signal.value
    noise = signal.noise
    misbehaving = signal.misbehaving
    lag = signal.lag
    low = signal.min
    high = signal.max

    def sample(now: float, misbehave_since: float | None, rng: random.Random) -> float | None:
        value = base
        if misbehaving is not None and misbehave_since is not None and now >= misbehave_since + lag:
            value = misbehaving
        if noise:
            value = rng.gauss(value, noise)
        if low is not None and value < low:
            value = low
        if high is not None and value > high:
            value = high
        return value

    return sample


@functools.lru_cache(maxsize=1024)
def _observed(revision: str, counts: tuple[int, int, int, int]) -> ReplicasObserved:
    """The event reporting ``counts`` of a revision: events are immutable values, so equal reports (in
    every run of a simulation) share one instead of building it again."""
    desired, ready, available, failed = counts
    return ReplicasObserved(
        revision=revision, desired=desired, ready=ready, available=available, failed=failed
    )


# ----------------------------------------------------------------------------------------------------------
# the cluster
# ----------------------------------------------------------------------------------------------------------
def _weight_trigger(behaviour: RevisionBehaviour) -> int | None:
    """The routed weight at which the behaviour starts misbehaving (None: not a weight-armed one)."""
    mb = behaviour.misbehave_at
    return mb.weight if mb is not None else None


def _readiness(readiness: Readiness) -> tuple[tuple[float, ...], float, float]:
    """A readiness's per-pod delays, delay and jitter, as plain values (no model attribute look-ups)."""
    return readiness.delays, readiness.delay, readiness.jitter


class _ReplicaSet:
    __slots__ = (
        "_counts",
        "_crash_loop",
        "_crashing",
        "_delay",
        "_delays",
        "_jitter",
        "_misbehave_weight",
        "_signals",
        "_valid_from",
        "_valid_until",
        "announced",
        "attempt",
        "base",
        "behaviour",
        "created",
        "created_at",
        "desired",
        "misbehave_since",
        "pods",
        "reported",
        "revision",
    )

    def __init__(self, revision: str, behaviour: RevisionBehaviour) -> None:
        self.revision = revision
        #: the scenario's behaviour of the revision, and the one of the current attempt
        self.base = behaviour
        self.behaviour = behaviour
        #: the behaviour's readiness, crash loop and misbehaviour weight, read once (see :meth:`behave`)
        self._delays, self._delay, self._jitter = _readiness(behaviour.readiness)
        self._crash_loop = behaviour.crash_loop
        self._misbehave_weight = _weight_trigger(behaviour)
        self._signals = behaviour.signals
        self.attempt = 0
        #: a rollout-started notification named the revision in its current attempt
        self.announced = False
        self.desired = 0
        #: per pod: the time it becomes ready (INF: never), and when it crashes (INF: never); whoever
        #: changes the pods or ``desired`` calls :meth:`changed`
        self.pods: list[tuple[float, float]] = []
        #: a pod was created to crash (only :meth:`new_pod` makes one): until then every crash time is INF
        self._crashing = False
        #: pods created in the current attempt (the index into ``readiness.delays``)
        self.created = 0
        self.reported: tuple[int, int, int, int] | None = None
        #: when the current attempt created its first pod (or started)
        self.created_at: float | None = None
        self.misbehave_since: float | None = None
        #: the counts, valid from ``_valid_from`` until (not including) the next pod change after it
        self._counts: tuple[int, int, int, int] = (0, 0, 0, 0)
        self._valid_from = INF
        self._valid_until = -INF

    def changed(self) -> None:
        """The pods or the desired count changed: the cached counts no longer hold."""
        self._valid_from = INF

    def behave(self, behaviour: RevisionBehaviour) -> None:
        """The behaviour of a new attempt."""
        self.behaviour = behaviour
        self._delays, self._delay, self._jitter = _readiness(behaviour.readiness)
        self._crash_loop = behaviour.crash_loop
        self._misbehave_weight = _weight_trigger(behaviour)
        self._signals = behaviour.signals

    def new_pod(self, now: float, rng: random.Random) -> tuple[float, float]:
        """A pod created at ``now``: ``Readiness.draw`` on the figures read once (the same draws)."""
        k = self.created
        delays = self._delays
        if k < len(delays):
            delay = delays[k]
        else:
            jitter = self._jitter
            delay = self._delay + (rng.random() * jitter if jitter else 0.0)
        self.created = k + 1
        if self._crash_loop:
            self._crashing = True
            return (INF, now + delay)
        return (now + delay, INF)

    def arm(self, now: float) -> None:
        """Start the current attempt's misbehaviour clock (a time-based one; weight-based ones arm on
        traffic)."""
        mb = self.behaviour.misbehave_at
        self.misbehave_since = max(mb.time, now) if mb is not None and mb.time is not None else None

    def counts(self, now: float) -> tuple[int, int, int, int]:
        """(desired, ready, available, failed) at ``now``.

        Counts only change when a pod becomes ready or crashes, so one pass over the pods also finds the
        last such time at or before ``now`` and the next one after it, and the counts are reused for any
        time between the two (the loop asks at every instant, and about the instant before it).
        """
        if self._valid_from <= now < self._valid_until:
            return self._counts
        if self._crashing:
            return self._count_with_crashes(now)
        ready = 0
        prev = -INF
        nxt = INF
        for ready_at, _ in self.pods:  # no pod ever crashes: the pass over ready times alone
            if ready_at <= now:
                ready += 1
                if ready_at > prev:
                    prev = ready_at
            elif ready_at < nxt:
                nxt = ready_at
        self._counts = (self.desired, ready, ready, 0)
        self._valid_from = prev
        self._valid_until = nxt
        return self._counts

    def _count_with_crashes(self, now: float) -> tuple[int, int, int, int]:
        """:meth:`counts` of a set with a pod that crashes (or may): ready and crash times both."""
        ready = failed = 0
        prev = -INF
        nxt = INF
        for ready_at, crash_at in self.pods:
            if ready_at <= now:
                ready += 1
                if ready_at > prev:
                    prev = ready_at
            elif ready_at < nxt:
                nxt = ready_at
            if crash_at <= now:
                if ready_at > now:
                    failed += 1
                if crash_at > prev:
                    prev = crash_at
            elif crash_at < nxt:
                nxt = crash_at
        self._counts = (self.desired, ready, ready, failed)
        self._valid_from = prev
        self._valid_until = nxt
        return self._counts

    def ready(self, now: float) -> int:
        if self._valid_from <= now < self._valid_until:
            return self._counts[1]
        return self.counts(now)[1]

    def next_change(self, now: float) -> float:
        """The first time after ``now`` a pod becomes ready or crashes (INF: none)."""
        if not self._valid_from <= now < self._valid_until:
            self.counts(now)
        return self._valid_until


class MemoryCluster:
    """The in-memory cluster adapter (see the module documentation for what it models)."""

    @property
    def observe_settles(self) -> bool:
        """Once ``observe(now)`` has reported, another ``observe(now)`` reports nothing until something is
        applied (or made ready, or resynced): every count at ``now`` was reported, every pending result
        handed over and every external answer due by ``now`` given, and nothing else changes the cluster
        within one instant. A driver may skip that empty call. Not promised by a subclass that overrides
        ``observe`` (its provider's answers may arrive at any time)."""
        return type(self).observe is MemoryCluster.observe

    def __init__(self, config: ClusterConfig | None = None, seed: int | str = 0) -> None:
        self.config = config or ClusterConfig()
        #: the configuration's figures the hot paths read, read once (the configuration is frozen)
        self._rps = self.config.rps
        self._header_share = self.config.header_share
        self._recordings = self.config.recordings
        #: per signal (by identity): the signal, its sampler (see _sampler) and its injected errors
        self._samplers: dict[int, tuple[Signal, Sampler, ProviderErrors | None]] = {}
        self.rng = random.Random(seed)
        self._sets: dict[str, _ReplicaSet] = {}
        self._pending: dict[tuple[str, str], Measurement] = {}
        #: per metric plan (by identity): the plan, the mapping that answers it, and whether with a vector
        self._mappings: dict[int, _Mapped] = {}
        self._notifications: list[tuple[float, Notify]] = []
        self.weights: dict[str, int] = {}
        self.header_routes: tuple[Any, ...] = ()
        self.header_route_revision: str | None = None
        self._effective: dict[str, float] = {}
        self._last_t = 0.0
        self.served: dict[str, float] = {}
        self.bad_requests = 0.0
        self.dropped_requests = 0.0
        self.peak_pods = 0
        self.min_ready: int | None = None
        self.measurements_taken = 0
        #: external verification answers still to come: (due, sequence, asked at, request)
        self._answers: list[tuple[float, int, float, StartMeasurement]] = []
        self._answer_seq = 0
        #: answers given after their verification's timeout: (time, verification, metric, value)
        self.late_answers: list[tuple[float, str, str, str]] = []
        #: a time window in which no revision's counts change and every count has been reported (then
        #: ``observe`` has nothing to say but pending results, and ``next_change`` is its end); whatever
        #: changes pods, desired counts or what was reported closes it (:meth:`_stir`)
        self._quiet_from = INF
        self._quiet_until = -INF

    def _stir(self) -> None:
        self._quiet_from = INF
        self._quiet_until = -INF

    # ----- the Adapter protocol ------------------------------------------------------------------------
    @property
    def notifications(self) -> list[tuple[float, Notify]]:
        return self._notifications

    def apply(self, effect: Effect, now: float) -> None:
        kind = effect.kind
        if kind == "scale":
            assert isinstance(effect, ScaleRevision)
            self.scale_revision(effect, now)
        elif kind == "traffic":
            assert isinstance(effect, SetTraffic)
            self.set_traffic(effect, now)
        elif kind == "measure":
            assert isinstance(effect, StartMeasurement)
            self.start_measurement(effect, now)
        elif kind == "stop-verification":
            assert isinstance(effect, StopVerification)
            self.stop_verification(effect, now)
        elif kind == "notify":
            assert isinstance(effect, Notify)
            self.notify(effect, now)

    def appliers(self) -> dict[type, Callable[[Any, float], None]]:
        """``apply``'s handler of each effect type, for a driver to call directly (one call per effect, not
        two, and no comparisons of kinds); none for a subclass that overrides ``apply`` (every effect must
        then go through its ``apply``)."""
        if type(self).apply is not MemoryCluster.apply:
            return {}
        return {
            ScaleRevision: self.scale_revision,
            SetTraffic: self.set_traffic,
            StartMeasurement: self.start_measurement,
            StopVerification: self.stop_verification,
            Notify: self.notify,
        }

    def start_measurement(self, effect: StartMeasurement, now: float) -> None:
        """Measure now; the result is reported by the next ``observe`` (an external verifier's, later)."""
        metric = effect.metric
        hit = self._mappings.get(id(metric))
        if hit is None or hit[0] is not metric:
            hit = self._mapping(metric)
        if hit[5]:
            self._ask_verifier(effect, now)
            return
        self._pending[(effect.verification, hit[6])] = self._measure(effect, now, hit)

    def stop_verification(self, effect: StopVerification, now: float) -> None:
        if self._pending:
            for key in [k for k in self._pending if k[0] == effect.verification]:
                del self._pending[key]

    def notify(self, effect: Notify, now: float) -> None:
        self._notifications.append((now, effect))
        if effect.event == "rollout-started" and isinstance(effect.payload.get("revision"), str):
            self.start_attempt(effect.payload["revision"], now)

    def observe(self, now: float) -> list[Event]:
        out: list[Event] = []
        if not self._quiet_from <= now < self._quiet_until:
            # every revision reports what changed; then, until the first count changes, nothing will
            start = -INF
            until = INF
            for rs in self._sets.values():
                counts = rs._counts if rs._valid_from <= now < rs._valid_until else rs.counts(now)
                if counts is not rs.reported and counts != rs.reported:
                    rs.reported = counts
                    out.append(_observed(rs.revision, counts))
                if rs._valid_from > start:
                    start = rs._valid_from
                if rs._valid_until < until:
                    until = rs._valid_until
            self._quiet_from = start
            self._quiet_until = until
        if self._pending:
            out.extend(self._pending.values())
            self._pending.clear()
        if self._answers and self._answers[0][0] <= now:
            out.extend(self._verifier_answers(now))
        return out

    def resync(self) -> None:
        self._stir()
        for rs in self._sets.values():
            rs.reported = None

    def next_change(self, now: float) -> float | None:
        if self._quiet_from <= now < self._quiet_until:
            best = self._quiet_until
        else:
            best = INF
            for rs in self._sets.values():
                t = rs.next_change(now)
                if t < best:
                    best = t
        if self._answers and self._answers[0][0] < best:
            best = self._answers[0][0]
        return None if best == INF else best

    # ----- replica sets ----------------------------------------------------------------------------------
    def behaviour(self, revision: str) -> RevisionBehaviour:
        b = self.config.revisions.get(revision)
        return b if b is not None else RevisionBehaviour()

    def _set(self, revision: str) -> _ReplicaSet:
        rs = self._sets.get(revision)
        if rs is None:
            rs = self._sets[revision] = _ReplicaSet(revision, self.behaviour(revision))
            self._stir()
        return rs

    def start_attempt(self, revision: str, now: float) -> None:
        """A rollout of ``revision`` starts: its next attempt, with that attempt's behaviour.

        The engine scales the canary up in the same decision as it announces the rollout, so the pods not
        ready yet (those just created, and any left crash-looping by an earlier attempt) are drawn again
        under the new attempt's behaviour. The first attempt of a revision changes nothing.
        """
        rs = self._set(revision)
        if not rs.announced and rs.attempt <= 1 and rs.created_at in (None, now):
            rs.attempt = 1  # the rollout that created the revision: its first attempt
            rs.announced = True
            return
        rs.attempt += 1
        rs.announced = True
        rs.behave(rs.base.for_attempt(rs.attempt))
        rs.created = 0
        rs.created_at = now
        rs.arm(now)
        kept = [p for p in rs.pods if p[0] <= now]
        redraw = len(rs.pods) - len(kept)
        rs.pods = kept + [rs.new_pod(now, self.rng) for _ in range(redraw)]
        rs.changed()
        rs.reported = None
        self._stir()

    def attempt(self, revision: str) -> int:
        """The revision's current rollout attempt (0: never created)."""
        rs = self._sets.get(revision)
        return rs.attempt if rs is not None else 0

    def attempt_started(self, revision: str) -> float | None:
        """When the revision's current attempt started (its pods were first created, or its rollout began)."""
        rs = self._sets.get(revision)
        return rs.created_at if rs is not None else None

    def crash_looping(self, revision: str) -> bool:
        rs = self._sets.get(revision)
        return rs is not None and rs.behaviour.crash_loop

    def scale(self, revision: str, replicas: int, now: float) -> None:
        self.scale_revision(ScaleRevision(revision=revision, replicas=replicas), now)

    def scale_revision(self, effect: ScaleRevision, now: float) -> None:
        rs = self._set(effect.revision)
        replicas = max(0, effect.replicas)
        rs.desired = replicas
        # rs.changed() and self._stir(), inline (the most frequent change: every scale)
        rs._valid_from = INF
        self._quiet_from = INF
        self._quiet_until = -INF
        pods = rs.pods
        have = len(pods)
        if replicas > have:
            if rs.created_at is None:
                rs.created_at = now
                rs.attempt = max(rs.attempt, 1)
                rs.arm(now)
            rng = self.rng
            for _ in range(replicas - have):
                pods.append(rs.new_pod(now, rng))
            total = 0
            for other in self._sets.values():
                total += len(other.pods)
            if total > self.peak_pods:
                self.peak_pods = total
        elif replicas == 0:
            rs.pods = []
        elif replicas < have:
            # not-ready pods go first (newest first), then the newest ready ones
            not_ready = [i for i, p in enumerate(pods) if p[0] > now]
            ready = [i for i, p in enumerate(pods) if p[0] <= now]
            remove = set((not_ready[::-1] + ready[::-1])[: have - replicas])
            rs.pods = [p for i, p in enumerate(pods) if i not in remove]

    def make_ready(self, revision: str, now: float, count: int | None = None) -> None:
        """Make the pods of a revision ready (or crashed) now: a revision running when a run starts.

        With ``count``, only the first ``count`` pods; the others keep the readiness times drawn for them.
        """
        rs = self._sets.get(revision)
        if rs is not None:
            n = len(rs.pods) if count is None else count
            rs.pods = [
                ((now, INF) if r != INF else (INF, now)) if i < n else (r, c)
                for i, (r, c) in enumerate(rs.pods)
            ]
            rs.changed()
            self._stir()

    def replica_counts(self, revision: str, now: float) -> tuple[int, int, int, int]:
        rs = self._sets.get(revision)
        return rs.counts(now) if rs is not None else (0, 0, 0, 0)

    def pods(self, revision: str) -> int:
        rs = self._sets.get(revision)
        return len(rs.pods) if rs is not None else 0

    # ----- traffic ----------------------------------------------------------------------------------------
    def set_traffic(self, effect: SetTraffic, now: float) -> None:
        if now > self._last_t:
            self.advance(now)
        self.weights = dict(effect.weights)
        self.header_routes = effect.header_routes
        hr = self.header_route_revision = effect.header_route_revision
        eff = self._route(effect.weights, now)
        share = self._header_share
        if (
            share
            and hr is not None
            and any(r.mirror_percentage is None for r in effect.header_routes)  # mirrors serve no one
        ):
            eff = {r: w * (1.0 - share) for r, w in eff.items()}
            eff[hr] = eff.get(hr, 0.0) + 100.0 * share
        self._effective = eff

    def advance(self, now: float) -> None:
        """Integrate the requests served since the last call up to ``now``."""
        last = self._last_t
        if now <= last:
            return
        self._last_t = now
        rps = self._rps
        if not rps:
            return
        dt = now - last
        sets = self._sets
        served = self.served
        for rev, w in self._effective.items():
            n = rps * dt * w / 100.0
            served[rev] = served.get(rev, 0.0) + n
            rs = sets.get(rev)
            if rs is None:
                self.dropped_requests += n
                continue
            if (rs._counts if rs._valid_from <= last < rs._valid_until else rs.counts(last))[1] == 0:
                self.dropped_requests += n
            since = rs.misbehave_since
            if since is not None and since < now:
                self.bad_requests += rps * w / 100.0 * (now - max(last, since))

    def _route(self, weights: Mapping[str, int], now: float) -> dict[str, float]:
        """Traffic now goes by ``weights``: a revision whose misbehaviour waits for a weight it reached starts
        misbehaving, and ``min_ready`` keeps the least ready pods of a revision serving traffic. Returns the
        weights of the revisions serving traffic (weight above 0), in order, as floats."""
        sets = self._sets
        serving: dict[str, float] = {}
        low: int | None = None
        for rev, w in weights.items():
            rs = sets.get(rev)
            if rs is None:
                rs = self._set(rev)
            trigger = rs._misbehave_weight
            if trigger is not None and rs.misbehave_since is None and w >= trigger:
                rs.misbehave_since = now
            if w > 0:
                serving[rev] = float(w)
                n = (rs._counts if rs._valid_from <= now < rs._valid_until else rs.counts(now))[1]
                if low is None or n < low:
                    low = n
        if low is not None and (self.min_ready is None or low < self.min_ready):
            self.min_ready = low
        return serving

    def misbehaving(self, revision: str, now: float) -> bool:
        rs = self._sets.get(revision)
        return rs is not None and rs.misbehave_since is not None and rs.misbehave_since <= now

    def misbehave_since(self, revision: str) -> float | None:
        rs = self._sets.get(revision)
        return rs.misbehave_since if rs is not None else None

    # ----- measurements -----------------------------------------------------------------------------------
    def _mapping(self, metric: MetricPlan) -> _Mapped:
        """``(metric, mapping, vector, canary, signal, external, name)``: the mapping that answers ``metric``
        (None: none does), whether it answers with a vector, whether it measures the canary, the signal it
        reads, whether an external verifier answers the metric, and its name (model fields, read once: a
        pydantic model's attribute costs a slow look-up each time). Looked up once per metric plan, by
        identity (a spec change brings other metric plans; the metric plan is kept beside its answer so
        that a reused id never passes)."""
        hit = self._mappings.get(id(metric))
        if hit is not None and hit[0] is metric:
            return hit
        mapping = find_mapping(self.config.metrics, metric.name, metric.provider)
        vector = False
        if mapping is not None:
            if mapping.vector is not None:
                vector = mapping.vector
            else:
                cond = metric.success_condition or metric.failure_condition or ""
                vector = bool(_VECTOR_HINT.search(cond))
        canary = mapping is None or mapping.of == "canary"
        signal = mapping.signal if mapping is not None else ""
        external = "external" in metric.provider
        hit = self._mappings[id(metric)] = (metric, mapping, vector, canary, signal, external, metric.name)
        return hit

    def measure(self, start: StartMeasurement, now: float) -> Measurement:
        """Evaluate the signal a metric maps to, for the measured revision, at ``now``."""
        return self._measure(start, now, self._mapping(start.metric))

    def _measure(self, start: StartMeasurement, now: float, hit: _Mapped) -> Measurement:
        """:meth:`measure`, with the metric's mapping (see :meth:`_mapping`)."""
        self.measurements_taken += 1
        name = hit[6]
        mapping, vector = hit[1], hit[2]
        if self._recordings:
            role = "canary" if hit[3] else "stable"
            recorded = replay(self._recordings, start, now, role, vector if mapping else None)
            if recorded is not None:
                return recorded
        if mapping is None:
            return Measurement(
                verification=start.verification, metric=name, error=f"no signal mapped for {name!r}"
            )
        revision = start.revision if hit[3] else start.stable
        if revision is None:
            return Measurement(verification=start.verification, metric=name, error="no stable revision")
        rs = self._sets.get(revision)
        # the signals of the revision's current attempt (a retried revision may measure otherwise)
        signals = rs._signals if rs is not None else self.behaviour(revision).signals
        signal = signals.get(hit[4])
        if signal is None:
            return Measurement(
                verification=start.verification,
                metric=name,
                error=f"revision {revision!r} has no signal {mapping.signal!r}",
            )
        compiled = self._samplers.get(id(signal))
        if compiled is None or compiled[0] is not signal:
            compiled = self._samplers[id(signal)] = (signal, _sampler(signal), signal.errors)
        errors = compiled[2]
        if (
            errors is not None
            and errors.start <= now
            and (errors.end is None or now < errors.end)
            and self.rng.random() < errors.probability
        ):
            return Measurement(verification=start.verification, metric=name, error=errors.message)
        raw = compiled[1](now, rs.misbehave_since if rs is not None else None, self.rng)
        value: MeasuredValue = [raw] if (vector and raw is not None) else raw
        return Measurement(verification=start.verification, metric=name, value=value)

    # ----- external verification ------------------------------------------------------------------------
    def _ask_verifier(self, start: StartMeasurement, now: float) -> None:
        """Schedule the answer of the scenario's external verifier (none: never answered)."""
        verifier = find_verifier(self.config.external, start.metric.name)
        if verifier is None or verifier.answer == "never":
            return
        self._answer_seq += 1
        heapq.heappush(self._answers, (now + verifier.after, self._answer_seq, now, start))

    def _verifier_answers(self, now: float) -> list[Event]:
        """The answers due at ``now``, judged when they are given; those at or past their verification's
        timeout (the engine's fallback acted first) are also kept in :attr:`late_answers`."""
        out: list[Event] = []
        while self._answers and self._answers[0][0] <= now:
            due, _, asked, start = heapq.heappop(self._answers)
            verifier = find_verifier(self.config.external, start.metric.name)
            answer = verifier.answer if verifier is not None else "failed"
            if answer in ("correct", "wrong"):
                bad = self.misbehaving(start.revision, due)
                answer = "failed" if bad == (answer == "correct") else "passed"
            timeout = start.metric.timeout
            if timeout is not None and due >= asked + timeout:
                self.late_answers.append((due, start.verification, start.metric.name, answer))
            out.append(Measurement(verification=start.verification, metric=start.metric.name, value=answer))
        return out
