"""Writing recordings: :class:`RecordingProvider` wraps any measurement provider and writes what it answered;
:func:`template_ranges` runs the range queries of a template's Prometheus metrics, which ``ebbtide record``
writes as a recording (:func:`range_lines`) and ``ebbtide backtest --prometheus`` judges.

The format, its reading and the replay rules are in :mod:`ebbtide.adapters.recorded` (docs/simulator.md,
"Replaying recorded metrics").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO

from ebbtide.adapters.base import MeasurementProvider, PolledProvider
from ebbtide.adapters.providers.prometheus import PrometheusError, Series, range_query
from ebbtide.adapters.recorded import (
    FORMAT,
    Recording,
    RecordingError,
    header_line,
    load_recording,
    parse_recording,
    query_of,
    sample_line,
)
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import MeasuredValue, Measurement
from ebbtide.core.plan import TemplatePlan

__all__ = [
    "FORMAT",
    "MetricRange",
    "RangeError",
    "Recording",
    "RecordingError",
    "RecordingProvider",
    "load_recording",
    "parse_recording",
    "range_lines",
    "template_ranges",
]


@dataclass
class RecordingProvider:
    """A MeasurementProvider that answers as ``inner`` does and writes every answer to ``out``.

    ``start``: the time that replays as t=0 (engine seconds: 0 in a simulation, the wall-clock start in a
    controller). ``role``: the revision role its answers measure. Polled answers are written with the time
    their measurement was started."""

    inner: MeasurementProvider
    out: IO[str]
    start: float = 0.0
    role: str = "canary"
    source: str | None = None
    _asked: dict[tuple[str, str], tuple[float, StartMeasurement]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out.write(header_line(self.start, source=self.source) + "\n")
        self.out.flush()

    def measure(self, start: StartMeasurement, now: float) -> Measurement | None:
        answer = self.inner.measure(start, now)
        if answer is None:
            self._asked[(start.verification, start.metric.name)] = (now, start)
        else:
            self._write(now, start, answer)
        return answer

    def poll(self) -> list[Measurement]:
        if not isinstance(self.inner, PolledProvider):
            return []
        answers = self.inner.poll()
        for answer in answers:
            asked = self._asked.pop((answer.verification, answer.metric), None)
            if asked is not None:
                self._write(asked[0], asked[1], answer)
        return answers

    def _write(self, now: float, start: StartMeasurement, answer: Measurement) -> None:
        line = sample_line(
            now,
            start.metric.name,
            value=answer.value,
            error=answer.error,
            role=self.role,
            query=query_of(start.metric.provider),
        )
        self.out.write(line + "\n")
        self.out.flush()


# ----------------------------------------------------------------------------------------------------------
# range queries of a template
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricRange:
    """The range query of one metric of a template and the series it returned."""

    metric: str
    query: str
    series: list[Series]


class RangeError(Exception):
    """A range query that failed: the message names the metric."""


def template_ranges(
    address: str, template: TemplatePlan, start: float, end: float, step: float, *, timeout: float = 30.0
) -> list[MetricRange]:
    """The range query of every Prometheus metric of ``template`` (its args already substituted)."""
    out: list[MetricRange] = []
    for metric in template.metrics:
        block = metric.provider.get("prometheus")
        if not isinstance(block, Mapping):
            continue
        query = block.get("query")
        if not isinstance(query, str) or not query.strip():
            raise RangeError(f"metric {metric.name!r}: provider.prometheus.query is missing or empty")
        if "{{" in query:
            raise RangeError(
                f"metric {metric.name!r}: the query has an unresolved placeholder (pass it with --arg): "
                f"{query.strip()!r}"
            )
        try:
            series = range_query(address, query, start=start, end=end, step=step, timeout=timeout)
        except PrometheusError as exc:
            raise RangeError(f"metric {metric.name!r}: {exc}") from None
        out.append(MetricRange(metric.name, query, series))
    if not out:
        names = ", ".join(m.name for m in template.metrics)
        raise RangeError(f"template {template.name!r} has no Prometheus metric (its metrics: {names})")
    return out


def range_lines(
    ranges: list[MetricRange],
    start: float,
    end: float,
    step: float,
    role: str = "canary",
    source: str | None = None,
) -> list[str]:
    """A recording of range queries: at every step from ``start`` to ``end``, each metric's vector (the value
    of each series at that time, in the order Prometheus returned them), or null where no series has data."""
    lines = [header_line(start, end, source)]
    count = math.floor((end - start) / step + 1e-9) + 1
    for r in ranges:
        by_time = [{round(t, 3): v for t, v in s.samples} for s in r.series]
        for k in range(count):
            t = round(start + k * step, 3)
            values: list[MeasuredValue] = [points[t] for points in by_time if t in points]
            lines.append(sample_line(t, r.metric, value=values or None, role=role, query=r.query))
    return lines
