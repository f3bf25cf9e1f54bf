"""The detailed rollout view drawn in the terminal: :func:`render` draws the dict of
:func:`ebbtide.adapters.view.view_data` (re-exported here) as a rich renderable; pure, no I/O."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ebbtide.adapters.view import Obj, step_text, view_data

__all__ = ["Obj", "render", "step_text", "view_data"]


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
