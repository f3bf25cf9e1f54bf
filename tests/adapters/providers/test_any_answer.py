"""Whatever a source answers, ``measure`` returns a Measurement: a value, or an Error with a reason, never an
exception. Each provider's whole ``measure`` runs on arbitrary answers (any status, any JSON document, any
bytes); only the socket is replaced, by an ``exchange`` that hands back the generated response."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebbtide.adapters.providers import datadog, jenkins, newrelic, web
from ebbtide.adapters.providers.common import ProviderError, excerpt
from ebbtide.core.events import Measurement

from .conftest import start_of

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)
# documents shaped like each vendor's answer, with anything in place of any part
_shaped = st.one_of(
    _json,
    st.builds(lambda s: {"status": "ok", "series": s}, _json),
    st.builds(lambda p: {"status": "ok", "series": [{"pointlist": p}]}, _json),
    st.builds(lambda c: {"data": {"attributes": {"columns": c}}}, _json),
    st.builds(lambda v: {"data": {"attributes": {"columns": [{"type": "number", "values": v}]}}}, _json),
    st.builds(lambda r: {"data": {"actor": {"account": {"nrql": {"results": r}}}}}, _json),
    st.builds(lambda e: {"errors": e}, _json),
    st.builds(lambda x: {"executable": x, "cancelled": False, "building": False, "result": x}, _json),
)
_bodies = st.one_of(_shaped.map(lambda d: json.dumps(d).encode()), st.binary(max_size=40))
_statuses = st.sampled_from([200, 201, 204, 400, 401, 403, 404, 429, 500, 502])

STARTS: dict[str, Any] = {
    "web": start_of({"web": {"url": "http://src/m", "jsonPath": "$.data"}}),
    "datadog-v1": start_of({"datadog": {"apiKey": "k", "appKey": "a", "query": "q"}}),
    "datadog-v2": start_of({"datadog": {"apiKey": "k", "appKey": "a", "query": "q", "apiVersion": "v2"}}),
    "newRelic": start_of({"newRelic": {"personalApiKey": "k", "accountId": 1, "query": "SELECT 1"}}),
    "jenkins": start_of(
        {
            "jenkins": {
                "baseUrl": "http://src",
                "username": "u",
                "apiToken": "t",
                "pipelineName": "p",
                "interval": "1s",
                "timeout": "10s",
            }
        },
        success_condition='result == "SUCCESS"',
    ),
}
PROVIDERS: dict[str, Any] = {
    "web": (web, web.WebProvider()),
    "datadog-v1": (datadog, datadog.DatadogProvider(clock=lambda: 1e9)),
    "datadog-v2": (datadog, datadog.DatadogProvider(clock=lambda: 1e9)),
    "newRelic": (newrelic, newrelic.NewRelicProvider()),
    "jenkins": (jenkins, None),  # made per example: its clock is virtual
}


class VirtualClock:
    """Time that passes only when the provider sleeps, so a build that never ends costs no real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize("name", sorted(PROVIDERS))
@settings(max_examples=120)
@given(answers=st.lists(st.tuples(_statuses, _bodies, st.booleans()), min_size=1, max_size=6))
def test_any_answer_is_a_measurement(name: str, answers: list[tuple[int, bytes, bool]]) -> None:
    module, provider = PROVIDERS[name]
    if provider is None:
        clock = VirtualClock()
        provider = jenkins.JenkinsProvider(clock=clock, sleep=clock.sleep)
    replies = list(answers)

    def exchange(method: str, url: str, **request: Any) -> httpx.Response:
        status, body, located = replies.pop(0) if len(replies) > 1 else replies[0]
        headers = {"Location": "http://src/queue/item/1/"} if located else {}
        response = httpx.Response(status, content=body, headers=headers, request=httpx.Request(method, url))
        if request.get("check", True) and not 200 <= status < 300:
            raise ProviderError(f"HTTP {status} from {url}: {excerpt(response)}")
        return response

    original = module.exchange
    module.exchange = exchange
    try:
        m = provider.measure(STARTS[name], now=0)
    finally:
        module.exchange = original
    assert isinstance(m, Measurement)
    assert (m.error is None) or (isinstance(m.error, str) and m.error and m.value is None)
