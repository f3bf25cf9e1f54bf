"""Ocean CD's baseline block in a VerificationTemplate: an operator or ``range`` with both percentages; bad
input is a located error (file, document, field, reason)."""

from __future__ import annotations

import pytest

from ebbtide.core.spec import SpecError, load_text

TEMPLATE = """
apiVersion: ebbtide.dev/v1alpha1
kind: VerificationTemplate
metadata: {name: t}
spec:
  metrics:
    - name: latency
      successCondition: result.passed
      provider:
        prometheus: {query: "canary_latency"}
      baseline: {%s, provider: {prometheus: {query: "stable_latency"}}}
"""


@pytest.mark.parametrize(
    "baseline", ["threshold: '<='", "threshold: range, minRange: 10, maxRange: 20", "threshold: '='"]
)
def test_a_baseline_with_an_operator_or_a_range_loads(baseline: str) -> None:
    specs = load_text(TEMPLATE % baseline, "t.yaml")
    [metric] = specs.templates["t"].spec.metrics
    assert metric.baseline is not None and metric.baseline.threshold == baseline.split(",")[0].split(": ")[
        1
    ].strip("'")


@pytest.mark.parametrize(
    ("baseline", "field", "reason"),
    [
        ("threshold: 5", "spec.metrics[0].baseline.threshold", ""),
        (
            "threshold: range, minRange: 10",
            "spec.metrics[0].baseline.maxRange",
            "needs minRange and maxRange",
        ),
        ("threshold: '<', maxRange: 10", "spec.metrics[0].baseline.maxRange", "threshold range only"),
        ("threshold: range, minRange: -1, maxRange: 5", "spec.metrics[0].baseline.minRange", ""),
        ("minRange: 1", "spec.metrics[0].baseline.threshold", ""),
    ],
)
def test_bad_baselines_are_located(baseline: str, field: str, reason: str) -> None:
    with pytest.raises(SpecError) as exc:
        load_text(TEMPLATE % baseline, "t.yaml")
    found = [p for p in exc.value.problems if p.field == field]
    assert found, exc.value.problems
    assert found[0].file == "t.yaml" and found[0].document == 1 and reason in found[0].reason


JENKINS = """
apiVersion: ebbtide.dev/v1alpha1
kind: VerificationTemplate
metadata: {name: t}
spec:
  metrics:
    - name: e2e
      successCondition: result == "SUCCESS"
      provider:
        jenkins: {pipelineName: e2e, %s}
"""


def test_a_jenkins_timeout_is_waited_for_by_the_engine() -> None:
    """The engine's in-flight timeout covers the build's own wait, so it never asks for a second build."""
    from ebbtide.core.spec import JENKINS_GRACE, _provider_timeout

    specs = load_text(JENKINS % "timeout: 5m, interval: 10s", "t.yaml")
    [metric] = specs.templates["t"].spec.metrics
    assert _provider_timeout(metric.provider) == {"timeout": 300 + JENKINS_GRACE}
    short = load_text(JENKINS % "timeout: 5s", "t.yaml").templates["t"].spec.metrics[0]
    assert _provider_timeout(short.provider) == {"timeout": 60.0}  # never below the engine's default


@pytest.mark.parametrize(("given", "field"), [("timeout: soon", "timeout"), ("interval: 0s", "interval")])
def test_bad_jenkins_durations_are_located(given: str, field: str) -> None:
    with pytest.raises(SpecError) as exc:
        load_text(JENKINS % given, "t.yaml")
    assert [p.field for p in exc.value.problems] == [f"spec.metrics[0].provider.jenkins.{field}"]
