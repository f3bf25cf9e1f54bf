"""The condition language: the expr-lang forms Argo Rollouts / Ocean CD templates use, refused forms, bounds,
and the contract that bad input only ever raises EvaluationError."""

from __future__ import annotations

import builtins
import contextlib
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from ebbtide.core._exprlang import PREDICATES, parse, render
from ebbtide.core.events import Measurement
from ebbtide.core.expr import FUNCTIONS, MAX_STEPS, EvaluationError, ExpressionError, compile_condition
from ebbtide.core.plan import MetricPlan
from ebbtide.core.spec import SpecError, SpecSet, load_text
from ebbtide.core.verification import classify

NAN, INF = math.nan, math.inf

# shapes real providers return: the web provider's JSON objects, Prometheus instant vectors, scalars
WEB = {"ok": True, "successPercent": 0.97, "data": {"rate": 0.02, "hosts": ["a", "b"]}, "status": "healthy"}
PODS = [{"name": "p1", "ready": True, "errors": 0}, {"name": "p2", "ready": True, "errors": 3}]


@pytest.mark.parametrize(
    ("src", "value", "expected"),
    [
        # Prometheus instant vectors and scalars (Argo's documented examples)
        ("result[0] >= 0.95", [0.96], True),
        ("result[0] >= 0.95", [0.5], False),
        ("result < 0.05 && result >= 0", 0.01, True),
        ("result < 0.05 && result >= 0", -0.01, False),
        ("len(result) > 0", [], False),
        ("len(result) > 0", [1.0], True),
        ("result[-1] > 0.9", [0.1, 0.95], True),
        ("result[1:] == [2, 3]", [1, 2, 3], True),
        ("result[:1] == [1]", [1, 2, 3], True),
        ("0 < result < 1", 0.5, True),
        ("0 < result < 1", 1.5, False),
        # NaN and infinity (a rate over no traffic is NaN)
        ("isNaN(result)", NAN, True),
        ("isNaN(result)", 1.0, False),
        ("isNaN(result[0]) || result[0] >= 0.95", [NAN], True),
        ("result[0] >= 0.95", [NAN], False),
        ("isInf(result)", INF, True),
        ("result / 0 > 1", 5, True),  # expr-lang divides in floating point: +Inf
        ("isNaN(result / 0)", 0, True),
        # the web provider's JSON objects: member access, nested, by string, missing keys are nil
        ("result.ok && result.successPercent >= 0.9", WEB, True),
        ("result.ok && result.successPercent >= 0.99", WEB, False),
        ("result.data.rate < 0.05", WEB, True),
        ('result["status"] == "healthy"', WEB, True),
        ("result.data['hosts'][1] == 'b'", WEB, True),
        ("result.missing == nil", WEB, True),
        ("result.missing != nil", WEB, False),
        ("result.data?.missing?.deeper == nil", WEB, True),
        ("result?.data.rate == nil", None, True),
        ("result?.data[0] == nil", None, True),  # the whole chain is nil ...
        ('"ok" in result', WEB, True),
        ('"nope" in result', WEB, False),
        ("len(result.data.hosts) == 2", WEB, True),
        # predicates with the # placeholder, braces or not, #.field and .field on maps in a list
        ("all(result, # > 0.9)", [0.95, 0.99], True),
        ("all(result, # > 0.9)", [0.95, 0.5], False),
        ("all(result, {# > 0.9})", [0.95, 0.99], True),
        ("all(result, # > 0.9)", [], True),
        ("any(result, # > 0.9)", [0.1, 0.95], True),
        ("any(result, # > 0.9)", [], False),
        ("none(result, # > 0.9)", [0.1, 0.2], True),
        ("one(result, # > 0.9)", [0.1, 0.95], True),
        ("one(result, # > 0.9)", [0.91, 0.95], False),
        ("len(filter(result, # > 1)) == 2", [1, 2, 3], True),
        ("filter(result, # > 1) == [2, 3]", [1, 2, 3], True),
        ("map(result, # * 2) == [2, 4]", [1, 2], True),
        ("count(result, # > 1) == 2", [1, 2, 3], True),
        ("all(result, #.ready)", PODS, True),
        ("all(result, .errors == 0)", PODS, False),
        ("count(result, {.errors > 0}) <= 1", PODS, True),
        ("find(result, .errors > 0).name == 'p2'", PODS, True),
        ("findIndex(result, .errors > 0) == 1", PODS, True),
        ("findIndex(result, .errors > 5) == nil && find(result, .errors > 5) == nil", PODS, True),
        ("1 in result", None, False),  # nothing is in nil
        ("all(result, any(#, # > 1))", [[0, 2], [3]], True),
        ("all(result)", [True, True], True),
        ("any(result)", [False, False], False),
        # ternary, nil coalescing, nil
        ("result > 0 ? result < 1 : false", 0.5, True),
        ("result > 0 ? result < 1 : false", -1, False),
        ("result == nil ? true : result > 1", None, True),
        ("result.ok ?: result.successPercent > 0.5", {"ok": False, "successPercent": 0.9}, True),
        ("result.ok ?: result.successPercent > 0.5", {"ok": False, "successPercent": 0.1}, False),
        ("(result.rate ?? 0) < 0.05", {}, True),
        ("(result.rate ?? 0) < 0.05", {"rate": 0.5}, False),
        ("result == nil", None, True),
        # logic in both spellings, membership, strings
        ("!(result > 1)", 2, False),
        ("not (result > 1)", 0, True),
        ("!result == false", True, True),
        ("result > 0 || result < -1", -2, True),
        ("result > 0 or result < -1", -0.5, False),
        ("result > 0 and result < 1", 0.5, True),
        ("result in [1,2]", 2, True),
        ("result not in [1, 2]", 3, True),
        ("result != 'a&&b'", "a&&b", False),
        ('result == "ok"', "ok", True),
        ('result contains "err"', "all good", False),
        ('result startsWith "OK"', "OK: fine", True),
        ('result endsWith "fine"', "OK: fine", True),
        ('result not contains "err"', "fine", True),
        ("lower(result) == 'ok'", "OK", True),
        ("result + '!' == 'ok!'", "ok", True),
        # functions and arithmetic
        ("abs(result) < 1 && max(result, 0) == result", 0.5, True),
        ("max(result) == 3 && min(result) == 1", [1, 3, 2], True),
        ("sum(result) == 6 && mean(result) == 2", [1, 2, 3], True),
        ("median(result) == 2.5", [4, 1, 3, 2], True),
        ("asFloat(result) > 0.5 && asInt('42') == 42", "0.75", True),
        ("int(result) == 2 && float(2) == 2.0", 2.9, True),
        ("round(result) == 3 && floor(result) == 2 && ceil(result) == 3", 2.5, True),
        ("first(result) == 1 && last(result) == 3 && first([]) == nil", [1, 2, 3], True),
        ("result ^ 2 == 4 && result ** 3 == 8", 2, True),
        ("2 ** 3 ** 2 == 512", 0, True),  # right-associative
        ("7 % 3 == 1 && -7 % 3 == -1", 0, True),  # Go's %: the sign of the dividend
        ("result ^ 100000000 > 1", 10, True),  # floating point, as expr-lang: +Inf, never a huge integer
        ("result <\n  0.5", 0.1, True),
        ("result < 0.5 // a comment", 0.1, True),
        ("result == 1_000 && 0x10 == 16 && .5 == 0.5", 1000, True),
        ("result == 1 && 1 == 1.0", 1, True),
        ("result == true", 1, False),  # expr-lang: different types are not equal
        ("result == 1", True, False),
        ("result == [1, [2, 'x']]", [1, [2, "x"]], True),
    ],
)
def test_conditions(src: str, value: object, expected: bool) -> None:
    assert compile_condition(src).evaluate(value) is expected


@pytest.mark.parametrize(
    ("src", "value", "expected"),
    [
        # expr-lang's precedence table, written out: each pair says the same thing
        ("1 + 2 * 3 == 7", None, True),
        ("-2 ** 2 == -4", None, True),  # unary minus binds looser than **
        ("!result * 0 > 1", 1, "error"),  # `!` binds looser than `*`: !(result * 0), a number
        ("!result == false", True, True),  # ... and tighter than ==
        ("true || false && false", None, True),  # && before ||
        ("(true || false) && false", None, False),
        ("result ? result : 2 == 2", False, True),  # the ternary is lowest: result ? result : (2 == 2)
        ("result > 0 ? true : result < -1 ? true : false", -2, True),  # right-associative
        ("result.a ?? 1 + 1 == 2", {}, "refused"),  # expr-lang: ?? cannot mix with other operators
        ("(result.a ?? 1) + 1 == 2", {}, True),
    ],
)
def test_precedence(src: str, value: object, expected: object) -> None:
    if expected == "refused":
        with pytest.raises(ExpressionError, match="cannot be mixed"):
            compile_condition(src)
    elif expected == "error":
        with pytest.raises(EvaluationError):
            compile_condition(src).evaluate(value)
    else:
        assert compile_condition(src).evaluate(value) is expected


@pytest.mark.parametrize(
    ("src", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("result >", "cannot parse"),
        ("result) or (1", "cannot parse"),
        ("__import__('os')", "only these functions"),
        ("open('f')", "only these functions"),
        ("result.__class__", "'__class__' is not allowed"),
        ("result['__class__'] == 1", "'__class__' is not allowed"),
        ("all(result, #.__class__)", "'__class__' is not allowed"),
        ("result.keys()", "only functions can be called"),
        ("foo > 1", "unknown name 'foo'"),
        ("lambda: 1", "'lambda' is not allowed"),
        ("[r for r in result]", "'for' is not allowed"),
        ("True", "write true"),
        ("result == None", "write nil"),
        ("len == 1", "is a function"),
        ("len(result, 2) > 1", "len() takes 1 argument"),
        ("result is None", "'is' is not allowed"),
        ("~result", "'~'"),
        ("len(result, key=1)", "cannot parse"),
        ("# > 1", "only allowed inside a predicate"),
        ("result | len() > 0", "pipe"),
        ("result in 1..3", "range"),
        ('result matches "^a"', "'matches'"),
        ("{a: 1} == result", "map literals"),
        ("let x = 1; x > result", "'let' is not allowed"),
        # conditions that can never be evaluated (issue 6, section 6)
        ("9**9**9 > result", "always inf"),
        ("result < 10**100000", "always inf"),
        ("result < 10 ^ 400", "always inf"),
        ("result > 1 / 0", "always inf"),
        ("result % 0 == 1 % 0", "can never be evaluated: integer modulo by zero"),
        ("result > 99999999999999999999", "does not fit in 64 bits"),
        ("result > 1e400", "out of range"),
        ("result < 'a' - 1", "can never be evaluated"),
        ("result < 9223372036854775807 + 1", "integer overflow"),
        ("!" * 500 + "result", "nests deeper"),
        ("(" * 200 + "result" + ")" * 200, "nests deeper"),
        (" + ".join(["1"] * 300) + " > result", "nests deeper"),
        ("all(result, " * 150 + "true" + ")" * 150, "nests deeper"),
        # outcomes that are visibly not true/false
        ("result * 2", "gives a number"),
        ("1", "gives the constant 1"),
        ("'yes'", 'gives the constant "yes"'),
        ("map(result, # > 1)", "gives an array"),
        ("len(result)", "gives the value of len()"),
        ("result > 0 ? 1 : 0", "gives the constant 1"),
        ("result.ok ?? 'no'", 'gives the constant "no"'),
    ],
)
def test_compile_errors(src: str, reason: str) -> None:
    with pytest.raises(ExpressionError) as exc:
        compile_condition(src)
    assert reason in str(exc.value)


def test_long_conditions_are_quoted_short() -> None:
    with pytest.raises(ExpressionError) as exc:
        compile_condition("result > 0 && " * 500 + "result >")
    assert len(str(exc.value)) < 200 and "..." in str(exc.value)


@pytest.mark.parametrize(
    ("src", "value"),
    [
        ("result[5] > 1", [1.0]),
        ("result[0] > 1", 1.0),
        ("len(result) > 0", 1.0),
        ("result < 'a'", 1.0),
        ("isNaN(result)", "x"),
        ("isNaN(result)", [1.0]),
        ("result[0]", [1.0]),  # not a boolean
        ("result.rate", {"rate": 0.5}),
        # comparisons on nil that expr-lang rejects
        ("result.missing > 0.5", {}),
        ("result > 1", None),
        ("result.data.rate < 0.1", {}),  # fetching a field of nil
        ("result.a.b == nil", {"a": 1}),
        ("(result?.data)[0] == nil", None),  # ... but not beyond parentheses
        ("result[0] == 1", {"0": 1}),  # maps are indexed by strings
        ("result['a'] == 1", [1]),
        # logic wants booleans
        ("result && true", 1),
        ("!result", None),
        ("result ? true : false", "yes"),
        ("all(result, #)", [1, 2]),
        ("all(result, # > 1)", {"a": 2}),  # not an array
        ("any(result, # > 1)", None),
        # arithmetic and functions on the wrong types
        ("result + 1 > 0", "1"),
        ("result + 1 > 0", True),
        ("result * 2 == 'aa'", "a"),  # no string repetition
        ("result % 2 == 0", 2.5),
        ("result + 1 > 0", 2**63 - 1),  # 64-bit integers
        ("asInt(result) > 0", "1.5"),
        ("asFloat(result) > 0", 1.5),
        ("max(result) > 0", []),
        ("mean(result) > 0", []),
        ("int(result) > 0", INF),
        ("result contains 'a'", ["a"]),
        ("'a' in result", "abc"),
        ("1 in result", {"1": 1}),  # the keys of a map are strings
    ],
)
def test_evaluation_errors(src: str, value: object) -> None:
    cond = compile_condition(src)  # compiles fine
    with pytest.raises(EvaluationError):
        cond.evaluate(value)


@pytest.mark.parametrize("src", ["result >", "9**9**9 > 1", "result.__class__", "", "x", "!" * 500 + "r"])
def test_unvalidated_condition_is_an_evaluation_error(src: str) -> None:
    """A plan built in code never went through spec validation: its bad condition must surface as the
    EvaluationError the engine turns into a measurement error, not as any other exception."""
    with pytest.raises(EvaluationError):
        compile_condition(src).evaluate(1.0)


@pytest.mark.parametrize("src", [None, 1, ["result > 1"], {"a": 1}, b"result > 1"])
def test_non_string_condition_is_an_evaluation_error(src: Any) -> None:
    with pytest.raises(EvaluationError, match="must be a string"):
        compile_condition(src).evaluate(1.0)


def test_compiled_once() -> None:
    assert compile_condition("result > 0.5") is compile_condition("result > 0.5")


def test_never_uses_python_eval(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Python eval/exec was called")

    for name in ("eval", "exec"):
        monkeypatch.setattr(builtins, name, refuse)
    cond = compile_condition("result.ok && all(result.xs, # > 0) && (result.n ?? 1) > 0 ? true : false")
    assert cond.evaluate({"ok": True, "xs": [1, 2]}) is True


# ---------------------------------------------------------------------------------- bounded evaluation


def assert_fails_quickly(src: str, value: object) -> None:
    start = time.perf_counter()
    with pytest.raises(EvaluationError) as exc:
        compile_condition(src).evaluate(value)
    assert time.perf_counter() - start < 5.0, exc.value


def test_power_of_measured_values_is_bounded() -> None:
    # floating point, as expr-lang: overflow is ±Inf in constant time, never a 6-million-digit integer
    # (simpleeval, used before, took seconds for each of these two)
    start = time.perf_counter()
    assert compile_condition("result ** result > 1").evaluate(10**6) is True
    assert compile_condition("result ** 3999999 > 1").evaluate(10) is True
    assert time.perf_counter() - start < 0.5
    assert compile_condition("isInf(result ^ 400)").evaluate(-10) is True
    assert compile_condition("result ^ 401 < 0").evaluate(-10) is True
    assert compile_condition("isNaN(result ^ 0.5)").evaluate(-4) is True


def test_nested_predicates_over_long_vectors_hit_the_step_budget() -> None:
    xs = list(range(200))  # 200 ** 3 = 8 million steps
    assert_fails_quickly("all(result, all(result, all(result, # >= 0)))", xs)
    with pytest.raises(EvaluationError, match=f"more than {MAX_STEPS} steps"):
        compile_condition("any(result, any(result, any(result, # < 0)))").evaluate(xs)
    # a pass over a long range vector (a week of 15-second samples) is well inside the budget
    week = [0.5] * 40_320
    assert compile_condition("all(result, # >= 0 && # < 1)").evaluate(week) is True


def test_integer_arithmetic_stays_in_64_bits() -> None:
    assert_fails_quickly("result * result * result * result > 0", 10**18)
    assert compile_condition("result * 2 > 0").evaluate(2**61) is True


def test_deeply_nested_measured_values_are_an_evaluation_error() -> None:
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    # Python's recursion limit, reported as an evaluation error
    assert_fails_quickly("result == result", deep)


def test_deepest_allowed_nesting_evaluates() -> None:
    assert compile_condition("!" * 98 + "result").evaluate(True) is True
    assert compile_condition("all(result, " * 30 + "true" + ")" * 30).evaluate([[1]]) is True


# ------------------------------------------------------------------------------- through the engine's types


def test_a_web_provider_json_object_reaches_the_condition() -> None:
    # the Measurement event carries JSON objects (nested), and the verification rules judge them
    value = {"ok": True, "successPercent": 0.97, "pods": [{"ready": True}, {"ready": False}]}
    import json

    from ebbtide.core.events import parse_event_json

    wire = {"kind": "measurement", "verification": "v", "metric": "health", "value": value}
    event = parse_event_json(json.dumps(wire))
    assert isinstance(event, Measurement) and event.value == value
    metric = MetricPlan(name="health", success_condition="result.ok && result.successPercent >= 0.9")
    assert classify(metric, event.value)[0] == "successful"
    metric = MetricPlan(name="health", success_condition="all(result.pods, #.ready)")
    assert classify(metric, event.value)[0] == "failed"
    metric = MetricPlan(name="health", success_condition="result.missing > 0.5")
    outcome, text = classify(metric, event.value)
    assert outcome == "error" and text.endswith(": cannot compare nil > float 0.5")


def test_a_bad_condition_in_a_plan_built_in_code_is_a_measurement_error() -> None:
    for condition in ("result >", "9**9**9 > result", "result.__class__"):
        outcome, text = classify(MetricPlan(name="m", success_condition=condition), 1.0)
        assert outcome == "error", condition
        assert text.startswith("cannot evaluate condition on 1.0: ")


# ---------------------------------------------------------------------------------- load time, via specs

SPEC = """
apiVersion: ebbtide.dev/v1alpha1
kind: VerificationProvider
metadata: {name: web}
spec: {web: {url: "http://svc/health"}}
---
apiVersion: ebbtide.dev/v1alpha1
kind: VerificationTemplate
metadata: {name: health}
spec:
  args: [{name: ratio, value: "0.9"}, {name: lo, value: "1"}, {name: hi, value: "1"}]
  metrics:
    - name: health
      successCondition: CONDITION
      provider: {web: {url: "http://svc/health"}}
---
apiVersion: ebbtide.dev/v1alpha1
kind: Strategy
metadata: {name: canary}
spec: {canary: {steps: [{setWeight: 50}, {verification: {templateNames: [health]}}]}}
---
apiVersion: ebbtide.dev/v1alpha1
kind: RolloutSpec
metadata: {name: web}
spec: {strategy: {name: canary}}
"""


def _load(condition: str) -> SpecSet:
    return load_text(SPEC.replace("CONDITION", yaml.safe_dump(condition).strip().removesuffix("...").strip()))


def test_spec_with_a_web_provider_condition_loads() -> None:
    specs = _load("result.ok && result.successPercent >= {{args.ratio}} && all(result.pods, #.ready)")
    assert specs.templates, "the template with the web provider's condition loaded"


def test_unevaluable_condition_is_a_spec_error_at_load_time() -> None:
    with pytest.raises(SpecError) as exc:
        _load("result.rate < 9**9**9")
    (problem,) = exc.value.problems
    assert problem.field == "spec.metrics[0].successCondition"
    assert "'9 ** 9 ** 9' is always inf" in problem.reason


def test_args_are_not_mistaken_for_constants_before_substitution() -> None:
    # with real values 1 and 1 this divides by zero: reported once, after substitution
    with pytest.raises(SpecError) as exc:
        _load("result > 1 / ({{args.hi}} - {{args.lo}})")
    (problem,) = exc.value.problems
    assert "after substituting args" in problem.reason and "always inf" in problem.reason


# ---------------------------------------------------------------------------------- properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["a", "b", "ok", "0"]), inner)
    ),
    max_leaves=12,
)

_ATOMS = ["result", "result.a", "result[0]", "result['ok']", "result?.a", "'a'", "[1, 'a']", "[]", "1", "0.5"]
_ATOMS += ["-2", "nil", "true", "false", "1e308", "9223372036854775807"]
_ELEMS = ["#", ".a", "#.ok", "#[0]"]
_BINARY = ["+", "-", "*", "/", "%", "**", "^", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "and", "or"]
_BINARY += ["in", "not in", "contains", "startsWith", "??"]
_CALLS = sorted(FUNCTIONS)
_PREDS = sorted(PREDICATES)


def _grammar(atoms: list[str], body: st.SearchStrategy[str] | None) -> st.SearchStrategy[str]:
    """Expressions over ``atoms``; predicates take their bodies from ``body`` (None: from these)."""

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        pred_body = body if body is not None else inner
        return st.one_of(
            st.tuples(inner, st.sampled_from(_BINARY), inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
            st.tuples(st.sampled_from(["!", "-", "not "]), inner).map("".join),
            inner.map(lambda e: f"({e})"),
            st.tuples(inner, inner, inner).map(lambda t: f"{t[0]} ? {t[1]} : {t[2]}"),
            st.tuples(inner, st.sampled_from(["[0]", "[-1]", ".a", "?.a", "[1:]", "['b']"])).map("".join),
            st.tuples(st.sampled_from(_CALLS), inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(st.sampled_from(_PREDS), inner, pred_body, st.booleans()).map(
                lambda t: f"{t[0]}({t[1]}, {{{t[2]}}})" if t[3] else f"{t[0]}({t[1]}, {t[2]})"
            ),
        )

    return st.recursive(st.sampled_from(atoms), extend, max_leaves=6)


def _expressions() -> st.SearchStrategy[str]:
    bodies = _grammar(_ATOMS + _ELEMS, None)
    parts = _grammar(_ATOMS, bodies)
    compared = st.tuples(parts, st.sampled_from(["==", "<", ">=", "!=", "in"]), parts).map(" ".join)
    return st.one_of(
        parts, compared, st.tuples(compared, st.sampled_from(["&&", "||"]), compared).map(" ".join)
    )


@settings(max_examples=400)
@given(_expressions(), json_values)
@example("result.a.b > 1", {"a": None})
@example("max(result) > 1", [None, 1])
@example("all(result, # ** # > 1)", [10**6, -(2**70)])
@example("float(result) > 0", 2**1100)
@example("sum(result) > 0", [2**62, 2**62])
def test_any_expression_on_any_value_is_a_bool_or_an_evaluation_error(src: str, value: object) -> None:
    start = time.process_time()  # CPU time: another process loading the machine cannot fail it
    try:
        outcome = compile_condition(src).evaluate(value)
    except ExpressionError:
        event("refused at load time")
    except EvaluationError:
        event("evaluation error")
    else:
        assert isinstance(outcome, bool)
        event("evaluated")
    assert time.process_time() - start < 2.0


@given(_expressions())
@example("(result?.a)[0] == nil")
def test_rendering_a_parsed_condition_gives_the_same_tree(src: str) -> None:
    # error messages quote parts of a condition by rendering them: the text must mean the same
    try:
        tree = parse(src)
    except ExpressionError:
        return
    assert parse(render(tree)) == tree


@given(st.text(alphabet="result.#()[]{}?:!&|<>=+-*/%^,'\"0123456789 anotlc_", max_size=40), json_values)
def test_any_text_compiles_or_is_refused_with_an_expression_error(src: str, value: object) -> None:
    try:
        cond = compile_condition(src)
    except ExpressionError:
        return
    with contextlib.suppress(EvaluationError):
        assert isinstance(cond.evaluate(value), bool)


# An oracle independent of the parser and evaluator: trees of numbers, comparisons and logic, rendered to
# expr-lang text with as few parentheses as expr-lang's precedence table allows (written out here from its
# documentation), and computed by plain Python.
_PREC = {"||": 10, "&&": 15, "+": 30, "-": 30, "*": 60} | dict.fromkeys(
    ["==", "!=", "<", "<=", ">", ">="], 20
)
_PY = {
    "||": lambda a, b: a or b,
    "&&": lambda a, b: a and b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
}
Tree = tuple[Any, ...]


def _numbers() -> st.SearchStrategy[Tree]:
    leaf = st.one_of(st.integers(0, 50).map(lambda n: ("lit", n)), st.just(("result",)))
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(st.just("bin"), st.sampled_from(["+", "-", "*"]), inner, inner),
            st.tuples(st.just("neg"), inner),
        ),
        max_leaves=6,
    )


def _bools() -> st.SearchStrategy[Tree]:
    compare = st.tuples(
        st.just("bin"), st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), _numbers(), _numbers()
    )
    leaf = st.one_of(compare, st.booleans().map(lambda b: ("lit", b)))
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(st.just("bin"), st.sampled_from(["&&", "||"]), inner, inner),
            st.tuples(st.just("not"), inner),
            st.tuples(st.just("if"), inner, inner, inner),
        ),
        max_leaves=8,
    )


def _prec(t: Tree) -> int:
    """How loosely a tree's top binds (expr-lang's table; atoms never need parentheses)."""
    if t[0] == "bin":
        return _PREC[t[1]]
    return {"neg": 90, "not": 50, "if": 0}.get(t[0], 1000)


def _render(t: Tree) -> str:
    kind = t[0]
    if kind == "lit":
        return str(t[1]).lower()
    if kind == "result":
        return "result"
    if kind == "neg":  # `-` takes an operand of precedence above 90 only
        return "-" + _wrap(t[1], _prec(t[1]) <= 90)
    if kind == "not":  # `!` takes an operand of precedence 50 and above
        return "!" + _wrap(t[1], _prec(t[1]) < 50)
    if kind == "if":  # the ternary is lowest and right-associative
        return f"{_wrap(t[1], t[1][0] == 'if')} ? {_render(t[2])} : {_render(t[3])}"
    op, left, right = t[1], t[2], t[3]
    p = _PREC[op]
    # left-associative; comparisons never sit unparenthesised in comparisons (that would be a chain);
    # a unary `!`/`-` on the left of a tighter operator would swallow it
    lwrap = _prec(left) < p or (p == _prec(left) == 20) or (left[0] in ("not", "neg") and _prec(left) <= p)
    rwrap = _prec(right) <= p
    return f"{_wrap(left, lwrap)} {op} {_wrap(right, rwrap)}"


def _wrap(t: Tree, parens: bool) -> str:
    return f"({_render(t)})" if parens else _render(t)


def _compute(t: Tree, result: float) -> Any:
    kind = t[0]
    if kind == "lit":
        return t[1]
    if kind == "result":
        return result
    if kind == "neg":
        return -_compute(t[1], result)
    if kind == "not":
        return not _compute(t[1], result)
    if kind == "if":
        return _compute(t[2], result) if _compute(t[1], result) else _compute(t[3], result)
    return _PY[t[1]](_compute(t[2], result), _compute(t[3], result))


@settings(max_examples=300)
@given(_bools(), st.one_of(st.integers(-100, 100), st.floats(-1e6, 1e6, allow_nan=False)))
@example(("bin", "||", ("lit", True), ("bin", "&&", ("lit", False), ("lit", False))), 0)
@example(("not", ("bin", "==", ("bin", "*", ("neg", ("result",)), ("lit", 2)), ("lit", 4))), -2)
def test_agrees_with_a_python_oracle(tree: Tree, result: float) -> None:
    src = _render(tree)
    assert compile_condition(src).evaluate(result) is _compute(tree, result), src


@given(st.floats(allow_nan=False), st.floats(allow_nan=False, allow_infinity=False))
def test_comparison_matches_python(x: float, threshold: float) -> None:
    assert compile_condition(f"result >= {threshold!r}").evaluate(x) is (x >= threshold)


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=5), st.floats(-2, 2))
def test_predicates_match_python(xs: list[float], t: float) -> None:
    assert compile_condition(f"all(result, # > {t!r})").evaluate(xs) is all(x > t for x in xs)
    assert compile_condition(f"any(result, # > {t!r})").evaluate(xs) is any(x > t for x in xs)
    assert compile_condition(f"none(result, # > {t!r})").evaluate(xs) is (not any(x > t for x in xs))
    assert compile_condition(f"one(result, # > {t!r})").evaluate(xs) is (sum(x > t for x in xs) == 1)
    assert compile_condition(f"count(result, # > {t!r}) == {sum(x > t for x in xs)}").evaluate(xs) is True


@given(st.dictionaries(st.sampled_from(["ok", "rate", "n"]), st.integers(-5, 5) | st.none(), max_size=3))
def test_member_access_matches_python(obj: dict[str, int | None]) -> None:
    for key in ("ok", "rate", "n"):
        want = obj.get(key)
        assert compile_condition(f"result.{key} == nil").evaluate(obj) is (want is None)
        default = 7 if want is None else want
        assert compile_condition(f"(result['{key}'] ?? 7) == {default}").evaluate(obj) is True


# ---------------------------------------------------------------------------------- the reference, pinned

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "spec-reference.md"


def _reference_tables() -> dict[str, list[list[str]]]:
    """The tables of the Conditions section by header row; cells without their backticks and escapes."""
    text = REFERENCE.read_text()
    section = text[text.index("\n## Conditions\n") : text.index("\n## Argo Rollouts YAML")]
    tables: dict[str, list[list[str]]] = {}
    for block in re.findall(r"((?:^\|.*\|\n)+)", section, re.M):
        header, _, *rows = block.strip().split("\n")
        tables[header] = [[_cell(c) for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]
    return tables


def _cell(text: str) -> str:
    text = text.strip().replace("\\|", "|")
    return text[1:-1] if text.startswith("`") and text.endswith("`") else text


TABLES = _reference_tables()
FORMS = TABLES["| form | example | `result` | gives |"]
RUN_ERRORS = TABLES["| condition | `result` | error |"]
LOAD_ERRORS = TABLES["| condition | why |"]


@pytest.mark.parametrize(("form", "src", "value", "gives"), FORMS, ids=[row[1] for row in FORMS])
def test_reference_forms_give_what_the_reference_says(form: str, src: str, value: str, gives: str) -> None:
    assert gives in ("true", "false"), form
    assert compile_condition(src).evaluate(json.loads(value)) is (gives == "true")


@pytest.mark.parametrize(("src", "value", "error"), RUN_ERRORS, ids=[row[0] for row in RUN_ERRORS])
def test_reference_run_time_errors_are_real(src: str, value: str, error: str) -> None:
    with pytest.raises(EvaluationError) as exc:
        compile_condition(src).evaluate(json.loads(value))
    assert not isinstance(exc.value, ExpressionError)
    assert str(exc.value) == error


@pytest.mark.parametrize(("src", "why"), LOAD_ERRORS, ids=[row[0] for row in LOAD_ERRORS])
def test_reference_load_time_errors_are_real(src: str, why: str) -> None:
    with pytest.raises(ExpressionError) as exc:
        compile_condition(src)
    assert str(exc.value) == why


def test_reference_covers_every_function() -> None:
    shown = " ".join(row[1] for row in FORMS)
    for name in [*FUNCTIONS, *PREDICATES]:
        assert f"{name}(" in shown, name
