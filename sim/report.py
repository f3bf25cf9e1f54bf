"""Reports of simulations: plots (matplotlib, optional), a self-contained HTML page, the phase timeline a
plan implies, and a step-by-step trace of one run.

matplotlib is an optional extra (``pip install ebbtide[plot]``): it is imported lazily, with the Agg
backend, only when a picture is asked for; :class:`PlotUnavailable` says how to install it otherwise.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ebbtide.core.duration import format_duration
from ebbtide.core.plan import MetricPlan, Plan, StepPlan, TemplatePlan
from ebbtide.core.traffic import basic_canary_counts, ceil_pct
from ebbtide.core.verification import effective_count
from ebbtide.sim.outcome import Outcome, RunResult, Summary

__all__ = [
    "PHASE_COLORS",
    "PhaseRow",
    "PlotUnavailable",
    "explain_lines",
    "html_report",
    "plan_timeline",
    "plot_outcomes",
    "plot_run",
    "seconds",
]

PHASE_COLORS = {
    "live": "#d9f2d9",
    "in-progress": "#dbe8fb",
    "verifying": "#fff1c2",
    "paused": "#e6dcf5",
    "failed": "#f8c9c9",
    "rolling-back": "#fbd9b8",
}


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable(
            "plots need matplotlib: install ebbtide[plot] (pip install 'ebbtide[plot]')"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def seconds(value: float | None) -> str:
    """A duration for people: ``1m11s``; ``-`` for None."""
    if value is None:
        return "-"
    if value < 0 or math.isnan(value) or math.isinf(value):
        return f"{value:g}s"
    return format_duration(round(value, 1))


# ----------------------------------------------------------------------------------------------------------
# plots
# ----------------------------------------------------------------------------------------------------------
def _phase_spans(timeline: Sequence[dict[str, Any]], end: float) -> list[tuple[float, float, str]]:
    spans: list[tuple[float, float, str]] = []
    for i, entry in enumerate(timeline):
        t1 = timeline[i + 1]["t"] if i + 1 < len(timeline) else end
        state = str(entry["state"])
        if spans and spans[-1][2] == state:
            spans[-1] = (spans[-1][0], t1, state)
        else:
            spans.append((float(entry["t"]), float(t1), state))
    return spans


def _figure_bytes(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _save(fig: Any, plt: Any, path: str | Path | None) -> bytes:
    data = _figure_bytes(fig)
    plt.close(fig)
    if path is not None:
        Path(path).write_bytes(data)
    return data


def plot_run(result: RunResult, path: str | Path | None = None, title: str | None = None) -> bytes:
    """One run: canary weight over time over coloured state bands, and replicas (ready and desired).

    Needs the run's timeline (``keep_timelines``). Returns the PNG bytes (and writes them to ``path``).
    """
    plt = _pyplot()
    from matplotlib.patches import Patch

    timeline = result.timeline
    if not timeline:
        raise ValueError("the run has no timeline: simulate it with keep_timelines=True")
    end = max(result.outcome.ended_at, float(timeline[-1]["t"]))
    to_min = 1 / 60.0
    fig, (ax_w, ax_r) = plt.subplots(
        2, 1, sharex=True, figsize=(10, 6), gridspec_kw={"height_ratios": [3, 2]}
    )
    for ax in (ax_w, ax_r):
        for t0, t1, state in _phase_spans(timeline, end):
            ax.axvspan(t0 * to_min, t1 * to_min, color=PHASE_COLORS.get(state, "#eeeeee"), lw=0)
    times = [float(e["t"]) * to_min for e in timeline] + [end * to_min]
    revisions: list[str] = []
    for e in timeline:
        for rev in list(e["weights"]) + list(e["replicas"]):
            if rev not in revisions:
                revisions.append(rev)
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    for k, rev in enumerate(revisions):
        color = palette[k % len(palette)]
        weights = [int(e["weights"].get(rev, 0)) for e in timeline]
        ax_w.step(times, [*weights, weights[-1]], where="post", color=color, lw=2, label=f"{rev} weight")
        desired = [int(e["replicas"].get(rev, 0)) for e in timeline]
        ready = [int(e["ready"].get(rev, 0)) for e in timeline]
        ax_r.step(
            times, [*desired, desired[-1]], where="post", color=color, lw=1.2, ls="--", label=f"{rev} desired"
        )
        ax_r.step(times, [*ready, ready[-1]], where="post", color=color, lw=2, label=f"{rev} ready")
    o = result.outcome
    if o.detected_at is not None:
        for ax in (ax_w, ax_r):
            ax.axvline(o.detected_at * to_min, color="black", lw=1, ls=":")
        ax_w.annotate("failure detected", (o.detected_at * to_min, 102), fontsize=8, ha="center")
    ax_w.set_ylabel("traffic weight (%)")
    ax_w.set_ylim(0, 110)
    ax_r.set_ylabel("replicas")
    ax_r.set_xlabel("simulated time (minutes)")
    ax_r.set_ylim(bottom=0)
    ax_w.set_title(
        title or f"run {result.index}: {o.result} (final state {o.final_state}, live {o.live_revision})"
    )
    states = list(dict.fromkeys(str(e["state"]) for e in timeline))
    bands = [Patch(color=PHASE_COLORS.get(s, "#eeeeee"), label=s) for s in states]
    handles, _ = ax_w.get_legend_handles_labels()
    ax_w.legend(handles=handles + bands, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    ax_r.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    fig.tight_layout()
    return _save(fig, plt, path)


def plot_outcomes(
    outcomes: Sequence[Outcome], path: str | Path | None = None, title: str | None = None
) -> bytes:
    """Many runs: histograms of time to detect, time to roll back, bad requests, and the outcome counts."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    panels = [
        ("time to detect (s)", [o.time_to_detect for o in outcomes], "#d62728"),
        ("time to roll back (s)", [o.time_to_rollback for o in outcomes], "#ff7f0e"),
        ("bad requests (blast radius)", [o.bad_requests for o in outcomes], "#9467bd"),
    ]
    for ax, (label, raw, color) in zip(axes.flat, panels, strict=False):
        values = [float(v) for v in raw if v is not None]  # type: ignore[attr-defined]
        if values:
            ax.hist(values, bins=min(30, max(5, len(set(values)))), color=color, alpha=0.85)
            ax.axvline(_median(values), color="black", lw=1, ls="--", label=f"p50 {_median(values):.4g}")
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no run has a value", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(label, fontsize=10)
        ax.set_ylabel("runs")
    ax = axes.flat[3]
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.result] = counts.get(o.result, 0) + 1
    names = list(counts)
    ax.bar(names, [counts[n] for n in names], color="#1f77b4")
    ax.set_title("outcomes", fontsize=10)
    ax.set_ylabel("runs")
    fig.suptitle(title or f"{len(outcomes)} runs")
    fig.tight_layout()
    return _save(fig, plt, path)


def _median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


# ----------------------------------------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------------------------------------
def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def run_row(r: RunResult) -> list[str]:
    o = r.outcome
    return [
        str(r.index),
        o.result,
        o.final_state,
        seconds(o.time_to_detect),
        seconds(o.time_to_rollback),
        seconds(o.time_to_live),
        f"{o.bad_requests:.0f}",
        "yes" if o.false_rollback else "no",
        _short_numbers(o.rollback_reason) if o.rollback_reason else "-",
    ]


RUN_HEADERS = (
    "run",
    "outcome",
    "final state",
    "time to detect",
    "time to roll back",
    "time to live",
    "bad requests",
    "false rollback",
    "rollback reason",
)


def summary_rows(summary: Summary) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = [("runs", str(summary.runs))]
    rows += [(f"outcome: {k}", str(v)) for k, v in summary.results.items() if v]
    for label, stats in (
        ("time to detect", summary.time_to_detect),
        ("time to roll back", summary.time_to_rollback),
        ("time to live", summary.time_to_live),
    ):
        rows.append(
            (
                f"{label} p50 / p95 / max",
                f"{seconds(stats['p50'])} / {seconds(stats['p95'])} / {seconds(stats['max'])} "
                f"(n={int(stats['count'] or 0)})",
            )
        )
    rows.append(("mean bad requests", f"{summary.mean_bad_requests:.1f}"))
    rows.append(("false rollbacks", f"{summary.false_rollbacks} ({summary.false_rollback_rate:.1%})"))
    rows += [(f"reason ({n})", reason) for reason, n in summary.rollback_reasons.items()]
    return rows


def html_report(
    title: str,
    summary: Summary,
    runs: Sequence[RunResult] = (),
    images: Sequence[tuple[str, bytes]] = (),
    trace: Sequence[str] = (),
) -> str:
    """One self-contained page: images inlined as base64 PNG, tables as HTML."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
        "th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}"
        "pre{background:#f8f8f8;padding:1em;overflow-x:auto;font-size:12px}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Summary</h2>",
        _table(("measure", "value"), summary_rows(summary)),
    ]
    for caption, png in images:
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f"<h2>{html.escape(caption)}</h2><img alt='{html.escape(caption)}' "
            f"src='data:image/png;base64,{data}'>"
        )
    if runs:
        parts.append("<h2>Runs</h2>")
        parts.append(_table(RUN_HEADERS, (run_row(r) for r in runs)))
    if trace:
        parts.append("<h2>Trace of one run</h2><pre>" + html.escape("\n".join(trace)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


# ----------------------------------------------------------------------------------------------------------
# the plan's phase timeline
# ----------------------------------------------------------------------------------------------------------
@dataclass
class PhaseRow:
    index: int
    name: str | None
    action: str
    canary_weight: int
    canary_replicas: int
    #: how long the step holds the rollout at least (pause or verification window), None: waits for promote
    window: float | None
    #: cumulative minimum time since the deploy, assuming instant readiness and passing verification
    cumulative: float | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.index,
            "name": self.name,
            "action": self.action,
            "canary_weight": self.canary_weight,
            "canary_replicas": self.canary_replicas,
            "window": self.window,
            "cumulative": self.cumulative,
            "note": self.note,
        }


def metric_window(metric: MetricPlan) -> tuple[float, str]:
    """How long a passing metric takes to reach its verdict, and how that comes about."""
    count = effective_count(metric)
    interval = metric.interval or 0.0
    delay = metric.initial_delay
    if count is None:
        return delay, f"{metric.name}: every {seconds(interval)} until the phase ends (passes on the first)"
    span = delay + max(0, count - 1) * interval
    what = f"{metric.name}: {count} x"
    what += f" every {seconds(interval)}" if count > 1 else ""
    if delay:
        what += f" after {seconds(delay)}"
    return span, what


def template_window(template: TemplatePlan) -> tuple[float, list[str]]:
    # dry-run metrics are waited for like Argo's (their results never count), so they hold the step too
    spans = [metric_window(m) for m in template.metrics]
    return (max((s for s, _ in spans), default=0.0), [w for _, w in spans])


def plan_timeline(plan: Plan) -> list[PhaseRow]:
    """The phases a plan implies, in order: the engine's sizing rules, instant readiness, passing checks."""
    rows: list[PhaseRow] = []
    n = plan.replicas
    weight = 0
    scale_replicas: int | None = None
    scale_weight: int | None = None
    total: float | None = 0.0

    def canary_replicas(w: int) -> int:
        if w >= 100:
            return n
        if not plan.traffic_router:
            return basic_canary_counts(n, w, plan.max_surge)[0]  # a basic canary: the pod ratio
        if scale_replicas is not None:
            return min(n, scale_replicas)
        if scale_weight is not None:
            return ceil_pct(n, scale_weight)
        return ceil_pct(n, w)

    for i, st in enumerate(plan.steps):
        window: float | None = 0.0
        note = "implied final step" if st.implicit else ""
        action = _action(st)
        if st.kind == "setWeight":
            weight = max(weight, st.weight or 0)
        elif st.kind == "setCanaryScale":
            scale_replicas, scale_weight = st.replicas, st.weight
            if st.match_traffic_weight:
                scale_replicas, scale_weight = None, None
        elif st.kind == "pause":
            window = st.duration
            if window is None:
                note = "waits for promote"
        elif st.kind == "verification":
            spans = []
            notes = []
            for name in st.templates:
                template = plan.templates.get(name)
                if template is not None:
                    span, what = template_window(template)
                    spans.append(span)
                    notes += what
            window = max(spans, default=0.0)
            note = "; ".join(notes)
        if window is None or total is None:
            total = None
        else:
            total += window
        rows.append(
            PhaseRow(
                index=i,
                name=st.name,
                action=action,
                canary_weight=weight,
                canary_replicas=canary_replicas(weight),
                window=window,
                cumulative=total,
                note=note,
            )
        )
    return rows


def _action(st: StepPlan) -> str:
    if st.kind == "setWeight":
        return f"setWeight {st.weight}"
    if st.kind == "setCanaryScale":
        if st.match_traffic_weight:
            return "setCanaryScale matchTrafficWeight"
        if st.replicas is not None:
            return f"setCanaryScale replicas={st.replicas}"
        return f"setCanaryScale weight={st.weight}"
    if st.kind == "pause":
        return f"pause {seconds(st.duration)}" if st.duration is not None else "pause (indefinite)"
    if st.kind == "verification":
        return "verification " + ", ".join(st.templates)
    if st.kind == "setHeaderRoute" and st.header_route is not None:
        route = st.header_route
        return f"setHeaderRoute {route.name}" + ("" if route.matches else " (removed)")
    return st.kind


# ----------------------------------------------------------------------------------------------------------
# a step-by-step trace of one run
# ----------------------------------------------------------------------------------------------------------
def _fmt_map(m: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in m.items()) or "-"


_LONG_FLOAT = re.compile(r"\d+\.\d{5,}(?:e-?\d+)?")


def _short_numbers(text: str) -> str:
    return _LONG_FLOAT.sub(lambda m: f"{float(m.group()):.4g}", text)


def explain_lines(result: RunResult) -> list[str]:
    """A human-readable trace of a run with its timeline: time, event, state change, weights, replicas,
    then notifications and rejected commands at their times, and the outcome."""
    items: list[tuple[float, int, str]] = []
    prev: dict[str, Any] | None = None
    for seq, e in enumerate(result.timeline):
        t = float(e["t"])
        state = str(e["state"])
        if prev is None or prev["state"] != state:
            change = f"{prev['state']} -> {state}" if prev is not None else state
        else:
            change = state
        if e.get("pause_reason"):
            change += f" ({e['pause_reason']})"
        ready = e.get("ready", {})
        replicas = " ".join(f"{rev}={ready.get(rev, 0)}/{n}" for rev, n in e["replicas"].items())
        line = (
            f"{_clock(t)}  {_short_numbers(str(e['event'])):<34}  {change:<33}  step {e['step']:<2}  "
            f"weights {_fmt_map(e['weights']):<14}  ready/desired {replicas or '-'}"
        )
        if e.get("pause_until") is not None:
            line += f"  pause ends {_clock(float(e['pause_until']))}"
        if e.get("rejected"):
            line += f"  REJECTED: {e['rejected']}"
        measured = e.get("measurement")
        if measured and measured.get("verdict"):
            line += f"  measured: {measured['verdict']}"
        items.append((t, seq * 3, line))
        for v in e.get("verdicts") or ():
            what = "background verification" if v.get("background") else "verification"
            message = f": {_short_numbers(str(v['message']))}" if v.get("message") else ""
            items.append((t, seq * 3, f"{_clock(t)}    {what} {v['template']} {v['phase']}{message}"))
        prev = e
    for k, n in enumerate(result.notifications):
        payload = n.get("payload", {})
        extra = f" ({_short_numbers(str(payload['reason']))})" if payload.get("reason") else ""
        rev = payload.get("revision")
        items.append(
            (
                float(n["t"]),
                _order(result.timeline, float(n["t"])) + 1,
                f"{_clock(float(n['t']))}    notify {n['event']}" + (f" {rev}" if rev else "") + extra,
            )
        )
        del k
    for r in result.rejected:
        items.append(
            (
                float(r["t"]),
                _order(result.timeline, float(r["t"])) + 2,
                f"{_clock(float(r['t']))}    rejected {r['event']} {r.get('action') or ''}: {r['reason']}",
            )
        )
    items.sort(key=lambda x: (x[0], x[1]))
    o = result.outcome
    lines = [
        f"run {result.index} (seed {result.seed}): {len(result.timeline)} changes, {result.events} events"
    ]
    lines += [line for _, _, line in items]
    lines.append(
        f"outcome: {o.result}; final state {o.final_state}; live {o.live_revision}"
        + (" (degraded)" if o.degraded else "")
    )
    if o.detected_at is not None:
        lines.append(
            f"failure of {o.failed_revision} detected at {_clock(o.detected_at)}"
            f" (time to detect {seconds(o.time_to_detect)}, time to roll back {seconds(o.time_to_rollback)})"
        )
    if o.rollback_reason:
        lines.append(f"rollback reason: {_short_numbers(o.rollback_reason)}")
    if o.failure_reason and o.failure_reason != o.rollback_reason:
        lines.append(f"failure reason: {_short_numbers(o.failure_reason)}")
    for recorded in o.recorded_failures:
        lines.append(f"recorded failure (promote policy): {_short_numbers(recorded)}")
    if o.false_rollback:
        lines.append("false rollback: the failed revision was not misbehaving")
    lines.append(
        f"bad requests {o.bad_requests:.0f}, dropped requests {o.dropped_requests:.0f}, "
        f"time to live {seconds(o.time_to_live)}, ended at {_clock(o.ended_at)}"
    )
    return lines


def _order(timeline: Sequence[dict[str, Any]], t: float) -> int:
    """Sort key that puts a notification after the last timeline entry at or before its time."""
    last = 0
    for seq, e in enumerate(timeline):
        if float(e["t"]) <= t:
            last = seq * 3
    return last


def _clock(t: float) -> str:
    m, s = divmod(t, 60)
    h, m = divmod(int(m), 60)
    return f"{h:d}:{m:02d}:{s:06.3f}"
