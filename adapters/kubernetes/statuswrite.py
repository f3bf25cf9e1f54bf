"""Whether a reconcile's new status is worth an API write (issue 9: at most 3 writes per phase transition).

A reconcile recomputes the whole status. It is written when it differs from the persisted one in anything
but ready counts, and also when only ready counts differ but they are news: a revision's ready count
dropped, or every revision now has as many ready pods as it wants (settled). What is skipped is ready
counts that only climb towards the desired count while pods start.

Skipping them is level safe: every reconcile re-observes every revision's ReplicaSet (``Driver.restore``
clears what the adapter reported, so the engine is told each revision's counts again), exactly as when pods
became ready between two reconciles; and the engine decision that only raised a ready count changed nothing
else it persists (any other change is written). So a controller killed right after a skipped write starts
from a status whose ready counts are behind, re-observes them, and decides the same.

What people read lags only there: ``summary.revisions[].ready`` (and ``engineState.ready``) show the counts
as of the last transition or the last settled world while pods start.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

#: engine-state fields a ready-count-only decision changes (``updated_at``: the time of that decision)
READY_FIELDS = ("ready", "updated_at")


def worth_writing(old: Obj, new: Obj) -> bool:
    """True when ``new`` (a whole status) says something ``old`` (the persisted one) does not."""
    if old == new:
        return False
    if _without_ready(old) != _without_ready(new):
        return True
    engine = new.get("engineState") or {}
    before = (old.get("engineState") or {}).get("ready") or {}
    return not _pods_starting(before, engine.get("ready") or {}, engine.get("replicas") or {})


def _pods_starting(before: dict[str, int], after: dict[str, int], desired: dict[str, int]) -> bool:
    """Every ready count stayed or climbed, and some revision is still below its desired count."""
    revisions = set(before) | set(after) | set(desired)
    if any(after.get(r, 0) < before.get(r, 0) for r in revisions):
        return False  # a drop: pods went away, worth saying
    return any(after.get(r, 0) < desired.get(r, 0) for r in revisions)


def _without_ready(status: Obj) -> Obj:
    out = dict(status)
    engine = out.get("engineState")
    if isinstance(engine, dict):
        out["engineState"] = {k: v for k, v in engine.items() if k not in READY_FIELDS}
    summary = out.get("summary")
    if isinstance(summary, dict) and isinstance(summary.get("revisions"), list):
        revisions = [
            {k: v for k, v in r.items() if k != "ready"} if isinstance(r, dict) else r
            for r in summary["revisions"]
        ]
        out["summary"] = {**summary, "revisions": revisions}
    return out
