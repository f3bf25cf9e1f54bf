"""Durations as Go / Kubernetes write them ("30s", "5m", "1h30m", "500ms"), in seconds."""

from __future__ import annotations

import math
import re

__all__ = ["MAX_DURATION", "format_duration", "parse_duration"]

#: the longest duration accepted anywhere (a year, 8760h), in seconds
MAX_DURATION = 8760 * 3600.0

_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # Go accepts both micro signs
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")


def parse_duration(v: object) -> float:
    """Seconds from an int/float (seconds) or a Go duration string; ValueError with the reason.

    Accepted: ``30``, ``1.5``, ``"30"`` (seconds), ``"30s"``, ``"5m"``, ``"1h30m"``, ``"500ms"``, ``"2h"``.
    Rejected: negative values, empty strings, booleans, NaN/infinity, unknown units (``"5 minutes"``).
    """
    if isinstance(v, bool):
        raise ValueError(f"a duration must be a number of seconds or a string like '30s', not {v!r}")
    if isinstance(v, int | float):
        seconds = float(v)
        if math.isnan(seconds) or math.isinf(seconds):
            raise ValueError(f"duration {v!r} is not a finite number")
        if seconds < 0:
            raise ValueError(f"duration {v!r} is negative")
        return _bounded(seconds, v)
    if not isinstance(v, str):
        kind = type(v).__name__
        raise ValueError(f"a duration must be a number of seconds or a string like '30s', not {kind}")
    text = v.strip()
    if not text:
        raise ValueError("empty duration")
    if text.startswith("-"):
        raise ValueError(f"duration {v!r} is negative")
    if text.startswith("+"):
        text = text[1:]
    if _NUMBER.fullmatch(text):
        return _bounded(float(text), v)
    total = 0.0
    pos = 0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ValueError(
            f"invalid duration {v!r}: write a number of seconds or a Go duration "
            "such as 30s, 5m, 1h30m, 500ms"
        )
    return _bounded(total, v)


def _bounded(seconds: float, v: object) -> float:
    if not seconds <= MAX_DURATION:  # also NaN and infinity
        raise ValueError(f"duration {v!r} is longer than the most accepted, 8760h (a year)")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest Go-style string for a number of seconds (``90`` -> ``"1m30s"``)."""
    if seconds < 0 or math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"cannot format duration {seconds!r}")
    if seconds == 0:
        return "0s"
    if seconds < 1:
        ms = seconds * 1000
        return f"{ms:g}ms"
    out = []
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        out.append(f"{int(h)}h")
    if m:
        out.append(f"{int(m)}m")
    if s:
        out.append(f"{s:g}s")
    return "".join(out)
