"""Backtests: replay recorded metric series through a VerificationTemplate.

"Would this template have caught last Tuesday's incident, and would it have cried wolf the week before?"
A backtest feeds recorded values, instead of a provider, to the very verification rules the engine uses
(:mod:`ebbtide.core.verification`: ``start_run``, ``record``, ``run_verdict``, ``effective_count``) and
reports when and why the verification would have passed, failed, errored or been inconclusive.

Data (:func:`load_series`):

- CSV, long: ``timestamp,metric,value`` (one sample per row);
- CSV, wide: ``timestamp,<metric1>,<metric2>,...`` (one column per series);
- a Prometheus range-query JSON export (``/api/v1/query_range``): ``{"status": "success", "data":
  {"resultType": "matrix", "result": [{"metric": {...}, "values": [[ts, "v"], ...]}]}}``.

Timestamps are numbers (seconds; Unix time or any origin) or ISO 8601 strings. A value is a number
(``NaN``/``Inf`` allowed), an empty cell (no data: the measurement is inconclusive) or ``error`` /
``error: message`` (a provider error: counts towards ``consecutiveErrorLimit``).

Timing (as the engine does it): every metric measures first at ``start + initialDelay``, then every
``interval``; each measurement takes the latest sample at or before its time (no data when that sample is
older than ``staleness``, Prometheus' lookback of 5 minutes by default). A metric with neither count nor
interval measures once; with ``interval`` only, it measures until the phase ends (``window``), or, as a
background verification, until the data ends. Values are given to conditions that index ``result[...]`` as
``[value]``, as a Prometheus vector would be.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ebbtide.adapters.specfiles import MAX_DATA_BYTES, FileProblem, load_spec_files, read_text
from ebbtide.core.duration import format_duration, parse_duration
from ebbtide.core.events import MeasuredValue
from ebbtide.core.plan import MetricPlan, TemplatePlan
from ebbtide.core.spec import (
    Document,
    Problem,
    RolloutSpec,
    SpecError,
    SpecSet,
    SpecWarning,
    Strategy,
    compile_plan,
)
from ebbtide.core.state import MetricStatus, VerdictPhase
from ebbtide.core.verification import TERMINAL, effective_count, record, run_verdict, start_run

__all__ = [
    "DEFAULT_STALENESS",
    "BacktestResult",
    "RollingReport",
    "Sample",
    "Series",
    "backtest",
    "describe",
    "format_time",
    "format_value",
    "load_series",
    "load_template",
    "map_series",
    "parse_start",
    "rolling",
]

#: Prometheus' default lookback delta: a sample older than this is no data
DEFAULT_STALENESS = 300.0
#: outcome words of a verdict
OUTCOMES: dict[str, str] = {
    "Successful": "passed",
    "Failed": "failed",
    "Error": "errored",
    "Inconclusive": "inconclusive",
    "Running": "running",
}
_VECTOR_HINT = re.compile(r"result\s*\[")


class _Error(str):
    """A recorded provider error (its message)."""


Sample = float | None | _Error


@dataclass
class Series:
    """One recorded series: sorted times (seconds) and values (a float, None for no data, or an error)."""

    name: str
    times: list[float] = field(default_factory=list)
    values: list[Sample] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    def at(self, t: float, staleness: float | None) -> tuple[float | None, Sample]:
        """The latest sample at or before ``t``: (its time, its value); (None, None) when there is none."""
        lo, hi = 0, len(self.times)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.times[mid] <= t:
                lo = mid + 1
            else:
                hi = mid
        if lo == 0:
            return None, None
        ts = self.times[lo - 1]
        if staleness is not None and t - ts > staleness:
            return ts, None
        return ts, self.values[lo - 1]


# ----------------------------------------------------------------------------------------------------------
# reading data
# ----------------------------------------------------------------------------------------------------------
def _problem(file: str, where: str, reason: str) -> Problem:
    return Problem(file=file, document=0, kind=None, name=None, field=where, reason=reason)


def parse_timestamp(text: str) -> float:
    """Seconds from a number (Unix time or any origin) or an ISO 8601 date-time (``Z`` allowed)."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"invalid timestamp {text!r}")
        return _in_range(value, text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"invalid timestamp {text!r}: write seconds (Unix time) or ISO 8601 such as 2024-11-26T08:00:00Z"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return _in_range(when.timestamp(), text)


#: the latest timestamp accepted: the end of year 9999 (Unix time)
MAX_TIMESTAMP = 253_402_300_799.0


def _in_range(value: float, text: str) -> float:
    if value < 0:
        raise ValueError(f"negative timestamp {text!r}: write seconds since 1970 (or any origin), >= 0")
    if value > MAX_TIMESTAMP:
        raise ValueError(f"timestamp {text!r} is after the year 9999")
    return value


def parse_value(text: str) -> Sample:
    """A recorded value: a number, empty (no data) or ``error[: message]`` (a provider error)."""
    text = text.strip()
    if text == "" or text.lower() in ("null", "none", "nil"):
        return None
    low = text.lower()
    if low == "error" or low.startswith("error:"):
        return _Error(text.partition(":")[2].strip() or "provider error")
    return float(text)  # ValueError for anything else; float() reads NaN, Inf, +Inf


def _is_error(v: Sample) -> bool:
    return isinstance(v, _Error)


def load_series(path: str | Path) -> dict[str, Series]:
    """Every series of a CSV (long or wide) or Prometheus range-query JSON file, by name; raises SpecError."""
    file = str(path)
    try:
        text = read_text(path, MAX_DATA_BYTES)
    except FileProblem as exc:
        raise SpecError([_problem(file, "", exc.reason)]) from None
    if file.lower().endswith(".json") or text.lstrip().startswith("{"):
        out = _load_prometheus(text, file)
    else:
        out = _load_csv(text, file)
    if not out:
        raise SpecError([_problem(file, "", "no series in the file")])
    problems: list[Problem] = []
    for s in out.values():
        order = sorted(range(len(s.times)), key=lambda i: s.times[i])
        s.times = [s.times[i] for i in order]
        s.values = [s.values[i] for i in order]
        twice = sorted({a for a, b in zip(s.times, s.times[1:], strict=False) if a == b})
        if twice:
            at = ", ".join(f"{t:g}" for t in twice[:3]) + (", ..." if len(twice) > 3 else "")
            problems.append(_problem(file, f"series {s.name}", f"two samples at the same timestamp ({at})"))
    if problems:
        raise SpecError(problems)
    return out


def _load_csv(text: str, file: str) -> dict[str, Series]:
    rows = [r for r in csv.reader(io.StringIO(text)) if r and not (len(r) == 1 and not r[0].strip())]
    rows = [r for r in rows if not r[0].lstrip().startswith("#")]
    if not rows:
        raise SpecError([_problem(file, "line 1", "empty CSV: expected a header row")])
    header = [h.strip() for h in rows[0]]
    if len(header) < 2 or header[0].lower() not in ("timestamp", "time", "ts"):
        raise SpecError(
            [
                _problem(
                    file,
                    "line 1",
                    "the header must be timestamp,metric,value or timestamp,<metric1>,<metric2>,... "
                    f"(found {','.join(header)})",
                )
            ]
        )
    long = [h.lower() for h in header] == ["timestamp", "metric", "value"]
    out: dict[str, Series] = {}
    problems: list[Problem] = []
    if not long:
        for name in header[1:]:
            if not name:
                problems.append(_problem(file, "line 1", "empty column name"))
            elif name in out:
                problems.append(_problem(file, "line 1", f"duplicate column {name!r}"))
            out[name] = Series(name)
    for lineno, row in enumerate(rows[1:], start=2):
        if len(problems) >= 20:
            break
        if len(row) != len(header):
            problems.append(
                _problem(file, f"line {lineno}", f"{len(row)} columns, the header has {len(header)}")
            )
            continue
        try:
            t = parse_timestamp(row[0])
        except ValueError as exc:
            problems.append(_problem(file, f"line {lineno}, column {header[0]}", str(exc)))
            continue
        cells = [(row[1].strip(), row[2])] if long else list(zip(header[1:], row[1:], strict=True))
        for name, cell in cells:
            try:
                value = parse_value(cell)
            except ValueError:
                column = "value" if long else name
                problems.append(
                    _problem(
                        file,
                        f"line {lineno}, column {column}",
                        f"not a number: {cell.strip()!r} (write a number, NaN, an empty cell for no data, "
                        "or error: message)",
                    )
                )
                continue
            series = out.setdefault(name, Series(name))
            series.times.append(t)
            series.values.append(value)
    if problems:
        raise SpecError(problems)
    return {k: v for k, v in out.items() if v.times}


def _series_name(labels: Mapping[str, str], index: int) -> str:
    name = labels.get("__name__")
    rest = {k: v for k, v in labels.items() if k != "__name__"}
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(rest.items()))
    if name:
        return f"{name}{{{inner}}}" if inner else name
    return f"{{{inner}}}" if inner else f"series-{index}"


def _load_prometheus(text: str, file: str) -> dict[str, Series]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(
            [_problem(file, f"line {exc.lineno}, column {exc.colno}", f"invalid JSON: {exc.msg}")]
        ) from None
    except RecursionError:
        raise SpecError([_problem(file, "", "invalid JSON: nested too deeply")]) from None
    if not isinstance(doc, dict):
        raise SpecError([_problem(file, "", "expected a Prometheus query_range response object")])
    if doc.get("status") != "success":
        reason = doc.get("error") or f"status is {doc.get('status')!r}"
        raise SpecError([_problem(file, "status", f"the query did not succeed: {reason}")])
    data = doc.get("data")
    if not isinstance(data, dict):
        raise SpecError([_problem(file, "data", "required field is missing")])
    if data.get("resultType") != "matrix":
        raise SpecError(
            [
                _problem(
                    file,
                    "data.resultType",
                    f"expected a range query result (matrix), not {data.get('resultType')!r}",
                )
            ]
        )
    result = data.get("result")
    if not isinstance(result, list):
        raise SpecError([_problem(file, "data.result", "expected a list of series")])
    out: dict[str, Series] = {}
    problems: list[Problem] = []
    for i, item in enumerate(result):
        where = f"data.result[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("values"), list):
            problems.append(_problem(file, where, "expected {metric: {...}, values: [[ts, value], ...]}"))
            continue
        labels = item.get("metric") or {}
        if not isinstance(labels, dict):
            problems.append(_problem(file, f"{where}.metric", "expected a mapping of labels"))
            continue
        labels = {str(k): str(v) for k, v in labels.items()}
        name = _series_name(labels, i)
        series = Series(name, labels=labels)
        for j, pair in enumerate(item["values"]):
            if not isinstance(pair, list) or len(pair) != 2:
                problems.append(_problem(file, f"{where}.values[{j}]", "expected [timestamp, value]"))
                continue
            try:
                t = parse_timestamp(str(pair[0]))
                v = parse_value(str(pair[1]))
            except ValueError as exc:
                problems.append(_problem(file, f"{where}.values[{j}]", str(exc)))
                continue
            series.times.append(t)
            series.values.append(v)
        if name in out:
            problems.append(_problem(file, f"{where}.metric", f"two series with the same labels {name}"))
        out[name] = series
    if problems:
        raise SpecError(problems[:20])
    return out


# ----------------------------------------------------------------------------------------------------------
# the template
# ----------------------------------------------------------------------------------------------------------
@dataclass
class LoadedTemplate:
    plan: TemplatePlan
    #: the template is used only as a background verification by the strategies of its file
    background: bool
    file: str
    #: fields of the file accepted and ignored with a warning (an Argo AnalysisTemplate's, say)
    warnings: tuple[SpecWarning, ...] = ()


def load_template(
    path: str | Path, name: str | None = None, args: Mapping[str, str] | None = None
) -> LoadedTemplate:
    """Load, validate and compile one VerificationTemplate of a spec file (args substituted).

    Arg values come from ``args`` (the command line's ``--arg``), else from the strategy args of a
    RolloutSpec of the same file whose strategy uses the template, else from the template's defaults.
    """
    file = str(path)
    specs = load_spec_files([path])
    if not specs.templates:
        raise SpecError(
            [_problem(file, "", "no VerificationTemplate (or Argo AnalysisTemplate) in the file")]
        )
    if name is None:
        if len(specs.templates) != 1:
            names = ", ".join(sorted(specs.templates))
            raise SpecError(
                [_problem(file, "--template", f"the file has several templates: name one of {names}")]
            )
        name = next(iter(specs.templates))
    if name not in specs.templates:
        names = ", ".join(sorted(specs.templates))
        raise SpecError([_problem(file, "--template", f"no VerificationTemplate {name!r} (found: {names})")])

    phase_use, background_use = False, False
    values: dict[str, str] = {}
    for strategy in specs.strategies.values():
        canary = strategy.spec.canary
        steps: Sequence[Any] = canary.steps if canary is not None else ()
        if strategy.spec.rolling is not None:
            steps = strategy.spec.rolling.steps
        if any(s.verification is not None and name in s.verification.template_names for s in steps):
            phase_use = True
        bg = canary.background_verification if canary is not None else None
        if bg is not None and name in bg.template_names:
            background_use = True
    for rollout in specs.rollout_specs.values():
        strategy_used = specs.strategies.get(rollout.spec.strategy.name)
        if strategy_used is None:
            continue
        for a in rollout.spec.strategy.args:
            if a.value is not None:
                values.setdefault(a.name, a.value)
    declared = {a.name for a in specs.templates[name].spec.args}
    values = {k: v for k, v in values.items() if k in declared}
    problems: list[Problem] = []
    for k, v in (args or {}).items():
        if k not in declared:
            known = ", ".join(sorted(declared)) or "none"
            problems.append(
                _problem("--arg", k, f"template {name!r} declares no arg {k!r} (its args: {known})")
            )
        values[k] = v
    if problems:
        raise SpecError(problems)

    synthetic = Document("<backtest>", 1, {"kind": "RolloutSpec", "metadata": {"name": "backtest"}})
    strategy = Strategy.model_validate(
        {
            "apiVersion": "ebbtide.dev/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": "backtest"},
            "spec": {"canary": {"steps": [{"verification": {"templateNames": [name]}}]}},
        }
    )
    rollout = RolloutSpec.model_validate(
        {
            "apiVersion": "ebbtide.dev/v1alpha1",
            "kind": "RolloutSpec",
            "metadata": {"name": "backtest"},
            "spec": {
                "strategy": {"name": "backtest", "args": [{"name": k, "value": v} for k, v in values.items()]}
            },
        }
    )
    one = SpecSet(
        rollout_specs={"backtest": rollout},
        strategies={"backtest": strategy},
        templates={name: specs.templates[name]},
        providers=specs.providers,
        origins={
            **specs.origins,
            ("RolloutSpec", "backtest"): synthetic,
            ("Strategy", "backtest"): synthetic,
        },
    )
    try:
        plan = compile_plan(one, "backtest")
    except SpecError as exc:
        fixed = []
        for p in exc.problems:
            if p.file == "<backtest>":
                reason = p.reason.split(" (used by")[0] + ": give it with --arg NAME=VALUE"
                fixed.append(_problem(file, "--arg", reason))
            else:
                fixed.append(p)
        raise SpecError(fixed) from None
    return LoadedTemplate(
        plan=plan.templates[name],
        background=background_use and not phase_use,
        file=file,
        warnings=specs.warnings,
    )


def map_series(
    template: TemplatePlan,
    series: Mapping[str, Series],
    selection: Sequence[str] = (),
    file: str = "<metrics>",
) -> dict[str, Series]:
    """Which series feeds which metric of the template.

    ``selection`` entries (``--metric``) are ``METRIC`` or ``METRIC=SERIES``: only the named metrics are
    backtested (all when empty). A metric without an explicit series takes the series of the same name
    (``-``, ``_`` and case ignored); when there is one series and one metric, they go together.
    """
    names = [m.name for m in template.metrics]
    wanted: dict[str, str | None] = {}
    problems: list[Problem] = []
    for entry in selection:
        metric_raw, sep, source_raw = entry.partition("=")
        metric, source = metric_raw.strip(), source_raw.strip()
        if metric not in names:
            problems.append(
                _problem(
                    "--metric",
                    entry,
                    f"template {template.name!r} has no metric {metric!r} (its metrics: {', '.join(names)})",
                )
            )
            continue
        wanted[metric] = source if sep else None
    if problems:
        raise SpecError(problems)
    if not wanted:
        wanted = dict.fromkeys(names)

    def norm(s: str) -> str:
        return re.sub(r"[-_\s]", "", s).lower()

    out: dict[str, Series] = {}
    for metric, wanted_source in wanted.items():
        if wanted_source is not None:
            source = wanted_source
            if source not in series:
                problems.append(
                    _problem(
                        "--metric",
                        f"{metric}={source}",
                        f"no series {source!r} in {file} (series: {', '.join(sorted(series))})",
                    )
                )
                continue
            out[metric] = series[source]
            continue
        hits = [s for key, s in series.items() if norm(key) == norm(metric)]
        hits = hits or [s for s in series.values() if norm(s.labels.get("__name__", "")) == norm(metric)]
        if not hits and len(series) == 1 and len(wanted) == 1:
            hits = list(series.values())
        if len(hits) != 1:
            problems.append(
                _problem(
                    file,
                    "",
                    f"no series for metric {metric!r} of template {template.name!r} "
                    f"(series: {', '.join(sorted(series))}): map it with --metric {metric}=SERIES"
                    + (
                        ", or leave it out by naming the metrics to backtest with --metric"
                        if len(names) > 1
                        else ""
                    ),
                )
            )
            continue
        out[metric] = hits[0]
    if problems:
        raise SpecError(problems)
    return out


# ----------------------------------------------------------------------------------------------------------
# replaying
# ----------------------------------------------------------------------------------------------------------
@dataclass
class MeasurementRow:
    t: float
    metric: str
    #: 1-based index of this metric's measurement (errors included)
    index: int
    #: the recorded value given to the condition (or the error message)
    value: Any
    #: the sample's own timestamp (None: no sample at or before t)
    sample_t: float | None
    #: successful | failed | inconclusive | error
    outcome: str
    phase: str
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "metric": self.metric,
            "index": self.index,
            "value": _jsonable(self.value),
            "sample_t": self.sample_t,
            "outcome": self.outcome,
            "phase": self.phase,
            "dry_run": self.dry_run,
        }


@dataclass
class BacktestResult:
    template: str
    start: float
    #: passed | failed | errored | inconclusive | running (no verdict by the end of the window or data)
    outcome: str
    verdict: VerdictPhase
    #: when the verdict was reached (None: running)
    at: float | None
    #: the metric that decided it, its measurement index and value, and the limit that tripped
    metric: str | None = None
    index: int | None = None
    value: Any = None
    limit: str | None = None
    message: str | None = None
    #: why the replay stopped without a verdict: "end of data" | "end of window"
    stopped: str | None = None
    measurements: list[MeasurementRow] = field(default_factory=list)
    #: dry-run metrics that would have failed / errored / been inconclusive: (metric, phase, t, limit)
    dry_run: list[dict[str, Any]] = field(default_factory=list)
    background: bool = False
    origin: float = 0.0

    def to_dict(self, measurements: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "template": self.template,
            "background": self.background,
            "start": self.start,
            "outcome": self.outcome,
            "verdict": self.verdict,
            "at": self.at,
            "after": None if self.at is None else self.at - self.start,
            "metric": self.metric,
            "index": self.index,
            "value": _jsonable(self.value),
            "limit": self.limit,
            "message": self.message,
            "stopped": self.stopped,
            "dry_run": self.dry_run,
        }
        if measurements:
            out["measurements"] = [m.to_dict() for m in self.measurements]
        return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return str(v)
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v


def _limit_text(mp: MetricPlan, st: MetricStatus) -> str | None:
    if st.phase == "Failed":
        return f"failureLimit {mp.failure_limit} ({st.failed} failed > {mp.failure_limit})"
    if st.phase == "Error":
        return (
            f"consecutiveErrorLimit {mp.consecutive_error_limit} "
            f"({st.consecutive_error} consecutive errors > {mp.consecutive_error_limit})"
        )
    if st.phase == "Inconclusive":
        return (
            f"inconclusiveLimit {mp.inconclusive_limit} "
            f"({st.inconclusive} inconclusive > {mp.inconclusive_limit})"
        )
    if st.phase == "Successful":
        want = effective_count(mp)
        return f"count {want} reached ({st.failed} failed <= failureLimit {mp.failure_limit})"
    return None


def backtest(
    template: TemplatePlan,
    series: Mapping[str, Series],
    start: float | None = None,
    *,
    window: float | None = None,
    background: bool = False,
    staleness: float | None = DEFAULT_STALENESS,
    keep_measurements: bool = True,
) -> BacktestResult:
    """Replay one verification of ``template`` starting at ``start`` over the recorded ``series``.

    ``series`` maps metric names to their series; metrics not in it are left out of the replay (they
    neither measure nor count towards the verdict). ``window``: the phase ends this long after the start
    (only metrics measuring until the phase ends care). The replay stops at the verdict, at the end of the
    window, or when a measurement would fall after the last recorded sample.
    """
    metrics = tuple(m for m in template.metrics if m.name in series)
    if not metrics:
        raise ValueError("no metric of the template has a series")
    plan = TemplatePlan(name=template.name, metrics=metrics)
    origin = min(s.times[0] for s in series.values() if s.times)
    data_end = max(s.times[-1] for s in series.values() if s.times)
    t0 = origin if start is None else start
    run = start_run("backtest", plan, t0, background)
    states = list(run.metrics)
    counts = [0] * len(metrics)
    vector = [bool(_VECTOR_HINT.search(m.success_condition or m.failure_condition or "")) for m in metrics]
    rows: list[MeasurementRow] = []
    dry: list[dict[str, Any]] = []
    result = BacktestResult(
        template=template.name,
        start=t0,
        outcome="running",
        verdict="Running",
        at=None,
        background=background,
        origin=origin,
    )
    last_row: dict[str, MeasurementRow] = {}
    while True:
        due = [
            (st.next_at, j)
            for j, st in enumerate(states)
            if st.phase not in TERMINAL and st.next_at is not None
        ]
        if not due:
            result.stopped = "no measurement due"
            break
        t, j = min(due)
        if window is not None and t > t0 + window:
            result.stopped = "end of window"
            break
        if t > data_end:
            result.stopped = "end of data"
            break
        mp, st = metrics[j], states[j]
        sample_t, raw = series[mp.name].at(t, staleness)
        error: str | None = None
        value: MeasuredValue = None
        if isinstance(raw, _Error):
            error = str(raw)
        elif raw is not None:
            value = [raw] if vector[j] else raw
        new = record(mp, st, value, error, t)
        states[j] = new
        counts[j] += 1
        if new.consecutive_error > st.consecutive_error:
            outcome = "error"
        elif new.failed > st.failed:
            outcome = "failed"
        elif new.inconclusive > st.inconclusive:
            outcome = "inconclusive"
        else:
            outcome = "successful"
        row = MeasurementRow(
            t=t,
            metric=mp.name,
            index=counts[j],
            value=error if error is not None else value,
            sample_t=sample_t,
            outcome=outcome,
            phase=new.phase,
            dry_run=mp.dry_run,
        )
        last_row[mp.name] = row
        if keep_measurements:
            rows.append(row)
        if mp.dry_run and new.phase in ("Failed", "Error", "Inconclusive"):
            dry.append({"metric": mp.name, "phase": new.phase, "t": t, "limit": _limit_text(mp, new)})
        run = dataclasses.replace(run, metrics=tuple(states))
        verdict, message = run_verdict(plan, run)
        if verdict in TERMINAL:
            result.verdict = verdict
            result.outcome = OUTCOMES[verdict]
            result.at = t
            result.message = message
            # the deciding metric: the worst non-dry-run one (the one just measured on success)
            decider = j
            if verdict != "Successful":
                for k, (m2, s2) in enumerate(zip(metrics, states, strict=True)):
                    if not m2.dry_run and s2.phase == verdict:
                        decider = k
                        break
            dm, ds = metrics[decider], states[decider]
            result.metric = dm.name
            drow = last_row.get(dm.name)
            result.index = drow.index if drow else None
            result.value = drow.value if drow else None
            result.limit = _limit_text(dm, ds)
            break
    result.measurements = rows
    result.dry_run = dry
    return result


@dataclass
class RollingReport:
    template: str
    step: float
    window: float | None
    results: list[BacktestResult]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(OUTCOMES.values(), 0)
        for r in self.results:
            out[r.outcome] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "step": self.step,
            "window": self.window,
            "windows": len(self.results),
            "counts": self.counts(),
            "results": [r.to_dict(measurements=False) for r in self.results],
        }


def rolling(
    template: TemplatePlan,
    series: Mapping[str, Series],
    *,
    step: float | None = None,
    window: float | None = None,
    start: float | None = None,
    background: bool = False,
    staleness: float | None = DEFAULT_STALENESS,
) -> RollingReport:
    """Slide the verification along the data: one replay starting every ``step`` seconds.

    ``step`` defaults to the smallest metric interval (or 60 s). Windows whose first measurement would fall
    after the data are not replayed. Useful to tune thresholds: every window that fails on a healthy period
    is a false positive.
    """
    metrics = [m for m in template.metrics if m.name in series]
    if step is None:
        intervals = [m.interval for m in metrics if m.interval]
        step = min(intervals) if intervals else 60.0
    if step <= 0:
        raise ValueError("the rolling step must be positive")
    origin = min(s.times[0] for s in series.values() if s.times)
    data_end = max(s.times[-1] for s in series.values() if s.times)
    first_delay = min(m.initial_delay for m in metrics)
    t = origin if start is None else start
    results: list[BacktestResult] = []
    while t + first_delay <= data_end:
        results.append(
            backtest(
                template,
                series,
                t,
                window=window,
                background=background,
                staleness=staleness,
                keep_measurements=False,
            )
        )
        t += step
    return RollingReport(template=template.name, step=step, window=window, results=results)


# ----------------------------------------------------------------------------------------------------------
# presenting times
# ----------------------------------------------------------------------------------------------------------
def is_epoch(t: float) -> bool:
    return t > 1e9


def format_time(t: float, origin: float) -> str:
    """``+5m30s`` from the start of the data, with the UTC time when timestamps are Unix time."""
    offset = t - origin
    rel = ("+" if offset >= 0 else "-") + format_duration(abs(round(offset, 3)))
    if is_epoch(t):
        stamp = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{rel} ({stamp})"
    return rel


def parse_start(text: str, origin: float) -> float:
    """``+10m`` (offset from the start of the data), a Unix time or an ISO 8601 date-time."""
    text = text.strip()
    if text.startswith("+"):
        return origin + parse_duration(text[1:])
    return parse_timestamp(text)


def format_value(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:.6g}"
    if v is None:
        return "no data"
    return str(v)


def describe(result: BacktestResult) -> str:
    """One sentence: what the verification would have done, when and why."""
    origin = result.origin
    if result.at is None:
        if result.background and result.stopped == "end of data":
            return (
                f"no failure through the end of the data (background verification still running, started "
                f"{format_time(result.start, origin)})"
            )
        return f"no verdict ({result.stopped}); started {format_time(result.start, origin)}"
    when = format_time(result.at, origin)
    what = {
        "passed": "would have passed",
        "failed": "would have FAILED",
        "errored": "would have ERRORED",
        "inconclusive": "would have been INCONCLUSIVE",
    }[result.outcome]
    return (
        f"{what} at {when}: metric {result.metric!r} measurement #{result.index} = "
        f"{format_value(result.value)}; {result.limit}"
    )


def series_from_ranges(ranges: Iterable[Any], file: str = "--prometheus") -> dict[str, Series]:
    """Backtest series from range queries (:class:`ebbtide.adapters.providers.recording.MetricRange`), one per
    metric; a query returning several series is a located error (aggregate it, e.g. with ``sum``)."""
    out: dict[str, Series] = {}
    problems: list[Problem] = []
    for r in ranges:
        if len(r.series) > 1:
            labels = ", ".join(_series_name(s.labels, i) for i, s in enumerate(r.series[:3]))
            problems.append(
                _problem(
                    file,
                    f"metric {r.metric}",
                    f"the query returns {len(r.series)} series ({labels}"
                    f"{', ...' if len(r.series) > 3 else ''}): "
                    "a backtest judges one; aggregate them (sum, max, ... by nothing)",
                )
            )
            continue
        samples = r.series[0].samples if r.series else []
        out[r.metric] = Series(
            r.metric,
            times=[t for t, _ in samples],
            values=[v for _, v in samples],
            labels=dict(r.series[0].labels) if r.series else {},
        )
    if problems:
        raise SpecError(problems)
    return out


def selection_from(entries: Iterable[str]) -> list[str]:
    return [e for e in entries if e.strip()]
