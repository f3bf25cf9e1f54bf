"""Label selectors as the API server reads them from ``?labelSelector=``: equality and set-based terms."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

Labels = Mapping[str, str]
Term = Callable[[Labels], bool]

_SET = re.compile(r"^\s*(!?)\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*$")


class SelectorError(ValueError):
    pass


def _split(selector: str) -> list[str]:
    """Split on commas that are not inside a parenthesised value set."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def _term(text: str) -> Term:
    if m := _SET.match(text):
        key, op = m.group(2), m.group(3)
        values = {v.strip() for v in m.group(4).split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _EQ.match(text):
        key, op, value = m.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _EXISTS.match(text):
        negate, key = m.groups()
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise SelectorError(f"unable to parse requirement: {text.strip()!r}")


def parse(selector: str | None) -> Term:
    """A predicate over an object's labels; the empty selector matches everything."""
    terms = [_term(part) for part in _split(selector or "")]
    return lambda labels: all(term(labels) for term in terms)


def parse_fields(selector: str | None) -> Callable[[dict[str, object]], bool]:
    """``?fieldSelector=`` for the fields clients use: metadata.name and metadata.namespace."""
    checks = []
    for part in _split(selector or ""):
        m = _EQ.match(part)
        if not m or m.group(1) not in ("metadata.name", "metadata.namespace"):
            raise SelectorError(f"field selector not supported by the stand-in: {part.strip()!r}")
        field, op, value = m.groups()
        checks.append((field.split(".")[1], op != "!=", value))

    def match(obj: dict[str, object]) -> bool:
        meta = obj.get("metadata")
        assert isinstance(meta, dict)
        return all((meta.get(f) == v) == want for f, want, v in checks)

    return match
