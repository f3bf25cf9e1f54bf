"""The rollout/rollback engine: ``step(state, event, now) -> Decision``.

Pure: no I/O, no clock, no randomness.

The phase labels move only through the transition table in :mod:`ebbtide.core.machine`; everything
else (steps, traffic, replicas, verification, deadlines) is plain code over an immutable state. Effects
are computed by diffing the desired world before and after the event, so they are level-based and an
observation that changes nothing produces none.

What a full step costs, and what keeps it down (docs/performance.md has the figures): the working copy
``_W`` is loaded from the state and compared with it when freezing by code generated once from the state's
field list (one attribute access per field). Verification runs are replaced, never mutated, so the advance
loop remembers the very tuple of runs it last judged (``_W.judged``) and last found with no timed-out
measurement (``_W.unexpired``) and skips both checks until the runs change; replacing runs in ways no verdict
or timeout reads (stopping them, putting measurements in flight) keeps those marks (:func:`_replace_runs`).
The world (weights, replicas) is settled after the advance loop comes to rest; when the settle leaves it as
it was, the loop would find nothing new either, so the decision ends without asking it again
(:func:`_advance`, :func:`full_step`). A pass that starts a verification step's runs leaves the loop at
rest itself (:data:`_RESTED`): the pass after it would find the new runs running and only look at the
canary's pods, which the start does in its place (:func:`_verify`).

The settle (:func:`_settle_world`) iterates ``weights, replicas := f(world), g(world)`` to their joint
fixpoint. A pass evaluates only what can have moved; with a traffic router (tests/core/test_settle.py
checks each fact on redrawn worlds, and every decision against a settle that evaluates everything):

- *f is its own fixpoint*: ``f`` is ``split(desired, prev, caps)`` then the unready clamp (or the clamp
  alone when failed). ``split`` started from its own output gives it again (each wanted share is already
  ``min(want, max(cap, prev))``; the shortfall already sits with the revisions that had it;
  tests/core/test_traffic.py), and the clamp leaves nothing to move once the dead revisions' shares moved.
  ``desired`` and the caps come from the step fields and the observations, which a settle does not touch.
- *f reads the replicas only through* :func:`_has_no_pods` of a revision never observed (is it running?),
  and the observations through the caps and :func:`_has_no_pods`. So after a pass that neither dropped nor
  clipped an observation and kept the same running unobserved revisions (:func:`_weight_facts`), the
  weights it set are what ``f`` gives again: the next pass takes them as they are.
- *g is its own fixpoint* for the same basis: each revision gets a count from the plan and the step, or
  keeps its current count (still serving, waiting for its delayed scale-down, or ``max`` with the canary's
  current count); a revision a pass dropped is not in the replicas any more, and the delayed scale-downs the
  pass scheduled or cleared are the ones the next pass would find. What ``g`` reads of the weights and
  observations (:func:`_same_basis`: which revisions serve, whether the canary serves more than its step's
  weight, what a newRollout rollback's base serves while it has ready pods) is their basis: when it is
  unchanged the next pass keeps the replicas as they are. A pass where neither side needs evaluating ends
  the settle.

Without a router the weights are the ready pods' ratio and the replicas a budgeted move from the current
counts; neither is its own fixpoint, and every pass evaluates both.

What the settle compares, it compares by value first: weights equal to those the replicas last read (or
replicas equal to those the weights last read) are read alike, whatever dict holds them, so one C
comparison replaces the two scans of :func:`_same_basis` and :func:`_weight_facts` in the common case. An
advance pass whose runs are the very tuple last found with nothing expired and judged skips both checks
before any call (:func:`_advance_once`).

What a decision need not evaluate again (docs/performance.md, "Round 3" and "Round 4"):

- The settle after a step's own weight went out reuses those weights when nothing they read besides the
  world moved since (:func:`_weights_inputs`: within a decision only a settle writes the world, so the
  weights that settle left at their fixpoint are the fixpoint again), and the replicas likewise when the
  few inputs only they read are unchanged too (:func:`_replicas_inputs`: the canary's count from the step,
  the history). A settle whose marks both hold still checks the kept observations (the step's settle does
  not clip them, the final one does) and ends there when they stay.
- With no step's settle to go by, the weights are taken as the decision found them when neither the world
  nor what they read moved since it began (:func:`_weights_as_found`): the state a decision starts from is
  a fixpoint, like every decision (the short path rests on that too), and the weights do not read the time
  (the replicas do: a delayed scale-down falls due).
- A settle that moved only the weights or replicas while a rollout runs behind a router ends the decision
  without another advance pass: no pass of a rollout reads them (:func:`_passes_read_no_world`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from ebbtide.core import verification as ver
from ebbtide.core.effects import (
    Effect,
    Notify,
    NotifyEvent,
    ScaleRevision,
    SetTraffic,
    StartMeasurement,
    StopVerification,
)
from ebbtide.core.events import (
    Command,
    Deploy,
    Event,
    Measurement,
    ReplicasObserved,
    SpecChanged,
    Tick,
)
from ebbtide.core.hotpath import ROLLOUT_PHASES, Judged, issue_measurements, short_step
from ebbtide.core.hotpath import wake_at as wake_at  # re-exported: part of the engine's API
from ebbtide.core.inputs import check_step_inputs
from ebbtide.core.machine import allowed, fire
from ebbtide.core.plan import HeaderRoutePlan, Plan, StepPlan
from ebbtide.core.state import (
    Decision,
    Initiator,
    MetricStatus,
    PauseReason,
    Phase,
    RevisionRecord,
    RevisionStatus,
    RollbackStatus,
    RolloutState,
    VerificationRun,
    builder,
    evolve,
    generated_function,
    replacer,
)
from ebbtide.core.traffic import basic_canary_counts, basic_canary_scale, ceil_pct, pod_ratio, positive, split

#: how many metric failures the promote policy keeps in the state
RECORDED_FAILURES = 5
#: the event that lets the full engine go on from a state the hot path prepared (nothing else happens)
_TICK = Tick()
#: a rollout or a rollback runs, or the last one failed
_RUNNING_OR_FAILED: frozenset[Phase] = ROLLOUT_PHASES | {"rolling-back", "failed"}
#: guards the advance loop against a malformed plan; a plan has far fewer steps than this
_MAX_ITERATIONS = 10_000
#: the copies of a run and a metric status the full path makes (positional: no keyword dictionary)
_judged_run = replacer(VerificationRun, "phase", "message")
_stopped_run = replacer(VerificationRun, "phase", "metrics")
_stopped_metric = replacer(MetricStatus, "in_flight", "next_at")
#: the world's effects, built positionally (the emit builds one per revision scaled and per split sent)
_scale = builder(ScaleRevision, "revision", "replicas")
_traffic = builder(SetTraffic, "weights", "header_routes", "header_route_revision")
#: a run's stop, built positionally (every run that ends or is stopped sends one)
_stop = builder(StopVerification, "verification")
#: a notification and a revision's record, built positionally (every rollout sends and touches a few)
_notice = builder(Notify, "event", "payload")
_record = builder(RevisionRecord, "revision", "status", "reached_live")


def initial_state(plan: Plan | None = None) -> RolloutState:
    """The state of a workload that has never been deployed."""
    return RolloutState(plan=plan if plan is not None else Plan())


#: the state's dict fields: the working copy mutates copies of them; other fields are replaced, never mutated
_COPIED = ("weights", "replicas", "ready", "scale_downs")
#: every field; all but the dict and number fields are compared by identity when freezing (an untouched one
#: is the same)
_FIELDS = tuple(f.name for f in fields(RolloutState))
#: the plain number fields: compared by value when freezing (a compiled build keeps them unboxed)
_NUMBERS = tuple(f.name for f in fields(RolloutState) if f.type in ("int", "float", int, float))


#: sets up the working copy ``w`` of the state ``s`` at ``now``: every field of ``s`` (the dict fields as new
#: dicts), then the step's own slots (see :class:`_W`)
_LOAD = [
    *(f"w.{k} = dict(s.{k})" if k in _COPIED else f"w.{k} = s.{k}" for k in _FIELDS),
    "w.now = now",
    "w.origin = s",
    "w.effects = []",
    "w.sent = None",
    "w.world_at = 0",
    "w.judged = (None, None)",
    "w.unexpired = None",
    "w.weights_for = None",
    "w.replicas_for = None",
]
#: ``_W.__init__``'s body, generated (see :func:`ebbtide.core.state.generated_function`: only the state's
#: own field names reach its source)
_load = generated_function("load(w, s, now)", _LOAD, list(_FIELDS))
#: the fields a full decision changes most often, compared first when freezing (the first that differs
#: settles it: the state changed); the others follow in declaration order
_CHANGING = (
    "step_index",
    "verifications",
    "waiting_since",
    "phase",
    "canary_weight",
    "step_started_at",
    "seq",
)
#: the new state from the working copy ``w`` and the state ``s`` it was loaded from: ``s`` itself when no
#: field changed (the dict and number fields by value, the others by identity), else a copy of ``w``'s fields
#: (an unchanged dict field keeps ``s``'s dict) stamped with the decision's time in ``updated_at``. One
#: chain of comparisons that stops at the first field that differs, then straight copies: not a
#: comparison and a branch per field
_SAME = " and ".join(
    f"w.{k} == s.{k}" if k in _COPIED or k in _NUMBERS else f"w.{k} is s.{k}"
    for k in (*_CHANGING, *(k for k in _FIELDS if k not in _CHANGING))
    if k != "updated_at"
)
_frozen = generated_function(
    "frozen(w, s)",
    [f"if {_SAME}: return s", "new = make(cls)"]
    + [
        f"new.{k} = s.{k} if w.{k} == s.{k} else w.{k}" if k in _COPIED else f"new.{k} = w.{k}"
        for k in _FIELDS
        if k != "updated_at"
    ]
    + ["new.updated_at = w.now", "return new"],
    list(_FIELDS),
    {"make": object.__new__, "cls": RolloutState},
)


class _W:
    """Mutable working copy of a RolloutState for the duration of one step.

    It carries every field of the state under the same name (copied in one go from the state's fields;
    the dict fields are copied so that they can be mutated), plus ``now`` and the effects emitted so far.
    """

    __slots__ = (
        *_FIELDS,
        "now",
        "origin",
        "effects",
        "sent",
        "world_at",
        "judged",
        "unexpired",
        "weights_for",
        "replicas_for",
    )

    weights: dict[str, int]
    replicas: dict[str, int]
    ready: dict[str, int]
    scale_downs: dict[str, float]
    plan: Plan
    next_plan: Plan | None
    phase: Phase
    degraded: bool
    stable: str | None
    desired: str | None
    canary: str | None
    rollout_id: int
    original_rollout_id: int | None
    initiator: Initiator
    step_index: int
    step_started_at: float
    canary_weight: int
    canary_scale_replicas: int | None
    canary_scale_weight: int | None
    pause_reason: PauseReason | None
    pause_until: float | None
    header_routes: tuple[HeaderRoutePlan, ...]
    verifications: tuple[VerificationRun, ...]
    recorded_failures: tuple[str, ...]
    rollback: RollbackStatus | None
    history: tuple[RevisionRecord, ...]
    waiting_since: float | None
    failure_reason: str | None
    seq: int
    updated_at: float
    now: float
    origin: RolloutState
    effects: list[Effect]
    #: the world (weights, replicas, header routes) the effects emitted so far describe; None: the
    #: world of the state the step started from
    sent: tuple[dict[str, int], dict[str, int], tuple[HeaderRoutePlan, ...]] | None
    #: where the next world effects go in ``effects`` (world effects come first, in the order emitted)
    world_at: int
    #: the verifications (and plan) last judged with every run carrying its verdict: runs are replaced,
    #: never mutated, so the very same tuple under the same plan needs no judging again
    judged: tuple[tuple[VerificationRun, ...] | None, Plan | None]
    #: the verifications last found with no in-flight measurement timed out at ``now``
    unexpired: tuple[VerificationRun, ...] | None
    #: what the weights read besides the world, when a step's own settle left them at their fixpoint and no
    #: settle ran since (:func:`_weights_inputs`)
    weights_for: tuple[object, ...] | None
    #: what the replicas read besides the world and ``weights_for``, set with it (:func:`_replicas_inputs`)
    replicas_for: tuple[object, ...] | None

    def __init__(self, s: RolloutState, now: float) -> None:
        _load(self, s, now)

    def record(self, revision: str) -> RevisionRecord | None:
        for rec in self.history:
            if rec.revision == revision:
                return rec
        return None

    def last_successful_excluding(self, exclude: str | None) -> str | None:
        for rec in reversed(self.history):
            if rec.reached_live and rec.revision != exclude:
                return rec.revision
        return None

    def freeze(self, old: RolloutState) -> RolloutState:
        """The new immutable state; unchanged fields are shared with ``old``. A state that changed
        records the decision's time in ``updated_at``."""
        new: RolloutState = _frozen(self, old)
        return new

    def notify(self, event: NotifyEvent, **payload: Any) -> None:
        base: dict[str, Any] = {
            "rolloutId": self.rollout_id,
            "revision": self.canary,
            "stable": self.stable,
            "timestamp": self.now,
        }
        if self.original_rollout_id is not None:
            base["originalRolloutId"] = self.original_rollout_id
        base.update(payload)
        self.effects.append(_notice(event, base))


# ---------------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------------


def _step(state: RolloutState, event: Event, now: Any) -> Decision:
    """Apply one event at time ``now``. Pure and deterministic; a rejected command changes nothing.

    Bad input from an embedder (not an Event, a non-finite ``now``, ...) raises TypeError / ValueError.
    A ``now`` earlier than ``state.updated_at`` (clock skew after a controller failover) is taken as
    ``updated_at``: the engine never rewinds a timer and never fails on it. The common events (ticks,
    observations and measurements that change little) take the exact short path of
    :mod:`ebbtide.core.hotpath`; the rest go through :func:`full_step`."""
    check_step_inputs(state, event, now)
    if now < state.updated_at:
        now = state.updated_at
    decision = short_step(state, event, now)
    if decision is None:
        return full_step(state, event, now)
    if isinstance(decision, Decision):
        return decision
    if isinstance(decision, Judged):
        return judged_step(decision, now)  # a measurement folded in and its run judged
    return full_step(decision, _TICK, now)  # a measurement folded in: the engine goes on as at a Tick


#: ``step(state, event, now)``: :func:`_step` under its public signature. ``now`` is a ``float`` to a type
#: checker, and any object to the function itself, so that the compiled build (setup.py) leaves judging it
#: to :func:`~ebbtide.core.inputs.check_step_inputs` rather than converting or refusing it first
step: Callable[[RolloutState, Event, float], Decision] = _step


def full_step(state: RolloutState, event: Event, now: float) -> Decision:
    """:func:`step` without its fast path (tests compare the two; every decision must be a fixpoint)."""
    if now < state.updated_at:
        now = state.updated_at
    w = _W(state, now)
    if isinstance(event, Tick):
        pass
    elif isinstance(event, ReplicasObserved):
        _on_replicas(w, event)
    elif isinstance(event, Measurement):
        _on_measurement(w, event)
    elif isinstance(event, Deploy):
        _on_deploy(w, event)
    elif isinstance(event, Command):
        reason = _on_command(w, event)
        if reason is not None:
            return Decision(state=state, effects=(), wake_at=wake_at(state, now), rejected=reason)
    elif isinstance(event, SpecChanged):
        if w.phase in ("live", "failed"):
            w.plan = event.plan
            w.next_plan = None
        else:
            w.next_plan = event.plan
    return _decide(w, state, now)


def judged_step(fold: Judged, now: float) -> Decision:
    """The full engine's decision at a Tick on ``fold.state``, whose run ``fold.index`` the short path has
    just judged (a measurement result folded in changed its verdict: :func:`ebbtide.core.hotpath.short_step`).

    Why the judge need not run first. At a Tick on that state the advance loop's first pass finds no
    measurement timed out (the short path found no timer due but the run's next measurements, which only
    :func:`_issue_measurements` reads) and judges every running run (:func:`_judge_runs`): every run but the
    folded one carries its verdict already (each decision judges the runs it changes, and the short path
    changed only this one), so the pass changes only the folded run, to the very verdict the short path
    computed from the same template and metrics, and acts on it if it ended; then it returns, and the loop
    goes on. Recording that verdict here, marking the runs judged and found with nothing expired, and acting
    the same way leaves the loop where that pass would have (its next pass finds the runs as marked).

    It starts from ``fold.origin`` with ``fold.runs``, not from ``fold.state``, which is never built: the two
    differ only in the runs, set here, and in ``updated_at``, which no pass reads and freezing stamps with
    ``now`` on every state that changed (this one always does: its run takes a new verdict); the world the
    effects are diffed from (weights, replicas, observations, routes, canary) is the very same."""
    state = fold.origin
    w = _W(state, now)
    runs = list(fold.runs)
    run = runs[fold.index] = _judged_run(runs[fold.index], fold.phase, fold.message)
    w.verifications = tuple(runs)
    w.judged = (w.verifications, w.plan)
    w.unexpired = w.verifications  # that first pass found no measurement timed out (see above)
    if fold.phase in ver.TERMINAL:
        _run_finished(w, run)
    return _decide(w, state, now)


def _decide(w: _W, state: RolloutState, now: float) -> Decision:
    """The rest of a full step once the event is applied to ``w``: the advance loop and the settle to
    their joint fixpoint, then the effects and the new state."""
    rested = _advance(w)
    for _ in range(_MAX_ITERATIONS):
        # the settled world may let the rollout move on (a rollback whose target now carries everything);
        # a world the advance loop came to rest in, left as it was by the settle, cannot (see _advance),
        # nor can one whose only moves no pass of the rollout reads (_passes_read_no_world)
        moved = _settle_world(w)
        if rested and (not moved or (moved == _WORLD_MOVED and _passes_read_no_world(w))):
            break
        if not _advance_once(w):
            break
        rested = _advance(w)
    _history_trim(w)
    _emit_world(w, state)
    new = w.freeze(state)
    return Decision(new, tuple(w.effects), wake_at(new, now), None)  # positional: no keyword dict


def desired_effects(state: RolloutState) -> tuple[Effect, ...]:
    """The whole desired world as effects, for a controller re-syncing after a restart."""
    effects: list[Effect] = [ScaleRevision(revision=r, replicas=n) for r, n in sorted(state.replicas.items())]
    if state.weights:
        routes = _effective_routes(state.header_routes, state.canary, state.ready)
        effects.append(
            SetTraffic(
                weights=dict(state.weights),
                header_routes=routes,
                header_route_revision=state.canary if routes else None,
            )
        )
    for run in state.verifications:
        if run.phase in ver.TERMINAL:
            continue
        template = state.plan.templates.get(run.template)
        if template is None:
            continue
        for mp, st in zip(template.metrics, run.metrics, strict=True):
            if st.in_flight and state.canary is not None:
                effects.append(
                    StartMeasurement(
                        verification=run.id,
                        template=run.template,
                        metric=mp,
                        revision=state.canary,
                        stable=state.stable,
                    )
                )
    return tuple(effects)


# ---------------------------------------------------------------------------------------------------
# events
# ---------------------------------------------------------------------------------------------------


def _on_replicas(w: _W, ev: ReplicasObserved) -> None:
    if ev.revision not in w.replicas and ev.revision not in w.weights and ev.revision not in w.ready:
        return  # not ours (or long gone): keep the state bounded
    before = w.ready.get(ev.revision)
    w.ready[ev.revision] = ev.ready
    progressed = before is not None and ev.ready > before and w.waiting_since is not None
    if progressed and ev.revision == _awaited(w):
        w.waiting_since = w.now  # progress resets the deadline, as Argo's progressDeadlineSeconds does


def _on_measurement(w: _W, ev: Measurement) -> None:
    """Fold a measurement result into its metric's counters. The run is judged in the advance loop
    (:func:`_judge_runs`), together with every other result that completes in the same decision."""
    for i, run in enumerate(w.verifications):
        if run.id != ev.verification:
            continue
        if run.phase in ver.TERMINAL:
            return
        template = w.plan.templates.get(run.template)
        if template is None:
            return
        metrics = list(run.metrics)
        for j, (mp, st) in enumerate(zip(template.metrics, metrics, strict=True)):
            if mp.name != ev.metric:
                continue
            if st.phase in ver.TERMINAL or not st.in_flight:
                return  # a late or duplicate result: already counted
            metrics[j] = ver.record(mp, st, ev.value, ev.error, w.now)
            break
        else:
            return
        runs = list(w.verifications)
        runs[i] = evolve(run, metrics=tuple(metrics))
        w.verifications = tuple(runs)
        return


def _judge_runs(w: _W) -> bool:
    """Take the verdict of every running verification from its metrics; act on those that ended.

    Runs that end in the same decision act worst first (Failed, Error, Inconclusive, Successful; ties by
    template name), so the outcome never depends on the order of metrics, templates or timers.
    """
    if w.verifications is w.judged[0] and w.plan is w.judged[1]:
        return False  # nothing changed since the last pass: every run already carries its verdict
    runs: list[VerificationRun] | None = None  # copied on the first run that changes
    finished: list[VerificationRun] = []
    for i, run in enumerate(w.verifications):
        if run.phase in ver.TERMINAL:
            continue
        template = w.plan.templates.get(run.template)
        if template is None:
            continue
        verdict, message = ver.run_verdict(template, run)
        if verdict != run.phase or message != run.message:
            if runs is None:
                runs = list(w.verifications)
            runs[i] = _judged_run(run, verdict, message)
            if verdict in ver.TERMINAL:
                finished.append(runs[i])
    if runs is not None:
        _replace_runs(w, tuple(runs))  # keeps the runs known to have nothing expired
    w.judged = (w.verifications, w.plan)
    if runs is None:
        return False
    for run in sorted(finished, key=lambda r: (-ver.SEVERITY[r.phase], r.template, r.id)):
        _run_finished(w, run)
    return True


def _replace_runs(w: _W, runs: tuple[VerificationRun, ...]) -> None:
    """Replace the verifications by the same runs with at most these changes: metrics stopped or put in
    flight until a timeout after ``now``, runs ended or dropped. No verdict reads them and no measurement
    expires by them, so runs judged (or checked for expired measurements) stay so."""
    if w.verifications is w.judged[0]:
        w.judged = (runs, w.judged[1])
    if w.verifications is w.unexpired:
        w.unexpired = runs
    w.verifications = runs


def _run_finished(w: _W, run: VerificationRun) -> None:
    """A verification run reached a verdict: stop it, and act on a bad verdict through the policy."""
    _stop_run(w, run.id, keep=True)
    if run.phase == "Successful":
        return
    if w.phase not in ROLLOUT_PHASES:
        return
    if w.phase == "paused" and w.pause_reason == "failure-policy":
        return  # the failure that paused the rollout stays its reason
    kind = "background verification" if run.background else "verification"
    reason = f"{kind} {run.template!r} {run.phase.lower()}: {run.message}"
    if run.phase == "Inconclusive":
        if not run.background:
            _stop_phase_runs_but(w, run.id)  # the step's runs end together, as Argo's one AnalysisRun
        if w.phase != "paused" or w.pause_reason != "failure-policy":
            _pause(w, "inconclusive", reason)
        return
    # Failed or Error ("data not received" goes through the policy too)
    _failure(w, reason, deadline=False)


def _stop_phase_runs_but(w: _W, run_id: str) -> None:
    """Stop the other running phase verifications (Argo: a terminated metric counts as successful)."""
    for r in w.verifications:
        if not r.background and r.id != run_id and r.phase not in ver.TERMINAL:
            _stop_run(w, r.id, keep=True)


def _on_deploy(w: _W, ev: Deploy) -> None:
    rev = ev.revision
    plan = ev.plan if ev.plan is not None else (w.next_plan or w.plan)
    if w.stable is None and w.canary is None:
        # the first revision ever deployed goes live at once, no steps
        w.plan = plan
        w.next_plan = None
        w.stable = w.desired = rev
        w.degraded = False
        w.replicas = {rev: plan.replicas}
        w.weights = {rev: 100}
        _history_touch(w, rev, "live", reached_live=True)
        return
    if rev == w.desired and (w.phase != "failed" or rev == w.stable):
        return  # the same revision applied again: nothing to do
    if w.phase == "live":
        w.plan = plan
        w.next_plan = None
        if rev == w.stable:
            w.desired = rev
            w.degraded = False
            return
        if _fast_track(w, rev):
            w.desired = rev
            _begin_rollback(w, rev, reason=f"revision {rev} deployed again", manual=True, fast=True)
            return
        _start_rollout(w, rev, "deploy", original=None)
        return
    # a rollout (or rollback) is running, or the last one failed
    if w.phase in ROLLOUT_PHASES and rev == w.canary:
        # the revision being rolled out (e.g. by a newRollout rollback) is now also the desired one
        w.desired = rev
        w.degraded = False
        return
    restoring = w.initiator == "failure-policy" and rev == w.canary  # the good revision a newRollout restores
    if w.phase in _RUNNING_OR_FAILED and (rev == w.stable or restoring):
        # the template went back to the stable (serving) revision, or to the last successful one a failed
        # newRollout rollback was restoring: a fast rollback to it
        w.desired = rev
        if w.phase != "failed":
            w.notify("rollout-canceled", reason=f"revision {rev} (stable) deployed again")
        _stop_runs(w, background_too=True)
        _begin_rollback(w, rev, reason=f"revision {rev} deployed again", manual=True, fast=True)
        return
    if w.phase == "rolling-back" and w.rollback is not None and rev == w.rollback.target:
        # the template now names the revision we are rolling back to: the rollback becomes the intent
        w.desired = rev
        w.rollback = evolve(w.rollback, manual=True)
        return
    old_id = w.rollout_id
    if w.phase != "failed":
        w.notify("rollout-canceled", reason=f"superseded by revision {rev}")
    _stop_runs(w, background_too=True)
    if w.canary is not None and w.canary != rev:
        _history_status(w, w.canary, "superseded")
    base = w.last_successful_excluding(rev)
    if base is not None:
        w.stable = base
    w.rollback = None
    w.plan = plan
    w.next_plan = None
    _start_rollout(w, rev, "deploy", original=old_id)


def _on_command(w: _W, cmd: Command) -> str | None:
    """Apply a command; return a reason when it is not allowed now (then nothing may have changed)."""
    a = cmd.action
    if a == "abort":
        if w.phase == "live":
            return None if w.canary is None else "nothing to abort"  # abort after full promotion: no-op
        if w.phase == "rolling-back":
            return "a rollback is already in progress"
        target = _rollback_target(w)
        if target is None:
            return "there is no successful revision to roll back to"
        _stop_runs(w, background_too=True)
        if w.canary is not None and w.canary != target:
            _history_status(w, w.canary, "rolled-back")
        _begin_rollback(w, target, reason="aborted by user", manual=False, fast=True)
        return None
    if a == "pause":
        if w.phase == "paused" and not _at_timed_pause(w):
            return f"already paused ({w.pause_reason})"
        if w.phase != "paused" and not allowed(w.phase, "pause"):
            return f"cannot pause: the rollout is {w.phase}"
        _stop_runs(w, background_too=False)
        _pause(w, "manual", "paused by user")
        return None
    if a == "resume":
        if w.phase != "paused":
            return f"cannot resume: the rollout is {w.phase}, not paused"
        if _at_timed_pause(w):
            return f"the rollout waits at a timed pause step until {w.pause_until:g}: promote skips it"
        if w.pause_reason == "pause-step":
            return "the rollout waits at an indefinite pause step: promote moves it on"
        _restart_step(w)
        return None
    if a == "promote":
        if not allowed(w.phase, "promote"):
            return f"cannot promote: the rollout is {w.phase}"
        st = _current_step(w)
        if st is not None and st.kind in ("setWeight", "setCanaryScale") and w.phase != "paused":
            return (
                f"step {w.step_index} ({st.kind}) waits for canary replicas to become ready; "
                "promote moves on from pauses and verifications (promoteFull skips all steps)"
            )
        _stop_runs(w, background_too=False)
        w.notify("rollout-promoted", step=w.step_index)
        w.pause_until = None
        w.pause_reason = None
        w.step_index += 1
        w.step_started_at = w.now
        fire(w, "promote")
        return None
    if a == "promoteFull":
        if not allowed(w.phase, "promote"):
            return f"cannot promote fully: the rollout is {w.phase}"
        _stop_runs(w, background_too=False)
        w.notify("rollout-promoted", step=w.step_index, full=True)
        w.pause_until = None
        w.pause_reason = None
        w.step_index = len(w.plan.steps)
        w.step_started_at = w.now
        fire(w, "promote")
        return None
    if a == "retry":
        rec = w.desired and w.record(w.desired)
        if (w.phase == "failed" and w.desired is not None) or (
            w.phase == "live" and w.degraded and rec and rec.status in ("failed", "rolled-back")
        ):
            pass
        else:
            return "retry is only possible after a rollback completed, for the latest revision"
        assert w.desired is not None
        w.rollback = None
        base = w.last_successful_excluding(w.desired)
        if base is not None:
            w.stable = base  # as for a new deploy: the rollout runs against the last successful revision
        _start_rollout(w, w.desired, "retry", original=w.rollout_id)
        return None
    if a == "rollback":
        return _rollback_command(w, cmd.revision)
    return f"unknown action {a!r}"  # pragma: no cover - the event model only admits known actions


def _rollback_command(w: _W, revision: str | None) -> str | None:
    if w.phase == "rolling-back":
        return "a rollback is already in progress"
    if w.phase in ROLLOUT_PHASES:
        if revision is not None and revision != _rollback_target(w):
            return "a rollout is running: abort it (roll back to the stable revision) or let it finish first"
        return _on_command(w, Command(action="abort"))
    if w.phase == "failed":
        target = revision or _rollback_target(w)
        if target is None:
            return "there is no successful revision to roll back to"
        if w.record(target) is None:
            return f"revision {target} is not in the revision history"
        _begin_rollback(w, target, reason="rollback requested", manual=revision is not None, fast=True)
        return None
    # live: roll back a successful rollout, or go back to any revision in history
    if revision is None:
        target = w.last_successful_excluding(w.stable)
        if target is None:
            return "there is no previous successful revision to roll back to"
    else:
        target = revision
        if target == w.stable:
            return f"revision {target} is already live"
        if w.record(target) is None:
            return f"revision {target} is not in the revision history"
    w.desired = target
    w.degraded = False
    if _fast_track(w, target):
        _begin_rollback(w, target, reason=f"rollback to revision {target}", manual=True, fast=True)
    else:
        _start_rollout(w, target, "rollback", original=w.rollout_id)
    return None


# ---------------------------------------------------------------------------------------------------
# rollout mechanics
# ---------------------------------------------------------------------------------------------------


def _start_rollout(w: _W, rev: str, initiator: Initiator, original: int | None, share: int = 0) -> None:
    w.rollout_id += 1
    w.original_rollout_id = original
    w.initiator = initiator
    w.canary = rev
    if initiator != "failure-policy":
        w.desired = rev
        w.degraded = False
    w.step_index = 0
    w.step_started_at = w.now
    w.canary_weight = share
    w.canary_scale_replicas = None
    w.canary_scale_weight = None
    w.pause_reason = None
    w.pause_until = None
    w.header_routes = ()
    w.recorded_failures = ()
    if w.verifications:  # the runs an earlier rollout kept for people to read (its failed run)
        _replace_runs(w, tuple(r for r in w.verifications if r.phase not in ver.TERMINAL))
    if initiator != "failure-policy":
        w.failure_reason = None
    w.waiting_since = None
    w.scale_downs.pop(rev, None)
    if share > 0:
        # a newRollout rollback: the target already holds `share`. Steps up to the last setWeight at or
        # below that share pass at once; what follows it (that phase's verification, pause) runs, so the
        # target is verified at its current share before it climbs, like any new revision.
        w.step_index = 0
        for i, st in enumerate(w.plan.steps):
            if st.kind == "setWeight" and st.weight is not None and st.weight <= share:
                w.step_index = i + 1
    _history_touch(w, rev, "pending", reached_live=None)
    if w.phase == "failed" and initiator == "failure-policy":
        fire(w, "roll_back_new_rollout")
    else:
        fire(w, "start" if w.phase in ("live", "failed") else "supersede")
    w.notify("rollout-started", initiator=initiator)
    _start_background(w)


def _begin_run(w: _W, template_name: str, background: bool) -> VerificationRun | None:
    """Start a run of the template (None when the plan has no such template)."""
    template = w.plan.templates.get(template_name)
    if template is None:  # validated at load time; a hand-built plan may still be wrong
        return None
    w.seq += 1
    kind = "bg" if background else f"s{w.step_index}"
    st = _current_step(w)
    dry_run = w.plan.background_dry_run if background else (st.dry_run if st is not None else ())
    run_id = f"{w.rollout_id}-{kind}-{template_name}-{w.seq}"
    run = ver.start_run(run_id, template, w.now, background, dry_run)
    # phase runs that reached a verdict are no longer needed once a new one starts (bounded state); a
    # background run stays until the rollout ends or it is started again (one per background template)
    kept = [
        r
        for r in w.verifications
        if (r.background and not (background and r.template == template_name))
        or (not r.background and r.phase not in ver.TERMINAL)
    ]
    kept.append(run)
    w.verifications = tuple(kept)
    for m in template.metrics:
        if "external" in m.provider:
            w.notify("start-external-verification", verification=run.id, template=template_name)
            break
    return run


def _start_background(w: _W) -> bool:
    """Start the background verification once the rollout reaches the plan's starting step (Argo's
    ``analysis.startingStep``); True when a run started. A background run that ended inconclusive is
    started again once the rollout is no longer paused for it (resumed or promoted), as Argo does."""
    plan = w.plan
    if not plan.background_templates or w.phase not in ROLLOUT_PHASES or w.canary is None:
        return False
    if w.step_index < plan.background_starting_step:
        return False
    started = False
    for name in plan.background_templates:
        run = _background_run(w, name)
        if run is None or (run.phase == "Inconclusive" and w.pause_reason != "inconclusive"):
            _begin_run(w, name, background=True)
            started = True
    return started


def _background_run(w: _W, template: str) -> VerificationRun | None:
    for run in w.verifications:
        if run.background and run.template == template:
            return run
    return None


def _stop_run(w: _W, run_id: str, keep: bool) -> None:
    runs = []
    for r in w.verifications:
        if r.id == run_id:
            phase = "Successful" if keep and r.phase not in ver.TERMINAL else r.phase
            w.effects.append(_stop(r.id))
            r = _stopped_run(r, phase, tuple([_stopped_metric(m, False, None) for m in r.metrics]))
        runs.append(r)
    _replace_runs(w, tuple(runs))


def _stop_runs(w: _W, background_too: bool, keep_verdicts: bool = False) -> None:
    """Stop active runs; finished phase runs are dropped from the state (bounded), background kept.
    ``keep_verdicts``: runs that reached a verdict stay (a failed rollout keeps the run that failed it, for
    people to read, until the next rollout starts: :func:`_start_rollout`)."""
    kept: list[VerificationRun] = []
    for r in w.verifications:
        if r.background and not background_too:
            kept.append(r)
            continue
        if r.phase not in ver.TERMINAL:
            w.effects.append(StopVerification(verification=r.id))
        elif keep_verdicts:
            kept.append(r)
    _replace_runs(w, tuple(kept))


def _current_step(w: _W) -> StepPlan | None:
    if 0 <= w.step_index < len(w.plan.steps):
        return w.plan.steps[w.step_index]
    return None


def _pause(w: _W, reason: PauseReason, message: str) -> None:
    """Pause for ``reason``; a rollout resting at a timed pause step keeps its phase and takes the new
    reason (its timer stops: a manual, failure-policy or inconclusive pause waits for a person)."""
    w.pause_reason = reason
    w.pause_until = None
    if w.phase != "paused":
        fire(w, "pause")
    w.notify("rollout-paused", reason=reason, message=message)


def _at_timed_pause(w: _W) -> bool:
    return w.phase == "paused" and w.pause_reason == "pause-step" and w.pause_until is not None


def _restart_step(w: _W) -> None:
    """resume: the running phase restarts (a timed pause from its full duration, a verification anew)."""
    w.pause_reason = None
    w.pause_until = None
    w.step_started_at = w.now
    st = _current_step(w)
    if st is not None and st.kind == "verification":
        _stop_runs(w, background_too=False)
        fire(w, "resume_verifying")
        for name in st.templates:
            _begin_run(w, name, background=False)
    else:
        fire(w, "resume")


def _failure(w: _W, reason: str, deadline: bool) -> None:
    """The rollout failed (verification or progress deadline): act on the failure policy."""
    plan = w.plan
    # deadlines roll back under every policy; so does a failure of a newRollout rollback itself (its
    # canary is the last successful revision: it takes all traffic back at once)
    action = "rollback" if deadline or w.initiator == "failure-policy" else plan.failure_action
    if action == "promote":
        w.recorded_failures = (*w.recorded_failures, reason)[-RECORDED_FAILURES:]
        return  # continue as if passed: the failed run is already stopped; the verifying loop moves on
    if action == "pause":
        # a failure while paused for another reason (by hand, at a pause step, inconclusive) turns the
        # pause into a failure-policy pause, notified: promote must not pass a failure nobody was told of
        if w.phase != "paused" or w.pause_reason != "failure-policy":
            _stop_runs(w, background_too=False)
            _pause(w, "failure-policy", reason)
        w.failure_reason = reason
        return
    w.failure_reason = reason
    _stop_runs(w, background_too=True, keep_verdicts=True)
    fire(w, "fail")
    w.notify("rollout-failed", reason=reason)
    failed_rev = w.canary
    target = _rollback_target(w)
    if failed_rev is not None and failed_rev != target:
        _history_status(w, failed_rev, "failed")
    if target is None:
        w.notify("rollout-failed-to-roll-back", reason="there is no successful revision to roll back to")
        return
    if plan.rollback_mode == "newRollout" and target != w.canary:
        share = 100 - w.weights.get(failed_rev, 0) if failed_rev is not None else 100
        # the failed revision becomes the base and keeps at most its share; the target climbs back
        w.stable = failed_rev
        _start_rollout(w, target, "failure-policy", original=w.rollout_id, share=max(0, min(100, share)))
        return
    _begin_rollback(w, target, reason=reason, manual=False, fast=True)


def _begin_rollback(w: _W, target: str, reason: str, manual: bool, fast: bool) -> None:
    source = w.canary if w.canary != target else w.stable
    w.rollback = RollbackStatus(
        target=target,
        source=source,
        reason=reason,
        mode="immediate",
        started_at=w.now,
        fast_track=fast,
        manual=manual,
    )
    if manual:
        w.desired = target
    _clear_rollout_progress(w)
    w.step_index = 0  # Argo: an aborted rollout's step index returns to 0
    w.scale_downs.pop(target, None)
    if w.phase != "rolling-back":  # already rolling back: the rollback is retargeted
        fire(w, "roll_back")


def _clear_rollout_progress(w: _W) -> None:
    """Forget the running rollout's step state: canary weight and scale, header routes, pause, deadline."""
    w.canary_weight = 0
    w.canary_scale_replicas = None
    w.canary_scale_weight = None
    w.header_routes = ()
    w.pause_reason = None
    w.pause_until = None
    w.waiting_since = None


def _rollback_target(w: _W) -> str | None:
    """The last revision that reached live, never the revision being rolled out (unless it is that)."""
    if w.initiator == "failure-policy" and w.canary is not None:
        return w.canary  # a newRollout rollback: its canary *is* the last successful revision
    return w.last_successful_excluding(w.canary)


def _fast_track(w: _W, target: str) -> bool:
    if target == w.stable:
        return True
    window = w.plan.rollback_window
    if window <= 0:
        return False
    previous = [r.revision for r in reversed(w.history) if r.reached_live and r.revision != w.stable]
    return target in previous[:window]


def _finish(w: _W) -> None:
    """All steps done and the canary serves 100%: it becomes the stable, live revision."""
    assert w.canary is not None
    rev = w.canary
    rolled_back = w.initiator == "failure-policy"
    _stop_runs(w, background_too=True)
    w.stable = rev
    w.canary = None
    _clear_rollout_progress(w)
    shown = 0  # Argo: a finished rollout shows N/N, its implicit steps not counted
    for st in w.plan.steps:
        if not st.implicit:
            shown += 1
    w.step_index = shown
    w.rollback = None
    w.degraded = w.desired != rev
    _history_touch(w, rev, "live", reached_live=True)
    if w.desired is not None and w.desired != rev:
        _history_status(w, w.desired, "rolled-back")
    fire(w, "finish")
    w.notify("rollout-finished", revision=rev, recordedFailures=list(w.recorded_failures))
    if rolled_back:
        w.notify("rollout-rolled-back", revision=rev, reason=w.failure_reason)
    if w.next_plan is not None:
        w.plan = w.next_plan
        w.next_plan = None


def _rolled_back(w: _W) -> None:
    assert w.rollback is not None
    target = w.rollback.target
    reason = w.rollback.reason
    w.stable = target
    w.canary = None
    w.canary_weight = 0
    w.rollback = None
    w.waiting_since = None
    w.degraded = w.desired != target
    _history_touch(w, target, "live", reached_live=True)
    fire(w, "rolled_back")
    w.notify("rollout-rolled-back", revision=target, reason=reason)
    if w.next_plan is not None:
        w.plan = w.next_plan
        w.next_plan = None


# ---------------------------------------------------------------------------------------------------
# the advance loop: run due timers, steps and verdicts until nothing more can happen at `now`
# ---------------------------------------------------------------------------------------------------


def _advance(w: _W) -> bool:
    """Run :func:`_advance_once` until nothing more happens, then ask for the measurements due. True when
    the loop came to rest: its last pass changed nothing, so another pass over the same inputs would not
    either (the passes that change nothing only restart the deadline clock, idempotently). Asking for
    measurements changes no input of a pass: it puts metrics in flight until a timeout after ``now``,
    which no verdict reads and which keeps the runs' marks (:func:`_replace_runs`)."""
    for _ in range(_MAX_ITERATIONS):
        progress = _advance_once(w)
        if progress == _MOVED:
            continue
        if not _start_background(w):  # nothing changed, or the pass left the loop at rest (_RESTED)
            _issue_measurements(w)
            return True
    _issue_measurements(w)
    return False


#: what an advance pass did: nothing (False); something, so the loop goes on (True); or something after
#: which the next pass is known to change nothing, so the loop is at rest without it (:func:`_verify`)
_MOVED, _RESTED = 1, 2


def _advance_once(w: _W) -> int:
    """One unit of progress: True (:data:`_MOVED`) when something changed and the loop should go on,
    :data:`_RESTED` when something changed and another pass would not, False when nothing changed."""
    now = w.now
    # measurements that never came back count as errors; runs unchanged since they were last found with
    # nothing expired and judged need neither check (the marks of :func:`_expire_measurements`)
    runs = w.verifications
    if (runs is not w.unexpired or runs is not w.judged[0] or w.plan is not w.judged[1]) and (
        _expire_measurements(w)
    ):
        return True
    # progress deadline: replicas never became ready
    if w.waiting_since is not None and now >= w.waiting_since + w.plan.progress_deadline:
        w.waiting_since = None
        if w.phase == "rolling-back" and w.rollback is not None:
            target = w.rollback.target
            w.failure_reason = (
                f"rollback target {target} not ready within progressDeadlineSeconds "
                f"({w.plan.progress_deadline:g}s)"
            )
            fire(w, "rollback_failed")
            w.notify("rollout-failed-to-roll-back", reason=w.failure_reason, revision=target)
            return True
        if w.phase in ROLLOUT_PHASES:
            _failure(
                w,
                f"ProgressDeadlineExceeded: revision {w.canary} not ready within "
                f"progressDeadlineSeconds ({w.plan.progress_deadline:g}s)",
                deadline=True,
            )
            return True
    if w.phase == "rolling-back":
        return _advance_rollback(w)
    if w.phase == "verifying":
        return _advance_verifying(w)
    if w.phase == "in-progress":
        return _advance_in_progress(w)
    if w.phase == "paused" and w.pause_reason != "manual":
        if w.pause_until is not None and now >= w.pause_until:
            # a timed pause step ran out: the rollout moves on to the next step
            w.pause_reason = None
            w.pause_until = None
            fire(w, "resume")
            return _next_step(w)
        _check_canary_ready(w)  # a canary losing its pods while paused still runs the deadline clock
    return False


def _advance_rollback(w: _W) -> bool:
    assert w.rollback is not None
    target = w.rollback.target
    want = w.plan.replicas
    ready = w.ready.get(target, 0)
    if ready >= want and _desired_weights(w) == {target: 100}:
        _rolled_back(w)
        return True
    if ready < want:
        if w.waiting_since is None:
            w.waiting_since = w.now
    else:
        w.waiting_since = None
    return False


def _advance_verifying(w: _W) -> bool:
    st = _current_step(w)
    if st is None or st.kind != "verification":
        fire(w, "verified")
        return True
    running = False  # a phase run has no verdict yet
    passed = True  # every phase run is Successful
    for r in w.verifications:
        if not r.background:
            running = running or r.phase not in ver.TERMINAL
            passed = passed and r.phase == "Successful"
    if running:
        _check_canary_ready(w)
        return False
    # every phase run ended: the failure path already moved us unless the policy is promote
    if passed or w.plan.failure_action == "promote":
        _stop_runs(w, background_too=False)
        w.step_index += 1
        w.step_started_at = w.now
        fire(w, "verified")
        return True
    return False


def _advance_in_progress(w: _W) -> int:
    steps = w.plan.steps
    if w.canary is None:
        return False
    if w.step_index >= len(steps):
        # the end: the canary takes everything once it is fully ready
        if _wait_ready(w, w.plan.replicas):
            w.canary_weight = 100
            _finish(w)
            return True
        return False
    st = steps[w.step_index]
    if st.kind == "setWeight":
        weight = st.weight or 0
        cw = w.canary_weight
        target = weight if weight > cw else cw  # (max, without a call: every setWeight pass asks)
        ready = _wait_ready(w, _canary_replicas_for(w, target))
        if ready and (w.plan.traffic_router or _stable_settled(w, target)):
            if weight > w.canary_weight:
                w.canary_weight = weight
                _send_step_weight(w, w.origin)
            return _next_step(w)
        return False
    if st.kind == "setCanaryScale":
        w.canary_scale_replicas = st.replicas
        w.canary_scale_weight = st.weight
        if st.match_traffic_weight:
            w.canary_scale_replicas = None
            w.canary_scale_weight = None
        if _wait_ready(w, _canary_replicas(w)):
            return _next_step(w)
        return False
    if st.kind == "pause":
        _check_canary_ready(w)
        if st.duration is None:
            if w.initiator == "failure-policy":
                # a newRollout rollback does not wait for a person while a failed revision serves traffic
                return _next_step(w)
            _pause(w, "pause-step", f"indefinite pause at step {w.step_index}")
            return True
        # a timed pause shows as paused (reason pause-step, with its end time), as Argo and Ocean CD show it
        until = w.step_started_at + st.duration
        if w.now >= until:
            return _next_step(w)
        _pause(w, "pause-step", f"pause of {st.duration:g}s at step {w.step_index}")
        w.pause_until = until
        return True
    if st.kind == "verification":
        return _verify(w, st)
    if (
        st.kind in ("setHeaderRoute", "setMirrorRoute")
        and st.header_route is not None
        and w.plan.traffic_router
    ):
        route = st.header_route
        routes = tuple(r for r in w.header_routes if r.name != route.name)
        w.header_routes = routes + ((route,) if route.matches or route.request_matches else ())
        return _next_step(w)
    return _next_step(w)


def _verify(w: _W, st: StepPlan) -> int:
    """A verification step begins: its runs start, and the rollout verifies.

    The pass that would follow changes nothing but the deadline clock, so it need not run (:data:`_RESTED`)
    when every run began and has a metric. That pass runs at the same ``now`` on: the runs of this pass's
    start, less some, each judged and found with nothing expired then (this pass's first check, or the
    marks it relied on), plus the new runs, whose metrics are not in flight (nothing can expire) and whose
    verdict is Running with no message (a metric still counting: their very phase and message); the
    waiting clock and the plan the deadline check read at the start of this pass; the same verification
    step. So it expires, judges and fails nothing, finds a phase run still running in
    :func:`_advance_verifying`, and does only what that does then: :func:`_check_canary_ready`, done here.
    A run without a metric is judged Successful at once, and a step whose templates are all missing
    starts no run: then the next pass moves on, and runs."""
    fire(w, "verify")
    rested = bool(st.templates)
    for name in st.templates:
        run = _begin_run(w, name, background=False)
        rested = rested and run is not None and bool(run.metrics)
    if not rested:
        return True
    _check_canary_ready(w)
    return _RESTED


def _next_step(w: _W) -> bool:
    w.step_index += 1
    w.step_started_at = w.now
    w.waiting_since = None
    return True


def _awaited(w: _W) -> str | None:
    if w.phase == "rolling-back" and w.rollback is not None:
        return w.rollback.target
    return w.canary


def _wait_ready(w: _W, want: int) -> bool:
    """True when the canary has `want` ready replicas; otherwise start the progress-deadline clock."""
    if w.ready.get(w.canary or "", 0) >= want:
        w.waiting_since = None
        return True
    if w.waiting_since is None:
        w.waiting_since = w.now
    return False


def _check_canary_ready(w: _W) -> None:
    """While pausing or verifying, a canary that lost its ready replicas runs the deadline clock."""
    want = _canary_replicas(w)
    if w.ready.get(w.canary or "", 0) >= want:
        w.waiting_since = None
    elif w.waiting_since is None:
        w.waiting_since = w.now


def _expire_measurements(w: _W) -> bool:
    """Measurements that never came back count as errors; then every run is judged on all the results
    that completed in this decision together. True when anything changed."""
    expired = False
    if w.verifications is not w.unexpired:
        for run in w.verifications:
            if run.phase in ver.TERMINAL:
                continue
            for st in run.metrics:
                if st.in_flight and st.next_at is not None and w.now >= st.next_at:
                    timeout = ver.expired(w.plan.templates.get(run.template), run.id, st.name)
                    _on_measurement(w, timeout)
                    expired = True
        if not expired:
            w.unexpired = w.verifications
    return _judge_runs(w) or expired


def _issue_measurements(w: _W) -> None:
    if not w.verifications:
        return  # no run: nothing to measure (the common case between verification steps)
    runs, effects = issue_measurements(
        w.verifications, w.plan, w.phase, w.pause_reason, w.canary, w.stable, w.now
    )
    if runs is not None:
        _replace_runs(w, runs)
        w.effects += effects


# ---------------------------------------------------------------------------------------------------
# the desired world: replicas and traffic, and the effects that move the world there
# ---------------------------------------------------------------------------------------------------


def _canary_replicas_for(w: _W, weight: int) -> int:
    plan = w.plan
    n = plan.replicas
    if weight >= 100:
        return n  # a full promotion scales the canary to the whole workload, whatever setCanaryScale said
    if not plan.traffic_router:
        return basic_canary_counts(n, weight, plan.max_surge)[0]  # the weight is the pod ratio
    if w.canary_scale_replicas is not None:
        return min(n, w.canary_scale_replicas)
    if w.canary_scale_weight is not None:
        weight = w.canary_scale_weight
    return -(-n * weight // 100)  # (:func:`ceil_pct` in integers, no call: tests/core/test_ceil_pct.py)


def _target_weight(w: _W) -> int:
    """The canary weight the replicas are sized for: the running setWeight step's, 100 after the last."""
    weight = w.canary_weight
    if w.phase != "in-progress":
        return weight
    steps, i = w.plan.steps, w.step_index
    if i < 0 or i >= len(steps):  # (:func:`_current_step`, inlined: this runs on every settle pass)
        return 100
    st = steps[i]
    step_weight = st.weight
    if step_weight is not None and step_weight > weight and st.kind == "setWeight":
        return step_weight
    return weight


def _canary_replicas(w: _W) -> int:
    return _canary_replicas_for(w, _target_weight(w))


def _stable_settled(w: _W, weight: int) -> bool:
    """Basic canary: the step's weight is reached only when the stable is down to its share of pods (and
    older revisions are gone), not only when the canary's pods are ready. Always true with a router."""
    if w.plan.traffic_router or w.stable is None or w.stable == w.canary:
        return True
    want = basic_canary_counts(w.plan.replicas, weight, w.plan.max_surge)[1]
    others = any(n > 0 for r, n in w.replicas.items() if r not in (w.canary, w.stable))
    settled = w.replicas.get(w.stable, 0) == want and w.ready.get(w.stable, 0) >= want and not others
    if not settled and w.waiting_since is None:
        w.waiting_since = w.now
    return settled


def _share(w: _W, rev: str) -> int:
    """The traffic share a revision's ready replicas can carry. Knowledge, not hope: a revision the
    engine has not seen ready (never observed, or scaled to zero and forgotten) can carry nothing."""
    n = w.plan.replicas
    if n <= 0:
        return 100
    share = (100 * w.ready.get(rev, 0)) // n
    return share if share < 100 else 100


def _desired_replicas(w: _W) -> dict[str, int]:
    n = w.plan.replicas
    out: dict[str, int] = {}
    phase = w.phase
    if phase == "failed":
        # resting failure (nothing to roll back to, or the rollback itself failed): freeze the world as it
        # is until a person acts; scaling down a revision that still serves traffic would only hurt
        return {r: c for r, c in w.replicas.items() if c > 0}
    if not w.plan.traffic_router:
        return _basic_replicas(w)
    if phase == "rolling-back" and w.rollback is not None:
        out[w.rollback.target] = n
        for rev, count in w.replicas.items():
            if rev != w.rollback.target and w.weights.get(rev, 0) > 0:
                out[rev] = count  # still serving: keep it until the target carries its share
    elif w.canary is not None and phase in ROLLOUT_PHASES:
        _rollout_replicas(w, out)
    elif w.stable is not None:
        out[w.stable] = n
    # revisions no longer wanted scale down after their delay, not at once
    scale_downs = w.scale_downs
    for rev, count in w.replicas.items():
        if rev in out or count <= 0:
            continue
        due = scale_downs.get(rev)
        if due is None:
            delay = w.plan.abort_scale_down_delay if _was_aborted(w, rev) else w.plan.scale_down_delay
            due = w.now + delay
            scale_downs[rev] = due
        if w.now < due:
            out[rev] = count
        else:
            del scale_downs[rev]
    if w.scale_downs:  # (with none scheduled there is nothing to forget or to limit)
        for rev in list(w.scale_downs):
            if (rev in out and rev not in w.replicas) or rev not in w.replicas:
                del w.scale_downs[rev]
        for rev in [
            r for r in w.scale_downs if r in (w.stable, w.canary) or (w.rollback and r == w.rollback.target)
        ]:
            del w.scale_downs[rev]
        _limit_delayed_scale_downs(w, out)
    for count in out.values():  # (:func:`positive`, inlined: this runs on every settle pass that sizes)
        if count <= 0:
            return {r: c for r, c in out.items() if c > 0}
    return out


def _rollout_replicas(w: _W, out: dict[str, int]) -> None:
    """With a router, during a rollout: the canary's and the stable's counts, and every other revision
    that still serves keeps what it runs (``out`` starts empty)."""
    canary = w.canary or ""
    weights = w.weights
    replicas = w.replicas
    failure = w.initiator == "failure-policy"
    count = _canary_replicas_for(w, _target_weight(w))  # (:func:`_canary_replicas`, one call fewer)
    if failure or weights.get(canary, 0) > w.canary_weight:
        # a newRollout rollback: the last good revision keeps the replicas it has while it climbs,
        # and the failed one shrinks with its share of traffic; likewise a canary that still carries
        # more than its step's weight (the stable cannot take it yet) keeps its pods meanwhile
        count = max(count, replicas.get(canary, 0))
    out[canary] = count
    stable = w.stable
    if stable is not None and stable != canary:
        n = w.plan.replicas
        if failure:
            # the failed revision shrinks with its share, but keeps its ready pods for what it still
            # serves (the target of the rollback may have none yet)
            share = 100 - w.canary_weight
            if w.ready.get(stable, 0) > 0:
                share = max(share, weights.get(stable, 0))
            out[stable] = ceil_pct(n, share)
        elif w.plan.dynamic_stable_scale:
            out[stable] = max(ceil_pct(n, 100 - w.canary_weight), 0)
        else:
            out[stable] = n
    for rev, count in replicas.items():
        if rev not in out and weights.get(rev, 0) > 0:
            out[rev] = count


def _limit_delayed_scale_downs(w: _W, out: dict[str, int]) -> None:
    """Argo's ``scaleDownDelayRevisionLimit``: at most that many revisions that serve nothing wait for their
    scale-down delay; those due first are scaled down now."""
    limit = w.plan.scale_down_delay_revision_limit
    if limit is None or len(w.scale_downs) <= limit:
        return
    waiting = sorted(
        (due, rev) for rev, due in w.scale_downs.items() if rev in out and not w.weights.get(rev)
    )
    for _, rev in waiting[: max(0, len(waiting) - limit)]:
        del out[rev]
        del w.scale_downs[rev]


def _basic_targets(w: _W) -> tuple[dict[str, int], tuple[str, ...]]:
    """Basic canary: the pods each revision ends with (others end with none), and who gives pods first."""
    n = w.plan.replicas
    if w.phase == "rolling-back" and w.rollback is not None:
        return {w.rollback.target: n}, ()
    if w.canary is not None and w.phase in ROLLOUT_PHASES:
        if w.stable is None or w.stable == w.canary:
            return {w.canary: n}, ()
        canary, stable = basic_canary_counts(n, _target_weight(w), w.plan.max_surge)
        return positive({w.canary: canary, w.stable: stable}), (w.stable,)
    if w.stable is not None:
        return {w.stable: n}, ()
    return {}, ()


def _basic_replicas(w: _W) -> dict[str, int]:
    """Basic canary: move the pods towards their targets within the maxSurge / maxUnavailable budget (no
    scale-down delays: in Argo they apply only with a traffic router)."""
    w.scale_downs.clear()
    targets, givers = _basic_targets(w)
    leaving = tuple(r for r in w.replicas if r not in targets)
    return basic_canary_scale(
        w.replicas,
        w.ready,
        targets,
        replicas=w.plan.replicas,
        max_surge=w.plan.max_surge,
        max_unavailable=w.plan.max_unavailable,
        down_first=leaving + givers,
        up_first=tuple(targets),
    )


def _basic_weights(w: _W) -> dict[str, int]:
    """Basic canary: the split is what the ready pods give (a Service balances over all of them alike);
    with no ready pod anywhere the split stays as it was."""
    order = [r for r in (w.stable, w.canary) if r is not None] + sorted(w.replicas)
    ready = {r: min(w.ready.get(r, 0), n) for r, n in w.replicas.items()}
    return pod_ratio(ready, dict.fromkeys(order)) or dict(w.weights)


def _was_aborted(w: _W, rev: str) -> bool:
    rec = w.record(rev)
    return rec is not None and rec.status in ("failed", "rolled-back", "superseded")


def _desired_weights(w: _W) -> dict[str, int]:
    prev = w.weights
    if w.phase == "failed" and prev:
        return _clamp_unready(w, dict(prev), first=w.stable or next(iter(prev)))
    if not w.plan.traffic_router:
        return _basic_weights(w)
    if w.phase == "rolling-back" and w.rollback is not None:
        target = w.rollback.target
        desired = {target: 100}
        caps = {target: _share(w, target)}
    elif w.canary is not None and w.stable is not None and w.phase in ROLLOUT_PHASES:
        canary, stable = w.canary, w.stable
        cw = w.canary_weight if canary != stable else 0
        desired = {stable: 100 - cw, canary: cw} if cw else {stable: 100}
        # the stable takes back no more than its ready pods carry (it may have none: scaled down by
        # dynamicStableScale, or the last successful revision a superseding deploy or a retry goes back to)
        n = w.plan.replicas  # (:func:`_share` of the stable, inlined: this runs on every settle pass)
        share = 100 if n <= 0 else (100 * w.ready.get(stable, 0)) // n
        caps = {stable: share if share < 100 else 100}
        if w.initiator == "failure-policy" and _others_carry(w, canary):
            # a newRollout rollback starts its target at the share the failed revision left, assuming the
            # target serves it; when it does not (its pods are gone, another revision carried that share),
            # the target takes only what its ready pods carry and the rest stays where it is
            caps[canary] = _share(w, canary)
        return _clamp_unready(w, split(desired, prev, caps), stable, desired)
    elif w.stable is not None:
        desired = {w.stable: 100}
        # live: the stable revision reached live with its replicas ready; it serves everything
        caps = {}
    else:
        return {}
    out = split(desired, prev, caps)
    return _clamp_unready(w, out, first=next(iter(desired)), fallback=desired)


def _others_carry(w: _W, rev: str) -> bool:
    """Some revision other than ``rev`` serves traffic now with ready pods."""
    return any(v > 0 and r != rev and not _has_no_pods(w, r) for r, v in w.weights.items())


def _clamp_unready(
    w: _W, weights: dict[str, int], first: str, fallback: dict[str, int] | None = None
) -> dict[str, int]:
    """Never route traffic to a revision with no ready replicas while another one has some.

    A revision has no ready replicas when it was observed with none, or when it runs none (scaled to
    zero). A serving revision that was never observed (the first revision, live at once) keeps its
    traffic: nothing is known to be better. When every candidate is known to have no pods, keeping the
    traffic where it was protects nothing: it goes where the rollout wants it (``fallback``), so that a
    preview or a failed revision does not keep production traffic only because everything is down."""
    ready, replicas = w.ready, w.replicas  # _has_no_pods, inlined: this runs on every settle pass
    for r, v in weights.items():
        if v > 0 and (ready.get(r) == 0 or (r not in ready and replicas.get(r, 0) <= 0)):
            break
    else:
        return weights  # the common case: every revision that serves has pods
    dead = [r for r, v in weights.items() if v > 0 and _has_no_pods(w, r)]
    alive = [r for r in weights if r not in dead] or [r for r in (first,) if not _has_no_pods(w, r)]
    if not alive:
        return positive(fallback) if fallback is not None else weights
    out = dict(weights)
    moved = sum(out.pop(r) for r in dead)
    receiver = first if first in alive else alive[0]
    out[receiver] = out.get(receiver, 0) + moved
    return out


def _has_no_pods(w: _W, rev: str) -> bool:
    """Known to have no ready replicas: observed with none, or running none."""
    ready = w.ready.get(rev)
    return ready == 0 or (ready is None and w.replicas.get(rev, 0) <= 0)


def _effective_routes(
    routes: tuple[HeaderRoutePlan, ...], canary: str | None, ready: dict[str, int]
) -> tuple[HeaderRoutePlan, ...]:
    """Header routes go to the canary only while it has ready replicas."""
    if routes and (canary is None or ready.get(canary, 0) <= 0):
        return ()
    return routes


#: what a settle moved (:func:`_settle_world`): nothing, the weights or replicas only, or the observations
#: too (forgotten or clipped)
_NOTHING_MOVED, _WORLD_MOVED, _OBSERVATIONS_MOVED = 0, 1, 3


def _passes_read_no_world(w: _W) -> bool:
    """No advance pass reads the weights or the replicas: with a traffic router, during a rollout. Its
    guards read the step, the canary's ready pods (:func:`_wait_ready`, :func:`_check_canary_ready`, whose
    counts come from the plan and the step), the runs and the deadline clock; only a rollback reads the
    weights (:func:`_advance_rollback`) and only a basic canary the replicas (:func:`_stable_settled`). So
    after a pass that changed nothing, a settle that moved only the weights or replicas leaves every guard
    of the next pass as it was: that pass would change nothing either, and need not run."""
    return w.plan.traffic_router and w.phase in ROLLOUT_PHASES


def _settle_world(w: _W, clip: bool = True, remember: bool = False) -> int:
    """Weights, replicas and kept observations depend on each other (a capacity-limited split depends on
    the previous split; replicas keep a revision that still serves; observations are kept only for
    revisions we run or route to). Iterate to their joint fixpoint, so that a Tick at the same ``now``
    finds nothing to change. ``clip``: a revision asked for fewer pods than last seen ready has at most
    that many (not for the intermediate world of one step, which a later step of the same decision may
    scale back up). What it moved: :data:`_WORLD_MOVED` when it changed the weights or the replicas,
    :data:`_OBSERVATIONS_MOVED` when the kept observations too, else :data:`_NOTHING_MOVED` (delayed
    scale-downs it may schedule are read by no step of the advance loop).

    A pass evaluates only the side whose inputs moved (the module docstring, "The settle", proves it):
    with a traffic router the weights are evaluated again only when the kept observations or the set of
    running revisions never observed changed (:func:`_weight_facts`), the replicas only when what they
    read of the weights and observations changed (:func:`_same_basis`). The first pass takes the weights
    as they are when a step's own settle (``remember``) left them at their fixpoint and what they read
    besides the world is unchanged since (:func:`_weights_inputs`), and the replicas too when what only
    they read is unchanged as well (:func:`_replicas_inputs`); it still checks the kept observations, which
    this settle may clip where the step's did not. With no step's settle to go by, the first pass takes the
    weights as they are when nothing they read moved since the decision began (:func:`_weights_as_found`)."""
    moved = _NOTHING_MOVED
    router = w.plan.traffic_router
    mark, w.weights_for = w.weights_for, None
    # w.weights (w.replicas) are the weights' (replicas') own output when what they read is unchanged
    if mark is not None:
        weights_fresh = mark == _weights_inputs(w)
        replicas_fresh = weights_fresh and w.replicas_for == _replicas_inputs(w)
    else:
        weights_fresh = router and _weights_as_found(w)
        replicas_fresh = False
    read_weights = w.weights  # the weights the replicas last read, and the base readiness
    read_base = replicas_fresh and w.initiator == "failure-policy" and _base_ready(w)
    for _ in range(8):
        weights = w.weights if weights_fresh else _desired_weights(w)
        if replicas_fresh:
            replicas = w.replicas
        else:
            read_weights, read_base = w.weights, w.initiator == "failure-policy" and _base_ready(w)
            replicas = _desired_replicas(w)
        # the kept observations stay as they are for this world: every observed revision still runs or
        # serves, and (``clip``) none was seen with more ready pods than it is now asked for
        kept = True
        for rev, seen in w.ready.items():  # (a loop here, not a call: once per pass)
            if (rev not in replicas and rev not in weights) or (clip and seen > replicas.get(rev, 0)):
                kept = False
                break
        if kept and weights == w.weights and replicas == w.replicas:
            break
        moved |= _WORLD_MOVED
        weights_fresh = (
            router
            and kept
            and (replicas == w.replicas or _weight_facts(w, replicas) == _weight_facts(w, w.replicas))
        )
        w.weights = weights
        w.replicas = replicas
        if not kept:
            moved = _OBSERVATIONS_MOVED
            _forget_and_clip(w.ready, weights, replicas, clip)
        replicas_fresh = router and _same_basis(w, read_weights, read_base)
        if weights_fresh and replicas_fresh:
            break  # this pass left nothing either side reads moved: its world is the fixpoint
    else:
        return moved  # (no fixpoint within the passes: nothing to remember)
    if remember and router:
        w.weights_for = _weights_inputs(w)
        w.replicas_for = _replicas_inputs(w)
    return moved


def _weights_inputs(w: _W) -> tuple[object, ...]:
    """What the weights read besides the world (the weights, replicas and observations): with a router,
    the plan, the canary and its weight, the stable, the initiator, the rollback and which branch of
    :func:`_desired_weights` the phase takes (the rollout phases read alike). Between two settles of one
    decision nothing but a settle writes the world (the event is applied before the first), so weights a
    settle left at their fixpoint are the fixpoint again for the same inputs."""
    phase = w.phase
    return (
        w.plan,
        "rollout" if phase in ROLLOUT_PHASES else phase,
        w.canary,
        w.canary_weight,
        w.stable,
        w.initiator,
        w.rollback,
    )


def _weights_as_found(w: _W) -> bool:
    """The weights are those of the state the decision started from, for the same world and inputs (those
    of :func:`_weights_inputs`, compared one by one, the likeliest to differ first). That state is a
    fixpoint (every decision is one, and only time moves between decisions: the short path rests on it
    too), its weights the weights' own output, and the weights do not read the time."""
    s = w.origin
    phase = w.phase
    return (
        w.canary_weight == s.canary_weight
        and w.ready == s.ready
        and w.weights == s.weights
        and w.replicas == s.replicas
        and (phase == s.phase or (phase in ROLLOUT_PHASES and s.phase in ROLLOUT_PHASES))
        and w.canary == s.canary
        and w.stable == s.stable
        and w.plan is s.plan
        and w.initiator == s.initiator
        and w.rollback == s.rollback
    )


def _replicas_inputs(w: _W) -> tuple[object, ...]:
    """What the replicas read besides the world and :func:`_weights_inputs`: the canary's count (the
    step's target weight, a setCanaryScale's fields; tests/core/test_settle_marks.py moves each) and the
    history (an aborted revision's scale-down delay; today it moves within an advance loop only with the
    phase, canary or rollback, but the mark does not rest on that). The delayed scale-downs and ``now`` need
    no mark: within a decision ``now`` is fixed, and besides a settle only a new rollout or rollback writes
    the scale-downs (dropping its canary's or target's), and those move the history or the rollback."""
    return (_target_weight(w), w.canary_scale_replicas, w.canary_scale_weight, w.history)


def _forget_and_clip(
    ready: dict[str, int], weights: dict[str, int], replicas: dict[str, int], clip: bool
) -> None:
    """Forget the observations of revisions that neither run nor serve (bounded state; a forgotten revision
    has no ready capacity, see :func:`_share`), and (``clip``) count no more ready pods than are asked for."""
    for rev in [r for r in ready if r not in replicas and r not in weights]:
        del ready[rev]
    if clip:
        for rev, seen in ready.items():
            if seen > replicas.get(rev, 0):
                ready[rev] = replicas.get(rev, 0)


def _weight_facts(w: _W, replicas: dict[str, int]) -> list[str]:
    """What the weights read of the replicas (with a router): which running revisions were never observed
    (:func:`_has_no_pods`)."""
    ready = w.ready
    return [r for r, n in replicas.items() if n > 0 and r not in ready]


def _base_ready(w: _W) -> bool:
    """A newRollout rollback's base (the failed revision) has ready pods."""
    return w.initiator == "failure-policy" and w.stable is not None and w.ready.get(w.stable, 0) > 0


def _same_basis(w: _W, weights: dict[str, int], base_ready: bool) -> bool:
    """The replicas read the same of the current weights and observations as of ``weights`` with
    ``base_ready``: which revisions serve, whether the canary serves more than its step's weight, and for
    a newRollout rollback whether its base has ready pods and what it serves."""
    now = w.weights
    if now == weights:  # (a C comparison, often of the very same dict): the same weights read the same
        return (w.initiator == "failure-policy" and _base_ready(w)) == base_ready
    if [r for r, v in now.items() if v > 0] != [r for r, v in weights.items() if v > 0]:
        return False
    canary, cw = w.canary or "", w.canary_weight
    if (now.get(canary, 0) > cw) != (weights.get(canary, 0) > cw):
        return False
    stable = w.stable or ""
    return _base_ready(w) == base_ready and (not base_ready or now.get(stable, 0) == weights.get(stable, 0))


def _emit_world(w: _W, old: RolloutState) -> None:
    """Emit the effects that move the world from what was last sent to what ``w`` wants now: scale-ups
    first, then the traffic split, then scale-downs (so traffic never points at pods not asked for)."""
    if w.sent is None:
        sent_weights, sent_replicas = old.weights, old.replicas
        sent_routes = old.header_routes and _effective_routes(old.header_routes, old.canary, old.ready)
    else:
        sent_weights, sent_replicas, sent_routes = w.sent
    routes = w.header_routes and _effective_routes(w.header_routes, w.canary, w.ready)  # () when none
    scaled = w.replicas != sent_replicas  # equal replica counts scale nothing up or down
    if not scaled and routes == sent_routes and w.weights == sent_weights:
        w.sent = (w.weights, w.replicas, routes)  # nothing moved: no effect (the common final emit)
        return
    effects: list[Effect] = []
    if scaled:
        effects += [_scale(r, n) for r, n in w.replicas.items() if n > sent_replicas.get(r, 0)]
    if w.weights != sent_weights or routes != sent_routes:
        revision = w.canary if routes else None
        effects.append(_traffic(dict(w.weights), routes, revision))
    if scaled:
        effects += [
            _scale(r, w.replicas.get(r, 0)) for r, n in sent_replicas.items() if w.replicas.get(r, 0) < n
        ]
    if effects:
        w.effects[w.world_at : w.world_at] = effects
        w.world_at += len(effects)
    w.sent = (w.weights, w.replicas, routes)  # replaced by the settle, never mutated in place


def _send_step_weight(w: _W, old: RolloutState) -> None:
    """A setWeight step completed: its weight goes out as its own SetTraffic before the next step begins,
    so a router sees every step's weight (1, 2, 10, ...), not only the last of a run of steps."""
    _settle_world(w, clip=False, remember=True)
    _emit_world(w, old)


# ---------------------------------------------------------------------------------------------------
# revision history
# ---------------------------------------------------------------------------------------------------


def _history_touch(w: _W, rev: str, status: RevisionStatus, reached_live: bool | None) -> None:
    """Record a revision's status. History is ordered by when revisions last reached live (new
    revisions are appended), so "the last successful revision" is the last record that reached live."""
    old = w.record(rev)
    if old is not None and not reached_live:
        _history_status(w, rev, status)
        return
    live = bool(reached_live) or (old is not None and old.reached_live)
    rec = _record(rev, status, live)
    w.history = (*(r for r in w.history if r.revision != rev), rec)


def _history_status(w: _W, rev: str, status: RevisionStatus) -> None:
    w.history = tuple(evolve(r, status=status) if r.revision == rev else r for r in w.history)


def _history_trim(w: _W) -> None:
    n = len(w.history)
    if n <= 1 or n <= w.plan.revision_history_limit:
        return  # (within max(1, limit), without a call: every full decision asks)
    limit = max(1, w.plan.revision_history_limit)
    keep = {w.stable, w.canary, w.desired}
    if w.rollback is not None:
        keep.add(w.rollback.target)
    history = list(w.history)
    i = 0
    while len(history) > limit and i < len(history):
        if history[i].revision in keep:
            i += 1
            continue
        del history[i]
    w.history = tuple(history)
