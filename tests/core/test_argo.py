from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ebbtide.adapters.specfiles import load_spec_files
from ebbtide.core.spec import SpecError, compile_plan, load_text

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "specs"


def argo_docs() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((EXAMPLES / "argo-rollout.yaml").read_text()))


def load(docs: list[dict[str, Any]]) -> Any:
    return load_text(yaml.safe_dump_all(docs, sort_keys=False), "argo.yaml")


def problems(docs: list[dict[str, Any]]) -> list[tuple[int, str | None, str, str]]:
    with pytest.raises(SpecError) as exc:
        load(docs)
    return [(p.document, p.kind, p.field, p.reason) for p in exc.value.problems]


def test_argo_example_maps_to_the_equivalent_plan() -> None:
    argo = compile_plan(load_spec_files([EXAMPLES / "argo-rollout.yaml"]))
    ocean = compile_plan(load_spec_files([EXAMPLES / "argo-equivalent.yaml"]))
    assert argo == ocean


def test_argo_rollout_becomes_rollout_spec_and_strategy() -> None:
    specs = load_spec_files([EXAMPLES / "argo-rollout.yaml"])
    assert set(specs.rollout_specs) == {"rollouts-demo"}
    assert set(specs.strategies) == {"rollouts-demo"}
    assert set(specs.templates) == {"success-rate"}
    plan = compile_plan(specs)
    assert plan.failure_action == "rollback" and plan.rollback_mode == "immediate"
    assert (plan.replicas, plan.max_surge, plan.max_unavailable) == (5, 2, 0)
    assert plan.steps[-1].weight == 100
    assert (
        "rollouts-demo-canary.demo.svc"
        in plan.templates["success-rate"].metrics[0].provider["prometheus"]["query"]
    )


def test_canary_and_blue_green_together_are_rejected() -> None:
    d = argo_docs()
    d[1]["spec"]["strategy"]["blueGreen"] = {"activeService": "a"}
    assert (2, "Rollout", "spec.strategy", "give one of canary or blueGreen, not both") in problems(d)


def test_background_analysis_and_dry_run() -> None:
    d = argo_docs()
    d[1]["spec"]["strategy"]["canary"]["analysis"] = {
        "templates": [{"templateName": "success-rate"}],
        "startingStep": 1,
        "args": [{"name": "service-name", "value": "rollouts-demo-canary.demo.svc.cluster.local"}],
    }
    d[0]["spec"]["dryRun"] = [{"metricName": "success-rate"}]
    plan = compile_plan(load(d))
    assert plan.background_templates == ("success-rate",)
    assert plan.templates["success-rate"].metrics[0].dry_run


def test_errors_use_argo_field_names() -> None:
    d = argo_docs()
    d[1]["spec"]["strategy"]["canary"]["steps"][2]["setWeight"] = 10
    d[1]["spec"]["strategy"]["canary"]["steps"][1]["analysis"]["templates"][0]["templateName"] = "nope"
    found = problems(d)
    fields = {(f, k) for _, k, f, _ in found}
    assert ("spec.strategy.canary.steps[2].setWeight", "Rollout") in fields
    assert ("spec.strategy.canary.steps[1].analysis.templates[0].templateName", "Rollout") in fields


def test_unsupported_step_and_unknown_field() -> None:
    d = argo_docs()
    d[1]["spec"]["strategy"]["canary"]["steps"].append({"experiment": {"templates": []}})
    d[1]["spec"]["strategy"]["canary"]["bogus"] = 1
    found = problems(d)
    assert any(
        f == "spec.strategy.canary.steps[7].experiment" and "not supported" in r for _, _, f, r in found
    )
    assert any(f == "spec.strategy.canary.bogus" and r == "unknown field" for _, _, f, r in found)


def test_conflicting_args_between_steps() -> None:
    d = argo_docs()
    d[1]["spec"]["strategy"]["canary"]["steps"][5]["analysis"]["args"][0]["value"] = "other"
    found = problems(d)
    assert any(f == "spec.strategy.canary.steps[5].analysis.args[0]" for _, _, f, _ in found)


def test_cluster_analysis_template_and_bad_condition() -> None:
    d = argo_docs()
    d[0]["kind"] = "ClusterAnalysisTemplate"
    d[0]["spec"]["metrics"][0]["successCondition"] = "result[0] >="
    found = problems(d)
    assert any(
        (doc, kind, f) == (1, "ClusterAnalysisTemplate", "spec.metrics[0].successCondition")
        for doc, kind, f, _ in found
    )


def test_unsupported_provider() -> None:
    d = argo_docs()
    d[0]["spec"]["metrics"][0]["provider"] = {"kayenta": {"address": "x"}}
    found = problems(d)
    assert any(f == "spec.metrics[0].provider.kayenta" for _, _, f, _ in found)


# ---------------------------------------------------------------------------------------------------
# analysis options honoured: dryRun (step, background, template), measurementRetention, startingStep
# ---------------------------------------------------------------------------------------------------


def _with_background(d: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    d[1]["spec"]["strategy"]["canary"]["analysis"] = {
        "templates": [{"templateName": "success-rate"}],
        "args": [{"name": "service-name", "value": "rollouts-demo-canary.demo.svc.cluster.local"}],
        **options,
    }
    return d


def test_step_dry_run_applies_to_that_step_only() -> None:
    d = argo_docs()
    d[1]["spec"]["strategy"]["canary"]["steps"][1]["analysis"]["dryRun"] = [{"metricName": "success"}]
    plan = compile_plan(load(d))
    assert plan.steps[1].dry_run == ("success-rate",), "a regular expression found in the metric name"
    assert plan.steps[5].dry_run == ()
    assert not plan.templates["success-rate"].metrics[0].dry_run


def test_background_dry_run_and_starting_step() -> None:
    d = _with_background(argo_docs(), startingStep=2, dryRun=[{"metricName": ".*"}])
    plan = compile_plan(load(d))
    assert plan.background_starting_step == 2
    assert plan.background_dry_run == ("success-rate",)
    assert plan.steps[1].dry_run == ()


def test_starting_step_past_the_last_step_is_a_problem() -> None:
    d = _with_background(argo_docs(), startingStep=7)
    found = problems(d)
    field = "spec.strategy.canary.analysis.startingStep"
    assert any(f == field and "past the last step" in r for _, _, f, r in found), found


@pytest.mark.parametrize(
    ("where", "rule", "reason"),
    [
        ("step", {"metricName": "latency"}, "'latency' matches no metric"),
        ("step", {"metricName": "(unclosed"}, "not a regular expression"),
        ("background", {"metricName": "latency"}, "'latency' matches no metric"),
        ("template", {"metricName": "latency"}, "'latency' matches no metric"),
    ],
)
def test_dry_run_rules_that_match_nothing_are_problems(where: str, rule: dict[str, str], reason: str) -> None:
    """Argo errors the AnalysisRun when a dryRun rule matches no metric; ebbtide says so at load time."""
    d = argo_docs()
    if where == "step":
        d[1]["spec"]["strategy"]["canary"]["steps"][1]["analysis"]["dryRun"] = [rule]
        field = "spec.strategy.canary.steps[1].analysis.dryRun[0].metricName"
    elif where == "background":
        d = _with_background(d, dryRun=[rule])
        field = "spec.strategy.canary.analysis.dryRun[0].metricName"
    else:
        d[0]["spec"]["dryRun"] = [rule]
        field = "spec.dryRun[0].metricName"
    found = problems(d)
    assert any(f == field and reason in r for _, _, f, r in found), found


def test_template_dry_run_rules_are_regular_expressions() -> None:
    d = argo_docs()
    d[0]["spec"]["metrics"].append({**d[0]["spec"]["metrics"][0], "name": "latency-p99"})
    d[0]["spec"]["dryRun"] = [{"metricName": "^latency"}]
    metrics = compile_plan(load(d)).templates["success-rate"].metrics
    assert [(m.name, m.dry_run) for m in metrics] == [("success-rate", False), ("latency-p99", True)]


def test_measurement_retention_is_accepted_and_checked() -> None:
    d = _with_background(argo_docs(), measurementRetention=[{"metricName": "success-rate", "limit": 20}])
    d[1]["spec"]["strategy"]["canary"]["steps"][1]["analysis"]["measurementRetention"] = [
        {"metricName": "success-rate", "limit": 5}
    ]
    d[0]["spec"]["measurementRetention"] = [{"metricName": "success-rate", "limit": 5}]
    assert compile_plan(load(d)) == compile_plan(load(_with_background(argo_docs())))
    d[1]["spec"]["strategy"]["canary"]["steps"][1]["analysis"]["measurementRetention"] = [
        {"metricName": "success-rate", "limit": 0}
    ]
    found = problems(d)
    assert any(
        f == "spec.strategy.canary.steps[1].analysis.measurementRetention[0].limit" for _, _, f, _ in found
    ), found


def test_canary_scale_down_delay_revision_limit_is_used() -> None:
    docs = argo_docs()
    rollout = next(d for d in docs if d["kind"] == "Rollout")
    assert compile_plan(load(docs)).scale_down_delay_revision_limit is None
    rollout["spec"]["strategy"]["canary"]["scaleDownDelayRevisionLimit"] = 1
    specs = load(docs)
    assert compile_plan(specs).scale_down_delay_revision_limit == 1
    assert specs.warnings == ()
    rollout["spec"]["strategy"]["canary"]["scaleDownDelayRevisionLimit"] = -1
    assert problems(docs) == [
        (2, "Rollout", "spec.strategy.canary.scaleDownDelayRevisionLimit", "must be >= 0, not -1")
    ]


def _canary(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "Rollout")["spec"]["strategy"]["canary"]


def test_a_step_of_several_actions_runs_them_one_after_another() -> None:
    """Argo allows setCanaryScale, setHeaderRoute (and setMirrorRoute) beside one of setWeight, pause,
    analysis in one step (Argo's examples/apisix/rollout.yaml does); ebbtide runs them as consecutive steps:
    setCanaryScale, setWeight, setHeaderRoute, analysis, pause."""
    d = argo_docs()
    steps = _canary(d)["steps"]
    n = len(compile_plan(load(d)).steps)
    route = {"name": "testers", "match": [{"headerName": "x-test", "headerValue": {"exact": "1"}}]}
    steps.insert(0, {"setHeaderRoute": route, "setCanaryScale": {"replicas": 1}})
    _canary(d)["trafficRouting"]["managedRoutes"] = [{"name": "testers"}]
    plan = compile_plan(load(d))
    assert [s.kind for s in plan.steps[:2]] == ["setCanaryScale", "setHeaderRoute"]
    assert plan.steps[0].replicas == 1 and plan.steps[1].header_route is not None
    assert len(plan.steps) == n + 2
    # a problem in the second action is reported at the user's own step and field
    route["match"][0]["headerValue"] = {"exactly": "1"}
    found = problems(d)
    where = "spec.strategy.canary.steps[0].setHeaderRoute.match[0].headerValue"
    assert found and all(f.startswith(where) for _, _, f, _ in found), found


@pytest.mark.parametrize("kind", ["setHeaderRoute", "setMirrorRoute"])
def test_a_route_a_step_sets_must_be_listed_in_managed_routes(kind: str) -> None:
    """As Argo validates it: the router changes only the routes listed in managedRoutes, so a step setting
    another one is refused now rather than holding its step at run time. Reported at the user's own step."""
    d = argo_docs()
    action: dict[str, Any] = {"name": "testers"}
    if kind == "setHeaderRoute":
        action["match"] = [{"headerName": "x-test", "headerValue": {"exact": "1"}}]
    else:
        action["match"] = [{"method": {"exact": "GET"}}]
        action["percentage"] = 10
    _canary(d)["steps"].insert(1, {kind: action})
    found = problems(d)
    reason = (
        "route 'testers' is not listed in RolloutSpec rollouts-demo's spec.traffic.managedRoutes (the router "
        "changes only the routes listed there)"
    )
    assert [(f, r) for _, _, f, r in found] == [(f"spec.strategy.canary.steps[1].{kind}.name", reason)]
    _canary(d)["trafficRouting"]["managedRoutes"] = [{"name": "testers"}]
    assert compile_plan(load(d)).steps[1].kind == kind


def test_a_step_with_two_of_set_weight_pause_analysis_is_one_problem() -> None:
    d = argo_docs()
    _canary(d)["steps"][0]["pause"] = {"duration": "1m"}
    reason = "a step holds at most one of setWeight, pause, analysis, found setWeight, pause"
    assert problems(d) == [(2, "Rollout", "spec.strategy.canary.steps[0]", reason)]


def test_starting_step_counts_argo_steps_when_a_step_splits() -> None:
    d = _with_background(argo_docs(), startingStep=2)
    _canary(d)["steps"][0]["setCanaryScale"] = {"replicas": 1}  # step 0 becomes two ebbtide steps
    plan = compile_plan(load(d))
    assert plan.background_starting_step == 3
    assert plan.steps[3] == compile_plan(load(_with_background(argo_docs(), startingStep=2))).steps[2]


def test_template_references_take_cluster_scope_and_nothing_else() -> None:
    d = argo_docs()
    ref = _canary(d)["steps"][1]["analysis"]["templates"][0]
    ref["clusterScope"] = False
    load(d)
    ref["templateNmae"] = "x"
    assert [(f, r) for _, _, f, r in problems(d)] == [
        ("spec.strategy.canary.steps[1].analysis.templates[0].templateNmae", "unknown field")
    ]
