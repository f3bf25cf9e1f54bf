"""The web provider against a local HTTP server: Argo's web metric (the JSONPath selection becomes result)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebbtide.adapters.base import MeasurementProvider
from ebbtide.adapters.providers import WebProvider
from ebbtide.adapters.providers.common import ProviderError
from ebbtide.adapters.providers.web import compile_path, select
from ebbtide.core.verification import classify

from .conftest import Reply, Vendor, free_port, start_of

DATA = {"data": {"ok": True, "successPercent": 0.95, "checks": [{"v": 1}, {"v": 2}, {"v": 3}]}}


def web(url: str, **extra: Any) -> Any:
    return start_of({"web": {"url": url, **extra}})


def test_is_a_measurement_provider() -> None:
    assert isinstance(WebProvider(), MeasurementProvider)


def test_argo_braced_path_selects_one_value(vendor: Vendor) -> None:
    vendor.route("GET", "/measure", Reply(body=DATA))
    m = WebProvider().measure(web(vendor.url + "/measure", jsonPath="{$.data.ok}"), now=0)
    assert m.error is None and m.value is True


def test_object_selection_feeds_argo_condition(vendor: Vendor) -> None:
    # Argo's documented example: result.ok && result.successPercent >= 0.90 on {$.data}
    vendor.route("GET", "/measure", Reply(body=DATA))
    start = start_of(
        {"web": {"url": vendor.url + "/measure", "jsonPath": "{$.data}"}},
        success_condition="result.ok && result.successPercent >= 0.90",
    )
    m = WebProvider().measure(start, now=0)
    assert m.value == DATA["data"]
    assert classify(start.metric, m.value)[0] == "successful"


def test_no_path_is_the_whole_document(vendor: Vendor) -> None:
    vendor.route("GET", "/", Reply(body=[1, 2, 3]))
    assert WebProvider().measure(web(vendor.url + "/"), now=0).value == [1, 2, 3]


def test_wildcard_path_is_a_list(vendor: Vendor) -> None:
    vendor.route("GET", "/m", Reply(body=DATA))
    m = WebProvider().measure(web(vendor.url + "/m", jsonPath="$.data.checks[*].v"), now=0)
    assert m.value == [1, 2, 3]


def test_filter_path_is_a_list_even_of_one(vendor: Vendor) -> None:
    vendor.route("GET", "/m", Reply(body=DATA))
    m = WebProvider().measure(web(vendor.url + "/m", jsonPath="$.data.checks[?(@.v > 2)].v"), now=0)
    assert m.value == [3]


def test_headers_method_and_body_are_sent(vendor: Vendor) -> None:
    vendor.route("POST", "/q", Reply(body={"value": 7}))
    start = web(
        vendor.url + "/q",
        method="POST",
        headers=[{"key": "Authorization", "value": "Bearer t0k"}],
        body='{"key": "string value"}',
        jsonPath="$.value",
    )
    assert WebProvider().measure(start, now=0).value == 7
    (request,) = vendor.requests
    assert request.headers["authorization"] == "Bearer t0k"
    assert request.body == b'{"key": "string value"}'


def test_json_body_is_sent_as_json(vendor: Vendor) -> None:
    vendor.route("PUT", "/q", Reply(body={"value": 1}))
    start = web(vendor.url + "/q", method="PUT", jsonBody={"service": "checkout", "n": [1, 2]})
    assert WebProvider().measure(start, now=0).error is None
    (request,) = vendor.requests
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"service": "checkout", "n": [1, 2]}


# ------------------------------------------------------------------------- each failure is an Error


def test_path_selecting_nothing_names_the_path(vendor: Vendor) -> None:
    vendor.route("GET", "/m", Reply(body=DATA))
    m = WebProvider().measure(web(vendor.url + "/m", jsonPath="{$.data.missing}"), now=0)
    assert m.value is None and m.error == "JSONPath '{$.data.missing}' selected nothing in the body"


def test_non_json_body(vendor: Vendor) -> None:
    vendor.route("GET", "/m", Reply(body="<html>hello</html>"))
    m = WebProvider().measure(web(vendor.url + "/m"), now=0)
    assert m.error == f"HTTP 200 from {vendor.url}/m: not JSON: '<html>hello</html>'"


@pytest.mark.parametrize("status", [401, 403, 429, 500, 503])
def test_non_2xx_gives_status_and_excerpt(vendor: Vendor, status: int) -> None:
    vendor.route("GET", "/m", Reply(status, {"error": "nope " + "x" * 300}))
    m = WebProvider().measure(web(vendor.url + "/m"), now=0)
    assert m.error is not None
    assert m.error.startswith(f'HTTP {status} from {vendor.url}/m: \'{{"error": "nope xxx')
    assert m.error.endswith("...'") and len(m.error) < 300


def test_slow_server_is_a_timeout(vendor: Vendor) -> None:
    vendor.route("GET", "/slow", Reply(body={"v": 1}, delay=3.0))
    began = time.monotonic()
    m = WebProvider(timeout=0.3).measure(web(vendor.url + "/slow"), now=0)
    assert time.monotonic() - began < 2.5
    assert m.error == f"timeout: no answer from the web metric endpoint at {vendor.url}/slow within 0.3s"


def test_timeout_seconds_of_the_metric_wins(vendor: Vendor) -> None:
    vendor.route("GET", "/slow", Reply(body={"v": 1}, delay=0.5))
    m = WebProvider(timeout=0.1).measure(web(vendor.url + "/slow", timeoutSeconds=5), now=0)
    assert m.error is None and m.value == {"v": 1}


def test_unreachable_address() -> None:
    url = f"http://127.0.0.1:{free_port()}/m"
    m = WebProvider().measure(web(url), now=0)
    assert m.error is not None and m.error.startswith(f"cannot reach the web metric endpoint at {url}")


def test_insecure_skips_tls_verification(tls_vendor: Vendor) -> None:
    tls_vendor.route("GET", "/m", Reply(body={"ok": True}))
    refused = WebProvider().measure(web(tls_vendor.url + "/m"), now=0)
    assert refused.error is not None and "CERTIFICATE_VERIFY_FAILED" in refused.error
    assert tls_vendor.requests == []
    m = WebProvider().measure(web(tls_vendor.url + "/m", insecure=True), now=0)
    assert m.error is None and m.value == {"ok": True}


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({}, "provider.web.url is missing or empty"),
        ({"url": "http://x/{{args.service}}"}, "provider.web.url has an unresolved placeholder"),
        ({"url": "http://x", "method": "DELETE"}, "provider.web.method must be one of GET, POST, PUT"),
        ({"url": "http://x", "body": "{}"}, "a GET request has no body"),
        (
            {"url": "http://x", "method": "POST", "body": "a", "jsonBody": {}},
            "set body or jsonBody, not both",
        ),
        ({"url": "http://x", "jsonPath": "$.[["}, "provider.web.jsonPath '$.[[' is not a JSONPath"),
        (
            {"url": "http://x", "headers": [{"key": "A", "value": "{{args.token}}"}]},
            "provider.web.headers[0].value has an unresolved placeholder",
        ),
        (
            {"url": "http://x", "headers": [{"key": "A"}]},
            "provider.web.headers[0] needs a string key and value",
        ),
    ],
)
def test_bad_configuration_is_an_error_naming_the_field(config: dict[str, Any], reason: str) -> None:
    m = WebProvider().measure(start_of({"web": config}), now=0)
    assert m.error is not None and reason in m.error, m.error


def test_not_a_web_metric() -> None:
    m = WebProvider().measure(start_of({"prometheus": {"query": "up"}}), now=0)
    assert m.error == "the metric has no web provider block"


# ------------------------------------------------------------- JSONPath selection vs direct indexing

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(max_size=5))
# field names as users write them after a dot (jsonpath-ng reserves `where`: that field is quoted, $."where")
_keys = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True).filter(lambda k: k not in ("where", "wherenot"))
_documents = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=4)),
    max_leaves=20,
)


def _places(doc: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every place in ``doc`` as a tuple of keys and indexes (the model: plain Python indexing)."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _places(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _places(v, (*prefix, i))
    return out


def _path_text(place: tuple[str | int, ...]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in place)


@settings(max_examples=150)
@given(_documents, st.data())
def test_single_place_path_selects_what_indexing_finds(doc: Any, data: st.DataObject) -> None:
    place = data.draw(st.sampled_from(_places(doc)))
    expected = doc
    for p in place:
        expected = expected[p]
    assert select(compile_path(_path_text(place)), doc) == expected
    assert select(compile_path("{" + _path_text(place) + "}"), doc) == expected
    quoted = "$" + "".join(f"[{p}]" if isinstance(p, int) else f'."{p}"' for p in place)
    assert select(compile_path(quoted), doc) == expected


@settings(max_examples=100)
@given(st.dictionaries(st.from_regex(r"[a-z]{1,4}", fullmatch=True), st.integers(), min_size=1), st.data())
def test_wildcard_over_a_list_is_every_element_in_order(row: dict[str, int], data: st.DataObject) -> None:
    items = data.draw(
        st.lists(st.fixed_dictionaries({k: st.integers() for k in row}), min_size=1, max_size=5)
    )
    key = data.draw(st.sampled_from(sorted(row)))
    doc = {"items": items}
    assert select(compile_path(f"$.items[*].{key}"), doc) == [item[key] for item in items]


@given(_documents)
def test_missing_key_is_an_error_not_a_value(doc: Any) -> None:
    with pytest.raises(ProviderError, match="selected nothing"):
        select(compile_path("$.no_such_key_here.deeper"), {"wrapped": doc})


def test_json_round_trip_of_selected_values() -> None:
    # numbers keep their JSON type: an int stays an int, a float a float
    assert select(compile_path("$"), json.loads('{"a": 1, "b": 1.5}')) == {"a": 1, "b": 1.5}
