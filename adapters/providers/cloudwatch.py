"""The CloudWatch provider: ``GetMetricData`` over CloudWatch's JSON protocol, signed with AWS Signature V4.

``provider.cloudWatch`` (a VerificationProvider's ``cloudWatch`` settings merged under it), as Argo Rollouts
writes it:

- ``metricDataQueries``: the GetMetricData queries, each ``{id, expression}`` or ``{id, metricStat: {metric:
  {namespace, metricName, dimensions: [{name, value}]}, period, stat, unit}}``, with ``label``,
  ``returnData`` and (for an expression) ``period``;
- ``interval`` (Argo) or ``duration`` (Ocean CD), default ``5m``: data from now minus the window to now;
- ``region``, else ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` from the environment; ``endpoint`` replaces
  ``https://monitoring.<region>.amazonaws.com`` (a VPC endpoint, a proxy, a test server);
- credentials: ``accessKeyId``, ``secretAccessKey`` and ``sessionToken`` (from Secret args, as
  ``{{args.aws-key}}``), else ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN``
  from the controller's environment (Argo's way);
- ``timeout`` (seconds, default 10) bounds each request.

The request is ``POST /`` with ``Content-Type: application/x-amz-json-1.0`` and ``X-Amz-Target:
GraniteServiceVersion20100801.GetMetricData`` (the AWS JSON 1.0 protocol CloudWatch serves beside its older
query/XML protocol), signed for the service ``monitoring`` with ``httpx-auth``'s ``AWS4Auth`` (the optional
extra ``cloudwatch``). A ``NextToken`` is followed (at most :data:`MAX_PAGES` pages) and the pages merged.

``result`` is the list of ``MetricDataResults`` as Argo exposes them: ``[{Id, Label, StatusCode, Timestamps,
Values, Messages}]`` with ``Timestamps`` as RFC 3339 strings, in the order CloudWatch returns them (the
queries with ``returnData``), so ``all(result[0].Values, {# <= 0.01})`` reads as in Argo. An AWS error
(``Throttling``, ``AccessDenied``, ``SignatureDoesNotMatch``, ``ValidationError``, ...), a result whose
``StatusCode`` is ``Forbidden`` or ``InternalError``, a body that is not JSON, a timeout or an unreachable
address is an Error measurement with the reason.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

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

KEY = "cloudWatch"
DEFAULT_WINDOW = 300.0
DEFAULT_TIMEOUT = 10.0
#: pages of a NextToken followed before the answer is an error (CloudWatch pages at 100,800 data points)
MAX_PAGES = 10
TARGET = "GraniteServiceVersion20100801.GetMetricData"
CONTENT_TYPE = "application/x-amz-json-1.0"
SERVICE = "monitoring"
_ID = re.compile(r"^[a-z][A-Za-z0-9_]*$")
_QUERY_FIELDS = {"id", "expression", "metricStat", "label", "returnData", "period", "accountId"}
_STAT_FIELDS = {"metric", "period", "stat", "unit"}
_METRIC_FIELDS = {"namespace", "metricName", "dimensions"}
_FAILED = ("Forbidden", "InternalError")

Env = Callable[[str], str | None]


class CloudWatchProvider:
    """Answers ``StartMeasurement`` effects whose metric has a ``cloudWatch`` provider block.

    ``clock`` gives the end of the query window (unix seconds; the wall clock by default); ``env`` reads the
    environment (region and credentials; ``os.environ.get`` by default).
    """

    def __init__(self, *, clock: Callable[[], float] = time.time, env: Env = os.environ.get) -> None:
        self.clock = clock
        self.env = env

    def measure(self, start: StartMeasurement, now: float) -> Measurement:
        return answer(start, lambda: self._measure(block(start, KEY)))

    def _measure(self, config: dict[str, Any]) -> MeasuredValue:
        queries = data_queries(config.get("metricDataQueries"))
        region = text(config, KEY, "region", required=False) or self.env("AWS_REGION")
        region = region or self.env("AWS_DEFAULT_REGION")
        if not region:
            raise ProviderError(f"provider.{KEY}.region is missing (or set AWS_REGION in the environment)")
        url = text(config, KEY, "endpoint", required=False) or f"https://{SERVICE}.{region}.amazonaws.com"
        auth = self._auth(config, region)
        window = seconds(config, KEY, "duration", 0.0) or seconds(config, KEY, "interval", DEFAULT_WINDOW)
        timeout = seconds(config, KEY, "timeout", DEFAULT_TIMEOUT)
        end = int(self.clock())
        request: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": end - int(window),
            "EndTime": end,
        }
        pages: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            pages.append(_call(url, request, auth, timeout))
            token = pages[-1].get("NextToken")
            if not token:
                return merged(pages)
            request = {**request, "NextToken": token}
        raise ProviderError(f"CloudWatch answered more than {MAX_PAGES} pages: narrow the interval")

    def _auth(self, config: Mapping[str, Any], region: str) -> httpx.Auth:
        try:
            from httpx_auth import AWS4Auth
        except ImportError:  # pragma: no cover - the extra is part of dev
            raise ProviderError(
                "the CloudWatch provider needs the cloudwatch extra: pip install 'ebbtide[cloudwatch]'"
            ) from None
        key = text(config, KEY, "accessKeyId", required=False)
        secret = text(config, KEY, "secretAccessKey", required=False)
        if (key is None) != (secret is None):
            raise ProviderError(f"provider.{KEY}: give accessKeyId and secretAccessKey together")
        if key is not None:  # the block's credentials, not mixed with the environment's
            token = text(config, KEY, "sessionToken", required=False)
        else:
            key, secret = self.env("AWS_ACCESS_KEY_ID"), self.env("AWS_SECRET_ACCESS_KEY")
            token = self.env("AWS_SESSION_TOKEN")
        if not key or not secret:
            raise ProviderError(
                f"no AWS credentials: set provider.{KEY}.accessKeyId and secretAccessKey (e.g. from Secret "
                "args) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
            )
        extra = {"security_token": token} if token else {}
        auth: httpx.Auth = AWS4Auth(key, secret, region, SERVICE, **extra)
        return auth


def _call(url: str, request: dict[str, Any], auth: httpx.Auth, timeout: float) -> dict[str, Any]:
    """One signed GetMetricData; ProviderError with AWS's error code and message for an error answer."""
    response = exchange(
        "POST",
        url,
        timeout=timeout,
        what="CloudWatch",
        check=False,
        auth=auth,
        headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET, "x-amzn-query-mode": "true"},
        json=request,
    )
    body = json_body(response)
    if not 200 <= response.status_code < 300:
        raise ProviderError(f"CloudWatch HTTP {response.status_code} {_error(response, body)}")
    if not isinstance(body, dict) or not isinstance(body.get("MetricDataResults", []), list):
        raise ProviderError(f"CloudWatch answer has no MetricDataResults list: {body!r:.200}")
    return body


def _error(response: httpx.Response, body: Any) -> str:
    """``Code: message`` of an AWS JSON error (the query-compatible code when the header gives it)."""
    code = (response.headers.get("x-amzn-query-error") or "").split(";")[0]
    message = None
    if isinstance(body, dict):
        if not code:
            code = str(body.get("__type") or body.get("code") or "").split("#")[-1].split(":")[0]
        message = body.get("message") or body.get("Message")
    return f"{code or 'error'}: {message or body!s:.300}"


def merged(pages: list[dict[str, Any]]) -> list[MeasuredValue]:
    """The MetricDataResults of every page, one entry per Id (its points in page order), as Argo's result."""
    by_id: dict[str, dict[str, Any]] = {}
    for page in pages:
        for raw in page.get("MetricDataResults") or []:
            if not isinstance(raw, dict) or not isinstance(raw.get("Id"), str):
                raise ProviderError(f"CloudWatch result without an Id: {raw!r:.200}")
            out = by_id.setdefault(
                raw["Id"],
                {"Id": raw["Id"], "Label": raw.get("Label") or "", "Timestamps": [], "Values": []},
            )
            times, values = raw.get("Timestamps") or [], raw.get("Values") or []
            if len(times) != len(values):
                raise ProviderError(
                    f"CloudWatch result {raw['Id']!r} has {len(times)} times, {len(values)} values"
                )
            out["Timestamps"] += [_rfc3339(t) for t in times]
            out["Values"] += [_number(raw["Id"], v) for v in values]
            out["StatusCode"] = raw.get("StatusCode") or "Complete"
            out["Messages"] = [*out.get("Messages", []), *(raw.get("Messages") or [])]
    for result in by_id.values():
        if result["StatusCode"] in _FAILED:
            said = "; ".join(
                f"{m.get('Code')}: {m.get('Value')}" for m in result["Messages"] if isinstance(m, dict)
            )
            raise ProviderError(
                f"CloudWatch result {result['Id']!r} is {result['StatusCode']}: {said or '-'}"
            )
    return list(by_id.values())


def _rfc3339(raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ProviderError(f"CloudWatch timestamp {raw!r:.50} is not epoch seconds")
    return datetime.fromtimestamp(raw, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(query: str, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ProviderError(f"CloudWatch value {raw!r:.50} of {query!r} is not a number")
    return float(raw)


def data_queries(raw: Any) -> list[dict[str, Any]]:
    """Argo's ``metricDataQueries`` (camelCase) as GetMetricData's ``MetricDataQueries`` (PascalCase),
    checked: ProviderError naming the field for anything CloudWatch would refuse."""
    where = f"provider.{KEY}.metricDataQueries"
    if not isinstance(raw, list) or not raw:
        raise ProviderError(f"{where} must be a non-empty list of queries")
    resolved(where, raw)
    out = [_query(f"{where}[{i}]", q) for i, q in enumerate(raw)]
    ids = [q["Id"] for q in out]
    if len(set(ids)) != len(ids):
        raise ProviderError(f"{where}: ids must be unique, got {ids}")
    if not any(q.get("ReturnData", True) for q in out):
        raise ProviderError(f"{where}: no query has returnData true, so there would be no result")
    return out


def _query(where: str, q: Any) -> dict[str, Any]:
    fields = _fields(where, q, _QUERY_FIELDS)
    qid = fields.get("id")
    if not isinstance(qid, str) or not _ID.match(qid):
        raise ProviderError(f"{where}.id must start with a lowercase letter, then letters, digits or _")
    out: dict[str, Any] = {"Id": qid}
    if ("expression" in fields) == ("metricStat" in fields):
        raise ProviderError(f"{where}: give exactly one of expression and metricStat")
    if "expression" in fields:
        out["Expression"] = _string(f"{where}.expression", fields["expression"])
    else:
        out["MetricStat"] = _stat(f"{where}.metricStat", fields["metricStat"])
    if "label" in fields:
        out["Label"] = _string(f"{where}.label", fields["label"])
    if "accountId" in fields:
        out["AccountId"] = _string(f"{where}.accountId", fields["accountId"])
    if "period" in fields:
        out["Period"] = _period(f"{where}.period", fields["period"])
    if "returnData" in fields:
        if not isinstance(fields["returnData"], bool):
            raise ProviderError(f"{where}.returnData must be true or false")
        out["ReturnData"] = fields["returnData"]
    return out


def _stat(where: str, raw: Any) -> dict[str, Any]:
    fields = _fields(where, raw, _STAT_FIELDS)
    metric = _fields(f"{where}.metric", fields.get("metric"), _METRIC_FIELDS)
    out_metric: dict[str, Any] = {
        "MetricName": _string(f"{where}.metric.metricName", metric.get("metricName"))
    }
    if "namespace" in metric:
        out_metric["Namespace"] = _string(f"{where}.metric.namespace", metric["namespace"])
    dims = metric.get("dimensions") or []
    if not isinstance(dims, list):
        raise ProviderError(f"{where}.metric.dimensions must be a list of {{name, value}}")
    out_metric["Dimensions"] = [_dimension(f"{where}.metric.dimensions[{i}]", d) for i, d in enumerate(dims)]
    out = {
        "Metric": out_metric,
        "Period": _period(f"{where}.period", fields.get("period")),
        "Stat": _string(f"{where}.stat", fields.get("stat")),
    }
    if "unit" in fields:
        out["Unit"] = _string(f"{where}.unit", fields["unit"])
    return out


def _dimension(where: str, raw: Any) -> dict[str, str]:
    fields = _fields(where, raw, {"name", "value"})
    return {
        "Name": _string(f"{where}.name", fields.get("name")),
        "Value": _string(f"{where}.value", fields.get("value")),
    }


def _fields(where: str, raw: Any, known: set[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ProviderError(f"{where} must be a map")
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ProviderError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return raw


def _string(where: str, raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ProviderError(f"{where} must be a non-empty string")
    return raw


def _period(where: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise ProviderError(f"{where} must be a whole number of seconds greater than 0, not {raw!r}")
    return raw
