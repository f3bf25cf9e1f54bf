"""The New Relic provider against a local server answering as NerdGraph documents (GraphQL data, errors)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ebbtide.adapters.base import MeasurementProvider
from ebbtide.adapters.providers import NewRelicProvider
from ebbtide.adapters.providers.newrelic import QUERY
from ebbtide.core.verification import classify

from .conftest import Reply, Vendor, free_port, start_of

NRQL = "FROM Transaction SELECT percentage(count(*), WHERE httpResponseCode != 500) as successRate"
ACCOUNT = {"personalApiKey": "NRAK-KEY", "accountId": "1234567"}


def nr(url: str, **config: Any) -> Any:
    return start_of(
        {"newRelic": {"baseUrlNerdGraph": url, **ACCOUNT, "query": NRQL, **config}},
        success_condition="result.successRate >= 95",
    )


def results(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"data": {"actor": {"account": {"nrql": {"results": rows}}}}}


def test_is_a_measurement_provider() -> None:
    assert isinstance(NewRelicProvider(), MeasurementProvider)


def test_one_row_is_a_map(vendor: Vendor) -> None:
    vendor.route("POST", "/graphql", Reply(body=results([{"successRate": 99.5}])))
    start = nr(vendor.url + "/graphql")
    m = NewRelicProvider().measure(start, now=0)
    assert m.error is None and m.value == {"successRate": 99.5}
    assert classify(start.metric, m.value)[0] == "successful"
    (request,) = vendor.requests
    assert request.headers["api-key"] == "NRAK-KEY"
    assert request.json() == {"query": QUERY, "variables": {"accountId": 1234567, "nrql": NRQL}}
    assert "actor { account(id: $accountId) { nrql(query: $nrql) { results } } }" in QUERY


def test_unnamed_function_is_read_by_its_key(vendor: Vendor) -> None:
    vendor.route("POST", "/graphql", Reply(body=results([{"average.duration": 0.25}])))
    start = start_of(
        {
            "newRelic": {
                "baseUrlNerdGraph": vendor.url + "/graphql",
                **ACCOUNT,
                "query": "SELECT average(duration)",
            }
        },
        success_condition="result['average.duration'] < 0.5",
    )
    m = NewRelicProvider().measure(start, now=0)
    assert classify(start.metric, m.value)[0] == "successful"


def test_facets_are_a_list_of_rows(vendor: Vendor) -> None:
    rows = [{"facet": "a", "successRate": 99.0}, {"facet": "b", "successRate": 90.0}]
    vendor.route("POST", "/graphql", Reply(body=results(rows)))
    assert NewRelicProvider().measure(nr(vendor.url + "/graphql"), now=0).value == rows


def test_no_rows_is_an_empty_list(vendor: Vendor) -> None:
    vendor.route("POST", "/graphql", Reply(body=results([])))
    assert NewRelicProvider().measure(nr(vendor.url + "/graphql"), now=0).value == []


def test_graphql_errors_are_an_error(vendor: Vendor) -> None:
    body = {
        "data": {"actor": {"account": {"nrql": None}}},
        "errors": [
            {
                "locations": [{"column": 30, "line": 1}],
                "message": "NRQL Syntax Error: Error at line 1 position 8, unexpected 'FRM'",
                "path": ["actor", "account", "nrql"],
            }
        ],
    }
    vendor.route("POST", "/graphql", Reply(body=body))
    m = NewRelicProvider().measure(nr(vendor.url + "/graphql"), now=0)
    assert m.value is None
    assert (
        m.error
        == "NerdGraph error (HTTP 200): NRQL Syntax Error: Error at line 1 position 8, unexpected 'FRM'"
    )


def test_bad_key(vendor: Vendor) -> None:
    body = {"errors": [{"extensions": {"errorClass": "UNAUTHORIZED"}, "message": "Invalid credentials"}]}
    vendor.route("POST", "/graphql", Reply(401, body))
    m = NewRelicProvider().measure(nr(vendor.url + "/graphql"), now=0)
    assert m.error == "NerdGraph error (HTTP 401): Invalid credentials"


@pytest.mark.parametrize("status", [403, 429, 500])
def test_http_errors_without_graphql_errors(vendor: Vendor, status: int) -> None:
    vendor.route("POST", "/graphql", Reply(status, {"message": "nope"}))
    m = NewRelicProvider().measure(nr(vendor.url + "/graphql"), now=0)
    assert m.error == f"NerdGraph HTTP {status}: {{'message': 'nope'}}"


def test_non_json_body(vendor: Vendor) -> None:
    vendor.route("POST", "/graphql", Reply(503, "Service Unavailable"))
    m = NewRelicProvider().measure(nr(vendor.url + "/graphql"), now=0)
    assert m.error == f"HTTP 503 from {vendor.url}/graphql: not JSON: 'Service Unavailable'"


def test_slow_answer_is_a_timeout(vendor: Vendor) -> None:
    vendor.route("POST", "/graphql", Reply(body=results([]), delay=3.0))
    began = time.monotonic()
    m = NewRelicProvider().measure(nr(vendor.url + "/graphql", timeout=0.3), now=0)
    assert time.monotonic() - began < 2.5
    assert m.error == f"timeout: no answer from New Relic NerdGraph at {vendor.url}/graphql within 0.3s"


def test_unreachable_address() -> None:
    url = f"http://127.0.0.1:{free_port()}/graphql"
    m = NewRelicProvider().measure(nr(url), now=0)
    assert m.error is not None and m.error.startswith(f"cannot reach New Relic NerdGraph at {url}")


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"query": None}, "provider.newRelic.query is missing"),
        ({"query": "SELECT 1 WHERE app = '{{args.app}}'"}, "provider.newRelic.query has an unresolved"),
        ({"personalApiKey": None}, "provider.newRelic.personalApiKey is missing"),
        ({"accountId": None}, "provider.newRelic.accountId is missing"),
        ({"accountId": "account-01"}, "provider.newRelic.accountId must be a number"),
        ({"baseUrlNerdGraph": None, "region": "ap"}, "provider.newRelic.region must be us or eu"),
    ],
)
def test_bad_configuration_is_an_error_naming_the_field(config: dict[str, Any], reason: str) -> None:
    block = {"baseUrlNerdGraph": "http://127.0.0.1:9/graphql", **ACCOUNT, "query": NRQL, **config}
    m = NewRelicProvider().measure(
        start_of({"newRelic": {k: v for k, v in block.items() if v is not None}}), 0
    )
    assert m.error is not None and reason in m.error, m.error


def test_errors_that_are_not_a_list(vendor: Vendor) -> None:
    vendor.route("POST", "/graphql", Reply(body={"errors": True}))
    m = NewRelicProvider().measure(nr(vendor.url + "/graphql"), now=0)
    assert m.error == "NerdGraph error (HTTP 200): True"
