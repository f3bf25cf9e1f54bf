"""The Datadog provider: a metric query over the Datadog API, v1 or v2, as Argo Rollouts and Ocean CD ask it.

``provider.datadog`` (the VerificationProvider's ``address``, ``apiKey`` and ``appKey`` merged under it):

- ``apiVersion: v1`` (the default): ``GET {address}/api/v1/query?from&to&query`` (a timeseries query);
  ``result`` is the value of the **last point of the first series**.
- ``apiVersion: v2``: ``POST {address}/api/v2/query/scalar`` with ``query`` (one query named ``query``) or
  ``queries`` (``{name: query}``) and ``formula`` (required with more than one query), reduced by
  ``aggregator`` (default ``last``). ``result`` is the formula's value; a grouped query (``by {tag}``)
  gives the list of its values, one per group.
- The window is ``duration`` (Ocean CD) or ``interval`` (Argo), default ``5m``: data from now minus the
  window to now. ``timeout`` (seconds, default 10) bounds the request.
- No data (no series, no points, a null value) is ``None``, which the engine judges inconclusive (Argo:
  ``nil``; see docs/semantics.md). An answer with errors, a non-2xx status (401, 403, 429, ...), a body that
  is not JSON, a timeout or an unreachable address is an Error measurement with the reason.

The keys are sent as the ``DD-API-KEY`` and ``DD-APPLICATION-KEY`` headers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ebbtide.adapters.providers.common import (
    ProviderError,
    answer,
    block,
    exchange,
    json_body,
    resolved,
    seconds,
    text,
)
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import MeasuredValue, Measurement

DEFAULT_ADDRESS = "https://api.datadoghq.com"
DEFAULT_WINDOW = 300.0
DEFAULT_TIMEOUT = 10.0
AGGREGATORS = ("avg", "min", "max", "sum", "last", "percentile", "mean", "l2norm", "area")


class DatadogProvider:
    """Answers ``StartMeasurement`` effects whose metric has a ``datadog`` provider block.

    ``clock`` gives the end of the query window (unix seconds; the wall clock by default).
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def measure(self, start: StartMeasurement, now: float) -> Measurement:
        return answer(start, lambda: self._measure(block(start, "datadog")))

    def _measure(self, config: dict[str, Any]) -> MeasuredValue:
        address = (text(config, "datadog", "address", required=False) or DEFAULT_ADDRESS).rstrip("/")
        headers = {
            "DD-API-KEY": text(config, "datadog", "apiKey") or "",
            "DD-APPLICATION-KEY": text(config, "datadog", "appKey") or "",
            "Accept": "application/json",
        }
        window = seconds(config, "datadog", "duration", 0.0) or seconds(
            config, "datadog", "interval", DEFAULT_WINDOW
        )
        timeout = seconds(config, "datadog", "timeout", DEFAULT_TIMEOUT)
        end = self.clock()
        version = config.get("apiVersion") or "v1"
        if version == "v1":
            if config.get("queries") is not None or config.get("formula") is not None:
                raise ProviderError("provider.datadog: queries and formula need apiVersion: v2")
            query = text(config, "datadog", "query")
            params = {"from": str(int(end - window)), "to": str(int(end)), "query": query or ""}
            url = f"{address}/api/v1/query"
            body = _answer(
                exchange(
                    "GET", url, timeout=timeout, what="Datadog", check=False, headers=headers, params=params
                )
            )
            return _v1_value(body)
        if version == "v2":
            request = _v2_request(config, end, window)
            url = f"{address}/api/v2/query/scalar"
            body = _answer(
                exchange(
                    "POST", url, timeout=timeout, what="Datadog", check=False, headers=headers, json=request
                )
            )
            return _v2_value(body)
        raise ProviderError(f"provider.datadog.apiVersion must be v1 or v2, not {version!r}")


def _answer(response: Any) -> dict[str, Any]:
    """The JSON object of a Datadog answer; ProviderError with Datadog's own message for an error."""
    body = json_body(response)
    status = response.status_code
    if not isinstance(body, dict):
        raise ProviderError(f"Datadog HTTP {status}: unexpected answer {body!r:.200}")
    errors = body.get("errors") or (body.get("error") if body.get("status") == "error" else None)
    if not 200 <= status < 300 or errors:
        if isinstance(errors, list):
            errors = "; ".join(str(e) for e in errors)
        raise ProviderError(f"Datadog HTTP {status}: {errors or body!s:.300}")
    return body


def _v1_value(body: dict[str, Any]) -> MeasuredValue:
    series = body.get("series")
    if not isinstance(series, list):
        raise ProviderError("Datadog answer has no series list")
    if not series:
        return None
    points = series[0].get("pointlist") if isinstance(series[0], dict) else None
    if not isinstance(points, list):
        raise ProviderError("Datadog series has no pointlist")
    if not points:
        return None
    try:
        value = points[-1][1]
    except (IndexError, TypeError, KeyError):
        raise ProviderError(f"Datadog point {points[-1]!r:.100} is not [time, value]") from None
    return _number(value)


def _v2_request(config: dict[str, Any], end: float, window: float) -> dict[str, Any]:
    queries = config.get("queries")
    if queries is None:
        queries = {"query": text(config, "datadog", "query")}
    elif config.get("query") is not None:
        raise ProviderError("provider.datadog: set query or queries, not both")
    if not isinstance(queries, dict) or not queries:
        raise ProviderError("provider.datadog.queries must map names to queries")
    resolved("provider.datadog.queries", queries)
    formula = text(config, "datadog", "formula", required=False)
    if formula is None:
        if len(queries) != 1:
            raise ProviderError("provider.datadog.formula is required with more than one query")
        formula = next(iter(queries))
    aggregator = config.get("aggregator") or "last"
    if aggregator not in AGGREGATORS:
        raise ProviderError(f"provider.datadog.aggregator must be one of {', '.join(AGGREGATORS)}")
    return {
        "data": {
            "type": "scalar_request",
            "attributes": {
                "from": int((end - window) * 1000),
                "to": int(end * 1000),
                "queries": [
                    {"data_source": "metrics", "name": name, "query": q, "aggregator": aggregator}
                    for name, q in queries.items()
                ],
                "formulas": [{"formula": formula}],
            },
        }
    }


def _v2_value(body: dict[str, Any]) -> MeasuredValue:
    try:
        columns = body["data"]["attributes"]["columns"]
    except (KeyError, TypeError):
        raise ProviderError("Datadog answer has no data.attributes.columns") from None
    if not isinstance(columns, list):
        raise ProviderError(f"Datadog columns are not a list: {columns!r:.100}")
    numbers = [c for c in columns if isinstance(c, dict) and c.get("type") == "number"]
    if not numbers:
        return None
    values = numbers[0].get("values") or []
    if not isinstance(values, list):
        raise ProviderError(f"Datadog column values are not a list: {values!r:.100}")
    if any(isinstance(c, dict) and c.get("type") == "group" for c in columns):
        return [_number(v) for v in values]
    return _number(values[0]) if values else None


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProviderError(f"Datadog value {value!r:.100} is not a number")
    return float(value)
