"""Ocean CD's baseline comparison: the rule against an independent model, the once-per-rollout baseline, and
end to end through the registry against the real Prometheus server and a Datadog-speaking local server."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebbtide.adapters.providers import BaselineProvider, PrometheusProvider, Providers
from ebbtide.adapters.providers.baseline import figure, passes
from ebbtide.adapters.providers.common import ProviderError
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import MeasuredValue, Measurement
from ebbtide.core.verification import classify

from .conftest import PromServer, Reply, Vendor, start_of

PASSED = "result.passed"


# ---------------------------------------------------------------------- the rule vs a model


def model(threshold: str, c: int, b: int, low: int, high: int) -> bool:
    """Exact arithmetic: the canary may be low% under and high% over the baseline (of its magnitude)."""
    if threshold == "range":
        return b - Fraction(abs(b) * low, 100) <= c <= b + Fraction(abs(b) * high, 100)
    return {"<": c < b, "<=": c <= b, ">": c > b, ">=": c >= b, "=": c == b}[threshold]


@given(
    st.sampled_from(["<", "<=", ">", ">=", "=", "range"]),
    st.integers(-10_000, 10_000),
    st.integers(-10_000, 10_000),
    st.integers(0, 200),
    st.integers(0, 200),
)
def test_comparison_matches_the_model(threshold: str, c: int, b: int, low: int, high: int) -> None:
    assert passes(threshold, float(c), float(b), float(low), float(high)) == model(threshold, c, b, low, high)


@pytest.mark.parametrize(
    ("canary", "baseline", "ok"),
    [
        (180, 200, True),
        (179.99, 200, False),
        (250, 200, True),
        (250.01, 200, False),
        (-220, -200, True),
        (-220.01, -200, False),
        (-150, -200, True),
        (-149.99, -200, False),
        (0, 0, True),
    ],
)
def test_range_bounds_are_inclusive_and_scale_with_the_magnitude(
    canary: float, baseline: float, ok: bool
) -> None:
    # minRange 10: down to 10% under the baseline; maxRange 25: up to 25% over it
    assert passes("range", canary, baseline, 10, 25) is ok


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (0.5, 0.5),
        (3, 3.0),
        ([0.25], 0.25),
        ({"successRate": 99.0}, 99.0),
        ([{"a": 1}], 1.0),
        ([], None),
        (None, None),
        (float("nan"), None),
        ([float("nan")], None),
    ],
)
def test_figure_of_each_result_shape(value: MeasuredValue, number: float | None) -> None:
    assert figure(value, "canary") == number


@pytest.mark.parametrize("value", [[1.0, 2.0], {"a": 1, "b": 2}, "SUCCESS", True])
def test_figure_refuses_what_is_not_one_number(value: MeasuredValue) -> None:
    with pytest.raises(ProviderError):
        figure(value, "canary")


# ------------------------------------------------------------------- the wrapper, with a script


class Scripted:
    """A provider answering each prometheus query from a table (an error when the value is an Exception)."""

    def __init__(self, table: dict[str, Any]) -> None:
        self.table = table
        self.asked: list[tuple[str, str]] = []

    def measure(self, start: StartMeasurement, now: float) -> Measurement:
        query = start.metric.provider["prometheus"]["query"]
        self.asked.append((query, start.revision))
        value = self.table[query]
        if isinstance(value, Exception):
            return Measurement(verification=start.verification, metric=start.metric.name, error=str(value))
        return Measurement(verification=start.verification, metric=start.metric.name, value=value)


def metric(threshold: str = "<=", condition: str | None = PASSED, **baseline: Any) -> StartMeasurement:
    provider = {
        "prometheus": {"query": "canary", "address": "http://prom"},
        "baseline": {"threshold": threshold, "provider": {"prometheus": {"query": "stable"}}, **baseline},
    }
    return start_of(provider, success_condition=condition)


def test_result_carries_both_figures_and_the_verdict() -> None:
    start = metric("<=")
    m = BaselineProvider(Scripted({"canary": [0.02], "stable": [0.01]})).measure(start, now=0)
    assert m is not None and m.value == {"passed": False, "value": 0.02, "baseline": 0.01}
    assert classify(start.metric, m.value)[0] == "failed"


def test_range_passes_within_its_percentages() -> None:
    start = metric("range", minRange=10, maxRange=50)
    m = BaselineProvider(Scripted({"canary": 0.014, "stable": 0.01})).measure(start, now=0)
    assert m is not None and m.value == {"passed": True, "value": 0.014, "baseline": 0.01}
    assert classify(start.metric, m.value)[0] == "successful"


def test_baseline_is_measured_once_per_rollout_on_the_stable_revision() -> None:
    inner = Scripted({"canary": 1.0, "stable": 2.0})
    wrapper = BaselineProvider(inner)
    for now in (0, 60, 120):
        wrapper.measure(metric("<"), now=now)
    assert inner.asked == [("canary", "r2"), ("stable", "r1"), ("canary", "r2"), ("canary", "r2")]
    other = StartMeasurement(
        verification="v9", template="t", metric=metric("<").metric, revision="r3", stable="r1"
    )
    wrapper.measure(other, now=180)
    assert inner.asked[-2:] == [("canary", "r3"), ("stable", "r1")]


def test_baseline_inherits_the_metric_settings_but_not_its_query() -> None:
    seen: list[dict[str, Any]] = []

    class Recorder(Scripted):
        def measure(self, start: StartMeasurement, now: float) -> Measurement:
            seen.append(dict(start.metric.provider["prometheus"]))
            return super().measure(start, now)

    BaselineProvider(Recorder({"canary": 1.0, "stable": 1.0})).measure(metric("="), now=0)
    assert seen == [
        {"query": "canary", "address": "http://prom"},
        {"query": "stable", "address": "http://prom"},
    ]


def test_no_canary_data_is_no_data() -> None:
    start = metric()
    m = BaselineProvider(Scripted({"canary": [], "stable": 1.0})).measure(start, now=0)
    assert m is not None and m.error is None and m.value is None


def test_baseline_without_data_is_an_error_and_is_asked_again() -> None:
    inner = Scripted({"canary": 1.0, "stable": []})
    wrapper = BaselineProvider(inner)
    m = wrapper.measure(metric(), now=0)
    assert m is not None and m.error == "baseline: the baseline query returned no data"
    inner.table["stable"] = 2.0
    m = wrapper.measure(metric(), now=60)
    assert m is not None and m.value == {"passed": True, "value": 1.0, "baseline": 2.0}


def test_errors_of_either_query_name_which() -> None:
    m = BaselineProvider(Scripted({"canary": ProviderError("timeout"), "stable": 1.0})).measure(metric(), 0)
    assert m is not None and m.error == "timeout"
    m = BaselineProvider(Scripted({"canary": 1.0, "stable": ProviderError("bad_data")})).measure(metric(), 0)
    assert m is not None and m.error == "baseline: bad_data"


@pytest.mark.parametrize(
    ("start", "reason"),
    [
        (metric("!="), "baseline.threshold must be one of <, <=, >, >=, =, range, not '!='"),
        (metric(0.5), "baseline.threshold must be one of"),  # type: ignore[arg-type]
        (metric("range", maxRange=10), "baseline.minRange must be a percentage >= 0"),
        (metric("range", minRange=10, maxRange=-1), "baseline.maxRange must be a percentage >= 0"),
        (metric(condition=None), "add e.g. successCondition: result.passed"),
        (
            start_of(
                {
                    "prometheus": {"query": "q"},
                    "baseline": {"threshold": "<", "provider": {"datadog": {"query": "x"}}},
                },
                success_condition=PASSED,
            ),
            "baseline.provider.datadog must be of the metric's own provider type (prometheus)",
        ),
    ],
)
def test_bad_baseline_is_an_error_naming_the_field(start: StartMeasurement, reason: str) -> None:
    m = BaselineProvider(Scripted({"canary": 1.0, "stable": 1.0})).measure(start, now=0)
    assert m is not None and m.error is not None and reason in m.error, m.error


def test_a_metric_without_baseline_passes_through() -> None:
    start = start_of({"prometheus": {"query": "canary"}})
    assert BaselineProvider(Scripted({"canary": [3.0]})).measure(start, now=0) == Measurement(
        verification="v1", metric="m", value=[3.0]
    )


# ----------------------------------------------------------------------- end to end, real servers

CHECKOUT = (
    'sum(rate(http_requests_total{service="checkout",code="500"}[5m]))'
    ' / sum(rate(http_requests_total{service="checkout"}[5m]))'
)
ALL = 'sum(rate(http_requests_total{code="500"}[5m])) / sum(rate(http_requests_total[5m]))'


@pytest.mark.parametrize(
    ("baseline", "passed"),
    [
        ({"threshold": "<="}, False),  # checkout 0.005 vs everything 0.004
        ({"threshold": ">"}, True),
        ({"threshold": "range", "minRange": 0, "maxRange": 20}, False),  # upper bound 0.0048
        ({"threshold": "range", "minRange": 0, "maxRange": 30}, True),  # upper bound 0.0052
    ],
)
def test_prometheus_baseline_against_the_real_server(
    prometheus: PromServer, baseline: dict[str, Any], passed: bool
) -> None:
    provider = {
        "prometheus": {"query": CHECKOUT, "address": prometheus.address},
        "baseline": {**baseline, "provider": {"prometheus": {"query": ALL}}},
    }
    start = start_of(provider, success_condition=PASSED)
    registry = Providers(prometheus=PrometheusProvider(origin=prometheus.at))
    m = registry.measure(start, now=0)
    assert m is not None and m.error is None, m.error
    assert isinstance(m.value, dict)
    assert m.value["value"] == pytest.approx(0.005) and m.value["baseline"] == pytest.approx(0.004)
    assert m.value["passed"] is passed
    assert classify(start.metric, m.value)[0] == ("successful" if passed else "failed")


def test_datadog_baseline_through_the_registry(vendor: Vendor) -> None:
    def series(value: float) -> dict[str, Any]:
        return {"status": "ok", "series": [{"pointlist": [[1, value]]}]}

    vendor.route(
        "GET",
        "/api/v1/query",
        lambda r: Reply(body=series(0.03 if "canary" in r.query["query"][0] else 0.01)),
    )
    provider = {
        "datadog": {"address": vendor.url, "apiKey": "k", "appKey": "a", "query": "avg:err{version:canary}"},
        "baseline": {"threshold": "<", "provider": {"datadog": {"query": "avg:err{version:stable}"}}},
    }
    start = start_of(provider, success_condition=PASSED)
    m = Providers().measure(start, now=0)
    assert m is not None and m.value == {"passed": False, "value": 0.03, "baseline": 0.01}
    assert [r.headers["dd-api-key"] for r in vendor.requests] == ["k", "k"]  # the keys are inherited
