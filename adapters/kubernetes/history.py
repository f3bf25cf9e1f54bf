"""Which ReplicaSets of a workload to keep: the revision history beyond ``revisionHistoryLimit`` is deleted.

A Deployment keeps old ReplicaSets scaled to 0 so that a rollback can reuse them, up to its
``revisionHistoryLimit``; so does ebbtide, and the history it counts is the engine's own
(``state.history``, see docs/semantics.md#revision-history): the revisions in the order they last reached
live, bounded by the limit (the workload's when it sets one, else the RolloutSpec's: the compiled plan
carries the one that wins), **the stable revision counted in it**. A rollback (manual, or fast-tracked
within ``rollbackWindow``) can only go to a revision of that history, so its ReplicaSets are the ones
worth keeping. ``keep(state)`` is that history plus every revision the engine is using: the stable, the
canary, the desired one, a rollback's target, any revision with replicas or weight, and any revision
waiting for its scale-down delay. The adapter deletes every other ReplicaSet of the workload once it is
scaled to 0 with no pods left.
"""

from __future__ import annotations

from ebbtide.core.state import RolloutState


def keep(state: RolloutState) -> set[str]:
    """The revisions whose ReplicaSets must not be deleted."""
    kept = {rec.revision for rec in state.history}
    kept |= {r for r in (state.stable, state.canary, state.desired) if r is not None}
    if state.rollback is not None:
        kept.add(state.rollback.target)
    kept |= {r for r, n in state.replicas.items() if n > 0}
    kept |= {r for r, w in state.weights.items() if w > 0}
    kept |= set(state.scale_downs)
    return kept
