"""The discrete-event loop: virtual time, the driver and the in-memory cluster.

Time never ticks: the loop jumps to the earliest of the next scripted action (a heapq of
``(time, sequence, event)``), the engine's next wake and the cluster's next change (a pod becoming ready
or crashing), so a two-hour rollout is a few hundred events. At each instant the world is observed first, then
the actions due are sent, each followed by everything it causes at that instant.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from ebbtide.adapters.driver import Driver
from ebbtide.adapters.memory import ClusterConfig, MemoryCluster
from ebbtide.core.engine import initial_state
from ebbtide.core.events import Command, Deploy, Event
from ebbtide.core.plan import Plan
from ebbtide.sim.outcome import RunResult, Tracker

SETTLED = ("live", "failed")


@dataclass(frozen=True, slots=True)
class Prepared:
    """Everything a run needs, built once per scenario and shared (pickled once) by all runs."""

    plan: Plan
    cluster: ClusterConfig
    #: the revision live (and ready) when the run starts
    stable: str
    #: (time, sequence, event): the scripted actions
    actions: tuple[tuple[float, int, Event], ...]
    duration: float
    crash_loop: frozenset[str]


def prepare(
    plan: Plan,
    cluster: ClusterConfig,
    stable: str,
    actions: list[tuple[float, str, str | None]],
    duration: float,
) -> Prepared:
    """Build a :class:`Prepared` from plain actions ``(at, action, revision)``."""
    events: list[tuple[float, int, Event]] = []
    for seq, (at, action, revision) in enumerate(actions, start=1):
        event: Event
        if action == "deploy":
            assert revision is not None
            event = Deploy(revision=revision)
        else:
            event = Command(action=action, revision=revision)
        events.append((at, seq, event))
    events.sort(key=lambda e: (e[0], e[1]))
    crash = frozenset(r for r, b in cluster.revisions.items() if b.crash_loop)
    return Prepared(
        plan=plan, cluster=cluster, stable=stable, actions=tuple(events), duration=duration, crash_loop=crash
    )


def run_once(prepared: Prepared, index: int, seed: int, keep_timeline: bool = False) -> RunResult:
    """One seeded run of a scenario, from time 0 until ``duration`` or until the rollout settles."""
    cluster = MemoryCluster(prepared.cluster, seed=seed)
    crash = prepared.crash_loop

    def is_bad(revision: str, t: float) -> bool:
        return revision in crash or cluster.misbehaving(revision, t)

    def since(revision: str) -> float | None:
        if revision in crash:
            rs = cluster._sets.get(revision)
            return rs.created_at if rs is not None else None
        return cluster.misbehave_since(revision)

    state = initial_state(prepared.plan)
    tracker = Tracker(state, keep_timeline, is_bad, since)
    driver = Driver(cluster, state, record=False, on_decision=tracker)
    heap = list(prepared.actions)  # sorted, hence a heap
    end = prepared.duration
    now = 0.0
    pop = heapq.heappop
    # the stable revision is live and ready when the run starts
    driver.handle(Deploy(revision=prepared.stable), now)
    cluster.make_ready(prepared.stable, now)
    driver.pump(now)
    while True:
        t = driver.next_time(now)
        if heap:
            ta = heap[0][0]
            if t is None or ta < t:
                t = ta
        elif t is None or (driver.state.phase in SETTLED and driver.wake_at is None):
            break
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
            driver.send(event, now)
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
