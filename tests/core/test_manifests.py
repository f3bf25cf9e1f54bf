"""Manifests as users keep them (ebbtide.core.manifests): Ocean CD's flat entities, SpotDeployments and
Deployments, kinds ebbtide does not own, Services a rollout names, templates in other files, refused steps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ebbtide.adapters.specfiles import load_spec_files
from ebbtide.core.manifests import defined_names, set_hints
from ebbtide.core.spec import (
    Document,
    Problem,
    SpecError,
    SpecSet,
    compile_plan,
    load_text,
    parse_documents,
)

CORPUS = Path(__file__).resolve().parents[2] / "examples" / "manifests"

PROVIDER = {
    "kind": "verificationProvider",
    "name": "prom",
    "clusterIds": ["c-1"],
    "prometheus": {"address": "http://prom:9090"},
}
TEMPLATE = {
    "kind": "verificationTemplate",
    "name": "ok-rate",
    "metrics": [
        {
            "name": "ok",
            "interval": "30s",
            "count": 2,
            "successCondition": "result[0] >= 0.99",
            "provider": {"prometheus": {"query": "sum(ok)"}},
        }
    ],
}
STRATEGY = {
    "kind": "strategy",
    "name": "steps",
    "canary": {
        "steps": [{"setWeight": 20}, {"verification": {"templateNames": ["ok-rate"]}}, {"setWeight": 60}]
    },
}
ROLLOUT_SPEC = {
    "kind": "rolloutSpec",
    "name": "web",
    "spotDeployment": {"clusterId": "c-1", "namespace": "shop", "name": "web"},
    "strategy": {"name": "steps"},
    "failurePolicy": {"action": "abort"},
}


def spot_deployment(name: str = "web", replicas: int | None = 6) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {"spec": {"containers": [{"name": name, "image": f"{name}:2"}]}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "spot.io/v1beta1",
        "kind": "SpotDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }


def wrapped(flat: dict[str, Any]) -> dict[str, Any]:
    """The same entity in the wrapped form, written out by hand (the oracle for the flat form)."""
    kind = flat["kind"][0].upper() + flat["kind"][1:]
    spec = {k: v for k, v in flat.items() if k not in ("kind", "name")}
    return {
        "apiVersion": "ebbtide.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": flat["name"]},
        "spec": spec,
    }


def yaml_of(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def problems_of(text: str, file: str = "m.yaml") -> list[Problem]:
    with pytest.raises(SpecError) as err:
        load_text(text, file)
    return err.value.problems


# ------------------------------------------------------------------------------------------- flat form


FLAT = [PROVIDER, TEMPLATE, STRATEGY, ROLLOUT_SPEC]


def test_flat_entities_load_as_the_wrapped_ones() -> None:
    flat = load_text(yaml_of(*FLAT))
    hand = load_text(yaml_of(*(wrapped(d) for d in FLAT)))
    assert flat.rollout_specs == hand.rollout_specs and flat.strategies == hand.strategies
    assert flat.templates == hand.templates and flat.providers == hand.providers
    assert compile_plan(flat) == compile_plan(hand)
    assert {d.form for d in flat.origins.values()} == {"flat"}


def test_flat_entities_as_json() -> None:
    # JSON, one entity per file, as the Rollout Spec API takes them
    docs = [d for i, e in enumerate(FLAT) for d in parse_documents(json.dumps(e, indent=2), f"e{i}.json")]
    specs = SpecSet.from_documents(docs)
    assert set(specs.templates) == {"ok-rate"} and specs.providers["prom"].spec.cluster_ids == ["c-1"]
    assert (
        compile_plan(specs).templates["ok-rate"].metrics[0].provider["prometheus"]["address"]
        == "http://prom:9090"
    )


@pytest.mark.parametrize("spelling", ["lower", "pascal"])
def test_both_kind_spellings(spelling: str) -> None:
    def kind(d: dict[str, Any]) -> dict[str, Any]:
        k = d["kind"]
        return {**d, "kind": k[0].upper() + k[1:] if spelling == "pascal" else k}

    specs = load_text(yaml_of(*(kind(d) for d in FLAT)))
    assert (set(specs.rollout_specs), set(specs.strategies)) == ({"web"}, {"steps"})


def test_flat_problems_at_the_users_paths() -> None:
    strategy = {**STRATEGY, "canary": {"steps": [{"setWeight": 40}, {"setWeight": 30}]}}
    template = {**TEMPLATE, "metrics": [{**TEMPLATE["metrics"][0], "count": "often"}]}
    found = problems_of(yaml_of(PROVIDER, template, strategy, {**ROLLOUT_SPEC, "failurePolicy": {"act": 1}}))
    where = {(p.document, p.kind, p.field) for p in found}
    assert (3, "strategy", "canary.steps[1].setWeight") in where
    assert (2, "verificationTemplate", "metrics[0].count") in where
    assert (4, "rolloutSpec", "failurePolicy.act") in where
    assert not any(p.field.startswith(("spec", "metadata")) for p in found)


def test_flat_entity_without_a_name() -> None:
    found = problems_of(yaml_of({"kind": "strategy", "name": None, "canary": {"steps": []}}))
    assert found[0].field == "name"


def test_wrapped_without_apiversion_is_still_an_error() -> None:
    found = problems_of("kind: Strategy\nmetadata: {name: s}\nspec: {canary: {steps: []}}\n")
    assert found[0].field == "apiVersion" and "required field is missing" in found[0].reason


def test_ocean_cd_phases_with_several_actions() -> None:
    strategy = {
        "kind": "strategy",
        "name": "steps",
        "canary": {
            "steps": [
                {
                    "name": "first",
                    "setWeight": 20,
                    "verification": {"templateNames": ["ok-rate"]},
                    "pause": {"duration": "1m"},
                },
                {"name": "second", "setWeight": 10, "pause": {}},
            ]
        },
    }
    found = problems_of(yaml_of(PROVIDER, TEMPLATE, strategy, ROLLOUT_SPEC))
    assert [p.field for p in found] == ["canary.steps[1].setWeight"]  # the phase the user wrote, not step 3
    strategy["canary"]["steps"][1]["setWeight"] = 50  # type: ignore[index]
    plan = compile_plan(load_text(yaml_of(PROVIDER, TEMPLATE, strategy, ROLLOUT_SPEC)))
    assert [(s.name, s.kind) for s in plan.steps] == [
        ("first", "setWeight"),
        ("first", "verification"),
        ("first", "pause"),
        ("second", "setWeight"),
        ("second", "pause"),
        (None, "setWeight"),
    ]


# ------------------------------------------------------------------------------------------ workloads


def test_spot_deployment_gives_the_replicas() -> None:
    specs = load_text(yaml_of(*FLAT, spot_deployment("web", 6), spot_deployment("other", 9)))
    assert compile_plan(specs).replicas == 6
    assert specs.workloads[("SpotDeployment", "web")].template["spec"]["containers"][0]["image"] == "web:2"
    assert compile_plan(specs, replicas=2).replicas == 2
    own = load_text(yaml_of(PROVIDER, TEMPLATE, STRATEGY, {**ROLLOUT_SPEC, "replicas": 3}, spot_deployment()))
    assert compile_plan(own).replicas == 3  # the RolloutSpec's own replicas win
    assert compile_plan(load_text(yaml_of(*FLAT, spot_deployment("elsewhere", 6)))).replicas == 1


def test_spot_deployment_with_bad_replicas() -> None:
    found = problems_of(yaml_of(*FLAT, spot_deployment("web", -1)))  # type: ignore[arg-type]
    assert [(p.kind, p.field) for p in found] == [("SpotDeployment", "spec.replicas")]


ROLLOUT = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: api}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: api-deploy}
  strategy:
    canary:
      canaryService: api-canary
      stableService: api-stable
      steps:
        - setWeight: 50
        - pause: {duration: 1m}
"""
DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: %s}
spec:
  replicas: %d
  template: {spec: {containers: [{name: api, image: api:1}]}}
"""


def test_workload_ref_deployment_gives_the_replicas() -> None:
    text = "---".join([ROLLOUT, DEPLOYMENT % ("api", 9), DEPLOYMENT % ("api-deploy", 4)])
    specs = load_text(text)
    assert compile_plan(specs).replicas == 4
    assert [str(s) for s in specs.skipped] == ["Deployment/api"]  # the one no rollout refers to


def test_foreign_kinds_are_skipped() -> None:
    foreign = [
        ("v1", "Service", "api-canary"),
        ("v1", "Service", "api-stable"),
        ("v1", "Secret", "token"),
        ("v1", "ConfigMap", "cfg"),
        ("networking.k8s.io/v1", "Ingress", "api"),
        ("networking.istio.io/v1beta1", "VirtualService", "api"),
        ("networking.istio.io/v1beta1", "DestinationRule", "api"),
        ("gateway.networking.k8s.io/v1", "HTTPRoute", "api"),
        ("gateway.networking.k8s.io/v1", "Gateway", "gw"),
    ]
    docs = [{"apiVersion": a, "kind": k, "metadata": {"name": n}} for a, k, n in foreign]
    docs.append(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["x"]}
    )
    specs = load_text(ROLLOUT + "---\n" + yaml_of(*docs))
    assert [str(s) for s in specs.skipped] == [f"{k}/{n}" for _, k, n in foreign] + ["Kustomization"]
    assert compile_plan(specs).replicas == 1


def test_unknown_kinds_under_our_api_versions_are_still_errors() -> None:
    found = problems_of("apiVersion: ebbtide.dev/v1alpha1\nkind: Stratgy\nmetadata: {name: s}\nspec: {}\n")
    assert found[0].field == "kind" and "unknown kind 'Stratgy'" in found[0].reason


# ------------------------------------------------------------------------------------------- services


def test_named_services_must_be_in_a_set_that_has_services() -> None:
    service = "apiVersion: v1\nkind: Service\nmetadata: {name: %s}\n"
    found = problems_of(ROLLOUT + "---\n" + service % "api-stable")
    assert [(p.kind, p.field) for p in found] == [("Rollout", "spec.strategy.canary.canaryService")]
    assert "no Service 'api-canary'" in found[0].reason and "api-stable" in found[0].reason
    load_text(ROLLOUT)  # no Services in the set: nothing to check against
    load_text(ROLLOUT + "---\n" + service % "api-stable" + "---\n" + service % "api-canary")
    flat = {**ROLLOUT_SPEC, "traffic": {"canaryService": "web-canary", "stableService": "web", "istio": {}}}
    found = problems_of(yaml_of(PROVIDER, TEMPLATE, STRATEGY, flat) + "---\n" + service % "web")
    assert [(p.kind, p.field) for p in found] == [("rolloutSpec", "traffic.canaryService")]


# ---------------------------------------------------------------------------- templates in other files


ARGO_TEMPLATE_USER = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: api}
spec:
  strategy:
    canary:
      analysis: {templates: [{templateName: errors}], args: [{name: svc, value: api}]}
      steps:
        - setWeight: 20
        - analysis: {templates: [{templateName: errors}], args: [{name: svc, value: api}]}
        - setWeight: 40
        - analysis: {templates: [{templateName: errors}], args: [{name: svc, value: api}]}
"""


def test_a_missing_template_is_one_problem_that_suggests_a_set() -> None:
    found = problems_of(ARGO_TEMPLATE_USER, "rollout.yaml")
    assert len(found) == 1
    p = found[0]
    assert p.field == "spec.strategy.canary.steps[1].analysis.templates[0].templateName"
    assert "unknown AnalysisTemplate 'errors'" in p.reason and "validate --set" in p.reason


def test_set_hints_name_the_files_that_define_the_template() -> None:
    found = problems_of(ARGO_TEMPLATE_USER, "rollout.yaml")
    tdoc = "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: errors}\nspec: {}\n"
    defined = {
        "rollout.yaml": defined_names(parse_documents(ARGO_TEMPLATE_USER, "rollout.yaml")),
        "shared.yaml": defined_names(parse_documents(tdoc, "shared.yaml")),
        "flat.json": defined_names(parse_documents(json.dumps(TEMPLATE), "flat.json")),
        "strategy.yaml": defined_names(parse_documents(yaml_of({**STRATEGY, "name": "errors"}), "s.yaml")),
    }
    assert defined == {
        "rollout.yaml": set(),
        "shared.yaml": {("template", "errors")},
        "flat.json": {("template", "ok-rate")},
        "strategy.yaml": {("Strategy", "errors")},  # the same name, but not a template
    }
    (hinted,) = set_hints(found, defined)
    assert hinted.reason.endswith("ebbtide validate --set rollout.yaml shared.yaml")
    assert set_hints(found, {"rollout.yaml": set()}) == found


def test_a_strategy_in_another_file() -> None:
    found = problems_of(yaml_of(ROLLOUT_SPEC), "rolloutspec.yaml")
    assert [(p.field, p.reason.split(";")[0]) for p in found] == [
        ("strategy.name", "unknown Strategy 'steps' (known: none in this set)")
    ]
    (hinted,) = set_hints(found, {"strategy.yaml": {("Strategy", "steps")}})
    assert hinted.reason.endswith("ebbtide validate --set rolloutspec.yaml strategy.yaml")


def test_weights_that_do_not_increase_name_the_users_step() -> None:
    strategy = {**STRATEGY, "canary": {"steps": [{"setWeight": 40}, {"pause": {}}, {"setWeight": 30}]}}
    (p,) = problems_of(yaml_of(PROVIDER, TEMPLATE, strategy, ROLLOUT_SPEC))
    assert (p.field, p.reason) == (
        "canary.steps[2].setWeight",
        "weights must strictly increase: 30 after 40 at canary.steps[0].setWeight",
    )


# ------------------------------------------------------------------------------------- refused steps


def test_an_experiment_step_is_one_problem() -> None:
    text = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: api}
spec:
  strategy:
    canary:
      steps:
        - setWeight: 20
        - experiment:
            duration: 5m
            templates: [{name: baseline, specRef: stable}, {name: canary, specRef: canary}]
            analyses: [{name: compare, templateName: not-defined-anywhere}]
        - setWeight: 40
        - pause: {}
"""
    found = problems_of(text)
    assert [(p.kind, p.field) for p in found] == [("Rollout", "spec.strategy.canary.steps[1].experiment")]
    assert "not supported yet" in found[0].reason and "experiment" in found[0].reason


def test_problems_after_a_refused_step_keep_their_own_index() -> None:
    text = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: api}
spec:
  strategy:
    canary:
      steps:
        - experiment: {templates: [{name: b, specRef: stable}]}
        - setWeight: 40
        - setWeight: 30
"""
    fields = [p.field for p in problems_of(text)]
    assert fields == ["spec.strategy.canary.steps[0].experiment", "spec.strategy.canary.steps[2].setWeight"]


# ------------------------------------------------------------------------------------------- corpus

#: every manifest set of the corpus: its files, and what compiling it must give (rollout, strategy,
#: replicas, step kinds), written from the manifests by hand
SETS: dict[str, tuple[list[str], str, str, int, list[str]]] = {
    "oceancd-one-file": (
        ["oceancd-one-file.yaml"],
        "payments",
        "canary",
        5,
        [
            "setHeaderRoute",
            "pause",
            "setWeight",
            "verification",
            "setWeight",
            "verification",
            "pause",
            "setWeight",
        ],
    ),
    "oceancd-split": (
        [
            f"oceancd-split/{f}"
            for f in (
                "provider.json",
                "template.json",
                "strategy.yaml",
                "rolloutspec.yaml",
                "spotdeployment.yaml",
            )
        ],
        "search",
        "rolling",
        8,
        ["setWeight", "pause", "verification", "pause"],
    ),
    "argo-mixed-kinds": (
        ["argo-mixed-kinds.yaml"],
        "catalog",
        "canary",
        4,
        [
            "setHeaderRoute",
            "setCanaryScale",
            "setMirrorRoute",
            "verification",
            "setWeight",
            "pause",
            "setWeight",
            "pause",
            "setWeight",
        ],
    ),
    "argo-blue-green": (
        ["argo-blue-green.yaml"],
        "profile",
        "blueGreen",
        3,
        ["setCanaryScale", "verification", "pause", "setWeight", "verification"],
    ),
    "argo-workloadref": (
        [f"argo-workloadref/{f}" for f in ("rollout.yaml", "templates.yaml", "kustomization.yaml")],
        "orders-rollout",
        "canary",
        6,
        ["setWeight", "pause", "setWeight", "pause", "setWeight"],
    ),
}


@pytest.mark.parametrize("name", sorted(SETS))
def test_corpus_loads_and_compiles(name: str) -> None:
    files, rollout, strategy, replicas, kinds = SETS[name]
    specs = load_spec_files([CORPUS / f for f in files])
    plan = compile_plan(specs)
    assert (plan.name, plan.strategy, plan.replicas) == (rollout, strategy, replicas)
    assert [s.kind for s in plan.steps] == kinds


def test_corpus_split_files_load_in_any_order() -> None:
    files = SETS["oceancd-split"][0]
    assert compile_plan(load_spec_files([CORPUS / f for f in reversed(files)])) == compile_plan(
        load_spec_files([CORPUS / f for f in files])
    )


def test_corpus_skips_what_is_not_ours() -> None:
    specs = load_spec_files([CORPUS / "argo-mixed-kinds.yaml"])
    assert sorted(s.kind for s in specs.skipped) == sorted(
        ["ConfigMap", "Secret", "Service", "Service", "Ingress", "VirtualService", "DestinationRule"]
    )


def test_every_corpus_file_is_in_a_set() -> None:
    listed = {f for files, *_ in SETS.values() for f in files}
    files = [p for p in CORPUS.rglob("*") if p.is_file() and "scenarios" not in p.parts]
    on_disk = {str(p.relative_to(CORPUS)) for p in files}
    assert listed == on_disk


def test_documents_keep_their_form() -> None:
    docs = parse_documents(yaml_of(PROVIDER), "p.yaml")
    assert isinstance(docs[0], Document) and docs[0].form == "wrapped"  # set when read, not when parsed
    argo = ARGO_TEMPLATE_USER.replace("errors", "ok-rate")
    specs = load_text(yaml_of(*FLAT, spot_deployment()) + "---" + argo)
    forms = {key: doc.form for key, doc in specs.origins.items()}
    assert forms[("RolloutSpec", "web")] == "flat" and forms[("RolloutSpec", "api")] == "argo"


# ------------------------------------------------------------------------------------------ properties

_ACTIONS = {
    "setWeight": st.integers(-5, 110),
    "pause": st.one_of(st.just({}), st.builds(lambda s: {"duration": f"{s}s"}, st.integers(1, 600))),
    "verification": st.just({"templateNames": ["ok-rate"]}),
}


@st.composite
def flat_strategies(draw: st.DrawFn, phases: bool) -> dict[str, Any]:
    """A flat Ocean CD strategy; with ``phases`` a step may hold several actions."""
    steps = []
    for i in range(draw(st.integers(0, 5))):
        if phases:
            chosen = draw(st.lists(st.sampled_from(sorted(_ACTIONS)), min_size=1, max_size=3, unique=True))
        else:
            chosen = [draw(st.sampled_from(sorted(_ACTIONS)))]
        step: dict[str, Any] = {"name": f"p{i}"}
        for action in chosen:
            step[action] = draw(_ACTIONS[action])
        steps.append(step)
    return {"kind": "strategy", "name": "steps", "canary": {"steps": steps}}


def _outcome(text: str) -> tuple[str, Any]:
    try:
        return "ok", compile_plan(load_text(text))
    except SpecError as exc:
        return "error", sorted((p.document, p.field, p.reason) for p in exc.problems)


@settings(max_examples=60)
@given(flat_strategies(phases=False))
def test_a_flat_entity_is_its_wrapped_twin(strategy: dict[str, Any]) -> None:
    """Flat and wrapped load alike; problems differ only by the user's paths (no ``spec.``, ``metadata.``)."""
    flat = _outcome(yaml_of(PROVIDER, TEMPLATE, strategy, ROLLOUT_SPEC))
    kind, wrapped_result = _outcome(
        yaml_of(*(wrapped(d) for d in (PROVIDER, TEMPLATE, strategy, ROLLOUT_SPEC)))
    )
    if kind == "ok":
        assert flat == (kind, wrapped_result)
        return

    def user_path(path: str) -> str:
        return path.removeprefix("spec.").removeprefix("metadata.")

    expected = sorted((doc, user_path(f), r.replace("spec.canary", "canary")) for doc, f, r in wrapped_result)
    assert flat == ("error", expected)


@settings(max_examples=60)
@given(flat_strategies(phases=True))
def test_a_phase_is_its_actions_in_order(strategy: dict[str, Any]) -> None:
    """A phase with several actions loads as the same actions written one step each, in PHASE order."""
    order = ("setWeight", "verification", "pause")
    one_each = [
        {"name": step["name"], action: step[action]}
        for step in strategy["canary"]["steps"]
        for action in order
        if action in step
    ]
    split = {**strategy, "canary": {"steps": one_each}}
    flat_kind, flat_result = _outcome(yaml_of(PROVIDER, TEMPLATE, strategy, ROLLOUT_SPEC))
    split_kind, split_result = _outcome(yaml_of(PROVIDER, TEMPLATE, split, ROLLOUT_SPEC))
    assert flat_kind == split_kind
    if flat_kind == "ok":
        assert flat_result == split_result


def test_a_deployment_counts_only_when_a_rollout_names_it() -> None:
    bad = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: %s}\nspec: {replicas: many}\n"
    specs = load_text(ROLLOUT + "---\n" + bad % "unrelated")  # someone else's Deployment: not ours to judge
    assert [str(s) for s in specs.skipped] == ["Deployment/unrelated"]
    found = problems_of(ROLLOUT + "---\n" + bad % "api-deploy")
    assert [(p.kind, p.field) for p in found] == [("Deployment", "spec.replicas")]
    assert "must be an integer 0..10000, not 'many'" in found[0].reason


def test_blue_green_services_are_checked_too() -> None:
    rollout = (
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: bg}\nspec:\n  replicas: 2\n"
        "  strategy:\n    blueGreen: {activeService: bg-active, previewService: bg-preview}\n"
    )
    service = "---\napiVersion: v1\nkind: Service\nmetadata: {name: %s}\n"
    load_text(rollout)
    load_text(rollout + service % "bg-active" + service % "bg-preview")
    found = problems_of(rollout + service % "bg-active")
    assert [(p.kind, p.field) for p in found] == [("Rollout", "spec.strategy.blueGreen.previewService")]


def test_replicas_precedence_with_a_workload_ref() -> None:
    own = ROLLOUT.replace("spec:\n  workloadRef", "spec:\n  replicas: 2\n  workloadRef")
    assert compile_plan(load_text(own + "---" + DEPLOYMENT % ("api-deploy", 4))).replicas == 2
    assert compile_plan(load_text(ROLLOUT + "---" + DEPLOYMENT % ("api-deploy", 4)), replicas=7).replicas == 7


def test_spot_deployments_of_several_clusters() -> None:
    spec = {k: v for k, v in ROLLOUT_SPEC.items() if k != "spotDeployment"}
    spec["spotDeployments"] = [
        {"clusterId": "eu", "namespace": "shop", "name": "web-eu"},
        {"clusterId": "us", "namespace": "shop", "name": "web-us"},
    ]
    specs = load_text(yaml_of(PROVIDER, TEMPLATE, STRATEGY, spec, spot_deployment("web-us", 3)))
    assert compile_plan(specs).replicas == 3  # the first one the set holds


# ------------------------------------------------------------------ Argo fields ignored with a warning

WARNED_ROLLOUT = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: shop, labels: {team: web}}
spec:
  replicas: 4
  minReadySeconds: 10
  paused: true
  restartAt: "2026-01-01T00:00:00Z"
  progressDeadlineAbort: false
  analysis: {successfulRunHistoryLimit: 3, unsuccessfulRunHistoryLimit: 5}
  selector: {matchLabels: {app: shop}}
  template: {metadata: {labels: {app: shop}}}
  strategy:
    canary:
      canaryService: shop-canary
      stableService: shop-stable
      canaryMetadata: {labels: {role: canary}}
      stableMetadata: {labels: {role: stable}}
      antiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: {weight: 1}}
      pingPong: {pingService: ping, pongService: pong}
      minPodsPerReplicaSet: 2
      replicaProgressThreshold: {type: Percent, value: 90}
      trafficRouting:
        maxTrafficWeight: 1000
        nginx: {stableIngress: shop}
      steps:
        - setWeight: 20
        - analysis:
            templates: [{templateName: ok}]
            measurementRetention: [{metricName: ok, limit: 5}]
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: ok}
spec:
  measurementRetention: [{metricName: ok, limit: 20}]
  metrics:
    - name: ok
      successCondition: result[0] >= 0.99
      provider: {prometheus: {address: "http://prom:9090", query: "sum(ok)"}}
"""


def test_ignored_argo_fields_are_warned_of_at_their_paths() -> None:
    specs = load_text(WARNED_ROLLOUT, "shop.yaml")
    assert [(w.document, w.kind, w.name, w.field) for w in specs.warnings] == [
        (1, "Rollout", "shop", "spec.minReadySeconds"),
        (1, "Rollout", "shop", "spec.paused"),
        (1, "Rollout", "shop", "spec.restartAt"),
        (1, "Rollout", "shop", "spec.progressDeadlineAbort"),
        (1, "Rollout", "shop", "spec.analysis.successfulRunHistoryLimit"),
        (1, "Rollout", "shop", "spec.analysis.unsuccessfulRunHistoryLimit"),
        (1, "Rollout", "shop", "spec.strategy.canary.trafficRouting.maxTrafficWeight"),
        (1, "Rollout", "shop", "spec.strategy.canary.canaryMetadata"),
        (1, "Rollout", "shop", "spec.strategy.canary.stableMetadata"),
        (1, "Rollout", "shop", "spec.strategy.canary.antiAffinity"),
        (1, "Rollout", "shop", "spec.strategy.canary.pingPong"),
        (1, "Rollout", "shop", "spec.strategy.canary.minPodsPerReplicaSet"),
        (1, "Rollout", "shop", "spec.strategy.canary.replicaProgressThreshold"),
        (1, "Rollout", "shop", "spec.strategy.canary.steps[1].analysis.measurementRetention"),
        (2, "AnalysisTemplate", "ok", "spec.measurementRetention"),
    ]
    assert str(specs.warnings[0]) == (
        "shop.yaml: Rollout/shop: spec.minReadySeconds: ebbtide counts a pod available as soon as it is ready"
    )
    # the warned fields change nothing: the plan is the one without them
    bare = load_text(WARNED_ROLLOUT.replace("  minReadySeconds: 10\n  paused: true\n", ""))
    assert compile_plan(specs) == compile_plan(bare)


def test_values_with_which_argo_behaves_as_ebbtide_warn_of_nothing() -> None:
    same = (
        WARNED_ROLLOUT.replace("paused: true", "paused: false")
        .replace("progressDeadlineAbort: false", "progressDeadlineAbort: true")
        .replace("maxTrafficWeight: 1000", "maxTrafficWeight: 100")
        .replace("minReadySeconds: 10", "minReadySeconds: 0")
    )
    fields = {w.field for w in load_text(same).warnings}
    assert not fields & {"spec.paused", "spec.progressDeadlineAbort", "spec.minReadySeconds"}
    assert "spec.strategy.canary.trafficRouting.maxTrafficWeight" not in fields


def test_blue_green_ignored_fields_are_warned_of() -> None:
    rollout = (
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: bg}\nspec:\n  replicas: 2\n"
        "  strategy:\n    blueGreen:\n      activeService: bg-active\n"
        "      previewMetadata: {labels: {a: b}}\n      activeMetadata: {labels: {a: c}}\n"
        "      antiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: {}}\n      maxUnavailable: 1\n"
    )
    assert [w.field for w in load_text(rollout).warnings] == [
        "spec.strategy.blueGreen.previewMetadata",
        "spec.strategy.blueGreen.activeMetadata",
        "spec.strategy.blueGreen.antiAffinity",
        "spec.strategy.blueGreen.maxUnavailable",
    ]


def test_silently_ignored_fields_and_plain_specs_warn_of_nothing() -> None:
    assert load_text(ROLLOUT + "---" + DEPLOYMENT % ("api-deploy", 4)).warnings == ()
    assert load_text(yaml_of(*FLAT)).warnings == ()


def test_unknown_traffic_routing_and_analysis_fields_are_problems() -> None:
    text = WARNED_ROLLOUT.replace("maxTrafficWeight: 1000", "maxTraficWeight: 1000").replace(
        "successfulRunHistoryLimit: 3,", "successfulRunHistoryLimt: 3,"
    )
    found = problems_of(text)
    assert sorted(p.field for p in found) == [
        "spec.analysis.successfulRunHistoryLimt",
        "spec.strategy.canary.trafficRouting.maxTraficWeight",
    ]
