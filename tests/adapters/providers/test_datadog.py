"""The Datadog provider against a local server answering in Datadog's documented formats (v1 and v2)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ebbtide.adapters.base import MeasurementProvider
from ebbtide.adapters.providers import DatadogProvider
from ebbtide.core.verification import classify

from .conftest import Reply, Vendor, free_port, start_of

NOW = 1_700_000_000.0
KEYS = {"apiKey": "dd-api", "appKey": "dd-app"}


def dd(address: str, **config: Any) -> Any:
    return start_of({"datadog": {"address": address, **KEYS, **config}}, success_condition="result < 0.05")


def provider() -> DatadogProvider:
    return DatadogProvider(clock=lambda: NOW)


def v1_body(*series: list[list[float | None]]) -> dict[str, Any]:
    """A v1 /api/v1/query answer as Datadog documents it."""
    return {
        "status": "ok",
        "res_type": "time_series",
        "series": [
            {
                "metric": "requests.error.rate",
                "display_name": "requests.error.rate",
                "pointlist": points,
                "scope": "service:checkout",
                "expression": "sum:requests.error.rate{service:checkout}",
                "length": len(points),
                "interval": 60,
                "unit": None,
                "aggr": "sum",
            }
            for points in series
        ],
        "from_date": int((NOW - 300) * 1000),
        "to_date": int(NOW * 1000),
        "group_by": [],
        "query": "sum:requests.error.rate{service:checkout}",
        "message": "",
    }


def v2_body(*columns: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"type": "scalar_response", "attributes": {"columns": list(columns)}}}


def number(name: str, values: list[float | None]) -> dict[str, Any]:
    return {"name": name, "type": "number", "values": values, "meta": {"unit": [None, None]}}


def test_is_a_measurement_provider() -> None:
    assert isinstance(DatadogProvider(), MeasurementProvider)


# -------------------------------------------------------------------------------------- v1


def test_v1_is_the_last_point_of_the_first_series(vendor: Vendor) -> None:
    vendor.route("GET", "/api/v1/query", Reply(body=v1_body([[1, 0.5], [2, 0.02]], [[1, 9.0]])))
    m = provider().measure(dd(vendor.url, query="sum:requests.error.rate{service:checkout}"), now=0)
    assert m.error is None and m.value == 0.02
    (request,) = vendor.requests
    assert request.headers["dd-api-key"] == "dd-api"
    assert request.headers["dd-application-key"] == "dd-app"
    assert request.query == {
        "from": [str(int(NOW) - 300)],
        "to": [str(int(NOW))],
        "query": ["sum:requests.error.rate{service:checkout}"],
    }


@pytest.mark.parametrize(("field", "window"), [("duration", "10m"), ("interval", "2m")])
def test_window_is_duration_or_interval(vendor: Vendor, field: str, window: str) -> None:
    vendor.route("GET", "/api/v1/query", Reply(body=v1_body([[1, 0.01]])))
    provider().measure(dd(vendor.url, query="q", **{field: window}), now=0)
    seconds = {"10m": 600, "2m": 120}[window]
    assert vendor.requests[0].query["from"] == [str(int(NOW) - seconds)]


@pytest.mark.parametrize(
    "body",
    [v1_body(), v1_body([]), v1_body([[1, 0.3], [2, None]])],
    ids=["no series", "no points", "null point"],
)
def test_v1_no_data_is_none_and_inconclusive(vendor: Vendor, body: dict[str, Any]) -> None:
    vendor.route("GET", "/api/v1/query", Reply(body=body))
    start = dd(vendor.url, query="q")
    m = provider().measure(start, now=0)
    assert m.error is None and m.value is None
    assert classify(start.metric, m.value) == ("inconclusive", "no data")


def test_v1_query_error_in_a_200_answer(vendor: Vendor) -> None:
    body = {
        "status": "error",
        "res_type": "time_series",
        "series": [],
        "error": "Rule 'scope_expr' didn't match",
    }
    vendor.route("GET", "/api/v1/query", Reply(body=body))
    m = provider().measure(dd(vendor.url, query="sum:x{"), now=0)
    assert m.error == "Datadog HTTP 200: Rule 'scope_expr' didn't match"


# -------------------------------------------------------------------------------------- v2


def test_v2_single_query(vendor: Vendor) -> None:
    vendor.route("POST", "/api/v2/query/scalar", Reply(body=v2_body(number("query", [0.004]))))
    m = provider().measure(dd(vendor.url, apiVersion="v2", query="sum:errors{*}"), now=0)
    assert m.error is None and m.value == 0.004
    sent = vendor.requests[0].json()
    assert sent == {
        "data": {
            "type": "scalar_request",
            "attributes": {
                "from": int((NOW - 300) * 1000),
                "to": int(NOW * 1000),
                "queries": [
                    {
                        "data_source": "metrics",
                        "name": "query",
                        "query": "sum:errors{*}",
                        "aggregator": "last",
                    }
                ],
                "formulas": [{"formula": "query"}],
            },
        }
    }


def test_v2_queries_and_formula(vendor: Vendor) -> None:
    vendor.route("POST", "/api/v2/query/scalar", Reply(body=v2_body(number("a / b", [2.5]))))
    start = dd(
        vendor.url,
        apiVersion="v2",
        queries={"a": "sum:requests.errors{*}.as_count()", "b": "sum:requests{*}.as_count()"},
        formula="moving_rollup(a, 60, 'sum') / b",
        aggregator="sum",
    )
    m = provider().measure(start, now=0)
    assert m.value == 2.5
    attrs = vendor.requests[0].json()["data"]["attributes"]
    assert [q["name"] for q in attrs["queries"]] == ["a", "b"]
    assert {q["aggregator"] for q in attrs["queries"]} == {"sum"}
    assert attrs["formulas"] == [{"formula": "moving_rollup(a, 60, 'sum') / b"}]


def test_v2_grouped_query_is_a_list(vendor: Vendor) -> None:
    group = {"name": "resource_name", "type": "group", "values": [["GET /a"], ["GET /b"]]}
    vendor.route("POST", "/api/v2/query/scalar", Reply(body=v2_body(group, number("query", [0.01, 0.2]))))
    start = start_of(
        {
            "datadog": {
                "address": vendor.url,
                **KEYS,
                "apiVersion": "v2",
                "query": "sum:e{*} by {resource_name}",
            }
        },
        success_condition="max(result) < 0.05",
    )
    m = provider().measure(start, now=0)
    assert m.value == [0.01, 0.2]
    assert classify(start.metric, m.value)[0] == "failed"


def test_v2_empty_values_is_no_data(vendor: Vendor) -> None:
    vendor.route("POST", "/api/v2/query/scalar", Reply(body=v2_body(number("query", []))))
    assert provider().measure(dd(vendor.url, apiVersion="v2", query="q"), now=0).value is None


def test_v2_errors_field(vendor: Vendor) -> None:
    vendor.route("POST", "/api/v2/query/scalar", Reply(body={**v2_body(), "errors": "invalid query: sum:x{"}))
    m = provider().measure(dd(vendor.url, apiVersion="v2", query="sum:x{"), now=0)
    assert m.error == "Datadog HTTP 200: invalid query: sum:x{"


# ------------------------------------------------------------------------------------ failures


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "Unauthorized"),
        (403, "Forbidden"),
        (429, "Rate limit of 300 requests in 3600 seconds reached. Please try again later."),
        (500, "Internal Server Error"),
    ],
)
def test_documented_error_bodies(vendor: Vendor, status: int, message: str) -> None:
    vendor.route("GET", "/api/v1/query", Reply(status, {"errors": [message]}))
    m = provider().measure(dd(vendor.url, query="q"), now=0)
    assert m.value is None and m.error == f"Datadog HTTP {status}: {message}"


def test_non_json_body(vendor: Vendor) -> None:
    vendor.route("GET", "/api/v1/query", Reply(502, "<html>502 Bad Gateway</html>"))
    m = provider().measure(dd(vendor.url, query="q"), now=0)
    assert m.error is not None and m.error.endswith("not JSON: '<html>502 Bad Gateway</html>'")


def test_slow_answer_is_a_timeout(vendor: Vendor) -> None:
    vendor.route("GET", "/api/v1/query", Reply(body=v1_body([[1, 0.0]]), delay=3.0))
    began = time.monotonic()
    m = provider().measure(dd(vendor.url, query="q", timeout="300ms"), now=0)
    assert time.monotonic() - began < 2.5
    assert m.error == f"timeout: no answer from Datadog at {vendor.url}/api/v1/query within 0.3s"


def test_unreachable_address() -> None:
    address = f"http://127.0.0.1:{free_port()}"
    m = provider().measure(dd(address, query="q"), now=0)
    assert m.error is not None and m.error.startswith(f"cannot reach Datadog at {address}/api/v1/query")


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"query": "q", "appKey": "k"}, "provider.datadog.apiKey is missing"),
        ({"query": "q", "apiKey": "k"}, "provider.datadog.appKey is missing"),
        ({**KEYS}, "provider.datadog.query is missing"),
        (
            {**KEYS, "query": "sum:x{service:{{args.svc}}}"},
            "provider.datadog.query has an unresolved placeholder",
        ),
        ({**KEYS, "query": "q", "apiVersion": "v3"}, "apiVersion must be v1 or v2"),
        ({**KEYS, "queries": {"a": "x"}}, "queries and formula need apiVersion: v2"),
        ({**KEYS, "apiVersion": "v2", "queries": {"a": "x", "b": "y"}}, "formula is required"),
        ({**KEYS, "apiVersion": "v2", "queries": {"a": "{{args.q}}"}}, "queries.a has an unresolved"),
        ({**KEYS, "apiVersion": "v2", "query": "q", "aggregator": "median"}, "aggregator must be one of"),
        ({**KEYS, "query": "q", "duration": "5 minutes"}, "provider.datadog.duration:"),
    ],
)
def test_bad_configuration_is_an_error_naming_the_field(config: dict[str, Any], reason: str) -> None:
    m = provider().measure(start_of({"datadog": {"address": "http://127.0.0.1:9", **config}}), now=0)
    assert m.error is not None and reason in m.error, m.error


@pytest.mark.parametrize(
    ("columns", "reason"),
    [
        ({"": None}, "Datadog columns are not a list"),
        ([{"type": "number", "values": {"": None}}], "Datadog column values are not a list"),
    ],
)
def test_v2_columns_of_the_wrong_shape(vendor: Vendor, columns: Any, reason: str) -> None:
    vendor.route("POST", "/api/v2/query/scalar", Reply(body={"data": {"attributes": {"columns": columns}}}))
    m = provider().measure(dd(vendor.url, apiVersion="v2", query="q"), now=0)
    assert m.error is not None and m.error.startswith(reason)
