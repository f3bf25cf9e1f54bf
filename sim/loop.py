"""The discrete-event loop: virtual time, the driver and the in-memory cluster.

Time never ticks: the loop jumps to the earliest of the next scripted action (a heapq of
``(time, sequence, event)``), the engine's next wake and the cluster's next change (a pod becoming ready
or crashing), so a two-hour rollout is a few hundred events. At each instant the world is observed first, then
the actions due are sent, each followed by everything it causes at that instant.

A run starts from one of three states: nothing deployed; a stable revision live (all or some of its pods
ready at t=0); or a rollout under way, which the loop reaches honestly by driving the engine before the
clock starts (:func:`warm_up`).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from ebbtide.adapters.driver import Driver
from ebbtide.adapters.memory import ClusterConfig, MemoryCluster
from ebbtide.core import engine
from ebbtide.core.engine import initial_state
from ebbtide.core.events import Command, Deploy, Event, SpecChanged, parse_event
from ebbtide.core.plan import Plan
from ebbtide.core.state import RolloutState
from ebbtide.sim.outcome import RunResult, Tracker
from ebbtide.sim.prefix import Prefix
from ebbtide.sim.quiet import quiet

ROLLOUT_PHASES = ("in-progress", "verifying", "paused")


class WarmUpError(ValueError):
    """The rollout under way at t=0 cannot be brought to the step the scenario asks for."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """Everything a run needs, built once per scenario and shared (pickled once) by all runs."""

    plan: Plan
    cluster: ClusterConfig
    #: the revision live when the run starts (None: nothing deployed)
    stable: str | None
    #: (time, sequence, event): the scripted actions
    actions: tuple[tuple[float, int, Event], ...]
    duration: float
    #: pods of the stable revision ready at t=0 (None: all)
    stable_ready: int | None = None
    #: a rollout under way at t=0: (revision, step)
    canary: tuple[str, int] | None = None
    #: keep every measurement and verification verdict in the timeline (with keep_timeline)
    measurements: bool = field(default=False)
    #: the engine state every run starts from (states are immutable: one serves all runs)
    initial: RolloutState = field(init=False, repr=False, compare=False)
    #: the deploy of the stable revision at t=0, one event for all runs (a shared prefix then matches it by
    #: identity, not by comparing two equal events)
    deploy_stable: Deploy | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "initial", initial_state(self.plan))
        deploy = Deploy(revision=self.stable) if self.stable is not None else None
        object.__setattr__(self, "deploy_stable", deploy)


def prepare(
    plan: Plan,
    cluster: ClusterConfig,
    stable: str | None,
    actions: list[tuple[float, str, str | None]],
    duration: float,
    *,
    stable_ready: int | None = None,
    canary: tuple[str, int] | None = None,
    spec_plans: dict[int, Plan] | None = None,
) -> Prepared:
    """Build a :class:`Prepared` from plain actions ``(at, action, revision)``; the plan of the i-th
    action, a ``specChange``, is ``spec_plans[i]``."""
    events: list[tuple[float, int, Event]] = []
    for seq, (at, action, revision) in enumerate(actions, start=1):
        event: Event
        if action == "deploy":
            assert revision is not None
            event = Deploy(revision=revision)
        elif action == "specChange":
            assert spec_plans is not None and (seq - 1) in spec_plans, "specChange needs its plan"
            event = SpecChanged(plan=spec_plans[seq - 1])
        else:
            event = parse_event({"kind": "command", "action": action, "revision": revision})
        events.append((at, seq, event))
    events.sort(key=lambda e: (e[0], e[1]))
    return Prepared(
        plan=plan,
        cluster=cluster,
        stable=stable,
        actions=tuple(events),
        duration=duration,
        stable_ready=stable_ready,
        canary=canary,
    )


def warm_up(driver: Driver, cluster: MemoryCluster, revision: str, step: int) -> None:
    """Bring a rollout of ``revision`` to plan step ``step`` before the clock starts (all at t=0).

    The engine gets the deploy, then, while the rollout is short of the step, its canary pods are made ready
    at once and ``promote`` moves it past pauses and verifications. Every decision is the engine's own:
    only time is skipped. Raises :class:`WarmUpError` when the rollout stops short of the step.
    """
    driver.send(Deploy(revision=revision), 0.0)
    for _ in range(4 * len(driver.state.plan.steps) + 8):
        state = driver.state
        if state.phase not in ROLLOUT_PHASES or state.canary != revision:
            raise WarmUpError(
                f"the rollout of {revision} is {state.phase} before it reached step {step}"
                + (f": {state.failure_reason}" if state.failure_reason else "")
            )
        if state.step_index >= step:
            return
        cluster.make_ready(revision, 0.0)
        driver.pump(0.0)
        state = driver.state
        if state.step_index >= step or state.phase not in ROLLOUT_PHASES:
            continue
        driver.send(Command(action="promote"), 0.0)
    raise WarmUpError(f"the rollout of {revision} does not reach step {step}")  # pragma: no cover


def begin(prepared: Prepared, cluster: MemoryCluster, driver: Driver, strict: bool = True) -> None:
    """Bring the cluster and the engine to the state the run starts from, at t=0.

    A rollout under way that stops short of its step raises :class:`WarmUpError` when ``strict``; otherwise
    (a run whose seed made the canary fail on the way) the run starts from wherever the engine stopped.
    """
    if prepared.stable is None or prepared.deploy_stable is None:
        return
    # the stable revision is live when the run starts, with the ready pods the scenario says
    driver.handle(prepared.deploy_stable, 0.0)
    cluster.make_ready(prepared.stable, 0.0, prepared.stable_ready)
    driver.pump(0.0)
    if prepared.canary is not None:
        try:
            warm_up(driver, cluster, *prepared.canary)
        except WarmUpError:
            if strict:
                raise


def check_start(prepared: Prepared) -> str | None:
    """Why the run cannot start as the scenario says (a rollout under way that never reaches its step)."""
    cluster = MemoryCluster(prepared.cluster, seed=0)
    try:
        begin(prepared, cluster, Driver(cluster, prepared.initial, record=False))
    except WarmUpError as exc:
        return str(exc)
    return None


def run_once(
    prepared: Prepared,
    index: int,
    seed: int,
    keep_timeline: bool = False,
    measurements: bool = False,
    prefix: Prefix | None = None,
) -> RunResult:
    """One seeded run of a scenario, from time 0 until ``duration`` or until the rollout settles.

    With ``keep_timeline`` the run keeps its timeline; with ``measurements`` too, the timeline has an entry
    for every measurement and every verification verdict. Runs of the same ``prepared`` that share a
    ``prefix`` share the engine decisions they have in common (:mod:`ebbtide.sim.prefix`).
    """
    cluster = MemoryCluster(prepared.cluster, seed=seed)

    def is_bad(revision: str, t: float) -> bool:
        return cluster.crash_looping(revision) or cluster.misbehaving(revision, t)

    def since(revision: str) -> float | None:
        if cluster.crash_looping(revision):
            return cluster.attempt_started(revision)
        return cluster.misbehave_since(revision)

    state = prepared.initial
    tracker = Tracker(state, keep_timeline, is_bad, since, measurements=measurements)
    step = quiet(prefix.step, prefix.answers()) if prefix is not None else quiet(engine.step)
    driver = Driver(cluster, state, record=False, step=step, on_decision=tracker.on_decision)
    heap = list(prepared.actions)  # sorted, hence a heap
    end = prepared.duration
    now = 0.0
    pop = heapq.heappop
    begin(prepared, cluster, driver, strict=False)
    if prepared.canary is not None:
        tracker.deployed(prepared.canary[0], now)
    tracker.start(driver.state, now)
    while True:
        t = cluster.next_change(now)  # driver.next_time(now), inline: the earlier of a change and the wake
        wake = driver.wake_at
        if wake is not None and (t is None or wake < t):
            t = wake
        if heap:
            ta = heap[0][0]
            if t is None or ta < t:
                t = ta
        elif t is None:
            break  # settled, and the world is quiet: nothing more can happen
        if t > end:
            break
        if t > now:
            now = t
        cluster.advance(now)
        driver.pump(now)
        while heap and heap[0][0] <= now:
            event = pop(heap)[2]
            if isinstance(event, Deploy):
                tracker.deployed(event.revision, now)
            retried = driver.state.desired
            decision = driver.send(event, now)
            if isinstance(event, Command) and event.action == "retry" and retried and not decision.rejected:
                tracker.deployed(retried, now)
    cluster.advance(end)
    outcome = tracker.outcome(driver.state, now, cluster.bad_requests, cluster.dropped_requests)
    notifications = [{"t": t, "event": n.event, "payload": n.payload} for t, n in cluster.notifications]
    rejected = [
        {"t": t, "event": ev.kind, "action": getattr(ev, "action", None), "reason": reason}
        for t, ev, reason in driver.rejections
    ]
    return RunResult(
        index=index,
        seed=seed,
        outcome=outcome,
        timeline=tracker.timeline,
        notifications=notifications,
        rejected=rejected,
        events=driver.events_handled,
    )
