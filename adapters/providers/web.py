"""The web provider: one HTTP request to a JSON endpoint, a JSONPath selecting ``result`` (Argo's web metric).

``provider.web`` fields: ``url`` (required), ``method`` (GET, POST or PUT; default GET), ``headers``
(``[{key, value}]``), ``body`` (a string sent as is) or ``jsonBody`` (any value, sent as JSON with
``Content-Type: application/json``), ``timeoutSeconds`` (default 10), ``insecure`` (skip TLS verification) and
``jsonPath`` (default ``$``: the whole document). The JSONPath may be written as Argo and Ocean CD write it,
in braces (``{$.data.ok}``). It is evaluated with ``jsonpath-ng``:

- a path that names one place (fields and indexes only: ``$.data.ok``, ``$.items[0]``) gives that value;
- a path that can name several (``[*]``, slices, ``..``, filters) gives the list of every value it selects;
- a path that selects nothing is an Error measurement naming the path, as is a body that is not JSON or a
  non-2xx answer (with the status and the start of the body).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jsonpath_ng import Child, Fields, Index, JSONPath, Root, This
from jsonpath_ng.ext.parser import parse as parse_jsonpath

from ebbtide.adapters.providers.common import (
    ProviderError,
    answer,
    block,
    exchange,
    header_list,
    json_body,
    resolved,
    text,
)
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import MeasuredValue, Measurement

#: seconds to wait for an answer when the metric does not say (Argo's default)
DEFAULT_TIMEOUT = 10.0
METHODS = ("GET", "POST", "PUT")


class WebProvider:
    """Answers ``StartMeasurement`` effects whose metric has a ``web`` provider block."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout

    def measure(self, start: StartMeasurement, now: float) -> Measurement:
        return answer(start, lambda: self._measure(block(start, "web")))

    def _measure(self, config: dict[str, Any]) -> MeasuredValue:
        url = text(config, "web", "url")
        assert url is not None
        method = config.get("method") or "GET"
        if method not in METHODS:
            raise ProviderError(f"provider.web.method must be one of {', '.join(METHODS)}, not {method!r}")
        path = compile_path(text(config, "web", "jsonPath", required=False) or "$")
        timeout = config.get("timeoutSeconds")
        response = exchange(
            method,
            url,
            timeout=float(timeout) if isinstance(timeout, int) and timeout > 0 else self.timeout,
            verify=not config.get("insecure", False),
            what="the web metric endpoint",
            **_payload(config, method),
        )
        return select(path, json_body(response))


def _payload(config: dict[str, Any], method: str) -> dict[str, Any]:
    """The request's headers and body (``body`` as is, or ``jsonBody`` as JSON)."""
    headers = header_list(config, "web")
    body, json_doc = config.get("body"), config.get("jsonBody")
    if body is not None and json_doc is not None:
        raise ProviderError("provider.web: set body or jsonBody, not both")
    if (body is not None or json_doc is not None) and method == "GET":
        raise ProviderError("provider.web: a GET request has no body (use method POST or PUT)")
    if body is not None:
        return {"headers": headers, "content": text(config, "web", "body")}
    if json_doc is not None:
        resolved("provider.web.jsonBody", json_doc)
        return {"headers": {"Content-Type": "application/json", **headers}, "content": json.dumps(json_doc)}
    return {"headers": headers}


@dataclass(frozen=True)
class Path:
    """A compiled JSONPath and its text as the user wrote it (for error messages)."""

    source: str
    expr: JSONPath


def compile_path(source: str) -> Path:
    """The JSONPath of ``source`` (``$.a.b`` or Argo's ``{$.a.b}``); ProviderError when it cannot parse."""
    inner = source.strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1].strip()
    try:
        return Path(source, parse_jsonpath(inner))
    except Exception as exc:  # jsonpath-ng raises plain Exception for some syntax errors
        raise ProviderError(f"provider.web.jsonPath {source!r} is not a JSONPath: {exc}") from None


def select(path: Path, document: Any) -> MeasuredValue:
    """What ``path`` selects in ``document``: one value for a single-place path, else the list of values."""
    found = [match.value for match in path.expr.find(document)]
    if not found:
        raise ProviderError(f"JSONPath {path.source!r} selected nothing in the body")
    if singular(path.expr):
        return found[0]  # type: ignore[no-any-return]
    return found


def singular(path: JSONPath) -> bool:
    """True when ``path`` can name at most one place: a chain of single field names and single indexes."""
    if isinstance(path, Root | This):
        return True
    if isinstance(path, Child):
        return singular(path.left) and singular(path.right)
    if isinstance(path, Fields):
        return len(path.fields) == 1 and path.fields[0] != "*"
    return isinstance(path, Index) and len(path.indices) == 1
