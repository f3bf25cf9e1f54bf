"""What every HTTP provider shares: reading its provider block, one HTTP exchange, and turning a failure of
the source into an Error measurement.

A provider raises :class:`ProviderError` anywhere below its ``measure``; :func:`answer` turns it into
``Measurement(error=reason)``. Every reason names what went wrong (the field, the address, the HTTP status and
a short excerpt of the body), so a user reading the verification's error sees what to fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from ebbtide.core.duration import parse_duration
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import MeasuredValue, Measurement

#: characters of a response body quoted in an error
EXCERPT = 200


class ProviderError(Exception):
    """A measurement the source did not answer with data: the message is the measurement's error."""


def answer(start: StartMeasurement, measure: Callable[[], MeasuredValue]) -> Measurement:
    """The Measurement of ``measure()``; a ProviderError becomes an Error measurement with its reason."""
    try:
        value = measure()
    except ProviderError as exc:
        return Measurement(verification=start.verification, metric=start.metric.name, error=str(exc))
    return Measurement(verification=start.verification, metric=start.metric.name, value=value)


def block(start: StartMeasurement, key: str) -> dict[str, Any]:
    """The metric's ``provider.<key>`` block (VerificationProvider settings already merged under it)."""
    config = start.metric.provider.get(key)
    if not isinstance(config, dict):
        raise ProviderError(f"the metric has no {key} provider block")
    return config


def text(config: Mapping[str, Any], key: str, field: str, *, required: bool = True) -> str | None:
    """A string field of the block, checked: present (when required), a string, no ``{{...}}`` left."""
    value = config.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ProviderError(f"provider.{key}.{field} is missing or empty")
        return None
    if not isinstance(value, str):
        raise ProviderError(f"provider.{key}.{field} must be a string, not {type(value).__name__}")
    resolved(f"provider.{key}.{field}", value)
    return value


def resolved(where: str, value: Any) -> None:
    """ProviderError when an ``{{args.x}}`` placeholder is left anywhere in ``value`` (an arg unset)."""
    if isinstance(value, str):
        if "{{" in value:
            raise ProviderError(f"{where} has an unresolved placeholder: {value.strip()!r}")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            resolved(f"{where}.{k}", v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            resolved(f"{where}[{i}]", v)


def seconds(config: Mapping[str, Any], key: str, field: str, default: float) -> float:
    """A duration field (``30``, ``"30s"``, ``"2m"``) in seconds; ``default`` when absent; must be > 0."""
    raw = config.get(field)
    if raw is None:
        return default
    try:
        value = parse_duration(raw)
    except ValueError as exc:
        raise ProviderError(f"provider.{key}.{field}: {exc}") from None
    if value <= 0:
        raise ProviderError(f"provider.{key}.{field} must be greater than 0, not {raw!r}")
    return value


def header_list(config: Mapping[str, Any], key: str) -> dict[str, str]:
    """Argo's ``headers: [{key, value}]`` as a mapping; an entry without both is a configuration error."""
    raw = config.get("headers")
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ProviderError(f"provider.{key}.headers must be a list of {{key, value}}")
    out: dict[str, str] = {}
    for i, h in enumerate(raw):
        if not (isinstance(h, Mapping) and isinstance(h.get("key"), str) and isinstance(h.get("value"), str)):
            raise ProviderError(f"provider.{key}.headers[{i}] needs a string key and value")
        resolved(f"provider.{key}.headers[{i}].value", h["value"])
        out[h["key"]] = h["value"]
    return out


def exchange(
    method: str,
    url: str,
    *,
    timeout: float,
    verify: bool = True,
    what: str = "the server",
    check: bool = True,
    **request: Any,
) -> httpx.Response:
    """One HTTP request; ProviderError for a timeout, a connection failure or (with ``check``) a non-2xx
    status."""
    try:
        with httpx.Client(timeout=timeout, verify=verify) as client:
            response = client.request(method, url, **request)
    except httpx.TimeoutException:
        raise ProviderError(f"timeout: no answer from {what} at {url} within {timeout:g}s") from None
    except httpx.HTTPError as exc:
        raise ProviderError(f"cannot reach {what} at {url}: {exc}") from None
    if check and not 200 <= response.status_code < 300:
        raise ProviderError(f"HTTP {response.status_code} from {url}: {excerpt(response)}")
    return response


def excerpt(response: httpx.Response) -> str:
    """The start of a response body, quoted, for an error message."""
    body = response.text.strip()
    return repr(body[:EXCERPT] + ("..." if len(body) > EXCERPT else ""))


def json_body(response: httpx.Response) -> Any:
    """The response's JSON document; ProviderError naming the URL when the body is not JSON."""
    try:
        return json.loads(response.content)
    except ValueError:
        raise ProviderError(
            f"HTTP {response.status_code} from {response.request.url}: not JSON: {excerpt(response)}"
        ) from None


def needs_condition(start: StartMeasurement, hint: str) -> None:
    """ProviderError when the metric has neither condition: the engine would pass any value it measures."""
    metric = start.metric
    if metric.success_condition is None and metric.failure_condition is None:
        raise ProviderError(
            f"metric {metric.name!r} has no successCondition or failureCondition, so any answer would pass: "
            f"add e.g. {hint}"
        )
