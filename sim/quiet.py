"""Observations that only repeat what the engine knows, answered without asking it.

When the engine scales a revision, the memory cluster reports the new desired count at once, in the same
instant: ``ReplicasObserved(desired=2, ready=1)`` right after the decision that asked for 2 pods. Of an
observation the engine keeps only the ready count (``docs/semantics.md``: a revision it has not seen ready has
ready capacity 0; the desired and failed counts are the cluster's business), and only for a revision it still
tracks: one it scales, routes traffic to or keeps a ready count of. A revision it has scaled to zero and let
go of has its observations forgotten (``docs/semantics.md``, "Knowledge, not hope"), which keeps the state
bounded. So an observation tells the engine nothing when

- the state already holds that ready count for the revision, or
- the revision is in none of the state's ``replicas``, ``weights`` and ``ready`` (the old stable revision
  reported at zero pods after the decision that let it go),

and then it is a Tick in disguise. Every decision is a fixpoint (``docs/semantics.md``: stepping its state
again with a Tick at the same ``now`` changes nothing, ``tests/core/test_contract.py``), and the engine is
deterministic, so such an observation, at the instant of the decision that made the state, is decided in
advance: the same state, no effects, the same ``wake_at``. In the benchmark's scenario that is 5 of the 31
events of a run (one per scale-up, one for the old stable revision at the end).

:func:`quiet` wraps a step function with that answer. It keeps the state, the time and the ``wake_at`` of the
last decision it passed on; such an observation, handed over with that very state at that very time, gets
``Decision(state, (), wake_at)``; every other call goes to the wrapped step (or first to the decisions a
:class:`~ebbtide.sim.prefix.Prefix` shares, while the run follows them: one wrapper, not two, per call).
Nothing else changes: the driver still counts and applies the event, the tracker still sees the decision.
``tests/sim/test_quiet.py`` checks each answer against the engine's own on every example scenario, and
``tests/sim/test_golden_runs.py`` pins the runs.
"""

from __future__ import annotations

from collections.abc import Callable

from ebbtide.core.events import Event, ReplicasObserved
from ebbtide.core.state import Decision, RolloutState

StepFn = Callable[[RolloutState, Event, float], Decision]
#: a step function that answers some calls and returns None for the first one it cannot answer
Answers = Callable[[RolloutState, Event, float], Decision | None]


def tells_nothing(state: RolloutState, event: ReplicasObserved) -> bool:
    """The observation repeats the ready count the state holds, or is of a revision the state lets go of."""
    revision = event.revision
    ready = state.ready.get(revision)
    if ready is not None:
        return ready == event.ready
    return revision not in state.replicas and revision not in state.weights


def quiet(step: StepFn, first: Answers | None = None) -> StepFn:
    """``step``, answering the observations that tell the engine nothing at the same instant itself.

    ``first``, when given, answers the calls of the run that it can (a :class:`~ebbtide.sim.prefix.Prefix`'s
    shared decisions) before ``step`` is asked; the first time it cannot (it returns None), it is dropped, and
    every later call goes to ``step`` directly (one call fewer per event for the rest of the run).
    """
    last: RolloutState | None = None
    last_now = 0.0
    last_wake: float | None = None
    shared = first

    def quiet_step(state: RolloutState, event: Event, now: float) -> Decision:
        nonlocal last, last_now, last_wake, shared
        if (
            type(event) is ReplicasObserved
            and state is last
            and now == last_now
            and tells_nothing(state, event)
        ):
            return Decision(state=state, effects=(), wake_at=last_wake)
        if shared is None:
            decision = step(state, event, now)
        else:
            answer = shared(state, event, now)
            if answer is None:
                shared = None
                answer = step(state, event, now)
            decision = answer
        last = decision.state
        last_now = now
        last_wake = decision.wake_at
        return decision

    return quiet_step
