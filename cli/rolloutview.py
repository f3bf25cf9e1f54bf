"""The detailed rollout view (what Ocean CD's console shows), as data and as a rich renderable.

:func:`view_data` turns a workload's engine state and status into a plain JSON-able dict (revisions with
traffic and replicas, steps with the current one marked, verification runs with their measurements, the
rollback with its percent complete, linked rollout ids, the failure reason, the last action); :func:`render`
draws that dict. Both are pure (no I/O, no clock), so ``ebbtide rollout get`` and a dashboard share the shape.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

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


def _revisions(data: Obj) -> Table:
    table = Table(title="Revisions", title_justify="left", expand=False)
    for col in ("revision", "role", "status", "traffic", "ready/desired"):
        table.add_column(col, justify="right" if col in ("traffic", "ready/desired") else "left")
    for r in data["revisions"]:
        table.add_row(
            r["revision"], r["role"], r["status"], f"{r['traffic']}%", f"{r['ready']}/{r['desired']}"
        )
    return table


def _steps(data: Obj) -> Table:
    table = Table(title="Steps", title_justify="left", show_header=False, box=None, padding=(0, 1))
    table.add_column("mark")
    table.add_column("step")
    for s in data["steps"]:
        mark = {"current": "▶", "done": "✔"}.get(s["state"], " ")
        table.add_row(mark, f"{s['index']}  {s['text']}")
    if not data["steps"]:
        table.add_row(" ", "(no steps)")
    return table


def _verifications(data: Obj) -> Table:
    table = Table(title="Verifications", title_justify="left")
    for col in ("run", "template", "phase", "metric", "measurements", "last"):
        table.add_column(col)
    for run in data["verifications"]:
        label = run["id"] + (" (background)" if run["background"] else "")
        for i, m in enumerate(run["metrics"] or [{}]):
            counts = (
                f"{m['count']} taken: {m['successful']} ok, {m['failed']} failed, "
                f"{m['inconclusive']} inconclusive, {m['error']} errors"
                if m
                else ""
            )
            table.add_row(
                label if i == 0 else "",
                run["template"] if i == 0 else "",
                m.get("phase", run["phase"]),
                m.get("name", ""),
                counts,
                m.get("last") or "",
            )
    return table


def _header(data: Obj) -> Text:
    text = Text()
    text.append(f"{data['namespace']}/{data['name']}", style="bold")
    phase = data["phase"] + (" (degraded)" if data["degraded"] else "")
    if data["pauseReason"]:
        phase += f" ({data['pauseReason']})"
    text.append(f"  phase {phase}\n")
    text.append(f"rollout #{data['rolloutId']}, initiator {data['initiator']}")
    if data["originalRolloutId"] is not None:
        text.append(f", linked to rollout #{data['originalRolloutId']}")
    text.append(
        f"\nstable {data['stable'] or '-'}  canary {data['canary'] or '-'}  desired {data['desired'] or '-'}"
    )
    return text


def _rollback(data: Obj) -> Text | None:
    rb = data["rollback"]
    if rb is None:
        return None
    text = Text()
    text.append("Rollback ", style="bold")
    text.append(
        f"{rb['mode']} to {rb['target']}"
        + (f" from {rb['source']}" if rb["source"] else "")
        + (" (fast-tracked)" if rb["fastTrack"] else "")
        + f": {rb['reason']}"
    )
    if rb["percentComplete"] is not None:
        text.append(
            f"\nRollback status: {rb['percentComplete']:g}% complete "
            f"({rb['targetReady']}/{rb['targetDesired']} replicas of {rb['target']} ready)",
            style="bold yellow",
        )
    return text


def render(data: Obj) -> RenderableType:
    """The detailed rollout view of :func:`view_data`'s dict."""
    parts: list[RenderableType] = [_header(data), _revisions(data), _steps(data)]
    if data["verifications"]:
        parts.append(_verifications(data))
    rollback = _rollback(data)
    if rollback is not None:
        parts.append(rollback)
    if data["failureReason"]:
        parts.append(Text(f"Failure: {data['failureReason']}", style="red"))
    if data["lastAction"]:
        last = data["lastAction"]
        line = f"Last action: {last.get('action')} {last.get('result')}"
        if last.get("reason"):
            line += f": {last['reason']}"
        parts.append(Text(line))
    return Group(*parts)
