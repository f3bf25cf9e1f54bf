from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from ebbtide.adapters.specfiles import load_spec_files
from ebbtide.core.duration import format_duration, parse_duration
from ebbtide.core.spec import Document, SpecError, SpecSet, compile_plan, load_text, parse_documents

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "specs"
API = "ebbtide.dev/v1alpha1"

# ------------------------------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    ("v", "seconds"),
    [
        (30, 30.0),
        (1.5, 1.5),
        ("30", 30.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("2h", 7200.0),
        ("1.5h", 5400.0),
        ("0", 0.0),
    ],
)
def test_parse_duration(v: object, seconds: float) -> None:
    assert parse_duration(v) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("v", "reason"),
    [
        ("5 minutes", "invalid duration"),
        (-1, "negative"),
        ("-5s", "negative"),
        ("", "empty"),
        ("5x", "invalid"),
        (True, "not True"),
        (None, "NoneType"),
        (float("nan"), "finite"),
    ],
)
def test_parse_duration_errors(v: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_duration(v)


@given(st.integers(0, 10**6))
def test_duration_round_trip(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(0, 99), st.integers(0, 59), st.integers(0, 59))
def test_duration_units_add_up(h: int, m: int, s: int) -> None:
    assert parse_duration(f"{h}h{m}m{s}s") == h * 3600 + m * 60 + s


# ---------------------------------------------------------------------------------- a minimal valid set


def base() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": API,
            "kind": "VerificationProvider",
            "metadata": {"name": "prom"},
            "spec": {"prometheus": {"address": "http://prom:9090"}},
        },
        {
            "apiVersion": API,
            "kind": "VerificationTemplate",
            "metadata": {"name": "sr"},
            "spec": {
                "args": [{"name": "service"}, {"name": "min", "value": "0.9"}],
                "metrics": [
                    {
                        "name": "success",
                        "interval": "30s",
                        "count": 3,
                        "successCondition": "result[0] >= {{args.min}}",
                        "provider": {"prometheus": {"query": "rate(x{svc='{{args.service}}'}[1m])"}},
                    }
                ],
            },
        },
        {
            "apiVersion": API,
            "kind": "Strategy",
            "metadata": {"name": "canary"},
            "spec": {
                "canary": {
                    "steps": [
                        {"setWeight": 20},
                        {"verification": {"templateNames": ["sr"]}},
                        {"pause": {"duration": "1m"}},
                        {"setWeight": 50},
                    ]
                }
            },
        },
        {
            "apiVersion": API,
            "kind": "RolloutSpec",
            "metadata": {"name": "web"},
            "spec": {"strategy": {"name": "canary", "args": [{"name": "service", "value": "web"}]}},
        },
    ]


def load(docs: list[dict[str, Any]]) -> SpecSet:
    return load_text(yaml.safe_dump_all(docs, sort_keys=False), "specs.yaml")


def problems(docs: list[dict[str, Any]]) -> list[str]:
    with pytest.raises(SpecError) as exc:
        load(docs)
    return [f"{p.document}|{p.kind}/{p.name}|{p.field}|{p.reason}" for p in exc.value.problems]


def assert_problem(docs: list[dict[str, Any]], document: int, field: str, reason: str) -> None:
    found = problems(docs)
    assert any(
        p.startswith(f"{document}|") and p.split("|")[2] == field and reason in p.split("|")[3] for p in found
    ), found


def test_base_is_valid() -> None:
    specs = load(base())
    assert set(specs.rollout_specs) == {"web"}
    assert set(specs.templates) == {"sr"}


# ------------------------------------------------------------------------------------- validation rules


def test_unknown_field() -> None:
    d = base()
    d[2]["spec"]["canary"]["steps"][0]["weight"] = 5
    assert_problem(d, 3, "spec.canary.steps[0].weight", "unknown field")


def test_unknown_top_level_field() -> None:
    d = base()
    d[3]["spec"]["strategyy"] = {}
    assert_problem(d, 4, "spec.strategyy", "unknown field")


def test_weights_must_increase() -> None:
    d = base()
    d[2]["spec"]["canary"]["steps"][3]["setWeight"] = 20
    assert_problem(d, 3, "spec.canary.steps[3].setWeight", "weights must strictly increase: 20 after 20")


@pytest.mark.parametrize("w", [101, -1])
def test_weight_range(w: int) -> None:
    d = base()
    d[2]["spec"]["canary"]["steps"][0]["setWeight"] = w
    assert_problem(d, 3, "spec.canary.steps[0].setWeight", f"weight must be 0..100, not {w}")


def test_step_with_two_actions() -> None:
    d = base()
    d[2]["spec"]["canary"]["steps"][0]["pause"] = {}
    assert_problem(d, 3, "spec.canary.steps[0]", "exactly one action")


def test_step_with_no_action() -> None:
    d = base()
    d[2]["spec"]["canary"]["steps"].append({"name": "nothing"})
    assert_problem(d, 3, "spec.canary.steps[4]", "found 0")


def test_both_conditions_are_allowed() -> None:
    """Argo's rules (tests/core/test_verification.py): failure wins, then success, else inconclusive."""
    d = base()
    d[1]["spec"]["metrics"][0]["failureCondition"] = "result[0] < 0.5"
    (metric,) = compile_plan(load(d)).templates["sr"].metrics
    assert (metric.success_condition, metric.failure_condition) == ("result[0] >= 0.9", "result[0] < 0.5")


def test_no_condition_is_allowed() -> None:
    """Argo's rule: a measurement that returned data without error is successful."""
    d = base()
    del d[1]["spec"]["metrics"][0]["successCondition"]
    (metric,) = compile_plan(load(d)).templates["sr"].metrics
    assert (metric.success_condition, metric.failure_condition) == (None, None)


def test_count_without_interval() -> None:
    d = base()
    del d[1]["spec"]["metrics"][0]["interval"]
    assert_problem(d, 2, "spec.metrics[0].count", "count 3 needs an interval")


@pytest.mark.parametrize("fname", ["failureLimit", "count", "inconclusiveLimit", "consecutiveErrorLimit"])
def test_negative_limits(fname: str) -> None:
    d = base()
    d[1]["spec"]["metrics"][0][fname] = -1
    assert_problem(d, 2, f"spec.metrics[0].{fname}", "must be >= 0, not -1")


def test_negative_duration() -> None:
    d = base()
    d[2]["spec"]["canary"]["steps"][2]["pause"]["duration"] = "-5s"
    assert_problem(d, 3, "spec.canary.steps[2].pause.duration", "negative")


def test_bad_duration() -> None:
    d = base()
    d[1]["spec"]["metrics"][0]["interval"] = "5 minutes"
    assert_problem(d, 2, "spec.metrics[0].interval", "invalid duration '5 minutes'")


def test_unparsable_condition() -> None:
    d = base()
    d[1]["spec"]["metrics"][0]["successCondition"] = "result[0] >= "
    assert_problem(d, 2, "spec.metrics[0].successCondition", "invalid condition")


def test_disallowed_condition() -> None:
    d = base()
    d[1]["spec"]["metrics"][0]["successCondition"] = "__import__('os')"
    assert_problem(d, 2, "spec.metrics[0].successCondition", "only these functions")


def test_unknown_strategy() -> None:
    d = base()
    d[3]["spec"]["strategy"]["name"] = "nope"
    assert_problem(d, 4, "spec.strategy.name", "unknown Strategy 'nope'")


def test_unknown_template_in_step() -> None:
    d = base()
    d[2]["spec"]["canary"]["steps"][1]["verification"]["templateNames"] = ["sr", "missing"]
    assert_problem(
        d, 3, "spec.canary.steps[1].verification.templateNames[1]", "unknown VerificationTemplate 'missing'"
    )


def test_unknown_template_in_background() -> None:
    d = base()
    d[2]["spec"]["canary"]["backgroundVerification"] = {"templateNames": ["bg"]}
    assert_problem(
        d, 3, "spec.canary.backgroundVerification.templateNames[0]", "unknown VerificationTemplate 'bg'"
    )


def test_duplicate_names() -> None:
    d = base()
    d.append(copy.deepcopy(d[2]))
    assert_problem(d, 5, "metadata.name", "duplicate Strategy name 'canary'")


def test_unknown_kind() -> None:
    d = base()
    d.append({"apiVersion": API, "kind": "Canary", "metadata": {"name": "x"}})
    assert_problem(d, 5, "kind", "unknown kind 'Canary'")


def test_unknown_api_version() -> None:
    d = base()
    d[0]["apiVersion"] = "example.com/v1"
    assert_problem(d, 1, "apiVersion", "unknown apiVersion 'example.com/v1'")


def test_ocean_api_versions_accepted() -> None:
    d = base()
    d[0]["apiVersion"] = "spot.io/v1beta1"
    d[1]["apiVersion"] = "ocean.spot.io/v1"
    specs = load(d)
    assert set(specs.strategies) and set(specs.templates), "both documents were loaded"


def test_missing_arg() -> None:
    d = base()
    d[3]["spec"]["strategy"]["args"] = []
    assert_problem(
        d, 4, "spec.strategy.args", "missing value for arg 'service' required by VerificationTemplate 'sr'"
    )


def test_undeclared_arg() -> None:
    d = base()
    d[1]["spec"]["metrics"][0]["successCondition"] = "result[0] >= {{args.nope}}"
    assert_problem(d, 2, "spec.metrics[0]", "does not declare 'nope'")


def test_missing_required_field() -> None:
    d = base()
    del d[3]["spec"]["strategy"]
    assert_problem(d, 4, "spec.strategy", "required field is missing")


def test_bad_failure_action() -> None:
    d = base()
    d[3]["spec"]["failurePolicy"] = {"action": "explode"}
    assert_problem(d, 4, "spec.failurePolicy.action", "must be one of")


def test_canary_scale_exactly_one() -> None:
    d = base()
    d[2]["spec"]["canary"]["steps"].insert(0, {"setCanaryScale": {"weight": 10, "replicas": 2}})
    assert_problem(d, 3, "spec.canary.steps[0].setCanaryScale", "exactly one of weight, replicas")


def test_strategy_needs_canary_xor_rolling() -> None:
    d = base()
    d[2]["spec"]["rolling"] = {"steps": []}
    assert_problem(d, 3, "spec", "exactly one of canary, rolling or blueGreen")


def test_all_problems_of_all_documents_collected() -> None:
    d = base()
    d[1]["spec"]["metrics"][0]["interval"] = "soon"
    d[2]["spec"]["canary"]["steps"][0]["setWeight"] = 120
    d[3]["spec"]["bogus"] = 1
    found = problems(d)
    assert {p.split("|")[0] for p in found} >= {"2", "3", "4"}


def test_error_message_format() -> None:
    d = base()
    d[2]["spec"]["canary"]["steps"][0]["setWeight"] = 120
    with pytest.raises(SpecError) as exc:
        load(d)
    assert (
        "specs.yaml: document 3 (Strategy/canary): spec.canary.steps[0].setWeight: "
        "weight must be 0..100, not 120" in str(exc.value).splitlines()
    )


def test_yaml_syntax_error_names_file_and_line() -> None:
    with pytest.raises(SpecError) as exc:
        parse_documents("a: 1\n---\nkind: [unclosed\n", "bad.yaml")
    text = str(exc.value)
    assert text.startswith("bad.yaml: document")
    assert "YAML syntax error at line" in text


def test_non_mapping_document() -> None:
    with pytest.raises(SpecError, match="a document must be a mapping"):
        load_text("- 1\n- 2\n", "x.yaml")


def test_ignore_kinds() -> None:
    d = base()
    d.append(
        {"apiVersion": "ebbtide.dev/v1alpha1", "kind": "Scenario", "metadata": {"name": "s"}, "spec": {}}
    )
    docs = parse_documents(yaml.safe_dump_all(d), "s.yaml")
    with pytest.raises(SpecError, match="unknown kind 'Scenario'"):
        SpecSet.from_documents(docs)
    SpecSet.from_documents(docs, ignore_kinds={"Scenario"})


# ------------------------------------------------------------------------------------------ compiling


def test_compile_defaults_and_implicit_final_100() -> None:
    plan = compile_plan(load(base()))
    assert [s.kind for s in plan.steps] == ["setWeight", "verification", "pause", "setWeight", "setWeight"]
    assert plan.steps[-1].weight == 100
    assert plan.steps[2].duration == 60.0
    assert plan.failure_action == "rollback"
    assert plan.rollback_mode == "immediate"
    assert plan.progress_deadline == 600.0
    assert plan.revision_history_limit == 10
    assert plan.abort_scale_down_delay == 30.0
    assert plan.scale_down_delay == 30.0
    assert plan.rollback_window == 0
    assert plan.replicas == 1
    metric = plan.templates["sr"].metrics[0]
    assert metric.interval == 30.0
    assert metric.count == 3
    assert (metric.failure_limit, metric.inconclusive_limit, metric.consecutive_error_limit) == (0, 0, 4)


def test_no_implicit_step_when_last_is_100() -> None:
    d = base()
    d[2]["spec"]["canary"]["steps"][3]["setWeight"] = 100
    plan = compile_plan(load(d))
    assert [s.weight for s in plan.steps if s.kind == "setWeight"] == [20, 100]


def test_arg_substitution_and_provider_defaults() -> None:
    plan = compile_plan(load(base()))
    metric = plan.templates["sr"].metrics[0]
    assert metric.success_condition == "result[0] >= 0.9"
    assert metric.provider == {
        "prometheus": {"address": "http://prom:9090", "query": "rate(x{svc='web'}[1m])"}
    }


def test_rollout_args_override_template_defaults() -> None:
    d = base()
    d[3]["spec"]["strategy"]["args"].append({"name": "min", "value": 0.99})
    plan = compile_plan(load(d))
    assert plan.templates["sr"].metrics[0].success_condition == "result[0] >= 0.99"


def test_rolling_prepends_full_weight() -> None:
    d = base()
    d[2]["spec"] = {"rolling": {"steps": [{"verification": {"templateNames": ["sr"]}}, {"pause": {}}]}}
    plan = compile_plan(load(d))
    assert plan.strategy == "rolling"
    assert [s.kind for s in plan.steps] == ["setWeight", "verification", "pause"]
    assert plan.steps[0].weight == 100
    assert plan.steps[2].duration is None


def test_abort_is_rollback_and_replicas_resolve_percentages() -> None:
    d = base()
    d[3]["spec"].update(
        {"failurePolicy": {"action": "abort"}, "replicas": 10, "maxSurge": "25%", "maxUnavailable": "25%"}
    )
    plan = compile_plan(load(d))
    assert plan.failure_action == "rollback"
    assert (plan.replicas, plan.max_surge, plan.max_unavailable) == (10, 3, 2)
    plan = compile_plan(load(d), replicas=3)
    assert (plan.replicas, plan.max_surge, plan.max_unavailable) == (3, 1, 0)


def test_compile_needs_a_name_when_several() -> None:
    d = base()
    second = copy.deepcopy(d[3])
    second["metadata"]["name"] = "api"
    d.append(second)
    specs = load(d)
    with pytest.raises(SpecError, match="name the RolloutSpec"):
        compile_plan(specs)
    assert compile_plan(specs, "api").name == "api"


@pytest.mark.parametrize("name", ["canary.yaml", "rolling.yaml", "new-rollout.yaml", "pause-policy.yaml"])
def test_examples_load(name: str) -> None:
    specs = load_spec_files([EXAMPLES / name])
    assert specs.rollout_specs
    for rollout in specs.rollout_specs:
        plan = compile_plan(specs, rollout)
        weights = [st.weight for st in plan.steps if st.kind == "setWeight"]
        assert weights and weights[-1] == 100, "a compiled plan reaches 100%"


def test_canary_example_plan() -> None:
    plan = compile_plan(load_spec_files([EXAMPLES / "canary.yaml"]))
    assert plan.replicas == 10
    assert [s.weight for s in plan.steps if s.kind == "setWeight"] == [10, 25, 50, 80, 100]
    assert plan.background_templates == ("error-watch",)
    assert "checkout" in plan.templates["checkout-health"].metrics[0].provider["prometheus"]["query"]


def test_new_rollout_and_pause_examples() -> None:
    assert compile_plan(load_spec_files([EXAMPLES / "new-rollout.yaml"])).rollback_mode == "newRollout"
    plan = compile_plan(load_spec_files([EXAMPLES / "pause-policy.yaml"]))
    assert plan.failure_action == "pause"
    assert plan.steps[0].replicas == 1
    assert plan.steps[4].match_traffic_weight


def test_load_spec_files_collects_all_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    with pytest.raises(SpecError) as exc:
        load_spec_files([bad, tmp_path / "missing.yaml"])
    files = {p.file for p in exc.value.problems}
    assert files == {str(bad), str(tmp_path / "missing.yaml")}


def test_document_numbering_is_one_based() -> None:
    docs = parse_documents("a: 1\n---\nb: 2\n", "f.yaml")
    assert [d.index for d in docs] == [1, 2]
    assert isinstance(docs[0], Document)


def test_doc_examples_are_the_real_files() -> None:
    doc = (EXAMPLES.parents[1] / "docs" / "spec-reference.md").read_text()
    for path in sorted(EXAMPLES.glob("*.yaml")):
        assert path.read_text() in doc, path.name
