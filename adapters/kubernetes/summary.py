"""What the workload's status shows people: the printer columns' fields, a summary and the conditions,
all derived from the engine state (the state itself is ``status.engineState``)."""

from __future__ import annotations

from typing import Any

from ebbtide.core.state import RolloutState

Obj = dict[str, Any]


def weights_text(weights: dict[str, int]) -> str:
    return " ".join(f"{r}={w}" for r, w in sorted(weights.items()))


def summary_of(state: RolloutState) -> Obj:
    """The status fields a person reads: phase, step, weights, revisions, ready/desired, rollback, failure."""
    total = len(state.plan.steps)
    revisions = sorted(set(state.replicas) | set(state.ready))
    summary: Obj = {
        "revisions": [
            {"revision": r, "desired": state.replicas.get(r, 0), "ready": state.ready.get(r, 0)}
            for r in revisions
        ],
    }
    if state.rollback is not None:
        summary["rollback"] = {
            "target": state.rollback.target,
            "source": state.rollback.source,
            "reason": state.rollback.reason,
            "mode": state.rollback.mode,
        }
    if state.failure_reason:
        summary["failureReason"] = state.failure_reason
    out: Obj = {
        "phase": state.phase,
        "step": f"{min(state.step_index, total)}/{total}" if state.canary else "",
        "weights": weights_text(state.weights),
        "stableRevision": state.stable or "",
        "canaryRevision": state.canary or "",
        "message": _message(state),
        "replicas": sum(state.replicas.values()),
        "summary": summary,
    }
    return out


def _message(state: RolloutState) -> str:
    parts = [state.phase + (" (degraded)" if state.degraded else "")]
    if state.rollback is not None:
        parts.append(f"rolling back to {state.rollback.target}: {state.rollback.reason}")
    if state.failure_reason:
        parts.append(f"failed: {state.failure_reason}")
    return "; ".join(parts)


def conditions_of(state: RolloutState, extra: list[Obj], generation: int | None) -> list[Obj]:
    """``Progressing`` and ``Healthy`` from the state, plus ``extra`` (TrafficNotApplied)."""
    progressing = state.canary is not None and state.phase not in ("live", "failed")
    healthy = state.phase == "live" and not state.degraded
    return [
        {
            "type": "Progressing",
            "status": "True" if progressing else "False",
            "reason": state.phase,
            "message": _message(state),
            "observedGeneration": generation,
        },
        {
            "type": "Healthy",
            "status": "True" if healthy else "False",
            "reason": "Degraded" if state.degraded else state.phase,
            "message": state.failure_reason or "",
            "observedGeneration": generation,
        },
        *extra,
    ]


#: revisions kept in ``status.liveHistory`` (Ocean CD rolls back to any of the last 20 that reached live)
LIVE_HISTORY = 20


def live_history(status: Obj, state: RolloutState, now: float) -> list[Obj]:
    """``status.liveHistory``: the revisions that reached live, oldest first, each with the rollout id that
    took it there, its initiator (``rollback`` when a rollback restored it) and when (the reconcile's time).
    The engine state keeps no times, so the status accumulates them: one entry per arrival at live."""
    kept: list[Obj] = [h for h in status.get("liveHistory") or [] if isinstance(h, dict)]
    if state.phase != "live" or state.stable is None:
        return kept
    last = kept[-1] if kept else None
    if last is not None and (last.get("revision"), last.get("rolloutId")) == (state.stable, state.rollout_id):
        return kept
    entry: Obj = {
        "revision": state.stable,
        "rolloutId": state.rollout_id,
        "initiator": "rollback" if state.degraded else state.initiator,
        "at": now,
    }
    if state.original_rollout_id is not None:
        entry["originalRolloutId"] = state.original_rollout_id
    return [*kept, entry][-LIVE_HISTORY:]
