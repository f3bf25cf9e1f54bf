"""The Prometheus provider: a metric's PromQL query, asked of a Prometheus server over its HTTP API.

``measure`` runs an instant query (``GET /api/v1/query``) and maps the answer to ``result`` as the conditions
see it (docs/providers.md):

- an instant vector: the list of its sample values, in the order Prometheus returns them (``result[0]``);
  an empty vector is ``[]``;
- a scalar: the number;
- a string: the string;
- ``NaN`` and ``±Inf`` samples stay floats (``isNaN(result[0])`` tests for the first).

A range vector (``x[5m]`` as the whole query) is an error, as in Argo Rollouts. Every failure of the server
or the network is an Error measurement with the reason, never an exception.

:func:`range_query` (``GET /api/v1/query_range``) returns each series of a range query; it is for backtests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx

from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import MeasuredValue, Measurement

#: seconds to wait for an answer when neither the metric nor the provider says
DEFAULT_TIMEOUT = 30.0


class PrometheusError(Exception):
    """A query Prometheus did not answer with data: the message is the measurement's error."""


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a range query: its labels and its ``(unix time, value)`` samples in time order."""

    labels: dict[str, str]
    samples: list[tuple[float, float]]


def instant_query(
    address: str, query: str, *, time: float | None = None, timeout: float = DEFAULT_TIMEOUT, **http: Any
) -> MeasuredValue:
    """The value of ``query`` at ``time`` (unix seconds; None: the server's now), shaped as ``result``."""
    params: dict[str, str] = {"query": query}
    if time is not None:
        params["time"] = _fmt(time)
    data = _get(address, "/api/v1/query", params, timeout, **http)
    return _instant_value(data)


def range_query(
    address: str,
    query: str,
    *,
    start: float,
    end: float,
    step: float,
    timeout: float = DEFAULT_TIMEOUT,
    **http: Any,
) -> list[Series]:
    """Every series of ``query`` evaluated from ``start`` to ``end`` (unix seconds) every ``step`` seconds."""
    params = {"query": query, "start": _fmt(start), "end": _fmt(end), "step": _fmt(step)}
    data = _get(address, "/api/v1/query_range", params, timeout, **http)
    if data.get("resultType") != "matrix":
        raise PrometheusError(f"range query returned {data.get('resultType')!r}, not a matrix")
    try:
        return [
            Series(dict(s["metric"]), [(float(t), float(v)) for t, v in s["values"]]) for s in data["result"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise PrometheusError(f"unreadable matrix in the answer: {exc!r}") from None


class PrometheusProvider:
    """Answers ``StartMeasurement`` effects whose metric has a ``prometheus`` provider block.

    ``address`` and ``timeout`` are the defaults for metrics that give none (``provider.prometheus.address``
    and ``.timeout`` win). ``origin`` is for backtests: when set, a measurement at engine time ``now`` queries
    Prometheus at ``origin + now``; when None (live), it queries at the server's current time.
    """

    def __init__(
        self, address: str | None = None, *, timeout: float = DEFAULT_TIMEOUT, origin: float | None = None
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.origin = origin

    def measure(self, start: StartMeasurement, now: float) -> Measurement:
        metric = start.metric.name
        try:
            value = self._query(start.metric.provider.get("prometheus"), now)
        except PrometheusError as exc:
            return Measurement(verification=start.verification, metric=metric, error=str(exc))
        return Measurement(verification=start.verification, metric=metric, value=value)

    def _query(self, config: Any, now: float) -> MeasuredValue:
        if not isinstance(config, dict):
            raise PrometheusError("the metric has no prometheus provider block")
        query = config.get("query")
        if not isinstance(query, str) or not query.strip():
            raise PrometheusError("provider.prometheus.query is missing or empty")
        if "{{" in query:
            raise PrometheusError(
                f"provider.prometheus.query has an unresolved placeholder: {query.strip()!r}"
            )
        address = config.get("address") or self.address
        if not isinstance(address, str):
            raise PrometheusError("no Prometheus address: set provider.prometheus.address")
        timeout = config.get("timeout")
        when = None if self.origin is None else self.origin + now
        return instant_query(
            address,
            query,
            time=when,
            timeout=float(timeout) if isinstance(timeout, int) and timeout > 0 else self.timeout,
            headers=_headers(config.get("headers")),
            verify=not config.get("insecure", False),
        )


def _headers(raw: Any) -> dict[str, str]:
    """Argo's ``headers: [{key, value}]`` as a mapping (entries without both are ignored)."""
    if not isinstance(raw, list):
        return {}
    return {h["key"]: h["value"] for h in raw if isinstance(h, dict) and "key" in h and "value" in h}


def _get(address: str, path: str, params: dict[str, str], timeout: float, **http: Any) -> dict[str, Any]:
    """The ``data`` of a successful Prometheus API answer; PrometheusError with the reason otherwise."""
    url = address.rstrip("/") + path
    try:
        with httpx.Client(timeout=timeout, **http) as client:
            response = client.get(url, params=params)
    except httpx.TimeoutException:
        raise PrometheusError(f"timeout: no answer from {address} within {timeout:g}s") from None
    except httpx.HTTPError as exc:
        raise PrometheusError(f"cannot reach Prometheus at {address}: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        snippet = response.text[:200].strip()
        raise PrometheusError(f"HTTP {response.status_code} from {url}: not JSON: {snippet!r}") from None
    if not isinstance(body, dict):
        raise PrometheusError(f"HTTP {response.status_code} from {url}: unexpected answer {body!r:.200}")
    if body.get("status") != "success":
        kind = body.get("errorType", "error")
        raise PrometheusError(f"Prometheus {kind} (HTTP {response.status_code}): {body.get('error', body)}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise PrometheusError(f"HTTP {response.status_code} from {url}: no data in the answer")
    return data


def _instant_value(data: dict[str, Any]) -> MeasuredValue:
    kind, result = data.get("resultType"), data.get("result")
    try:
        if kind == "vector":
            return [float(sample["value"][1]) for sample in result]  # type: ignore[union-attr]
        if kind == "scalar":
            return float(result[1])  # type: ignore[index]
        if kind == "string":
            return str(result[1])  # type: ignore[index]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise PrometheusError(f"unreadable {kind} in the answer: {exc!r}") from None
    raise PrometheusError(f"result type {kind!r} is not supported (query a vector or a scalar)")


def _fmt(seconds: float) -> str:
    """A time or step as Prometheus reads it (plain decimal seconds)."""
    if math.isfinite(seconds) and seconds == int(seconds):
        return str(int(seconds))
    return repr(float(seconds))
