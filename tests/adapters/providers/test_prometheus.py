"""The Prometheus provider against a real Prometheus server (see conftest.py for the data it holds).

The expected figures are worked out by hand from the backfilled rates, not from the provider: e.g. the error
ratio is 1 request/s of code 500 out of 199 + 1 + 50 = 250 requests/s.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ebbtide.adapters.base import MeasurementProvider
from ebbtide.adapters.providers import PrometheusError, PrometheusProvider, instant_query, range_query
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.plan import MetricPlan
from ebbtide.core.spec import compile_plan, load_text
from ebbtide.core.verification import classify

from .conftest import PromServer, free_port

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "specs"
ERROR_RATIO = 'sum(rate(http_requests_total{code="500"}[5m])) / sum(rate(http_requests_total[5m]))'
P99 = "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))"


def start(query: str, address: str | None = None, **extra: Any) -> StartMeasurement:
    config: dict[str, Any] = {"query": query, **extra}
    if address is not None:
        config["address"] = address
    metric = MetricPlan(name="m", provider={"prometheus": config})
    return StartMeasurement(verification="v1", template="t", metric=metric, revision="r2")


def backtest(server: PromServer) -> PrometheusProvider:
    """A provider whose engine time 0 is the middle of the backfilled hour."""
    return PrometheusProvider(server.address, origin=server.at)


def test_is_a_measurement_provider() -> None:
    assert isinstance(PrometheusProvider(), MeasurementProvider)


# ------------------------------------------------------------------------------ real PromQL


def test_error_ratio_is_a_one_sample_vector(prometheus: PromServer) -> None:
    m = backtest(prometheus).measure(start(ERROR_RATIO), now=0)
    assert m.error is None
    assert m.verification == "v1" and m.metric == "m"
    assert isinstance(m.value, list) and len(m.value) == 1
    assert m.value[0] == pytest.approx(1 / 250)


def test_sum_by_code_gives_one_sample_per_group(prometheus: PromServer) -> None:
    value = instant_query(
        prometheus.address, "sum by (code) (rate(http_requests_total[5m]))", time=prometheus.at
    )
    assert isinstance(value, list)
    assert sorted(value) == pytest.approx([1.0, 199.0 + 50.0])  # type: ignore[type-var]


def test_histogram_quantile(prometheus: PromServer) -> None:
    # 99% of 200 obs/s is rank 198, in the (0.5, 1] bucket holding obs 196..200: 0.5 + 0.5 * (198-196)/4
    m = backtest(prometheus).measure(start(P99), now=0)
    assert m.value == [pytest.approx(0.75)]


def test_scalar_is_a_number(prometheus: PromServer) -> None:
    m = backtest(prometheus).measure(start("scalar(sum(rate(http_requests_total[5m])))"), now=0)
    assert m.value == pytest.approx(250.0)


def test_empty_vector_is_an_empty_list(prometheus: PromServer) -> None:
    m = backtest(prometheus).measure(start('http_requests_total{code="404"}'), now=0)
    assert m.error is None and m.value == []


def test_nan_stays_nan(prometheus: PromServer) -> None:
    # a rate over no traffic: 0/0 is NaN, kept as a float NaN (conditions test it with isNaN)
    m = backtest(prometheus).measure(start("sum(rate(http_requests_total[5m])) * 0 / 0"), now=0)
    assert isinstance(m.value, list) and len(m.value) == 1
    assert isinstance(m.value[0], float) and math.isnan(m.value[0])


def test_engine_time_moves_the_evaluation_time(prometheus: PromServer) -> None:
    # the counter grows 1/s: its value at engine time t is 1 * (at + t - start)
    provider = backtest(prometheus)
    query = 'http_requests_total{service="checkout",code="500"}'
    assert provider.measure(start(query), now=0).value == [float(prometheus.at - prometheus.start)]
    assert provider.measure(start(query), now=60).value == [float(prometheus.at + 60 - prometheus.start)]


def test_live_queries_the_server_now(prometheus: PromServer) -> None:
    # without origin the server's clock is used: the backfilled hour is hours old, so a 5m rate is empty
    m = PrometheusProvider(prometheus.address).measure(start(ERROR_RATIO), now=0)
    assert m.error is None and m.value == []


def test_metric_address_wins_over_the_default(prometheus: PromServer) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    provider = PrometheusProvider(unreachable, origin=prometheus.at)
    assert provider.measure(start(ERROR_RATIO, address=prometheus.address), now=0).error is None


def test_range_query_returns_every_series(prometheus: PromServer) -> None:
    begin, end = prometheus.at, prometheus.at + 600
    series = range_query(
        prometheus.address, "sum by (code) (rate(http_requests_total[5m]))", start=begin, end=end, step=60
    )
    assert sorted(s.labels["code"] for s in series) == ["200", "500"]
    for s in series:
        assert [t for t, _ in s.samples] == [float(t) for t in range(begin, end + 1, 60)]
        rate = 249.0 if s.labels["code"] == "200" else 1.0
        assert [v for _, v in s.samples] == pytest.approx([rate] * 11)


# ------------------------------------------------------------------ errors become Error measurements


def test_syntax_error_carries_prometheus_message(prometheus: PromServer) -> None:
    m = backtest(prometheus).measure(start("sum(rate(http_requests_total[5m])"), now=0)
    assert m.value is None
    assert m.error is not None and "bad_data" in m.error and "parse error" in m.error


def test_range_vector_is_an_error(prometheus: PromServer) -> None:
    m = backtest(prometheus).measure(start("http_requests_total[5m]"), now=0)
    assert m.error is not None and "'matrix' is not supported" in m.error


def test_unreachable_address() -> None:
    address = f"http://127.0.0.1:{free_port()}"
    m = PrometheusProvider(address).measure(start("up"), now=0)
    assert m.value is None
    assert m.error is not None and m.error.startswith(f"cannot reach Prometheus at {address}")


def test_range_query_error_raises_prometheus_error(prometheus: PromServer) -> None:
    with pytest.raises(PrometheusError, match="parse error"):
        range_query(prometheus.address, "sum(", start=prometheus.at, end=prometheus.at + 60, step=15)


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({}, "provider.prometheus.query is missing"),
        ({"query": "up"}, "no Prometheus address"),
        ({"query": 'up{job="{{args.job}}"}', "address": "http://x"}, "unresolved placeholder"),
    ],
)
def test_bad_provider_config(config: dict[str, Any], reason: str) -> None:
    metric = MetricPlan(name="m", provider={"prometheus": config})
    effect = StartMeasurement(verification="v1", template="t", metric=metric, revision="r2")
    m = PrometheusProvider().measure(effect, now=0)
    assert m.error is not None and reason in m.error


def test_not_a_prometheus_metric() -> None:
    effect = StartMeasurement(verification="v1", template="t", metric=MetricPlan(name="m"), revision="r2")
    assert (
        PrometheusProvider("http://x").measure(effect, now=0).error
        == "the metric has no prometheus provider block"
    )


class _Fake(BaseHTTPRequestHandler):
    """Sleeps ``delay`` seconds, then answers ``status`` with ``body``."""

    delay = 0.0
    status = 200
    body = b""

    def do_GET(self) -> None:
        time.sleep(self.delay)
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake() -> Iterator[tuple[str, type[_Fake]]]:
    handler = type("Handler", (_Fake,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_slow_server_is_a_timeout(fake: tuple[str, type[_Fake]]) -> None:
    address, handler = fake
    handler.delay = 2.0
    began = time.monotonic()
    m = PrometheusProvider(address, timeout=0.3).measure(start("up"), now=0)
    assert time.monotonic() - began < 1.5
    assert m.error == f"timeout: no answer from {address} within 0.3s"


def test_metric_timeout_wins(fake: tuple[str, type[_Fake]]) -> None:
    address, handler = fake
    handler.delay, handler.body = (
        1.0,
        b'{"status": "success", "data": {"resultType": "scalar", "result": [0, "7"]}}',
    )
    m = PrometheusProvider(address, timeout=0.2).measure(start("up", timeout=5), now=0)
    assert m.error is None and m.value == 7.0  # waited past the provider's 0.2s for the metric's 5s


def test_non_json_body(fake: tuple[str, type[_Fake]]) -> None:
    address, handler = fake
    handler.status, handler.body = 502, b"<html>Bad Gateway</html>"
    m = PrometheusProvider(address).measure(start("up"), now=0)
    assert m.error == f"HTTP 502 from {address}/api/v1/query: not JSON: '<html>Bad Gateway</html>'"


# ------------------------------------------------------------------- end to end with a real template


def _template_metric(name: str, address: str) -> MetricPlan:
    specs = load_text((EXAMPLES / "canary.yaml").read_text(), "canary.yaml")
    plan = compile_plan(specs)
    metric = next(m for t in plan.templates.values() for m in t.metrics if m.name == name)
    provider = {"prometheus": {**metric.provider["prometheus"], "address": address}}
    return metric.model_copy(update={"provider": provider})


@pytest.mark.parametrize(
    ("metric", "phase", "why"),
    [
        ("success-rate", "successful", "checkout serves 199 of 200 requests without a 5xx: 0.995 >= 0.99"),
        ("p99-latency", "failed", "checkout's p99 is 0.75s, not < 0.5"),
        ("error-rate", "successful", "checkout's 5xx ratio 0.005 is not > 0.05 (failure condition only)"),
    ],
)
def test_real_template_conditions_judge_the_measured_value(
    prometheus: PromServer, metric: str, phase: str, why: str
) -> None:
    plan = _template_metric(metric, prometheus.address)
    effect = StartMeasurement(verification="v1", template="checkout-health", metric=plan, revision="r2")
    m = backtest(prometheus).measure(effect, now=0)
    assert m.error is None, m.error
    assert classify(plan, m.value)[0] == phase, why


# ----------------------------------------------------------------------- docs/providers.md

DOC = Path(__file__).resolve().parents[3] / "docs" / "providers.md"
_ROW = re.compile(r"^\| `(?P<query>[^`]+)` \| (?:`(?P<value>[^`]*)`|error: `(?P<error>[^`]*)`) \|$", re.M)


def test_doc_result_table_is_what_the_server_answers(prometheus: PromServer) -> None:
    rows = list(_ROW.finditer(DOC.read_text()))
    assert len(rows) == 8
    provider = backtest(prometheus)
    for row in rows:
        m = provider.measure(start(row["query"]), now=0)
        if row["error"] is not None:
            assert m.error == row["error"], row["query"]
        else:
            assert m.error is None and repr(m.value) == row["value"], row["query"]


def test_doc_example_template_is_valid_and_judged_successful(prometheus: PromServer) -> None:
    prometheus_section = DOC.read_text().split("\n## Prometheus\n", 1)[1]
    text = re.findall(r"```yaml\n(.*?)```", prometheus_section, re.S)[0]
    specs = load_text(text, "providers.md")
    metric = specs.templates["checkout-errors"].spec.metrics[0]
    config = metric.provider.prometheus
    assert config is not None and metric.success_condition is not None
    query = config.query.replace("{{args.service}}", "checkout")
    plan = MetricPlan(
        name=metric.name,
        success_condition=metric.success_condition,
        provider={"prometheus": {"address": prometheus.address, "query": query, "timeout": config.timeout}},
    )
    effect = StartMeasurement(verification="v1", template="checkout-errors", metric=plan, revision="r2")
    m = backtest(prometheus).measure(effect, now=0)
    assert m.value == [pytest.approx(0.005)]
    assert classify(plan, m.value)[0] == "successful"
