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
spec change, a late or unknown measurement) goes to the full engine. A result the engine is waiting for is
folded into its metric's counters first whatever happens next, so the short path hands the full engine
the state with the result folded in and the full engine goes on from there as at a Tick (its own first
act on a Measurement is that very fold): the result is not folded twice. Nor is it judged twice: when the
short path stops because the result changes its run's verdict, it has just computed that verdict, and hands
it over with the folded runs (:class:`Judged`); the full engine records it as its judge would and acts on
it (:func:`ebbtide.core.engine.judged_step`), starting from the state the result came to with those runs
(the state with the result folded in would be one more copy of every field, and differs from it only in
the runs and ``updated_at``). A hypothesis property
(tests/core/test_hotpath.py) compares every short-path decision with the full engine's on generated event
streams: state, persisted JSON, effects, ``wake_at`` and rejection all equal; the golden decisions pin both.

What keeps the short path cheap (docs/performance.md has the figures):

- **One pass over the timers** (:func:`_timers`) answers all three questions a short decision asks: is a
  timer other than a measurement to ask for due (then the full engine runs), is a measurement due to be
  asked for, and what is the earliest timer after ``now``. The last one is the decision's ``wake_at``: the
  short path changes only the timers it sets itself (a metric's next measurement, the timeout of one put in
  flight, all after ``now``), so the earliest of the others, taken before, and the ones it set give it.
- **The verdict without judging every metric.** A running run carries the verdict of its metrics: every
  decision judges the runs it changes (the full engine in its advance loop, this module by refusing any
  result that would change the verdict). A result that leaves its metric Running, when that metric still
  holds the run back whatever its counters (it has a count to reach, or the run is a background one),
  changes neither the worst metric nor whether one is pending, so the run stays Running with no message
  (:func:`_still_running`); otherwise :func:`ebbtide.core.verification.verdict` judges the run again.
- **Direct copies**: a metric put in flight, a run with new metrics and a state with new runs are built by
  copiers generated for those fields (:func:`ebbtide.core.state.replacer`), not by the generic ``evolve``;
  a StartMeasurement by a builder generated for its fields (:func:`ebbtide.core.state.builder`), and a
  Decision positionally: keyword construction of a slotted record costs twice as much.
- **Nothing looked up twice.** A tick that asks for measurements takes the earliest timeout it sets from
  :func:`_issue` as it sets them (the timers before it are known from the one pass), and a measurement's
  run and metric are found once, in the loops that check they are known.
"""

from __future__ import annotations

from ebbtide.core import verification as ver
from ebbtide.core.effects import Effect, StartMeasurement
from ebbtide.core.events import Measurement, ReplicasObserved, Tick
from ebbtide.core.plan import MetricPlan, Plan
from ebbtide.core.state import (
    Decision,
    MetricStatus,
    PauseReason,
    Phase,
    RolloutState,
    VerdictPhase,
    VerificationRun,
    builder,
    replacer,
)

__all__ = ["Judged", "issue_measurements", "short_step", "wake_at"]

ROLLOUT_PHASES: frozenset[Phase] = frozenset({"in-progress", "verifying", "paused"})
_TERMINAL = ver.TERMINAL

# the hot path's copies: one fixed set of fields each, no keyword dictionary (see state.replacer)
_in_flight = replacer(MetricStatus, "in_flight", "next_at")
_with_metrics = replacer(VerificationRun, "metrics")
_with_runs = replacer(RolloutState, "verifications", "updated_at")
_start = builder(StartMeasurement, "verification", "template", "metric", "revision", "stable")


class Judged:
    """A measurement result that changes its run's verdict, folded in and judged: ``runs`` are the
    verifications of ``origin`` (the state the result came to) with the result folded in, and run ``index``
    of them has the verdict ``phase`` and ``message`` (those of
    :func:`ebbtide.core.verification.run_verdict`; the run itself still carries its old ones). No timer
    other than the run's next measurements is due at ``now``; every other running run carries its verdict.
    The full engine goes on from ``origin`` with ``runs`` (:func:`ebbtide.core.engine.judged_step`): the
    state with the result folded in, :attr:`state`, is built only when asked for.
    """

    __slots__ = ("index", "message", "now", "origin", "phase", "runs")

    def __init__(
        self,
        origin: RolloutState,
        runs: tuple[VerificationRun, ...],
        now: float,
        index: int,
        phase: VerdictPhase,
        message: str | None,
    ) -> None:
        self.origin = origin
        self.runs = runs
        self.now = now
        self.index = index
        self.phase = phase
        self.message = message

    @property
    def state(self) -> RolloutState:
        """The state with the result folded in (what :func:`short_step` hands over in the other cases)."""
        return _folded(self.origin, self.runs, self.now)


def _folded(state: RolloutState, runs: tuple[VerificationRun, ...], now: float) -> RolloutState:
    """``state`` with these runs, changed at ``now``."""
    folded: RolloutState = _with_runs(state, runs, now)
    return folded


def short_step(state: RolloutState, event: object, now: float) -> Decision | Judged | RolloutState | None:
    """The decision for ``event`` at ``now`` when the short path is exact; else the state with a
    measurement result folded in, when the full engine only has to go on from there as at a Tick (see
    "Measurements" above), with the run's new verdict when the result changes it (:class:`Judged`); else
    None: the full engine takes the event (``now`` already clamped to ``state.updated_at`` and the inputs
    checked)."""
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
    due, asks, wake = _timers(state, now, None)
    if due:
        return None  # a pause ends, a measurement times out, a scale-down or the deadline is due
    if asks:
        runs, effects, timeout = _issue(
            state.verifications, state.plan, state.phase, state.pause_reason, state.canary, state.stable, now
        )
        if runs is not None:  # (a paused rollout asks for nothing)
            # the measurements just asked for time out after `now`: the only new timers
            if timeout is not None and (wake is None or timeout < wake):
                wake = timeout
            return Decision(_with_runs(state, runs, now), effects, wake)
    return Decision(state, (), wake)


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
    out, effects, _ = _issue(runs, plan, phase, pause_reason, canary, stable, now)
    return out, effects


def _issue(
    runs: tuple[VerificationRun, ...],
    plan: Plan,
    phase: Phase,
    pause_reason: PauseReason | None,
    canary: str | None,
    stable: str | None,
    now: float,
) -> tuple[tuple[VerificationRun, ...] | None, tuple[Effect, ...], float | None]:
    """:func:`issue_measurements`, and the earliest timeout it set (None when it set none)."""
    if phase not in ROLLOUT_PHASES or canary is None:
        return None, (), None
    by_hand = phase == "paused" and pause_reason == "manual"
    out: list[VerificationRun] | None = None  # copied on the first run that changes
    effects: list[Effect] = []
    earliest: float | None = None
    for i, run in enumerate(runs):
        if run.phase in _TERMINAL or (by_hand and not run.background) or not _measurement_due(run, now):
            continue
        template = plan.templates.get(run.template)
        if template is None:
            continue
        plans, metrics = template.metrics, list(run.metrics)
        if len(plans) != len(metrics):  # (zip's strict check, without its keyword: ~1,500 instructions)
            raise ValueError(f"run {run.id}: its metrics do not match template {run.template!r}")
        for j, mp in enumerate(plans):
            st = metrics[j]
            at = st.next_at
            if at is None or at > now or st.in_flight or st.phase in _TERMINAL:
                continue
            timeout = now + ver.in_flight_timeout(mp)
            if earliest is None or timeout < earliest:
                earliest = timeout
            metrics[j] = _in_flight(st, True, timeout)
            effects.append(_start(run.id, run.template, mp, canary, stable))
        if out is None:
            out = list(runs)
        out[i] = _with_metrics(run, tuple(metrics))
    return (None if out is None else tuple(out)), tuple(effects), earliest


def _measurement_due(run: VerificationRun, now: float) -> bool:
    """Whether a metric of a run waits for a measurement that is due."""
    for st in run.metrics:
        at = st.next_at
        if at is not None and at <= now and not st.in_flight and st.phase not in _TERMINAL:
            return True
    return False


# ----- measurements that only move a counter ----------------------------------------------------------------
def _measured(state: RolloutState, ev: Measurement, now: float) -> Decision | Judged | RolloutState | None:
    runs = state.verifications
    run_id = ev.verification
    for i, run in enumerate(runs):  # noqa: B007 (i is read after the loop)
        if run.id == run_id:
            break
    else:
        return None  # an unknown run (stopped and dropped): the engine ignores it
    template = state.plan.templates.get(run.template)
    if template is None or run.phase in _TERMINAL:
        return None
    plans, statuses = template.metrics, run.metrics
    if len(statuses) != len(plans):
        return None
    name = ev.metric
    for j, mp in enumerate(plans):  # noqa: B007 (j is read after the loop)
        if mp.name == name:
            break
    else:
        return None
    st = statuses[j]
    if not st.in_flight or st.phase in _TERMINAL:
        return None  # a late or duplicate result
    recorded = ver.record(mp, st, ev.value, ev.error, now)
    metrics = (*statuses[:j], recorded, *statuses[j + 1 :])
    new_runs = (*runs[:i], _with_metrics(run, metrics), *runs[i + 1 :])
    at = st.next_at
    if at is not None and at <= now:
        return _folded(state, new_runs, now)  # it timed out as the result came: the full engine counts it
    due, asks, wake = _timers(state, now, st)
    if due or asks:
        return _folded(state, new_runs, now)  # some timer is due: the full engine runs it
    t = recorded.next_at
    if t is not None:
        if t <= now:
            return _folded(state, new_runs, now)  # the next measurement is due at once
        if wake is None or t < wake:
            wake = t
    if not _still_running(run, mp, st, recorded):
        phase, message = ver.verdict(template, metrics, run.background, run.dry_run)
        if phase != run.phase or message != run.message:
            # the run reaches a verdict (or a new message): the engine acts, from the state it started from
            return Judged(state, new_runs, now, i, phase, message)
    return Decision(_with_runs(state, new_runs, now), (), wake)


def _still_running(run: VerificationRun, mp: MetricPlan, before: MetricStatus, after: MetricStatus) -> bool:
    """The run's verdict is Running before and after the result, without judging every metric: a running
    run carries the verdict of its metrics (every decision judges the runs it changes), and a metric that
    stays Running and still holds the run back (it has a count to reach, or the run is a background one)
    changes neither the worst metric nor whether one is pending (see verification.verdict)."""
    return (
        run.phase == "Running"
        and run.message is None
        and before.phase == "Running"
        and after.phase == "Running"
        and (bool(mp.count) or run.background)
    )


# ----- timers -----------------------------------------------------------------------------------------------
def _timers(state: RolloutState, now: float, skip: MetricStatus | None) -> tuple[bool, bool, float | None]:
    """One pass over the state's timers (but ``skip``'s): whether one is due at ``now`` other than a
    measurement waiting to be asked for; whether such a measurement is due; the earliest timer after ``now``
    (the decision's ``wake_at`` when nothing else changes)."""
    due = asks = False
    best: float | None = None
    pause_until = state.pause_until
    if pause_until is not None and state.phase == "paused":
        if pause_until <= now:
            due = True
        else:
            best = pause_until
    for run in state.verifications:
        if run.phase in _TERMINAL:
            continue
        for m in run.metrics:
            at = m.next_at
            if at is None or m is skip or m.phase in _TERMINAL:
                continue
            if at > now:
                if best is None or at < best:
                    best = at
            elif m.in_flight:
                due = True  # timed out
            else:
                asks = True
    scale_downs = state.scale_downs
    if scale_downs:
        for t in scale_downs.values():
            if t > now:
                if best is None or t < best:
                    best = t
            else:
                due = True
    waiting_since = state.waiting_since
    if waiting_since is not None:
        t = waiting_since + state.plan.progress_deadline
        if t > now:
            if best is None or t < best:
                best = t
        else:
            due = True
    return due, asks, best


def wake_at(state: RolloutState, now: float) -> float | None:
    """The next time the engine needs a Tick, or None when nothing is scheduled."""
    return _timers(state, now, None)[2]
