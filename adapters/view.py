"""The detailed rollout view (what Ocean CD's console shows), as plain data.

:func:`view_data` turns a workload's engine state and status into a JSON-able dict (revisions with traffic and
replicas, steps with the current one marked, verification runs with their measurements, the rollback with its
percent complete, linked rollout ids, the failure reason, the last action). It is pure (no I/O, no clock), so
``ebbtide rollout get`` (drawn by ``ebbtide.cli.rolloutview``), the HTTP API and the dashboard share it.
"""

from __future__ import annotations

from typing import Any

from ebbtide.core.plan import StepPlan
from ebbtide.core.state import RolloutState

Obj = dict[str, Any]


def step_text(st: StepPlan) -> str:
    if st.kind == "setWeight":
        return f"setWeight {st.weight}" + (" (implied)" if st.implicit else "")
    if st.kind == "setCanaryScale":
        if st.replicas is not None:
            return f"setCanaryScale replicas {st.replicas}"
        if st.match_traffic_weight:
            return "setCanaryScale matchTrafficWeight"
        return f"setCanaryScale weight {st.weight}"
    if st.kind == "pause":
        return "pause" + (f" {st.duration:g}s" if st.duration is not None else " (until promoted)")
    if st.kind == "verification":
        return "verification " + ", ".join(st.templates)
    return st.kind + (f" {st.name}" if st.name else "")


def _role(state: RolloutState, rev: str) -> str:
    roles = []
    if rev == state.stable:
        roles.append("stable")
    if rev == state.canary:
        roles.append("canary")
    if rev == state.desired and rev not in (state.stable, state.canary):
        roles.append("desired")
    if state.rollback is not None and rev == state.rollback.target and "stable" not in roles:
        roles.append("rollback target")
    return ", ".join(roles)


def view_data(name: str, namespace: str, state: RolloutState, status: Obj) -> Obj:
    """The detailed rollout view of one workload, as plain data."""
    history = {rec.revision: rec.status for rec in state.history}
    named = {state.stable, state.canary, state.desired, state.rollback.target if state.rollback else None}
    revisions = sorted(
        set(state.replicas) | set(state.ready) | set(state.weights) | {r for r in named if r is not None}
    )
    stepping = state.canary is not None and state.phase in ("in-progress", "verifying", "paused")
    steps = [s for s in state.plan.steps if not s.implicit]
    progress = state.rollback_progress
    out: Obj = {
        "name": name,
        "namespace": namespace,
        "phase": state.phase,
        "degraded": state.degraded,
        "pauseReason": state.pause_reason,
        "rolloutId": state.rollout_id,
        "originalRolloutId": state.original_rollout_id,
        "initiator": state.initiator,
        "stable": state.stable,
        "canary": state.canary,
        "desired": state.desired,
        "revisions": [
            {
                "revision": r,
                "role": _role(state, r),
                "status": history.get(r, ""),
                "traffic": state.weights.get(r, 0),
                "desired": state.replicas.get(r, 0),
                "ready": state.ready.get(r, 0),
            }
            for r in revisions
        ],
        "steps": [
            {
                "index": i,
                "text": step_text(s),
                "state": (
                    "current"
                    if stepping and i == state.step_index
                    else "done"
                    if stepping and i < state.step_index
                    else ""
                ),
            }
            for i, s in enumerate(steps)
        ],
        "verifications": [
            {
                "id": run.id,
                "template": run.template,
                "background": run.background,
                "phase": run.phase,
                "message": run.message,
                "metrics": [
                    {
                        "name": m.name,
                        "phase": m.phase,
                        "count": m.count,
                        "successful": m.successful,
                        "failed": m.failed,
                        "inconclusive": m.inconclusive,
                        "error": m.error,
                        "last": m.last,
                    }
                    for m in run.metrics
                ],
            }
            for run in state.verifications
        ],
        "rollback": None,
        "failureReason": state.failure_reason,
        "lastAction": status.get("lastAction"),
    }
    if state.rollback is not None:
        out["rollback"] = {
            "target": state.rollback.target,
            "source": state.rollback.source,
            "reason": state.rollback.reason,
            "mode": state.rollback.mode,
            "fastTrack": state.rollback.fast_track,
            "percentComplete": None if progress is None else round(progress * 100, 1),
            "targetReady": state.ready.get(state.rollback.target, 0),
            "targetDesired": state.replicas.get(state.rollback.target, 0),
        }
    return out


def summary_data(view: Obj) -> Obj:
    """One line of the rollouts list (``ebbtide rollout list``, the API's list route, the dashboard's table),
    from :func:`view_data`'s dict."""
    revisions = view["revisions"]
    steps = view["steps"]
    current = next((s["index"] for s in steps if s["state"] == "current"), None)
    rollback = view["rollback"]
    return {
        "name": view["name"],
        "namespace": view["namespace"],
        "phase": view["phase"],
        "degraded": view["degraded"],
        "rolloutId": view["rolloutId"],
        "initiator": view["initiator"],
        "stable": view["stable"],
        "canary": view["canary"],
        "traffic": {r["revision"]: r["traffic"] for r in revisions if r["traffic"]},
        "ready": sum(r["ready"] for r in revisions),
        "desired": sum(r["desired"] for r in revisions),
        "step": None if current is None else f"{current + 1}/{len(steps)}",
        "rollbackPercent": None if rollback is None else rollback["percentComplete"],
        "failureReason": view["failureReason"],
    }
