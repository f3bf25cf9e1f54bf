"""The New Relic provider: an NRQL query run through NerdGraph, New Relic's GraphQL API (as Argo does).

``provider.newRelic`` (the VerificationProvider's ``personalApiKey``, ``accountId``, ``region`` and
``baseUrlNerdGraph`` merged under it): ``query`` is the NRQL. The request is
``POST {NerdGraph}`` with ``actor { account(id: $accountId) { nrql(query: $nrql) { results } } }`` and the
key in the ``API-Key`` header. NerdGraph is ``https://api.newrelic.com/graphql`` (``region: us``, the
default), ``https://api.eu.newrelic.com/graphql`` (``region: eu``), or ``baseUrlNerdGraph`` for a proxy.

``result`` is what Argo gives: the one result row as a map (``result.successRate``, or
``result['average.duration']`` for an unnamed function), the list of rows when there are several (``FACET``),
``[]`` when there are none. GraphQL ``errors`` in the answer, a non-2xx status, a body that is not JSON, a
timeout or an unreachable address are Error measurements with the reason.
"""

from __future__ import annotations

from typing import Any

from ebbtide.adapters.providers.common import (
    ProviderError,
    answer,
    block,
    exchange,
    json_body,
    seconds,
    text,
)
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import MeasuredValue, Measurement

NERDGRAPH = {"us": "https://api.newrelic.com/graphql", "eu": "https://api.eu.newrelic.com/graphql"}
DEFAULT_TIMEOUT = 30.0
QUERY = (
    "query ($accountId: Int!, $nrql: Nrql!) "
    "{ actor { account(id: $accountId) { nrql(query: $nrql) { results } } } }"
)


class NewRelicProvider:
    """Answers ``StartMeasurement`` effects whose metric has a ``newRelic`` provider block."""

    def measure(self, start: StartMeasurement, now: float) -> Measurement:
        return answer(start, lambda: self._measure(block(start, "newRelic")))

    def _measure(self, config: dict[str, Any]) -> MeasuredValue:
        nrql = text(config, "newRelic", "query")
        key = text(config, "newRelic", "personalApiKey")
        account = _account_id(config.get("accountId"))
        region = config.get("region") or "us"
        url = text(config, "newRelic", "baseUrlNerdGraph", required=False) or NERDGRAPH.get(region)
        if url is None:
            raise ProviderError(f"provider.newRelic.region must be us or eu, not {region!r}")
        response = exchange(
            "POST",
            url,
            timeout=seconds(config, "newRelic", "timeout", DEFAULT_TIMEOUT),
            what="New Relic NerdGraph",
            check=False,
            headers={"API-Key": key or "", "Content-Type": "application/json"},
            json={"query": QUERY, "variables": {"accountId": account, "nrql": nrql}},
        )
        body = json_body(response)
        if not isinstance(body, dict):
            raise ProviderError(f"NerdGraph HTTP {response.status_code}: unexpected answer {body!r:.200}")
        errors = body.get("errors")
        if errors:
            listed = errors if isinstance(errors, list) else [errors]
            messages = [e.get("message", str(e)) if isinstance(e, dict) else str(e) for e in listed]
            raise ProviderError(f"NerdGraph error (HTTP {response.status_code}): {'; '.join(messages)}")
        if not 200 <= response.status_code < 300:
            raise ProviderError(f"NerdGraph HTTP {response.status_code}: {body!s:.200}")
        return _results(body)


def _account_id(raw: Any) -> int:
    """The account id as NerdGraph takes it (an Int); Ocean CD's spec writes it as a string."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw)
    if raw is None:
        raise ProviderError("provider.newRelic.accountId is missing (set it on the VerificationProvider)")
    raise ProviderError(f"provider.newRelic.accountId must be a number, not {raw!r}")


def _results(body: dict[str, Any]) -> MeasuredValue:
    try:
        results = body["data"]["actor"]["account"]["nrql"]["results"]
    except (KeyError, TypeError):
        raise ProviderError("NerdGraph answer has no data.actor.account.nrql.results") from None
    if not isinstance(results, list):
        raise ProviderError(f"NerdGraph results are not a list: {results!r:.200}")
    if len(results) == 1:
        return results[0]  # type: ignore[no-any-return]
    return results
