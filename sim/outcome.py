"""Per-run outcomes, timelines and aggregates of simulated runs; the JSON they serialise to.

The JSON layout is a public contract, documented in ``docs/scenario.md`` and versioned by
:data:`SCHEMA_VERSION`: fields are only ever added within a version.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ebbtide.core.effects import Notify
from ebbtide.core.events import Command, Deploy, Event, Measurement, ReplicasObserved
from ebbtide.core.state import Decision, RolloutState

SCHEMA_VERSION = "ebbtide.dev/sim-result/v1"

#: what a run ended as, for the counts of the aggregate
RESULTS = ("promoted", "rolled-back", "failed", "paused", "unfinished")


@dataclass(slots=True)
class Outcome:
    #: the engine phase at the end of the run (live, in-progress, verifying, paused, failed, rolling-back)
    final_state: str
    #: promoted | rolled-back | failed | paused | unfinished (see docs/scenario.md)
    result: str
    #: the stable revision at the end of the run
    live_revision: str | None
    degraded: bool
    #: a rollback happened (automatic or by command) and completed or was still running at the end
    rolled_back: bool
    rollback_reason: str | None
    #: the revision whose failure was detected, and when (seconds of simulated time)
    failed_revision: str | None = None
    detected_at: float | None = None
    #: misbehaviour start (or crash-looping canary creation) -> failure detected
    time_to_detect: float | None = None
    #: failure detected -> rollback complete (the target serves 100% again)
    time_to_rollback: float | None = None
    #: last deploy -> that revision live
    time_to_live: float | None = None
    #: requests served by a revision while it misbehaved (blast radius)
    bad_requests: float = 0.0
    #: requests routed to a revision with no ready pod
    dropped_requests: float = 0.0
    #: a failure was detected on a revision that did not misbehave (noise): it was rolled back or paused
    false_rollback: bool = False
    #: the simulated time the run stopped at
    ended_at: float = 0.0


@dataclass(slots=True)
class RunResult:
    index: int
    seed: int
    outcome: Outcome
    timeline: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    events: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "run": self.index,
            "seed": self.seed,
            "outcome": asdict(self.outcome),
            "timeline": self.timeline,
            "notifications": self.notifications,
            "rejected": self.rejected,
            "events": self.events,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)


def describe(event: Event) -> str:
    """A short label of an event for the timeline."""
    if isinstance(event, ReplicasObserved):
        return f"replicas {event.revision} {event.ready}/{event.desired}" + (
            f" failed={event.failed}" if event.failed else ""
        )
    if isinstance(event, Measurement):
        if event.error is not None:
            return f"measurement {event.metric} error"
        return f"measurement {event.metric}={event.value!r}"
    if isinstance(event, Deploy):
        return f"deploy {event.revision}"
    if isinstance(event, Command):
        return f"command {event.action}" + (f" {event.revision}" if event.revision else "")
    return event.kind


class Tracker:
    """Watches every decision of a run and derives its outcome and (optionally) its timeline.

    ``is_misbehaving(revision, t)`` and ``misbehave_since(revision)`` come from the cluster;
    ``bad(revision)`` says whether the scenario makes the revision fail.
    """

    __slots__ = (
        "_bad",
        "_since",
        "deployed_at",
        "deployed_revision",
        "detected_at",
        "failed_revision",
        "false_rollback",
        "keep_timeline",
        "last_entry",
        "live_at",
        "prev",
        "recorded",
        "rollback_reason",
        "rolled_back",
        "rolled_back_at",
        "timeline",
    )

    def __init__(self, state: RolloutState, keep_timeline: bool, bad: Any, since: Any) -> None:
        self.prev = state
        self.keep_timeline = keep_timeline
        self._bad = bad
        self._since = since
        self.timeline: list[dict[str, Any]] = []
        self.last_entry: tuple[Any, ...] | None = None
        self.deployed_revision: str | None = None
        self.deployed_at: float | None = None
        self.live_at: float | None = None
        self.detected_at: float | None = None
        self.failed_revision: str | None = None
        self.rollback_reason: str | None = None
        self.rolled_back = False
        self.rolled_back_at: float | None = None
        self.false_rollback = False
        self.recorded = 0

    def deployed(self, revision: str, t: float) -> None:
        self.deployed_revision = revision
        self.deployed_at = t
        self.live_at = None

    def _detected(self, t: float, revision: str | None, reason: str | None) -> None:
        if self.detected_at is not None:
            return
        self.detected_at = t
        self.failed_revision = revision
        if revision is not None and not self._bad(revision, t):
            self.false_rollback = True
        if reason is not None and self.rollback_reason is None:
            self.rollback_reason = reason

    def __call__(self, t: float, event: Event, decision: Decision) -> None:
        state = decision.state
        prev = self.prev
        for effect in decision.effects:
            if effect.kind != "notify":
                continue
            assert isinstance(effect, Notify)
            name = effect.event
            payload = effect.payload
            if name == "rollout-failed":
                self._detected(t, prev.canary, payload.get("reason"))
            elif name == "rollout-rolled-back":
                self.rolled_back = True
                if self.rolled_back_at is None:
                    self.rolled_back_at = t
                if self.rollback_reason is None:
                    self.rollback_reason = payload.get("reason")
            elif (
                name == "rollout-finished"
                and payload.get("revision") == self.deployed_revision
                and self.live_at is None
                and self.deployed_at is not None
            ):
                self.live_at = t
        if state.pause_reason == "failure-policy" and prev.pause_reason != "failure-policy":
            self._detected(t, state.canary, state.failure_reason)
        if len(state.recorded_failures) > self.recorded:
            self.recorded = len(state.recorded_failures)
            self._detected(t, state.canary, state.recorded_failures[-1])
        if state.rollback is not None and (prev.rollback is None or prev.rollback is not state.rollback):
            self.rolled_back = True
            if self.rollback_reason is None:
                self.rollback_reason = state.rollback.reason
        if self.keep_timeline:
            key = (
                state.phase,
                state.stable,
                state.canary,
                state.weights,
                state.replicas,
                state.step_index,
                state.pause_reason,
            )
            if key != self.last_entry or isinstance(event, Deploy | Command):
                self.last_entry = key
                self.timeline.append(
                    {
                        "t": t,
                        "state": state.phase,
                        "stable": state.stable,
                        "canary": state.canary,
                        "weights": dict(state.weights),
                        "replicas": dict(state.replicas),
                        "ready": dict(state.ready),
                        "step": state.step_index,
                        "pause_reason": state.pause_reason,
                        "event": describe(event),
                        "rejected": decision.rejected,
                    }
                )
        self.prev = state

    def outcome(self, state: RolloutState, end: float, bad_requests: float, dropped: float) -> Outcome:
        phase = state.phase
        if phase == "live":
            result = "rolled-back" if (state.degraded or self.rolled_back) else "promoted"
        elif phase == "failed":
            result = "failed"
        elif phase == "paused":
            result = "paused"
        else:
            result = "unfinished"
        ttd = None
        if self.detected_at is not None and self.failed_revision is not None and not self.false_rollback:
            since = self._since(self.failed_revision)
            if since is not None and since <= self.detected_at:
                ttd = self.detected_at - since
        ttr = None
        if self.detected_at is not None and self.rolled_back_at is not None:
            ttr = max(0.0, self.rolled_back_at - self.detected_at)
        ttl = None
        if self.live_at is not None and self.deployed_at is not None:
            ttl = self.live_at - self.deployed_at
        return Outcome(
            final_state=phase,
            result=result,
            live_revision=state.stable,
            degraded=state.degraded,
            rolled_back=self.rolled_back,
            rollback_reason=self.rollback_reason,
            failed_revision=self.failed_revision,
            detected_at=self.detected_at,
            time_to_detect=ttd,
            time_to_rollback=ttr,
            time_to_live=ttl,
            bad_requests=round(bad_requests, 3),
            dropped_requests=round(dropped, 3),
            false_rollback=self.false_rollback,
            ended_at=end,
        )


# ----------------------------------------------------------------------------------------------------------
# aggregates
# ----------------------------------------------------------------------------------------------------------
_LAST = re.compile(r"\s*\(last: .*\)$")


def reason_key(reason: str) -> str:
    """A rollback reason without its last measured value, so that equal causes count together."""
    return _LAST.sub("", reason)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    n = len(sorted_values)
    if n == 0:
        return None
    if n == 1:
        return sorted_values[0]
    pos = (n - 1) * q
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(slots=True)
class Summary:
    runs: int
    results: dict[str, int]
    final_states: dict[str, int]
    time_to_detect: dict[str, float | None]
    time_to_rollback: dict[str, float | None]
    time_to_live: dict[str, float | None]
    mean_bad_requests: float
    false_rollbacks: int
    false_rollback_rate: float
    rollback_reasons: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION, **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


class Aggregator:
    """Folds run results one at a time: memory grows with three floats per run, never with timelines."""

    def __init__(self) -> None:
        self.runs = 0
        self.results: Counter[str] = Counter()
        self.final_states: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.ttd: list[float] = []
        self.ttr: list[float] = []
        self.ttl: list[float] = []
        self.bad = 0.0
        self.false = 0

    def add(self, result: RunResult) -> None:
        o = result.outcome
        self.runs += 1
        self.results[o.result] += 1
        self.final_states[o.final_state] += 1
        if o.rollback_reason is not None:
            self.reasons[reason_key(o.rollback_reason)] += 1
        if o.time_to_detect is not None:
            self.ttd.append(o.time_to_detect)
        if o.time_to_rollback is not None:
            self.ttr.append(o.time_to_rollback)
        if o.time_to_live is not None:
            self.ttl.append(o.time_to_live)
        self.bad += o.bad_requests
        if o.false_rollback:
            self.false += 1

    @staticmethod
    def _stats(values: list[float]) -> dict[str, float | None]:
        values = sorted(values)
        return {
            "count": len(values),
            "p50": percentile(values, 0.5),
            "p95": percentile(values, 0.95),
            "max": values[-1] if values else None,
        }

    def summary(self) -> Summary:
        n = self.runs
        return Summary(
            runs=n,
            results={k: self.results.get(k, 0) for k in RESULTS},
            final_states=dict(sorted(self.final_states.items())),
            time_to_detect=self._stats(self.ttd),
            time_to_rollback=self._stats(self.ttr),
            time_to_live=self._stats(self.ttl),
            mean_bad_requests=(self.bad / n) if n else 0.0,
            false_rollbacks=self.false,
            false_rollback_rate=(self.false / n) if n else 0.0,
            rollback_reasons=dict(self.reasons.most_common()),
        )


def aggregate(results: Iterable[RunResult]) -> Summary:
    agg = Aggregator()
    for r in results:
        agg.add(r)
    return agg.summary()
