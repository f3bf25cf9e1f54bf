"""Per-run outcomes, timelines and aggregates of simulated runs; the JSON they serialise to.

The JSON layout is a public contract, documented in ``docs/scenario.md`` and versioned by
:data:`SCHEMA_VERSION`: fields are only ever added within a version.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ebbtide.core.effects import Notify
from ebbtide.core.events import Command, Deploy, Event, Measurement, ReplicasObserved, SpecChanged
from ebbtide.core.state import Decision, RolloutState, VerificationRun
from ebbtide.core.verification import TERMINAL, classify, record, verdict

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
    #: a rollback (automatic or by command) happened: it completed or was still running at the end
    rolled_back: bool
    #: why the first rollback happened; None when nothing rolled back
    rollback_reason: str | None
    #: the revision whose failure was detected, and when (seconds of simulated time)
    failed_revision: str | None = None
    detected_at: float | None = None
    #: misbehaviour start (or crash-looping canary creation) -> failure detected
    time_to_detect: float | None = None
    #: failure detected -> rollback complete (the target serves 100% again)
    time_to_rollback: float | None = None
    #: last deploy (or retry) -> that revision live
    time_to_live: float | None = None
    #: requests served by a revision while it misbehaved (blast radius)
    bad_requests: float = 0.0
    #: requests routed to a revision with no ready pod
    dropped_requests: float = 0.0
    #: a failure was detected on a revision that did not misbehave (noise): it was rolled back or paused
    false_rollback: bool = False
    #: the simulated time the run stopped at
    ended_at: float = 0.0
    #: why the first detected failure failed, whatever the failure policy then did (rollback, pause, promote)
    failure_reason: str | None = None
    #: failures the promote policy recorded and went on past, in order
    recorded_failures: list[str] = field(default_factory=list)


def finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (inf, nan) replaced by None: results are plain JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def dumps(obj: Any, indent: int | None = None) -> str:
    """JSON of a result: non-finite figures become null, and ``Infinity``/``NaN`` can never be written."""
    return json.dumps(finite(obj), indent=indent, allow_nan=False)


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
            "outcome": finite(asdict(self.outcome)),
            "timeline": finite(self.timeline),
            "notifications": finite(self.notifications),
            "rejected": self.rejected,
            "events": self.events,
        }

    def to_json(self) -> str:
        return dumps(self.to_dict())


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
    if isinstance(event, SpecChanged):
        return f"spec changed ({event.plan.name})"
    return event.kind


def _measurement(prev: RolloutState, ev: Measurement) -> dict[str, Any]:
    """A measurement as the timeline shows it: what was measured, and how the metric judged it (no verdict
    for a late answer to a run that has ended: the engine does not count it)."""
    verdict: str | None = None
    template: str | None = None
    for run in prev.verifications:
        if run.id == ev.verification:
            template = run.template
            if run.phase in TERMINAL:
                break
            plan = prev.plan.templates.get(run.template)
            metric = next((m for m in plan.metrics if m.name == ev.metric), None) if plan else None
            if ev.error is not None:
                verdict = "error"
            elif metric is not None:
                verdict = classify(metric, ev.value)[0]
    return {
        "verification": ev.verification,
        "template": template,
        "metric": ev.metric,
        "value": ev.value,
        "error": ev.error,
        "verdict": verdict,
    }


def _verdicts(prev: RolloutState, state: RolloutState, event: Event) -> list[dict[str, Any]]:
    """The verifications that reached a verdict (or were stopped) in this decision."""
    out: list[dict[str, Any]] = []
    after = {r.id: r for r in state.verifications}
    for run in prev.verifications:
        if run.phase != "Running":
            continue
        new = after.get(run.id)
        phase: str | None
        message: str | None
        if new is not None:
            if new.phase == "Running":
                continue
            phase, message = new.phase, new.message
        else:
            phase, message = _vanished(prev, run, event)
        out.append(
            {
                "verification": run.id,
                "template": run.template,
                "background": run.background,
                "phase": phase,
                "message": message,
            }
        )
    return out


def _vanished(prev: RolloutState, run: VerificationRun, event: Event) -> tuple[str, str | None]:
    """The verdict of a run the decision dropped from the state: the one its last measurement gave it
    (the engine acts on a verdict and forgets the run in the same decision), else it was stopped."""
    template = prev.plan.templates.get(run.template)
    if isinstance(event, Measurement) and event.verification == run.id and template is not None:
        metrics = tuple(
            record(mp, st, event.value, event.error, 0.0) if st.name == event.metric else st
            for mp, st in zip(template.metrics, run.metrics, strict=True)
        )
        phase, message = verdict(template, metrics, run.background)
        if phase != "Running":
            return phase, message
    return "Stopped", describe(event)


def _appended(before: tuple[str, ...], after: tuple[str, ...]) -> tuple[str, ...]:
    """What a bounded, latest-kept list gained from ``before`` to ``after`` (it may also have dropped its
    oldest items, or been emptied by a new rollout)."""
    for dropped in range(len(before) + 1):
        kept = before[dropped:]
        if after[: len(kept)] == kept:
            return after[len(kept) :]
    return after  # pragma: no cover - dropped == len(before) always matches


class Tracker:
    """Watches every decision of a run and derives its outcome and (optionally) its timeline.

    ``bad(revision, t)`` says whether the revision misbehaves (or crash-loops) at ``t``;
    ``since(revision)`` since when.
    """

    __slots__ = (
        "_bad",
        "_since",
        "deployed_at",
        "deployed_revision",
        "detected_at",
        "failed_revision",
        "failure_reason",
        "false_rollback",
        "keep_timeline",
        "last_entry",
        "live_at",
        "measurements",
        "prev",
        "recorded_failures",
        "rollback_reason",
        "rolled_back",
        "rolled_back_at",
        "settled",
        "time_to_detect",
        "timeline",
    )

    def __init__(
        self, state: RolloutState, keep_timeline: bool, bad: Any, since: Any, measurements: bool = False
    ) -> None:
        self.prev = state
        self.keep_timeline = keep_timeline
        self.measurements = measurements and keep_timeline
        self._bad = bad
        self._since = since
        self.timeline: list[dict[str, Any]] = []
        self.last_entry: tuple[Any, ...] | None = None
        self.deployed_revision: str | None = None
        self.deployed_at: float | None = None
        self.live_at: float | None = None
        self.detected_at: float | None = None
        self.time_to_detect: float | None = None
        self.failed_revision: str | None = None
        self.failure_reason: str | None = None
        self.rollback_reason: str | None = None
        self.rolled_back = False
        self.rolled_back_at: float | None = None
        self.false_rollback = False
        self.recorded_failures: list[str] = []
        #: how the rollout last came to rest in live: "promoted" or "rolled-back" (None: never)
        self.settled: str | None = None

    def start(self, state: RolloutState, t: float) -> None:
        """The run's clock starts: the timeline begins with the state the run starts from."""
        if state.phase == "live" and state.stable is not None and self.settled is None:
            self.settled = "promoted"
        if self.keep_timeline:
            self.timeline = [self._entry(t, state, "start", None)]
            self.last_entry = self._key(state)

    def deployed(self, revision: str, t: float) -> None:
        self.deployed_revision = revision
        self.deployed_at = t
        self.live_at = None

    def _detected(self, t: float, revision: str | None, reason: str | None) -> None:
        if self.detected_at is not None:
            return
        self.detected_at = t
        self.failed_revision = revision
        self.failure_reason = reason
        if revision is not None and not self._bad(revision, t):
            self.false_rollback = True
        elif revision is not None:
            since = self._since(revision)  # now: a later attempt of the revision may behave otherwise
            if since is not None and since <= t:
                self.time_to_detect = t - since

    def _rollback(self, t: float, reason: str | None, completed: bool) -> None:
        self.rolled_back = True
        if self.rollback_reason is None:
            self.rollback_reason = reason
        if completed and self.rolled_back_at is None:
            self.rolled_back_at = t

    def __call__(self, t: float, event: Event, decision: Decision) -> None:
        state = decision.state
        prev = self.prev
        if state is prev and not decision.effects and not self.keep_timeline:
            return  # nothing happened (an observation the engine had no use for, a rejected command)
        came_back = prev.phase == "rolling-back" or prev.initiator in ("rollback", "failure-policy")
        for effect in decision.effects:
            if effect.kind != "notify":
                continue
            assert isinstance(effect, Notify)
            name = effect.event
            payload = effect.payload
            if name == "rollout-failed":
                self._detected(t, prev.canary, payload.get("reason"))
            elif name == "rollout-rolled-back":
                self._rollback(t, payload.get("reason"), completed=True)
                came_back = True
            elif name == "rollout-started" and payload.get("initiator") == "rollback":
                self._rollback(t, f"rollback to revision {payload.get('revision')} requested", False)
            elif name == "rollout-started" and payload.get("initiator") == "failure-policy":
                self._rollback(t, state.failure_reason or self.failure_reason, False)  # a newRollout rollback
            elif name == "rollout-finished" and prev.initiator == "rollback":
                self._rollback(t, None, completed=True)
        if state.pause_reason == "failure-policy" and prev.pause_reason != "failure-policy":
            self._detected(t, state.canary, state.failure_reason)
        if state.recorded_failures is not prev.recorded_failures and (
            state.recorded_failures != prev.recorded_failures
        ):
            new = _appended(prev.recorded_failures, state.recorded_failures)
            if new:
                self.recorded_failures.extend(new)
                self._detected(t, state.canary, new[0])
        if state.rollback is not None and state.rollback is not prev.rollback:
            self._rollback(t, state.rollback.reason, completed=False)
        if (
            state.phase == "live"
            and state.stable is not None
            and (prev.phase != "live" or prev.stable != state.stable)
        ):
            self.settled = "rolled-back" if came_back else "promoted"
            if state.stable == self.deployed_revision and self.live_at is None:
                self.live_at = t
        if self.keep_timeline:
            key = self._key(state)
            measured = self.measurements and isinstance(event, Measurement)
            verdicts = _verdicts(prev, state, event) if self.measurements else []
            if (
                key != self.last_entry
                or isinstance(event, Deploy | Command | SpecChanged)
                or measured
                or verdicts
            ):
                self.last_entry = key
                entry = self._entry(t, state, describe(event), decision.rejected)
                if isinstance(event, Measurement):
                    entry["measurement"] = _measurement(prev, event)
                entry["verdicts"] = verdicts
                self.timeline.append(entry)
        self.prev = state

    @staticmethod
    def _key(state: RolloutState) -> tuple[Any, ...]:
        return (
            state.phase,
            state.stable,
            state.canary,
            state.desired,
            state.degraded,
            state.rollout_id,
            state.weights,
            state.replicas,
            state.ready,
            state.step_index,
            state.pause_reason,
            state.pause_until,
        )

    @staticmethod
    def _entry(t: float, state: RolloutState, event: str, rejected: str | None) -> dict[str, Any]:
        return {
            "t": t,
            "state": state.phase,
            "rollout_id": state.rollout_id,
            "initiator": state.initiator,
            "stable": state.stable,
            "canary": state.canary,
            "desired": state.desired,
            "degraded": state.degraded,
            "weights": dict(state.weights),
            "replicas": dict(state.replicas),
            "ready": dict(state.ready),
            "step": state.step_index,
            "pause_reason": state.pause_reason,
            "pause_until": state.pause_until,
            "event": event,
            "rejected": rejected,
            "measurement": None,
            "verdicts": [],
        }

    def outcome(self, state: RolloutState, end: float, bad_requests: float, dropped: float) -> Outcome:
        phase = state.phase
        if phase == "live":
            result = self.settled or "unfinished"
        elif phase == "failed":
            result = "failed"
        elif phase == "paused":
            result = "paused"
        else:
            result = "unfinished"
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
            rollback_reason=self.rollback_reason if self.rolled_back else None,
            failed_revision=self.failed_revision,
            detected_at=self.detected_at,
            time_to_detect=self.time_to_detect,
            time_to_rollback=ttr,
            time_to_live=ttl,
            bad_requests=round(bad_requests, 3),
            dropped_requests=round(dropped, 3),
            false_rollback=self.false_rollback,
            ended_at=end,
            failure_reason=self.failure_reason,
            recorded_failures=list(self.recorded_failures),
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
    #: the detected failures' reasons, whatever the policy did with them (pause and promote policies too)
    failure_reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return finite({"schema": SCHEMA_VERSION, **asdict(self)})  # type: ignore[no-any-return]

    def to_json(self) -> str:
        return dumps(self.to_dict())


class Aggregator:
    """Folds run results one at a time: memory grows with three floats per run, never with timelines."""

    def __init__(self) -> None:
        self.runs = 0
        self.results: Counter[str] = Counter()
        self.final_states: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
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
        if o.failure_reason is not None:
            self.failures[reason_key(o.failure_reason)] += 1
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
            failure_reasons=dict(self.failures.most_common()),
        )


def aggregate(results: Iterable[RunResult]) -> Summary:
    agg = Aggregator()
    for r in results:
        agg.add(r)
    return agg.summary()
