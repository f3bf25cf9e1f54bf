"""Every problem of a broken spec is reported at once: structural (pydantic) and semantic (weights,
conditions, references) together, located at the paths the user wrote."""

from __future__ import annotations

import pytest

from ebbtide.core.spec import SpecError, load_text

BROKEN = """
apiVersion: ebbtide.dev/v1alpha1
kind: Strategy
metadata: {name: s}
spec:
  canary:
    steps:
      - setWeight: 50
      - pause: {duration: 5 minutes}
      - setWeight: 30
      - verification: {templateNames: [nope]}
---
apiVersion: ebbtide.dev/v1alpha1
kind: VerificationTemplate
metadata: {name: t}
spec:
  metrics:
    - name: broken-first
      interval: 1m
      successCondition: result > 1
    - name: m
      count: 3
      successCondition: "result >="
      failureLimit: -1
      provider: {prometheus: {query: up}}
---
apiVersion: ebbtide.dev/v1alpha1
kind: RolloutSpec
metadata: {name: r}
spec:
  strategy: {name: other}
  colour: blue
"""


def problems() -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        load_text(BROKEN, "broken.yaml")
    return {f"{p.document}:{p.field}": p.reason for p in info.value.problems}


def test_structural_and_semantic_problems_are_reported_together() -> None:
    found = problems()
    # structural
    assert "invalid duration '5 minutes'" in found["1:spec.canary.steps[1].pause.duration"]
    assert found["2:spec.metrics[1].failureLimit"] == "must be >= 0, not -1"
    assert found["3:spec.colour"] == "unknown field"
    # semantic, found in the rest of the same documents
    assert "weights must strictly increase" in found["1:spec.canary.steps[2].setWeight"]
    unknown = found["1:spec.canary.steps[3].verification.templateNames[0]"]
    assert "unknown VerificationTemplate 'nope'" in unknown
    assert "invalid condition" in found["2:spec.metrics[1].successCondition"]
    assert "needs an interval" in found["2:spec.metrics[1].count"]
    assert "unknown Strategy 'other'" in found["3:spec.strategy.name"]


def test_paths_after_a_removed_list_item_still_name_the_users_item() -> None:
    # metrics[0] has no provider, so the whole item is dropped from the repaired copy; the problems of
    # the metric after it must still say metrics[1], as in the file
    found = problems()
    assert found["2:spec.metrics[0].provider"] == "required field is missing"
    assert "2:spec.metrics[1].count" in found and "2:spec.metrics[0].count" not in found


def test_the_message_lists_every_problem_one_per_line() -> None:
    with pytest.raises(SpecError) as info:
        load_text(BROKEN, "broken.yaml")
    lines = str(info.value).splitlines()
    assert len([line for line in lines if line.strip().startswith("broken.yaml: document")]) == len(
        info.value.problems
    )


# ----- bounds: values that would pass validation then exhaust memory or time are refused, located ----------
BOUNDED = """
apiVersion: ebbtide.dev/v1alpha1
kind: Strategy
metadata: {name: s}
spec:
  canary:
    steps:
      - setCanaryScale: {replicas: 20000}
      - setWeight: 50
      - pause: {duration: 8761h}
      - pause: {duration: 99999999999999999999999999999999999999999999999999999999999999h}
---
apiVersion: ebbtide.dev/v1alpha1
kind: RolloutSpec
metadata: {name: r}
spec:
  strategy: {name: s}
  traffic: {nginx: {stableIngress: s}}
  replicas: 1000000000000
  progressDeadlineSeconds: 31536001
  scaleDownDelaySeconds: 1e400
"""


def test_replica_counts_and_durations_are_bounded() -> None:
    with pytest.raises(SpecError) as info:
        load_text(BOUNDED, "bounded.yaml")
    found = {f"{p.document}:{p.field}": p.reason for p in info.value.problems}
    assert found["1:spec.canary.steps[0].setCanaryScale.replicas"] == "must be <= 10000, not 20000"
    assert "longer than the most accepted, 8760h" in found["1:spec.canary.steps[2].pause.duration"]
    assert "longer than the most accepted, 8760h" in found["1:spec.canary.steps[3].pause.duration"]
    assert found["2:spec.replicas"] == "must be <= 10000, not 1000000000000"
    assert found["2:spec.progressDeadlineSeconds"] == "must be <= 31536000, not 31536001"
    assert "2:spec.scaleDownDelaySeconds" in found


def test_the_replicas_a_caller_passes_are_bounded_too() -> None:
    from ebbtide.core.spec import compile_plan

    ok = BOUNDED.replace("{replicas: 20000}", "{replicas: 2}").replace("8761h", "1h")
    ok = ok.replace("99999999999999999999999999999999999999999999999999999999999999h", "2h")
    ok = ok.replace("1000000000000", "3").replace("31536001", "600").replace("1e400", "30")
    specs = load_text(ok, "ok.yaml")
    assert compile_plan(specs).replicas == 3
    with pytest.raises(SpecError) as info:
        compile_plan(specs, replicas=10_001)
    [problem] = info.value.problems
    assert (problem.field, problem.reason) == ("spec.replicas", "replicas must be 0..10000, not 10001")
