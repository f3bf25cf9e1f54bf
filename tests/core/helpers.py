"""A tiny deterministic harness over ``ebbtide.core.step`` (no adapters).

- a fake cluster: a revision scaled up becomes ready ``ready_delay`` seconds later (all at once, or one
  replica every ``ready_delay`` seconds with ``gradual=True``); revisions in ``crashing`` never become
  ready; a scale-down is observed at once;
- measurements are answered at once by ``measure(revision, metric, now)``; return :data:`ERROR` for a
  provider error or :data:`SILENT` for no answer at all;
- ``run_until(t)`` delivers pending observations and measurements, and a Tick at every ``wake_at``, in
  time order, and records every decision.

    h = Harness(plan)
    h.deploy("v1"); h.settle()           # v1 goes live at once, its replicas become ready
    h.deploy("v2"); h.run_until(600)
    h.notified()                         # ["rollout-started", ..., "rollout-finished"]
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ebbtide.core import initial_state, step
from ebbtide.core.effects import Notify, ScaleRevision, SetTraffic, StartMeasurement
from ebbtide.core.events import Command, Deploy, Event, Measurement, ReplicasObserved, Tick
from ebbtide.core.plan import MetricPlan, Plan, StepPlan, TemplatePlan
from ebbtide.core.state import Decision, RolloutState

ERROR = object()  #: measure() returns this for a provider error
SILENT = object()  #: measure() returns this for a measurement that never comes back

GOOD = 0.01
BAD = 0.5
ERROR_RATE = MetricPlan(name="error-rate", interval=10.0, count=3, success_condition="result < 0.05")


def template(*metrics: MetricPlan, name: str = "t") -> TemplatePlan:
    return TemplatePlan(name=name, metrics=metrics or (ERROR_RATE,))


def weight(w: int) -> StepPlan:
    return StepPlan(kind="setWeight", weight=w)


def pause(seconds: float | None = None) -> StepPlan:
    return StepPlan(kind="pause", duration=seconds)


def verify(*names: str) -> StepPlan:
    return StepPlan(kind="verification", templates=names or ("t",))


def canary_plan(*steps: StepPlan, **kw: Any) -> Plan:
    """A canary plan (default: 20% -> verify -> 50% -> pause 60 -> 80% -> verify -> 100%) over template t."""
    steps = steps or (weight(20), verify(), weight(50), pause(60), weight(80), verify(), weight(100))
    kw.setdefault("templates", {"t": template()})
    kw.setdefault("replicas", 4)
    return Plan(steps=steps, **kw)


def by_revision(bad: set[str] | frozenset[str] = frozenset({"v2"})) -> Callable[[str, str, float], Any]:
    """Bad revisions report an error rate of 0.5, the others 0.01."""
    return lambda rev, metric, now: BAD if rev in bad else GOOD


@dataclass
class Record:
    t: float
    event: Event
    decision: Decision


@dataclass
class Harness:
    plan: Plan
    measure: Callable[[str, str, float], Any] = field(default=lambda rev, metric, now: GOOD)
    ready_delay: float = 5.0
    gradual: bool = False
    crashing: set[str] = field(default_factory=set)
    now: float = 0.0
    state: RolloutState = field(init=False)
    log: list[Record] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = initial_state(self.plan)
        self._queue: list[tuple[float, int, Event, int | None]] = []
        self._seq = 0
        self._wake: float | None = None
        self._desired: dict[str, int] = {}
        self._ready: dict[str, int] = {}
        self._gen: dict[str, int] = {}

    # ----- driving -------------------------------------------------------------------------------
    def send(self, event: Event) -> Decision:
        """Step the engine now with ``event`` and let the fake world react to the effects."""
        d = step(self.state, event, self.now)
        self.log.append(Record(self.now, event, d))
        self.state = d.state
        self._wake = d.wake_at
        for e in d.effects:
            if isinstance(e, ScaleRevision):
                self._scale(e.revision, e.replicas)
            elif isinstance(e, StartMeasurement):
                value = self.measure(e.revision, e.metric.name, self.now)
                if value is SILENT:
                    continue
                if value is ERROR:
                    m = Measurement(verification=e.verification, metric=e.metric.name, error="provider error")
                else:
                    m = Measurement(verification=e.verification, metric=e.metric.name, value=value)
                self._at(self.now, m)
        return d

    def deploy(self, revision: str, plan: Plan | None = None) -> Decision:
        return self.send(Deploy(revision=revision, plan=plan))

    def command(self, action: str, revision: str | None = None) -> Decision:
        return self.send(Command(action=action, revision=revision))  # type: ignore[arg-type]

    def run_until(self, t: float) -> RolloutState:
        """Deliver everything due up to time ``t`` (observations, measurements, wake-up Ticks)."""
        for _ in range(100_000):
            q = self._queue[0][0] if self._queue else None
            due = [x for x in (q, self._wake) if x is not None]
            nxt = min(due) if due else None
            if nxt is None or nxt > t:
                break
            self.now = max(self.now, nxt)
            if q is not None and q <= nxt:
                _, _, ev, gen = heapq.heappop(self._queue)
                if isinstance(ev, ReplicasObserved):
                    if gen != self._gen.get(ev.revision):
                        continue  # planned before a newer scale of that revision
                    self._ready[ev.revision] = ev.ready
                self.send(ev)
            else:
                self._wake = None
                self.send(Tick())
        else:  # pragma: no cover
            raise AssertionError("run_until did not settle")
        self.now = max(self.now, t)
        return self.state

    def run_for(self, seconds: float) -> RolloutState:
        return self.run_until(self.now + seconds)

    def settle(self) -> RolloutState:
        """Run until nothing is pending before the next timer (replicas ready, measurements answered)."""
        return self.run_until(self.now + self.ready_delay * max(1, self.plan.replicas) + 0.5)

    def live(self, revision: str = "v1") -> Harness:
        """Deploy ``revision`` as the first revision and let its replicas become ready."""
        self.deploy(revision)
        self.run_for(self.ready_delay * max(1, self.plan.replicas) + 1)
        return self

    # ----- the fake cluster ----------------------------------------------------------------------
    def _at(self, t: float, ev: Event, gen: int | None = None) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, self._seq, ev, gen))

    def _scale(self, rev: str, n: int) -> None:
        """Scaling a revision re-plans its readiness; observations planned before are dropped."""
        gen = self._gen[rev] = self._gen.get(rev, 0) + 1
        have = min(self._ready.get(rev, 0), n)
        self._desired[rev] = n
        self._ready[rev] = have
        self._at(self.now, self._obs(rev, have), gen)
        if n <= have or rev in self.crashing:
            return
        if self.gradual:
            for i in range(1, n - have + 1):
                self._at(self.now + i * self.ready_delay, self._obs(rev, have + i), gen)
        else:
            self._at(self.now + self.ready_delay, self._obs(rev, n), gen)

    def _obs(self, rev: str, ready: int) -> ReplicasObserved:
        return ReplicasObserved(revision=rev, desired=self._desired[rev], ready=ready, available=ready)

    # ----- what happened -------------------------------------------------------------------------
    def notifications(self, since: float = -1.0) -> list[tuple[float, str, dict[str, Any]]]:
        return [
            (r.t, e.event, e.payload)
            for r in self.log
            if r.t >= since
            for e in r.decision.effects
            if isinstance(e, Notify)
        ]

    def notified(self, since: float = -1.0) -> list[str]:
        return [name for _, name, _ in self.notifications(since)]

    def payload(self, name: str) -> dict[str, Any]:
        """The payload of the last notification called ``name``."""
        found = [p for _, n, p in self.notifications() if n == name]
        assert found, f"no {name} notification in {self.notified()}"
        return found[-1]

    def weights(self, since: float = -1.0) -> list[dict[str, int]]:
        """Every traffic split sent to the router, in order."""
        return [
            dict(e.weights)
            for r in self.log
            if r.t >= since
            for e in r.decision.effects
            if isinstance(e, SetTraffic)
        ]

    def weights_from(self, name: str) -> list[dict[str, int]]:
        """Every traffic split sent from the decision that first notified ``name`` (inclusive) on."""
        first = next(
            i
            for i, r in enumerate(self.log)
            if any(isinstance(e, Notify) and e.event == name for e in r.decision.effects)
        )
        return [
            dict(e.weights) for r in self.log[first:] for e in r.decision.effects if isinstance(e, SetTraffic)
        ]

    def phases(self) -> list[str]:
        """The phases the rollout went through, consecutive duplicates removed."""
        out: list[str] = []
        for r in self.log:
            p = r.decision.state.phase
            if not out or out[-1] != p:
                out.append(p)
        return out

    def at(self, t: float) -> RolloutState:
        """The state as it was at time ``t`` (after every event delivered at or before ``t``)."""
        found = [r.decision.state for r in self.log if r.t <= t]
        return found[-1] if found else initial_state(self.plan)
