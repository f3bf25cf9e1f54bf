"""`{{args.x}}` in a metric's numbers: `interval`, `count`, `initialDelay`, `failureLimit`,
`inconclusiveLimit` and `consecutiveErrorLimit` (Argo's IntOrString and duration fields), in both dialects.

The oracle is the literal spec: a spec written with args must compile to the very plan of the same spec with
the values written in place (the literal path is pinned by test_spec_compile.py and the golden decisions).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from ebbtide.core.plan import Plan
from ebbtide.core.spec import SpecError, compile_plan, load_text

#: the six fields and a literal value of each (a whole-field arg for each in the tests below)
LITERALS: dict[str, Any] = {
    "interval": "30s",
    "count": 4,
    "initialDelay": "1m",
    "failureLimit": 2,
    "inconclusiveLimit": 1,
    "consecutiveErrorLimit": 3,
}

DURATIONS = frozenset({"interval", "initialDelay"})


def ocean_docs(metric: dict[str, Any], template_args: list[Any], rollout_args: list[Any]) -> list[Any]:
    return [
        {
            "apiVersion": "ebbtide.dev/v1alpha1",
            "kind": "VerificationTemplate",
            "metadata": {"name": "checks"},
            "spec": {
                "args": template_args,
                "metrics": [
                    {"name": "errors", "successCondition": "result < 1", **metric,
                     "provider": {"prometheus": {"query": "up"}}},
                ],
            },
        },
        {
            "apiVersion": "ebbtide.dev/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": "steps"},
            "spec": {
                "canary": {
                    "steps": [{"setWeight": 20}, {"verification": {"templateNames": ["checks"]}}],
                    "backgroundVerification": {"templateNames": ["checks"]},
                }
            },
        },
        {
            "apiVersion": "ebbtide.dev/v1alpha1",
            "kind": "RolloutSpec",
            "metadata": {"name": "orders"},
            "spec": {"strategy": {"name": "steps", "args": rollout_args}, "replicas": 4},
        },
    ]  # fmt: skip


def argo_docs(metric: dict[str, Any], template_args: list[Any], step_args: list[Any]) -> list[Any]:
    analysis: dict[str, Any] = {"templates": [{"templateName": "checks"}]}
    if step_args:
        analysis["args"] = step_args
    return [
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": "checks"},
            "spec": {
                "args": template_args,
                "metrics": [
                    {"name": "errors", "successCondition": "result < 1", **metric,
                     "provider": {"prometheus": {"address": "http://prom:9090", "query": "up"}}},
                ],
            },
        },
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "orders"},
            "spec": {
                "replicas": 4,
                "strategy": {"canary": {"steps": [{"setWeight": 20}, {"analysis": analysis}]}},
            },
        },
    ]  # fmt: skip


def plan_of(docs: list[Any]) -> Plan:
    return compile_plan(load_text(yaml.safe_dump_all(docs), "spec.yaml"))


def problems_of(docs: list[Any]) -> list[tuple[int, str, str]]:
    with pytest.raises(SpecError) as info:
        load_text(yaml.safe_dump_all(docs), "spec.yaml")
    return [(p.document, p.field, p.reason) for p in info.value.problems]


def as_args(values: dict[str, Any]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Each field written as a whole-field arg, and the template args giving the values as defaults."""
    metric = {field: f"{{{{args.{field}}}}}" for field in values}
    return metric, [{"name": field, "value": str(v)} for field, v in values.items()]


# -- the same plan as the literal spec --------------------------------------------------------------------


def test_an_ocean_template_with_args_in_every_number_field_compiles_to_the_literal_plan() -> None:
    metric, defaults = as_args(LITERALS)
    assert plan_of(ocean_docs(metric, defaults, [])) == plan_of(ocean_docs(LITERALS, [], []))


def test_an_argo_template_with_args_in_every_number_field_compiles_to_the_literal_plan() -> None:
    metric, defaults = as_args(LITERALS)
    assert plan_of(argo_docs(metric, defaults, [])) == plan_of(argo_docs(LITERALS, [], []))


def test_a_string_holding_args_is_substituted_in_place() -> None:
    metric = {"interval": "{{args.every}}s", "initialDelay": "1m{{args.more}}s", "count": "1{{args.tens}}"}
    args = [{"name": "every", "value": "45"}, {"name": "more", "value": "30"}, {"name": "tens", "value": 2}]
    literal = {"interval": "45s", "initialDelay": "1m30s", "count": 12}
    assert plan_of(ocean_docs(metric, args, [])) == plan_of(ocean_docs(literal, [], []))
    (tpl,) = plan_of(ocean_docs(metric, args, [])).templates.values()
    assert (tpl.metrics[0].interval, tpl.metrics[0].initial_delay, tpl.metrics[0].count) == (45.0, 90.0, 12)


def test_the_rollout_step_args_override_the_template_defaults() -> None:
    metric, defaults = as_args(LITERALS)
    given_values = {**LITERALS, "count": 7, "failureLimit": 0, "interval": "2m"}
    _, step_args = as_args(given_values)
    assert plan_of(argo_docs(metric, defaults, step_args)) == plan_of(argo_docs(given_values, [], []))
    (tpl,) = plan_of(argo_docs(metric, defaults, step_args)).templates.values()
    assert (tpl.metrics[0].count, tpl.metrics[0].failure_limit, tpl.metrics[0].interval) == (7, 0, 120.0)


def test_the_rolloutspec_strategy_args_override_the_template_defaults() -> None:
    metric, defaults = as_args(LITERALS)
    given_values = {**LITERALS, "consecutiveErrorLimit": 9, "initialDelay": 5}
    _, rollout_args = as_args(given_values)
    assert plan_of(ocean_docs(metric, defaults, rollout_args)) == plan_of(ocean_docs(given_values, [], []))


def test_an_arg_without_a_default_takes_the_rollouts_value() -> None:
    metric = {"interval": "1m", "count": "{{args.runs}}"}
    docs = argo_docs(metric, [{"name": "runs"}], [{"name": "runs", "value": "5"}])
    assert plan_of(docs) == plan_of(argo_docs({"interval": "1m", "count": 5}, [], []))


def test_a_count_of_zero_from_args_is_not_set_as_a_literal_zero_is() -> None:
    metric, defaults = as_args({"count": 0})
    assert plan_of(ocean_docs(metric, defaults, [])) == plan_of(ocean_docs({"count": 0}, [], []))


@st.composite
def literal_metrics(draw: st.DrawFn) -> dict[str, Any]:
    """Valid literal values of a subset of the six fields (count > 1 only with an interval)."""
    seconds = st.integers(1, 3600)
    duration = st.one_of(seconds, seconds.map(lambda s: f"{s}s"), st.integers(1, 120).map(lambda m: f"{m}m"),
                         st.sampled_from(["1h30m", "500ms", "1.5s"]))  # fmt: skip
    fields: dict[str, Any] = {
        "interval": duration,
        "initialDelay": st.one_of(st.just(0), duration),
        "count": st.integers(0, 50),
        "failureLimit": st.integers(0, 20),
        "inconclusiveLimit": st.integers(0, 20),
        "consecutiveErrorLimit": st.integers(0, 20),
    }
    chosen = draw(st.sets(st.sampled_from(sorted(fields)), min_size=1))
    out = {name: draw(fields[name]) for name in sorted(chosen)}
    if out.get("count", 0) > 1 and "interval" not in out:
        out["interval"] = draw(duration)
    return out


@given(literal_metrics(), st.booleans(), st.booleans())
def test_any_valid_literal_through_an_arg_gives_the_literal_plan(
    literal: dict[str, Any], argo: bool, from_rollout: bool
) -> None:
    metric, defaults = as_args(literal)
    docs = argo_docs if argo else ocean_docs
    if from_rollout:  # the value comes from the rollout; the template's default is a different valid value
        rollout_args = copy.deepcopy(defaults)
        defaults = [{"name": a["name"], "value": "1s" if a["name"] in DURATIONS else "1"} for a in defaults]
        assert plan_of(docs(metric, defaults, rollout_args)) == plan_of(docs(literal, [], []))
    else:
        assert plan_of(docs(metric, defaults, [])) == plan_of(docs(literal, [], []))


# -- bad values: one located problem each -------------------------------------------------------------------


NOT_AN_INTEGER = "after substituting args, not a non-negative integer"


@pytest.mark.parametrize("argo", [False, True])
@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("count", "three", NOT_AN_INTEGER),
        ("failureLimit", "-1", NOT_AN_INTEGER),
        ("inconclusiveLimit", "1.5", NOT_AN_INTEGER),
        ("consecutiveErrorLimit", "", NOT_AN_INTEGER),
        ("count", "\u0663", NOT_AN_INTEGER),  # a digit, but not 0-9 (Arabic-Indic three)
        ("interval", "soon", "after substituting args, not a duration: invalid duration 'soon'"),
        ("initialDelay", "-5s", "after substituting args, not a duration: duration '-5s' is negative"),
        ("interval", "0s", "after substituting args: the interval must be greater than 0"),
    ],
)
def test_a_bad_value_is_one_problem_at_the_field(argo: bool, field: str, value: str, reason: str) -> None:
    metric = {"interval": "1m", field: "{{args.x}}"}
    docs = (argo_docs if argo else ocean_docs)(metric, [{"name": "x", "value": value}], [])
    ((document, at, why),) = problems_of(docs)
    assert (document, at) == (1, f"spec.metrics[0].{field}")
    assert why.startswith(f'"{{{{args.x}}}}" is "{value}" {reason}'), why


def test_a_bad_value_given_by_the_rollout_is_reported_at_the_templates_field() -> None:
    docs = argo_docs(
        {"count": "{{args.runs}}"}, [{"name": "runs", "value": "1"}], [{"name": "runs", "value": "x"}]
    )
    assert problems_of(docs) == [
        (
            1,
            "spec.metrics[0].count",
            '"{{args.runs}}" is "x" after substituting args, not a non-negative integer '
            "(arg 'runs' given by Rollout 'orders')",
        )
    ]


def test_a_count_from_args_needs_an_interval_as_a_literal_does() -> None:
    docs = ocean_docs({"count": "{{args.runs}}"}, [{"name": "runs", "value": "3"}], [])
    assert problems_of(docs) == [(1, "spec.metrics[0].count", "count 3 (from args) needs an interval")]
    literal = problems_of(ocean_docs({"count": 3}, [], []))
    assert literal == [(1, "spec.metrics[0].count", "count 3 needs an interval")]


def test_an_undeclared_arg_is_the_existing_problem() -> None:
    for docs in (argo_docs, ocean_docs):
        found = problems_of(docs({"failureLimit": "{{args.limit}}"}, [], []))
        assert found == [(1, "spec.metrics[0]", "uses {{args.limit}} but spec.args does not declare 'limit'")]


@pytest.mark.parametrize(
    ("value_from", "source"),
    [
        ({"secretKeyRef": {"name": "s", "key": "k"}}, "secretKeyRef"),
        ({"podTemplateHashValue": "Latest"}, "podTemplateHashValue"),
    ],
)
def test_an_arg_known_only_at_run_time_is_refused(value_from: dict[str, Any], source: str) -> None:
    docs = argo_docs(
        {"consecutiveErrorLimit": "{{args.limit}}"}, [{"name": "limit", "valueFrom": value_from}], []
    )
    ((document, at, why),) = problems_of(docs)
    assert (document, at) == (1, "spec.metrics[0].consecutiveErrorLimit")
    assert f"uses arg 'limit', whose value ({source}) is known only at run time" in why


def test_a_run_time_arg_given_by_the_rollout_names_the_rollout() -> None:
    secret = {"secretKeyRef": {"name": "s", "key": "k"}}
    docs = ocean_docs({"failureLimit": "{{args.limit}}"}, [{"name": "limit", "value": "1"}],
                      [{"name": "limit", "valueFrom": secret}])  # fmt: skip
    ((_, at, why),) = problems_of(docs)
    assert at == "spec.metrics[0].failureLimit"
    assert "(secretKeyRef) is known only at run time" in why and why.endswith(
        "given by RolloutSpec 'orders')"
    )


def test_a_bad_value_of_a_template_two_rollouts_use_is_one_problem() -> None:
    docs = ocean_docs({"count": "{{args.runs}}", "interval": "1m"}, [{"name": "runs", "value": "-2"}], [])
    second = copy.deepcopy(docs[2])
    second["metadata"]["name"] = "payments"
    assert len(problems_of([*docs, second])) == 1


def test_an_arg_from_a_field_ref_is_known_when_compiling() -> None:
    label = {"fieldRef": {"fieldPath": "metadata.labels['limit']"}}
    docs = ocean_docs({"failureLimit": "{{args.limit}}"}, [{"name": "limit", "valueFrom": label}], [])
    docs[2]["metadata"]["labels"] = {"limit": "6"}
    literal = ocean_docs({"failureLimit": 6}, [], [])
    literal[2]["metadata"]["labels"] = {"limit": "6"}
    assert plan_of(docs) == plan_of(literal)


@pytest.mark.parametrize("docs", [ocean_docs, argo_docs])
def test_an_integer_written_as_a_string_of_digits_is_that_integer(docs: Any) -> None:
    """Argo's IntOrString takes ``count: "3"`` as 3 (as its IntValue reads a string)."""
    fields = ("count", "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit")
    quoted = {**LITERALS, **{f: f" {LITERALS[f]} " if f == "count" else str(LITERALS[f]) for f in fields}}
    assert plan_of(docs(quoted, [], [])) == plan_of(docs(LITERALS, [], []))


def test_literals_are_checked_as_before() -> None:
    # a string without args is a number only when it is one (digits)
    (found,) = problems_of(ocean_docs({"interval": "1m", "count": "three"}, [], []))
    assert found == (1, "spec.metrics[0].count", "Input should be a valid integer")
    (found,) = problems_of(ocean_docs({"interval": "1m", "count": "-3"}, [], []))
    assert found[:2] == (1, "spec.metrics[0].count")
    (found,) = problems_of(ocean_docs({"failureLimit": -1}, [], []))
    assert found == (1, "spec.metrics[0].failureLimit", "must be >= 0, not -1")


def test_the_spec_references_example_problem_is_what_validate_reports() -> None:
    docs = argo_docs({"interval": "1m", "count": "{{args.runs}}"}, [{"name": "runs", "value": "three"}], [])
    ((_, at, why),) = problems_of(docs)
    reference = (Path(__file__).resolve().parents[2] / "docs" / "spec-reference.md").read_text()
    assert f"`{at}: {why}`" in " ".join(reference.split())
