"""Args whose value comes from the Rollout (``valueFrom.fieldRef``) or from a revision
(``valueFrom.podTemplateHashValue``), as Argo's AnalysisTemplate args allow.

A fieldRef is read from the RolloutSpec when the plan is compiled (so the simulator and the controller see
the same value); a podTemplateHashValue is filled in by :class:`Providers` from the measurement's revisions
(the pod-template-hash in a cluster, the revision's name in the simulator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ebbtide.adapters.providers import Providers
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.spec import SpecError, compile_plan, load_text

from .conftest import Reply, Vendor

TEMPLATE = """
apiVersion: ebbtide.dev/v1alpha1
kind: VerificationTemplate
metadata: {name: t}
spec:
  args:
%s
  metrics:
    - name: m
      successCondition: result.ok == true
      provider:
        web:
          url: "http://example.test/check?%s"
---
apiVersion: ebbtide.dev/v1alpha1
kind: Strategy
metadata: {name: s}
spec:
  canary:
    steps:
      - setWeight: 20
      - verification: {templateNames: [t]}
---
apiVersion: ebbtide.dev/v1alpha1
kind: RolloutSpec
metadata:
  name: checkout
  namespace: shop
  labels: {app.kubernetes.io/name: checkout-app}
  annotations: {team: payments}
spec:
  spotDeployment: {name: checkout}
  strategy:
    name: s
%s
"""


def url_of(args: str, query: str, rollout_args: str = "") -> str:
    specs = load_text(TEMPLATE % (args, query, rollout_args), "args.yaml")
    (metric,) = compile_plan(specs).templates["t"].metrics
    return str(metric.provider["web"]["url"])


def test_field_refs_are_read_from_the_rollout_spec() -> None:
    args = """
    - {name: name, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: ns, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: app, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app.kubernetes.io/name']"}}}
    - {name: team, valueFrom: {fieldRef: {fieldPath: 'metadata.annotations["team"]'}}}"""
    query = "n={{args.name}}&ns={{args.ns}}&app={{args.app}}&team={{args.team}}"
    assert (
        url_of(args, query) == "http://example.test/check?n=checkout&ns=shop&app=checkout-app&team=payments"
    )


def test_a_rollout_spec_arg_with_a_field_ref_wins_over_the_templates_value() -> None:
    args = "    - {name: who, value: nobody}"
    given = "    args:\n      - {name: who, valueFrom: {fieldRef: {fieldPath: metadata.name}}}"
    assert url_of(args, "who={{args.who}}", given) == "http://example.test/check?who=checkout"


def test_a_missing_label_names_the_field() -> None:
    args = "    - {name: tier, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['tier']\"}}}"
    with pytest.raises(SpecError) as caught:
        url_of(args, "t={{args.tier}}")
    assert (
        "args.yaml: document 1 (VerificationTemplate/t): spec.args[0].valueFrom.fieldRef.fieldPath: "
        "RolloutSpec 'checkout' has no metadata.labels['tier'] (arg 'tier')"
    ) in str(caught.value)


@pytest.mark.parametrize(
    ("value_from", "field", "reason"),
    [
        (
            "{fieldRef: {fieldPath: spec.replicas}}",
            "valueFrom.fieldRef.fieldPath",
            "'spec.replicas' is not one of",
        ),
        ("{fieldRef: {}}", "valueFrom.fieldRef.fieldPath", "None is not one of metadata.name"),
        ("{podTemplateHashValue: Canary}", "valueFrom.podTemplateHashValue", "must be Stable or Latest"),
        ("{configMapKeyRef: {name: a, key: b}}", "valueFrom", "give exactly one of secretKeyRef, fieldRef"),
        (
            "{fieldRef: {fieldPath: metadata.name}, podTemplateHashValue: Stable}",
            "valueFrom",
            "give exactly one of",
        ),
    ],
)
def test_a_bad_value_from_names_the_field(value_from: str, field: str, reason: str) -> None:
    args = f"    - {{name: a, valueFrom: {value_from}}}"
    with pytest.raises(SpecError) as caught:
        url_of(args, "a={{args.a}}")
    assert f"(VerificationTemplate/t): spec.args[0].{field}: {reason}" in str(caught.value)
    given = f"    args:\n      - {{name: a, valueFrom: {value_from}}}"
    with pytest.raises(SpecError) as caught:
        url_of("    - {name: a}", "a={{args.a}}", given)
    assert f"(RolloutSpec/checkout): spec.strategy.args[0].{field}: {reason}" in str(caught.value)


HASHES = """
    - {name: stable-hash, valueFrom: {podTemplateHashValue: Stable}}
    - {name: latest-hash, valueFrom: {podTemplateHashValue: Latest}}"""


def measured(vendor: Vendor, stable: str | None) -> Any:
    specs = load_text(TEMPLATE % (HASHES, "stable={{args.stable-hash}}&canary={{args.latest-hash}}", ""), "a")
    (metric,) = compile_plan(specs).templates["t"].metrics
    url = metric.provider["web"]["url"].replace("http://example.test", vendor.url)
    plan = metric.model_copy(update={"provider": {"web": {**metric.provider["web"], "url": url}}})
    vendor.route("GET", "/check", Reply(body={"ok": True}))
    start = StartMeasurement(
        verification="v1", template="t", metric=plan, revision="6d4b8f9c7", stable=stable
    )
    return Providers().measure(start, now=0)


def test_pod_template_hashes_are_the_measurements_revisions(vendor: Vendor) -> None:
    m = measured(vendor, stable="5f7c9d8b6")
    assert m is not None and m.error is None and m.value == {"ok": True}
    assert vendor.requests[0].query == {"stable": ["5f7c9d8b6"], "canary": ["6d4b8f9c7"]}


def test_without_a_stable_revision_the_stable_hash_is_an_error(vendor: Vendor) -> None:
    m = measured(vendor, stable=None)
    assert m is not None and m.error is not None
    assert "provider.web.url has an unresolved placeholder" in m.error and "podTemplateHash.Stable" in m.error
    assert vendor.requests == []


def test_the_simulator_rehearses_the_field_ref_values(tmp_path: Any) -> None:
    from ebbtide.sim.scenario import load_scenario

    specs = (Path(__file__).resolve().parents[3] / "examples" / "specs" / "basic-canary.yaml").read_text()
    specs = specs.replace(
        "spec:\n  metrics:",
        "spec:\n  args:\n    - {name: rollout, valueFrom: {fieldRef: {fieldPath: metadata.name}}}\n"
        "  metrics:",
        1,
    ).replace('service="orders",code', 'service="{{args.rollout}}",code', 1)
    (tmp_path / "specs.yaml").write_text(specs)
    scenario = (
        Path(__file__).resolve().parents[3] / "examples" / "scenarios" / "basic-canary.yaml"
    ).read_text()
    (tmp_path / "scenario.yaml").write_text(scenario.replace("../specs/basic-canary.yaml", "specs.yaml"))
    (metric,) = load_scenario(tmp_path / "scenario.yaml").plan.templates["orders-errors"].metrics
    assert 'service="orders",code=~"5.."' in metric.provider["prometheus"]["query"]
