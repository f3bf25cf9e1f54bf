"""The engine's hot path: the decisions :func:`ebbtide.core.step` takes without running the whole engine.

Most events of a rollout change almost nothing. In a healthy canary about half are measurements that only
move one metric's counters, and most of the rest are ticks that only ask for the next measurements. The full
engine (:func:`ebbtide.core.engine.full_step`) handles every event the same way: copy the state into a
working record, apply the event, run the advance loop to its fixpoint, recompute traffic and replicas and
diff them into effects, freeze the result. This module decides those common events directly on the frozen
state, and gives up (returns None, so the full engine decides) whenever anything else could happen.

Why that is exact. Every decision of the full engine is a fixpoint: a Tick at the same ``now`` changes
nothing. Between decisions only time moves, and time acts only through the state's timers: a timed pause
ending, a measurement falling due, an in-flight measurement timing out, a delayed scale-down, the progress
deadline. So when no timer is due at ``now``:

- a **Tick** or an observation that changes no ready count leaves the state as it is (no effects);
- a Tick (or such an observation) when the only timers due are measurements that are not in flight asks
  for them: the metrics go in flight with their timeout, StartMeasurement effects go out, and nothing else
  moves (the advance loop reads no measurement schedule, traffic and replicas do not depend on it);
- a **Measurement** that the engine is waiting for updates its metric's counters (the verification rules in
  :func:`ebbtide.core.verification.record`). If its run's verdict and message stay what they were and the
  metric's next measurement is not due yet, nothing else can move either: no run ends, so no phase
  changes, no policy acts and no verification starts or stops; traffic and replicas do not read counters.

Anything else (a result that ends a run, a measurement due at once, a timer due, a command, a deploy, a
spec change, a late or unknown measurement) goes to the full engine. A hypothesis property
(tests/core/test_hotpath.py) compares every short-path decision with the full engine's on generated event
streams: state, persisted JSON, effects, ``wake_at`` and rejection all equal; the golden decisions pin both.
"""

from __future__ import annotations

from ebbtide.core import verification as ver
from ebbtide.core.effects import Effect, StartMeasurement
from ebbtide.core.events import Measurement, ReplicasObserved, Tick
from ebbtide.core.plan import Plan, TemplatePlan
from ebbtide.core.state import Decision, PauseReason, Phase, RolloutState, VerificationRun, evolve

__all__ = ["issue_measurements", "short_step", "wake_at"]

ROLLOUT_PHASES: frozenset[Phase] = frozenset({"in-progress", "verifying", "paused"})


def short_step(state: RolloutState, event: object, now: float) -> Decision | None:
    """The decision for ``event`` at ``now`` when the short path is exact, else None (``now`` already
    clamped to ``state.updated_at`` and the inputs checked)."""
    cls = type(event)
    if cls is Measurement:
        return _measured(state, event, now)  # type: ignore[arg-type]
    if cls is Tick or (cls is ReplicasObserved and _observation_is_noop(state, event)):  # type: ignore[arg-type]
        return _time_passed(state, now)
    return None


# ----- ticks and observations that change nothing -----------------------------------------------------------
def _observation_is_noop(state: RolloutState, ev: ReplicasObserved) -> bool:
    """The observation changes no ready count the engine keeps (or is of a revision it does not track)."""
    known = ev.revision in state.replicas or ev.revision in state.weights or ev.revision in state.ready
    return not known or state.ready.get(ev.revision) == ev.ready


def _time_passed(state: RolloutState, now: float) -> Decision | None:
    """Time moved to ``now`` and nothing else happened: issue the measurements due, if no other timer is."""
    due = _next_timer(state)
    if due is not None and due <= now:
        return None  # a pause ends, a measurement times out, a scale-down or the deadline is due
    runs, effects = issue_measurements(
        state.verifications, state.plan, state.phase, state.pause_reason, state.canary, state.stable, now
    )
    if runs is None:
        return Decision(state=state, effects=(), wake_at=wake_at(state, now))
    new = evolve(state, verifications=runs, updated_at=now)
    return Decision(state=new, effects=effects, wake_at=wake_at(new, now))


def _next_timer(state: RolloutState) -> float | None:
    """The earliest timer other than a measurement waiting to be asked for (past or future), or None."""
    due: float | None = None
    if state.pause_until is not None and state.phase == "paused":
        due = state.pause_until
    for run in state.verifications:
        if run.phase in ver.TERMINAL:
            continue
        for m in run.metrics:
            t = m.next_at
            if t is not None and m.in_flight and m.phase not in ver.TERMINAL and (due is None or t < due):
                due = t
    for t in state.scale_downs.values():
        if due is None or t < due:
            due = t
    if state.waiting_since is not None:
        t = state.waiting_since + state.plan.progress_deadline
        if due is None or t < due:
            due = t
    return due


def issue_measurements(
    runs: tuple[VerificationRun, ...],
    plan: Plan,
    phase: Phase,
    pause_reason: PauseReason | None,
    canary: str | None,
    stable: str | None,
    now: float,
) -> tuple[tuple[VerificationRun, ...] | None, tuple[Effect, ...]]:
    """Ask for every measurement due at ``now``: the runs with those metrics in flight (None when nothing
    was due) and the StartMeasurement effects, in the order of the runs and their metrics. A run paused by
    hand measures nothing (its background runs go on); outside a rollout nothing is measured."""
    if phase not in ROLLOUT_PHASES or canary is None:
        return None, ()
    out: list[VerificationRun] | None = None  # copied on the first run that changes
    effects: list[Effect] = []
    for i, run in enumerate(runs):
        if run.phase in ver.TERMINAL or not _measurement_due(run, now):
            continue
        if phase == "paused" and not run.background and pause_reason == "manual":
            continue
        template = plan.templates.get(run.template)
        if template is None:
            continue
        metrics = list(run.metrics)
        for j, (mp, st) in enumerate(zip(template.metrics, metrics, strict=True)):
            if st.in_flight or st.next_at is None or st.phase in ver.TERMINAL or st.next_at > now:
                continue
            timeout = now + ver.in_flight_timeout(mp)
            metrics[j] = evolve(st, in_flight=True, next_at=timeout)
            effects.append(
                StartMeasurement(
                    verification=run.id, template=run.template, metric=mp, revision=canary, stable=stable
                )
            )
        if out is None:
            out = list(runs)
        out[i] = evolve(run, metrics=tuple(metrics))
    return (None if out is None else tuple(out)), tuple(effects)


def _measurement_due(run: VerificationRun, now: float) -> bool:
    """Whether a metric of a run waits for a measurement that is due."""
    for st in run.metrics:
        if not st.in_flight and st.next_at is not None and st.next_at <= now and st.phase not in ver.TERMINAL:
            return True
    return False


# ----- measurements that only move a counter ----------------------------------------------------------------
def _measured(state: RolloutState, ev: Measurement, now: float) -> Decision | None:
    due = _next_due(state)
    if due is not None and due <= now:
        return None  # some timer is due: the full engine runs it
    runs = state.verifications
    i = _run_index(runs, ev.verification)
    if i is None:
        return None  # an unknown run (stopped and dropped): the engine ignores it
    run = runs[i]
    template = state.plan.templates.get(run.template)
    if run.phase in ver.TERMINAL or template is None:
        return None
    j = _metric_index(template, ev.metric)
    if j is None or len(run.metrics) != len(template.metrics):
        return None
    mp, st = template.metrics[j], run.metrics[j]
    if st.phase in ver.TERMINAL or not st.in_flight:
        return None  # a late or duplicate result
    recorded = ver.record(mp, st, ev.value, ev.error, now)
    if recorded.next_at is not None and recorded.next_at <= now:
        return None  # the next measurement is due at once
    changed = list(run.metrics)
    changed[j] = recorded
    metrics = tuple(changed)
    if ver.verdict(template, metrics, run.background, run.dry_run) != (run.phase, run.message):
        return None  # the run reaches a verdict (or its message changes): the engine acts on it
    new_runs = list(runs)
    new_runs[i] = evolve(run, metrics=metrics)
    new = evolve(state, verifications=tuple(new_runs), updated_at=now)
    return Decision(state=new, effects=(), wake_at=wake_at(new, now))


def _run_index(runs: tuple[VerificationRun, ...], run_id: str) -> int | None:
    for i, run in enumerate(runs):
        if run.id == run_id:
            return i
    return None


def _metric_index(template: TemplatePlan, name: str) -> int | None:
    for j, mp in enumerate(template.metrics):
        if mp.name == name:
            return j
    return None


# ----- timers -----------------------------------------------------------------------------------------------
def _next_due(state: RolloutState) -> float | None:
    """The earliest time anything is scheduled (past or future), or None."""
    due = _next_timer(state)
    for run in state.verifications:
        if run.phase in ver.TERMINAL:
            continue
        for m in run.metrics:
            t = m.next_at
            if t is not None and not m.in_flight and m.phase not in ver.TERMINAL and (due is None or t < due):
                due = t
    return due


def wake_at(state: RolloutState, now: float) -> float | None:
    """The next time the engine needs a Tick, or None when nothing is scheduled."""
    # the earliest scheduled time after `now` (one pass, no intermediate list)
    best: float | None = None
    if state.pause_until is not None and state.phase == "paused" and state.pause_until > now:
        best = state.pause_until
    for run in state.verifications:
        if run.phase in ver.TERMINAL:
            continue
        for m in run.metrics:
            t = m.next_at
            if t is not None and t > now and (best is None or t < best) and m.phase not in ver.TERMINAL:
                best = t
    for t in state.scale_downs.values():
        if t > now and (best is None or t < best):
            best = t
    if state.waiting_since is not None:
        t = state.waiting_since + state.plan.progress_deadline
        if t > now and (best is None or t < best):
            best = t
    return best
