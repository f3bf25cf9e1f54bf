"""The registry: a metric's provider block key chooses the provider; nothing a user writes makes it raise."""

from __future__ import annotations

from typing import Any

import pytest

from ebbtide.adapters.base import MeasurementProvider
from ebbtide.adapters.providers import (
    BaselineProvider,
    CloudWatchProvider,
    DatadogProvider,
    JenkinsProvider,
    Missing,
    NewRelicProvider,
    PrometheusProvider,
    Providers,
    WebProvider,
    provider_for,
)
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import Measurement
from ebbtide.core.plan import MetricPlan
from ebbtide.core.spec import compile_plan, load_text

from .conftest import Reply, Vendor, start_of


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("prometheus", PrometheusProvider),
        ("web", WebProvider),
        ("datadog", DatadogProvider),
        ("newRelic", NewRelicProvider),
        ("jenkins", JenkinsProvider),
        ("cloudWatch", CloudWatchProvider),
    ],
)
def test_the_block_key_chooses_the_provider(key: str, kind: type) -> None:
    assert isinstance(provider_for(MetricPlan(name="m", provider={key: {}})), kind)


def test_a_baseline_wraps_the_metric_provider() -> None:
    plan = MetricPlan(name="m", provider={"prometheus": {"query": "q"}, "baseline": {"threshold": "<"}})
    assert isinstance(provider_for(plan), BaselineProvider)


def test_providers_is_a_measurement_provider() -> None:
    assert isinstance(Providers(), MeasurementProvider)


@pytest.mark.parametrize(
    ("provider", "reason"),
    [
        ({}, "metric 'm' has no provider block"),
        (
            {"cloudWatch": {"metricDataQueries": []}},
            "provider.cloudWatch.metricDataQueries must be a non-empty",
        ),
        ({"job": {"spec": {}}}, "the job provider needs a Kubernetes cluster"),
        ({"graphite": {"query": "x"}}, "no provider for 'graphite'"),
        (
            {"web": {"url": "x"}, "datadog": {"query": "y"}},
            "several provider blocks (web, datadog): give one",
        ),
    ],
)
def test_unknown_or_missing_provider_is_an_error_naming_it(provider: dict[str, Any], reason: str) -> None:
    m = Providers().measure(start_of(provider), now=0)
    assert m is not None and m.value is None and m.error is not None and reason in m.error, m.error


def test_an_external_metric_is_answered_later() -> None:
    assert Providers().measure(start_of({"external": {}}), now=0) is None


def test_extra_providers_are_plugged_in_by_key() -> None:
    class Job:
        def measure(self, start: StartMeasurement, now: float) -> Measurement:
            return Measurement(verification=start.verification, metric=start.metric.name, value="Complete")

    registry = Providers(extra={"job": Job()})
    assert isinstance(registry.provider_for(MetricPlan(name="m", provider={"job": {}})), Job)
    assert Missing("x").measure(start_of({}), 0).error == "x"
    m = registry.measure(start_of({"job": {"spec": {}}}), now=0)
    assert m is not None and m.value == "Complete"


SPECS = """
apiVersion: ebbtide.dev/v1alpha1
kind: VerificationProvider
metadata: {name: datadog}
spec:
  datadog: {address: ADDRESS, apiKey: from-provider, appKey: app-from-provider}
---
apiVersion: ebbtide.dev/v1alpha1
kind: VerificationTemplate
metadata: {name: errors}
spec:
  args:
    - name: service
  metrics:
    - name: error-rate
      successCondition: result < 0.05
      provider:
        datadog:
          query: "sum:requests.error.rate{service:{{args.service}}}"
---
apiVersion: ebbtide.dev/v1alpha1
kind: Strategy
metadata: {name: s}
spec:
  canary:
    steps:
      - setWeight: 50
      - verification: {templateNames: [errors]}
---
apiVersion: ebbtide.dev/v1alpha1
kind: RolloutSpec
metadata: {name: r}
spec:
  spotDeployment: {name: checkout}
  strategy:
    name: s
    args: [{name: service, value: checkout}]
"""


def test_compiled_plan_reaches_the_source_with_provider_settings_and_args(vendor: Vendor) -> None:
    vendor.route("GET", "/api/v1/query", Reply(body={"status": "ok", "series": [{"pointlist": [[1, 0.01]]}]}))
    plan = compile_plan(load_text(SPECS.replace("ADDRESS", vendor.url), "specs.yaml"))
    (metric,) = plan.templates["errors"].metrics
    effect = StartMeasurement(verification="v1", template="errors", metric=metric, revision="r2")
    m = Providers().measure(effect, now=0)
    assert m == Measurement(verification="v1", metric="error-rate", value=0.01)
    (request,) = vendor.requests
    assert request.headers["dd-api-key"] == "from-provider"
    assert request.query["query"] == ["sum:requests.error.rate{service:checkout}"]
