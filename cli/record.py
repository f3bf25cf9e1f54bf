"""``ebbtide record``: record what a template's Prometheus queries answered over a time range.

Runs the range query of every Prometheus metric of a VerificationTemplate (args substituted) from ``--start``
to ``--end`` (or over the ``--last`` hours) every ``--step`` seconds, and writes a recording (JSON lines,
:mod:`ebbtide.adapters.providers.recording`) that a scenario replays with ``spec.recordings``. The range
options are shared with ``ebbtide backtest --prometheus`` (:func:`time_range`). Exit code 2 for bad input, an
unreachable server, a query error or a range without data. The HTTP client is imported when a command
queries, so that the base install's CLI starts without it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ebbtide.adapters.recorded import ROLES
from ebbtide.core.duration import parse_duration
from ebbtide.core.plan import TemplatePlan
from ebbtide.sim import backtest as bt

from .common import BadInput, check_outputs, guard, output, parse_pairs

if TYPE_CHECKING:
    from ebbtide.adapters.providers.recording import MetricRange

StartOption = Annotated[
    str | None, typer.Option("--start", help="the first time to query: Unix time or ISO 8601")
]
EndOption = Annotated[str | None, typer.Option("--end", help="the last time to query: Unix time or ISO 8601")]
LastOption = Annotated[
    str | None, typer.Option("--last", help="instead of --start/--end: the range ending now (e.g. 6h)")
]


def time_range(start: str | None, end: str | None, last: str | None) -> tuple[float, float]:
    """The range ``(start, end)`` in Unix seconds from ``--start``/``--end`` or ``--last``."""
    if last is not None:
        if start is not None or end is not None:
            raise BadInput("--last replaces --start and --end: give one or the other")
        try:
            span = parse_duration(last)
        except ValueError as exc:
            raise BadInput(f"--last {last!r}: {exc}") from None
        if span <= 0:
            raise BadInput("--last must be positive")
        now = float(int(time.time()))
        return now - span, now
    if start is None or end is None:
        raise BadInput("give the range to query: --start and --end (Unix time or ISO 8601), or --last 6h")
    try:
        first = bt.parse_timestamp(start)
    except ValueError as exc:
        raise BadInput(f"--start {start!r}: {exc}") from None
    try:
        last_t = bt.parse_timestamp(end)
    except ValueError as exc:
        raise BadInput(f"--end {end!r}: {exc}") from None
    if last_t <= first:
        raise BadInput(f"--end {end!r} must be after --start {start!r}")
    return first, last_t


def query_step(text: str | None, template: TemplatePlan, option: str = "--step") -> float:
    """The range query resolution: ``text``, else the smallest metric interval, else 60 s."""
    if text is None:
        intervals = [m.interval for m in template.metrics if m.interval]
        return min(intervals) if intervals else 60.0
    try:
        step = parse_duration(text)
    except ValueError as exc:
        raise BadInput(f"{option} {text!r}: {exc}") from None
    if step <= 0:
        raise BadInput(f"{option} must be positive")
    return step


def fetch(address: str, template: TemplatePlan, first: float, last: float, step: float) -> list[MetricRange]:
    """The range queries of the template; BadInput naming the metric and the reason when one fails."""
    from ebbtide.adapters.providers.recording import RangeError, template_ranges  # HTTP: imported on use

    if (last - first) / step > 11_000:
        raise BadInput(
            f"{(last - first) / step:.0f} points per series: Prometheus answers at most 11,000; "
            "raise the step"
        )
    try:
        ranges = template_ranges(address, template, first, last, step)
    except RangeError as exc:
        raise BadInput(f"--prometheus {address}: {exc}") from None
    empty = [r.metric for r in ranges if not any(s.samples for s in r.series)]
    if empty:
        raise BadInput(
            f"--prometheus {address}: no data for metric {empty[0]!r} from {_stamp(first)} to {_stamp(last)}"
        )
    return ranges


def _stamp(t: float) -> str:
    return bt.format_time(t, t).split(" ", 1)[1].strip("()") if bt.is_epoch(t) else f"{t:g}"


@guard
def record_cmd(
    template_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    prometheus: Annotated[str, typer.Option("--prometheus", help="the Prometheus server's URL")],
    template: Annotated[
        str | None,
        typer.Option("--template", "-t", help="the VerificationTemplate (when the file has several)"),
    ] = None,
    arg: Annotated[
        list[str] | None, typer.Option("--arg", "-a", help="template arg NAME=VALUE (repeatable)")
    ] = None,
    start: StartOption = None,
    end: EndOption = None,
    last: LastOption = None,
    step: Annotated[
        str | None,
        typer.Option("--step", help="seconds between samples (default: the smallest metric interval)"),
    ] = None,
    role: Annotated[
        str, typer.Option("--role", help="the revision the queries measure: canary or stable")
    ] = "canary",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="the recording file (default: stdout)")
    ] = None,
) -> None:
    """Record a template's Prometheus queries over a time range, for a scenario to replay."""
    check_outputs(("--out", out))
    if role not in ROLES:
        raise BadInput(f"--role {role!r}: canary or stable")
    loaded = bt.load_template(template_file, template, parse_pairs(arg or [], "--arg"))
    first, last_t = time_range(start, end, last)
    step_s = query_step(step, loaded.plan)
    ranges = fetch(prometheus, loaded.plan, first, last_t, step_s)
    from ebbtide.adapters.providers.recording import range_lines

    with output(out) as stream:
        for line in range_lines(ranges, first, last_t, step_s, role=role):
            stream.write(line + "\n")
