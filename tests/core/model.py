"""The contract test's own model of the world, kept apart from the engine's state.

The stateful contract (tests/core/test_contract.py) judges every decision against what this model knows,
never against the state under test:

- :class:`Cluster`: the replicas the engine's ScaleRevision effects asked for, and the ready pods the test
  itself reported (a scale-down kills pods at once; a scale-up adds pods that are not ready until the test
  says so), hence each revision's ready capacity;
- :class:`Verifications`: every verification run the engine started, with per-metric counters folded from
  the outcomes the test sent, re-deriving from the documented Argo AnalysisRun rules when a measurement is
  due (initialDelay, interval, error retry, timeout), when a limit trips (strictly above failureLimit /
  inconclusiveLimit / consecutiveErrorLimit) and which verdict a run reaches (dry-run metrics never count);
- :class:`Lives`: the revisions in the order they reached live, from the engine's notifications, hence the
  rollback target ("the last revision that reached live") and the fast-track window.

The rules here are written from docs/semantics.md and the DESIGN, not copied from the engine; only the two
timing constants of the verification module are imported (they are documented parameters, not logic).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ebbtide.core.plan import MetricPlan, TemplatePlan
from ebbtide.core.verification import ERROR_RETRY_INTERVAL, MEASUREMENT_TIMEOUT

BAD_VERDICTS = ("Failed", "Error")


# ----- the cluster ------------------------------------------------------------------------------------


@dataclass
class Cluster:
    asked: dict[str, int] = field(default_factory=dict)
    #: ready pods as they are: a scale-down removes pods at once, new pods are not ready until observed
    ready: dict[str, int] = field(default_factory=dict)
    #: ready pods as last reported, at most the pods asked for since (what the engine can know: a scale-down
    #: below the last report leaves at most that many ready)
    reported: dict[str, int] = field(default_factory=dict)

    def scaled(self, revision: str, replicas: int) -> None:
        self.asked[revision] = replicas
        self.ready[revision] = min(self.ready.get(revision, 0), replicas)
        self.reported[revision] = min(self.reported.get(revision, 0), replicas)

    def observed(self, revision: str, ready: int) -> None:
        assert ready <= self.asked.get(revision, 0), "the test reports no more pods than were asked for"
        self.ready[revision] = self.reported[revision] = ready

    def capacity(self, revision: str, replicas: int, known: bool = True) -> int:
        """The traffic share (percent) the revision's ready pods can carry: as last reported (``known``),
        or as they are (a scale-down since the last report already took pods away)."""
        pods = self.reported if known else self.ready
        return min(100, (100 * pods.get(revision, 0)) // max(1, replicas))


# ----- verification -----------------------------------------------------------------------------------


def effective_count(m: MetricPlan) -> int | None:
    """Measurements a metric takes: its count; one with neither count nor interval; None: until the end."""
    if m.count is not None:
        return m.count
    return 1 if m.interval is None else None


@dataclass
class MetricModel:
    plan: MetricPlan
    due: float | None
    in_flight_since: float | None = None
    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    consecutive_errors: int = 0

    @property
    def phase(self) -> str:
        m = self.plan
        if self.failed > m.failure_limit:
            return "Failed"
        if self.consecutive_errors > m.consecutive_error_limit:
            return "Error"
        if self.inconclusive > m.inconclusive_limit:
            return "Inconclusive"
        want = effective_count(m)
        if want is not None and self.count >= want:
            return "Successful"
        return "Running"

    def record(self, outcome: str, now: float) -> None:
        """Fold one result in: "successful" | "failed" | "inconclusive" | "error"."""
        if outcome == "error":
            self.consecutive_errors += 1
        else:
            self.consecutive_errors = 0
            self.count += 1
            self.successful += outcome == "successful"
            self.failed += outcome == "failed"
            self.inconclusive += outcome == "inconclusive"
        self.in_flight_since = None
        if self.phase != "Running":
            self.due = None
        elif outcome == "error":
            self.due = now + (self.plan.interval if self.plan.interval is not None else ERROR_RETRY_INTERVAL)
        else:
            self.due = now + (self.plan.interval or 0.0)

    def timeout_at(self) -> float | None:
        if self.in_flight_since is None:
            return None
        if self.plan.timeout is not None:  # an external verification waits for its own timeout
            return self.in_flight_since + self.plan.timeout
        return self.in_flight_since + max(MEASUREMENT_TIMEOUT, self.plan.interval or 0.0)


@dataclass
class RunModel:
    id: str
    template: TemplatePlan
    background: bool
    started_at: float
    metrics: dict[str, MetricModel]
    #: the engine stopped it (StopVerification) or it reached a verdict
    over: bool = False

    def verdict(self) -> str:
        """Worst non-dry-run metric; Running while any metric (dry-run too) still has to measure; a failed,
        errored or inconclusive metric ends the run."""
        worst, pending = "Successful", False
        rank = {"Successful": 0, "Inconclusive": 2, "Error": 3, "Failed": 4}
        for m in self.metrics.values():
            phase = m.phase
            if m.plan.dry_run and phase != "Running":
                continue  # measured and reported (the run waits for it), never part of the verdict
            if phase == "Running":
                # a metric measuring until its phase ends does not hold a phase run back once it passed
                if not (effective_count(m.plan) is None and m.successful > 0 and not self.background):
                    pending = True
            elif rank[phase] > rank[worst]:
                worst = phase
        if worst != "Successful":
            return worst  # Failed, Error and Inconclusive end the run at once (siblings stop), as in Argo
        return "Running" if pending else worst


@dataclass
class Verifications:
    runs: dict[str, RunModel] = field(default_factory=dict)

    def start(self, run_id: str, template: TemplatePlan, background: bool, now: float) -> None:
        metrics = {m.name: MetricModel(plan=m, due=now + m.initial_delay) for m in template.metrics}
        self.runs[run_id] = RunModel(run_id, template, background, now, metrics)

    def active(self) -> list[RunModel]:
        return [r for r in self.runs.values() if not r.over]

    def in_flight(self) -> list[tuple[RunModel, MetricModel]]:
        return [(r, m) for r in self.active() for m in r.metrics.values() if m.in_flight_since is not None]

    def result(self, run_id: str, metric: str, outcome: str, now: float) -> RunModel | None:
        """A result the test sends; returns the run when it counted (the run is active and waited for it)."""
        run = self.runs.get(run_id)
        if run is None or run.over:
            return None
        m = run.metrics.get(metric)
        if m is None or m.in_flight_since is None or m.phase != "Running":
            return None
        m.record(outcome, now)
        return run

    def expire(self, now: float) -> list[RunModel]:
        """Measurements not back by their timeout count as errors (an external verification's: as its
        fallback says, failed or successful); returns the runs touched."""
        touched = []
        for run in self.active():
            for m in run.metrics.values():
                t = m.timeout_at()
                if t is not None and now >= t and m.phase == "Running":
                    m.record(m.plan.on_timeout, now)
                    touched.append(run)
        return touched

    def due_now(self, now: float) -> list[tuple[RunModel, MetricModel]]:
        """Metrics of active runs that wait for a measurement due at or before ``now``."""
        return [
            (r, m)
            for r in self.active()
            if r.verdict() == "Running"
            for m in r.metrics.values()
            if m.phase == "Running" and m.in_flight_since is None and m.due is not None and m.due <= now
        ]


# ----- revisions that reached live --------------------------------------------------------------------


@dataclass
class Lives:
    """The revision history as the notifications tell it: a record per revision rolled out, moved to the
    end when it reaches live; bounded by revisionHistoryLimit (the oldest records not in use go first)."""

    records: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def order(self) -> list[str]:
        """Revisions that reached live, in the order they last did."""
        return [r for r, live in self.records if live]

    def started(self, revision: str) -> None:
        if all(r != revision for r, _ in self.records):
            self.records.append((revision, False))

    def reached(self, revision: str) -> None:
        self.records = [(r, live) for r, live in self.records if r != revision] + [(revision, True)]

    def trim(self, limit: int, keep: set[str | None]) -> None:
        i = 0
        while len(self.records) > max(1, limit) and i < len(self.records):
            if self.records[i][0] in keep:
                i += 1
            else:
                del self.records[i]

    def known(self, revision: str) -> bool:
        return any(r == revision for r, _ in self.records)

    def last_excluding(self, revision: str | None) -> str | None:
        for r in reversed(self.order):
            if r != revision:
                return r
        return None

    def window(self, stable: str | None, n: int) -> list[str]:
        """The previous ``n`` successful revisions before the stable one (rollbackWindow)."""
        return [r for r in reversed(self.order) if r != stable][:n]
