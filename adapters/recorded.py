"""Recorded provider answers: the recording format, read back and answering measurements.

A recording is a JSON-lines file (docs/simulator.md, "Recordings"). The first line may be a header::

    {"recording": "ebbtide.dev/recording/v1", "start": 1732690800, "end": 1732694400, "source": "..."}

every other line is one answer of one metric, for one revision role::

    {"t": 1732690860, "metric": "error-rate", "role": "canary", "query": "sum(rate(...))", "value": [0.01]}
    {"t": 1732690920, "metric": "error-rate", "role": "canary", "error": "timeout: no answer ..."}

``t`` is the time of the measurement, in the clock of whoever recorded it (engine seconds for a simulation,
Unix time for ``ebbtide record``); ``start`` is the time that maps to t=0 of a replaying run (default 0) and
``end`` the last time the recording covers (default: each series' last sample). ``value`` is what the
provider answered (a number, a list for a Prometheus vector, a string, ``null`` for no data); ``error`` is a
provider error. ``role`` is ``canary`` (default) or ``stable`` (a baseline measured on the stable revision).

Answering (:meth:`Recording.answer`), at run time ``now`` the recording is read at ``start + offset + now``:

- the last sample at or before that time answers (a recording is a step function);
- before the first sample or after ``end``: no data (``None``, which the conditions find inconclusive);
- a recorded error is an Error measurement with the recorded message;
- a recorded number is given as ``[number]`` to conditions that index ``result[...]``.

This module reads and answers (it needs no HTTP library: the simulator imports it);
:mod:`ebbtide.adapters.providers.recording` writes recordings: :class:`RecordingProvider` wraps any provider,
and ``ebbtide record`` records the range queries of a template.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import MeasuredValue, Measurement

FORMAT = "ebbtide.dev/recording/v1"
ROLES = ("canary", "stable")
#: the largest recording file read (bytes)
MAX_BYTES = 64 * 1024 * 1024
_VECTOR_HINT = re.compile(r"result\s*\[")
_SAMPLE_KEYS = {"t", "metric", "role", "query", "value", "error"}
_HEADER_KEYS = {"recording", "start", "end", "source", "step"}


class RecordingError(Exception):
    """A recording file that cannot be read: ``problems`` are (where, reason) pairs, where is ``line N``."""

    def __init__(self, file: str, problems: list[tuple[str, str]]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("; ".join(f"{file}: {w}: {r}" if w else f"{file}: {r}" for w, r in problems))


# ----------------------------------------------------------------------------------------------------------
# the data
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Track:
    """The answers recorded for one metric and one role, in time order."""

    metric: str
    role: str
    query: str | None
    times: tuple[float, ...]
    #: per sample: (value, error); error None for a value
    samples: tuple[tuple[MeasuredValue, str | None], ...]
    #: the last time the track covers
    end: float

    def at(self, t: float) -> tuple[MeasuredValue, str | None]:
        """The last sample at or before ``t``; (None, None) before the first sample or after ``end``."""
        i = bisect_right(self.times, t)
        if i == 0 or t > self.end:
            return None, None
        return self.samples[i - 1]


@dataclass(frozen=True, slots=True)
class Recording:
    """A loaded recording: its tracks by (metric, role)."""

    file: str
    start: float
    tracks: Mapping[tuple[str, str], Track]
    source: str | None = None
    #: seconds after ``start`` that a replaying run's t=0 maps to (a scenario's ``offset``)
    offset: float = 0.0

    def metrics(self) -> list[str]:
        return sorted({m for m, _ in self.tracks})

    def only(self, metric: str | None, offset: float = 0.0) -> Recording:
        """This recording restricted to one metric (None: all) and read from ``offset`` on."""
        tracks = {k: v for k, v in self.tracks.items() if metric is None or k[0] == metric}
        return Recording(self.file, self.start, tracks, self.source, offset)

    def answer(
        self, start: StartMeasurement, now: float, role: str = "canary", vector: bool | None = None
    ) -> Measurement | None:
        """The recorded answer to ``start`` at run time ``now`` (None: the recording has no such track).

        ``vector``: give a recorded number as ``[number]``; None: when the metric's condition indexes
        ``result[...]``."""
        track = self.tracks.get((start.metric.name, role))
        if track is None:
            return None
        value, error = track.at(self.start + self.offset + now)
        name = start.metric.name
        if error is not None:
            return Measurement(verification=start.verification, metric=name, error=error)
        if vector is None:
            cond = start.metric.success_condition or start.metric.failure_condition or ""
            vector = bool(_VECTOR_HINT.search(cond))
        if vector and isinstance(value, int | float) and not isinstance(value, bool):
            value = [value]
        return Measurement(verification=start.verification, metric=name, value=value)


def replay(
    recordings: Iterable[Recording], start: StartMeasurement, now: float, role: str, vector: bool | None
) -> Measurement | None:
    """The answer of the first recording holding the metric (None: no recording does)."""
    for recording in recordings:
        answer = recording.answer(start, now, role, vector)
        if answer is not None:
            return answer
    return None


# ----------------------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------------------
def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def load_recording(path: str | Path) -> Recording:
    """Read and check a recording file; RecordingError lists every problem (at most 20) by line."""
    file = str(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(MAX_BYTES + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(file, [("", f"cannot read the file: {exc}")]) from None
    if len(text) > MAX_BYTES:
        raise RecordingError(file, [("", f"the file is larger than {MAX_BYTES} bytes")])
    return parse_recording(text, file)


def parse_recording(text: str, file: str = "<recording>") -> Recording:
    problems: list[tuple[str, str]] = []
    header: dict[str, Any] = {}
    rows: dict[tuple[str, str], list[tuple[float, int, MeasuredValue, str | None]]] = {}
    queries: dict[tuple[str, str], str | None] = {}
    first = True
    for lineno, line in enumerate(text.splitlines(), start=1):
        if len(problems) >= 20:
            break
        if not line.strip():
            continue
        where = f"line {lineno}"
        try:
            doc = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            problems.append((where, f"not a JSON object: {getattr(exc, 'msg', exc)}"))
            first = False
            continue
        if not isinstance(doc, dict):
            problems.append((where, "expected a JSON object"))
        elif "recording" in doc:
            if not first:
                problems.append((where, "a header is only allowed on the first line"))
            else:
                header = doc
                problems += [(where, r) for r in _header_problems(doc)]
        else:
            reason = _sample_problem(doc)
            if reason is not None:
                problems.append((where, reason))
            else:
                key = (doc["metric"], doc.get("role", "canary"))
                rows.setdefault(key, []).append((float(doc["t"]), lineno, doc.get("value"), doc.get("error")))
                queries.setdefault(key, doc.get("query"))
        first = False
    tracks: dict[tuple[str, str], Track] = {}
    end = header.get("end")
    for key, samples in rows.items():
        samples.sort(key=lambda s: s[0])
        for a, b in pairwise(samples):
            if a[0] == b[0]:
                problems.append(
                    (f"line {b[1]}", f"metric {key[0]!r} ({key[1]}) has two samples at t={a[0]:g}")
                )
        times = tuple(s[0] for s in samples)
        last = float(end) if isinstance(end, int | float) and _number(end) else times[-1]
        tracks[key] = Track(key[0], key[1], queries[key], times, tuple((s[2], s[3]) for s in samples), last)
    if not tracks and not problems:
        problems.append(("", 'no samples: expected lines such as {"t": 60, "metric": "m", "value": 1}'))
    if problems:
        raise RecordingError(file, problems[:20])
    start = header.get("start", 0.0)
    source = header.get("source")
    return Recording(
        file, float(start) if _number(start) else 0.0, tracks, source if isinstance(source, str) else None
    )


def _header_problems(doc: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if doc.get("recording") != FORMAT:
        out.append(f"recording must be {FORMAT!r}, not {doc.get('recording')!r}")
    unknown = sorted(set(doc) - _HEADER_KEYS)
    if unknown:
        out.append(f"unknown header field {unknown[0]!r} (fields: {', '.join(sorted(_HEADER_KEYS))})")
    for key in ("start", "end", "step"):
        if key in doc and not _number(doc[key]):
            out.append(f"{key} must be a number of seconds, not {doc[key]!r}")
    if _number(doc.get("start")) and _number(doc.get("end")) and doc["end"] < doc["start"]:
        out.append(f"end {doc['end']} is before start {doc['start']}")
    return out


def _sample_problem(doc: dict[str, Any]) -> str | None:
    unknown = sorted(set(doc) - _SAMPLE_KEYS)
    if unknown:
        return f"unknown field {unknown[0]!r} (a sample has {', '.join(sorted(_SAMPLE_KEYS))})"
    if not _number(doc.get("t")):
        return f"t must be a number of seconds, not {doc.get('t')!r}"
    if not isinstance(doc.get("metric"), str) or not doc["metric"]:
        return "metric (the metric's name) is missing or not a string"
    if doc.get("role", "canary") not in ROLES:
        return f"role must be canary or stable, not {doc['role']!r}"
    if "query" in doc and doc["query"] is not None and not isinstance(doc["query"], str):
        return "query must be a string"
    if "error" in doc:
        if "value" in doc:
            return "a sample has a value or an error, not both"
        if not isinstance(doc["error"], str) or not doc["error"]:
            return "error must be a non-empty message"
    return None


# ----------------------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------------------
def header_line(start: float = 0.0, end: float | None = None, source: str | None = None) -> str:
    doc: dict[str, Any] = {"recording": FORMAT, "start": start}
    if end is not None:
        doc["end"] = end
    if source is not None:
        doc["source"] = source
    return json.dumps(doc)


def sample_line(
    t: float,
    metric: str,
    *,
    value: MeasuredValue = None,
    error: str | None = None,
    role: str = "canary",
    query: str | None = None,
) -> str:
    doc: dict[str, Any] = {"t": t, "metric": metric, "role": role}
    if query is not None:
        doc["query"] = query
    if error is not None:
        doc["error"] = error
    else:
        doc["value"] = value
    return json.dumps(doc)


def query_of(provider: Mapping[str, Any]) -> str | None:
    """The query of a metric's provider block (``prometheus.query``, ``datadog.query``, ...), if any."""
    for block in provider.values():
        if isinstance(block, Mapping):
            for key in ("query", "nrql"):
                if isinstance(block.get(key), str):
                    return str(block[key])
    return None
