"""Conditions compiled to closures agree with the reference tree walk: same value, or same error (type and
message), on generated syntax trees of every form and generated measured values, under the real step budget
and under tiny ones (which push the compiled program onto its exact path)."""

from __future__ import annotations

import ast
import builtins
import copy
import math
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ebbtide.core import _exprlang, _exprops, _exprref
from ebbtide.core._exprcompile import Program, compile_tree, evaluate_exact
from ebbtide.core._exprlang import (
    PREDICATES,
    Binary,
    Call,
    Chain,
    Cond,
    Elem,
    EvaluationError,
    ExpressionError,
    ListLit,
    Lit,
    Member,
    Node,
    Predicate,
    Result,
    Slice,
    Unary,
    parse,
    render,
)
from ebbtide.core._exprref import evaluate_reference
from ebbtide.core.expr import MAX_STEPS, compile_condition
from ebbtide.core.plan import MetricPlan
from ebbtide.core.verification import classify

# ---------------------------------------------------------------------------------- measured values

_NEAR_INT64 = [2**63 - 1, 2**63 - 2, -(2**63), -(2**63) + 1, 2**62, 2**63, -(2**63) - 1, 2**32]
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(-(2**64), 2**64),
    st.sampled_from(_NEAR_INT64),
    st.floats(),  # NaN and ±Inf included
    st.sampled_from([math.nan, math.inf, -math.inf, 0.5, -0.0, 1e308]),
    st.text(alphabet="aokA0 .5-", max_size=4),
    st.sampled_from(["a", "ok", "0", "1.5", " 42 ", "up"]),
)
VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "ok", "0"]), inner, max_size=3)
    ),
    max_leaves=10,
)

# ---------------------------------------------------------------------------------- syntax trees

_LITERALS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 5),
    st.sampled_from(_NEAR_INT64[:5]),
    st.sampled_from([0.5, 1e308, 0.0, 2.5]),
    st.sampled_from(["a", "ok", "0", "", "1.5", "up"]),
).map(Lit)
_KEYS = st.sampled_from(["a", "b", "ok", "0", 0, 1, -1, 5, True]).map(Lit)
_BINARY = ["||", "&&", "==", "!=", "<", ">", "<=", ">=", "in", "contains", "startsWith", "endsWith"]
_BINARY += ["+", "-", "*", "/", "%", "**", "??"]
_ONE_ARG = ["len", "abs", "sum", "mean", "median", "ceil", "floor", "round", "int", "float", "first"]
_ONE_ARG += ["last", "lower", "upper", "isNaN", "isInf", "asInt", "asFloat"]
assert sorted([*_ONE_ARG, "max", "min"]) == sorted(_exprlang.FUNCTIONS)  # every function is drawn


def _trees(in_predicate: bool) -> st.SearchStrategy[Node]:
    """Trees of every form the parser builds; ``#`` only inside a predicate body, ``?.`` only in a chain."""
    leaves = st.one_of(_LITERALS, st.just(Result()), *([st.just(Elem())] if in_predicate else []))

    def extend(inner: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        key = _KEYS | inner
        maybe = st.none() | inner
        return st.one_of(
            st.builds(Binary, st.sampled_from(_BINARY), inner, inner),
            st.builds(Unary, st.sampled_from(["!", "-", "+"]), inner),
            st.builds(Cond, inner, inner, inner),
            st.builds(Member, inner, key),
            st.builds(lambda o, k: Chain(Member(o, k, True)), inner, key),
            st.builds(lambda o, k1, k2: Chain(Member(Member(o, k1, True), k2)), inner, key, key),
            st.builds(Slice, inner, maybe, maybe),
            st.builds(ListLit, st.lists(inner, max_size=3).map(tuple)),
            st.builds(Call, st.sampled_from(_ONE_ARG), inner.map(lambda n: (n,))),
            st.builds(
                Call, st.sampled_from(["max", "min"]), st.lists(inner, min_size=1, max_size=3).map(tuple)
            ),
            st.builds(Predicate, st.sampled_from(sorted(PREDICATES)), inner, _BODIES),
            st.builds(Predicate, st.sampled_from(["all", "any", "count"]), inner, st.just(Elem())),
        )

    return st.recursive(leaves, extend, max_leaves=8 if in_predicate else 12)


_BODIES: st.SearchStrategy[Node] = st.deferred(lambda: _trees(in_predicate=True))
#: any tree: most of them fail on most values, which pins the errors
ANY_TREES = _trees(in_predicate=False)


_NUMBER_LITS = st.one_of(st.integers(-3, 5), st.sampled_from([0.5, 0.95, 2.5, 2**63 - 1, 2**62])).map(Lit)


# Typed trees over a vector of numbers (a Prometheus range vector): most of them evaluate to a value, which
# pins the values. ``#`` is a number inside predicate bodies, which hold no further predicate.
def _numbers(elem: bool) -> st.SearchStrategy[Node]:
    leaves = st.one_of(
        _NUMBER_LITS,
        st.builds(Member, st.just(Result()), st.integers(-2, 2).map(Lit)),
        st.builds(
            Call, st.sampled_from(["len", "sum", "max", "min", "mean", "median"]), st.just((Result(),))
        ),
        *([st.just(Elem())] if elem else []),
    )

    def extend(inner: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        return st.one_of(
            st.builds(Binary, st.sampled_from(["+", "-", "*", "/", "%", "**"]), inner, inner),
            st.builds(Unary, st.sampled_from(["-", "+"]), inner),
            st.builds(Cond, _BOOLS_E if elem else _BOOLS, inner, inner),
            st.builds(
                Call, st.sampled_from(["abs", "ceil", "floor", "round", "int", "float"]), inner.map(_one)
            ),
            st.builds(
                Call, st.sampled_from(["max", "min"]), st.lists(inner, min_size=1, max_size=3).map(tuple)
            ),
            st.builds(lambda i, d: Binary("??", Member(Result(), Lit(i)), d), st.integers(-2, 2), inner),
            st.builds(Member, _LISTS, inner),
            *_predicates_unless(
                elem, st.builds(Predicate, st.sampled_from(["count", "findIndex"]), _LISTS, _BOOLS_E)
            ),
        )

    return st.recursive(leaves, extend, max_leaves=5)


def _bools(elem: bool) -> st.SearchStrategy[Node]:
    numbers = _NUMBERS_E if elem else _NUMBERS
    leaves = st.one_of(
        st.builds(Binary, st.sampled_from([">=", "<", ">", "<="]), numbers, _NUMBER_LITS),  # a threshold
        st.builds(Binary, st.sampled_from(["==", "!=", "<", ">", "<=", ">="]), numbers, numbers),
        st.builds(Call, st.sampled_from(["isNaN", "isInf"]), numbers.map(_one)),
        st.booleans().map(Lit),
    )

    def extend(inner: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        return st.one_of(
            st.builds(Binary, st.sampled_from(["&&", "||", "==", "!="]), inner, inner),
            st.builds(Unary, st.just("!"), inner),
            st.builds(Cond, inner, inner, inner),
            st.builds(Binary, st.just("in"), numbers, _LISTS),
            *_predicates_unless(
                elem,
                st.builds(Predicate, st.sampled_from(["all", "any", "none", "one"]), _LISTS, _BOOLS_E),
                st.builds(
                    lambda ns, b: Predicate("all", ListLit(ns), b),
                    st.lists(numbers, max_size=3).map(tuple),
                    _BOOLS_E,
                ),
            ),
        )

    return st.recursive(leaves, extend, max_leaves=5)


def _predicates_unless(elem: bool, *forms: st.SearchStrategy[Node]) -> tuple[st.SearchStrategy[Node], ...]:
    """Predicates, except in a predicate body (typed trees nest no predicates: the vectors are long)."""
    return () if elem else forms


def _one(node: Node) -> tuple[Node, ...]:
    return (node,)


_NUMBERS = st.deferred(lambda: _numbers(elem=False))
_NUMBERS_E = st.deferred(lambda: _numbers(elem=True))
_BOOLS = st.deferred(lambda: _bools(elem=False))
_BOOLS_E = st.deferred(lambda: _bools(elem=True))
_LISTS: st.SearchStrategy[Node] = st.one_of(
    st.just(Result()),
    st.builds(Slice, st.just(Result()), st.none() | st.integers(-2, 2).map(Lit), st.none()),
    st.builds(Predicate, st.just("filter"), st.just(Result()), _BOOLS_E),
    st.builds(Predicate, st.just("map"), st.just(Result()), _NUMBERS_E),
)
_SAMPLES = st.one_of(
    st.integers(-3, 3), st.floats(-10, 10), st.sampled_from([math.nan, math.inf, *_NEAR_INT64[:5]])
)
_ODD_SAMPLES = st.sampled_from([True, None, "0.5", [1]])
#: vectors of at least 3 samples (`result[-2]` to `result[2]` exist), some of them not numbers
VECTORS = st.lists(_SAMPLES | _ODD_SAMPLES, min_size=3, max_size=6)
TYPED_TREES = st.one_of(_BOOLS, _NUMBERS, _LISTS)

# The shapes users write most, which the compiler specialises (a threshold on a sample, a field, the length or
# each element), on short vectors of samples that are not always numbers, with indexes around their ends.
_SAMPLE = st.one_of(
    st.builds(Member, st.just(Result()), st.integers(-4, 4).map(Lit)),
    st.builds(Member, st.just(Result()), st.sampled_from(["a", "ok", "0"]).map(Lit)),
    st.just(Result()),
    st.just(Call("len", (Result(),))),
)
_THRESHOLD = st.builds(Binary, st.sampled_from(["<", ">", "<=", ">=", "==", "!="]), _SAMPLE, _NUMBER_LITS)
_EACH = st.builds(
    Predicate,
    st.sampled_from(sorted(PREDICATES)),
    st.just(Result()),
    st.builds(Binary, st.sampled_from(["<", ">=", "=="]), st.just(Elem()), _NUMBER_LITS) | st.just(Elem()),
)
SHAPES = st.recursive(
    _THRESHOLD | _EACH,
    lambda inner: (
        st.builds(Binary, st.sampled_from(["&&", "||"]), inner, inner) | st.builds(Unary, st.just("!"), inner)
    ),
    max_leaves=4,
)
SHORT_VECTORS = st.lists(_SAMPLES | _ODD_SAMPLES | st.booleans(), max_size=4)

#: (tree, measured value): any tree on any value, a typed tree on a vector, a common shape on a short one
CASES = st.one_of(
    st.tuples(ANY_TREES, VALUES),
    st.tuples(TYPED_TREES, VECTORS | VALUES),
    st.tuples(SHAPES, SHORT_VECTORS | VALUES),
)

# ---------------------------------------------------------------------------------- agreement


def _outcome(evaluate: Any, node: Node, value: Any) -> tuple[str, Any]:
    try:
        return "value", evaluate(node, value)
    except EvaluationError as exc:
        return "error", (type(exc), str(exc))


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types (NaN equals NaN, -0.0 is not 0.0, 1 is not 1.0 nor true)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def assert_agrees(node: Node, value: Any) -> None:
    try:
        before = copy.deepcopy(value)
    except RecursionError:  # a value nested thousands deep: compare it with itself
        before = value
    want = _outcome(evaluate_reference, node, value)
    for name, got in (
        ("compiled", _outcome(lambda n, v: compile_tree(n).run(v), node, value)),
        ("exact", _outcome(evaluate_exact, node, value)),
    ):
        assert got[0] == want[0] and _same(got[1], want[1]), (name, render(node), value, got, want)
    assert before is value or _same(value, before), "an evaluation changed the measured value"


def assert_runs_alike(node: Node, value: Any) -> None:
    program = compile_tree(node)  # built once, run repeatedly: no state carried between runs
    first, second = (_outcome(lambda n, v: program.run(v), node, value) for _ in range(2))
    assert first[0] == second[0] and _same(first[1], second[1])


@settings(max_examples=400)
@given(CASES)
@example((Predicate("all", Result(), Binary(">", Elem(), Lit(0.5))), [0.9, math.nan]))
@example((Binary("+", Result(), Lit(1)), 2**63 - 1))
@example((Binary("*", Lit("a"), Lit(3)), None))  # no string repetition
@example((Binary("**", Result(), Result()), 10**6))
@example((Chain(Member(Member(Result(), Lit("a"), True), Lit("b"))), {"a": None}))
@example((Member(Result(), Lit(-1)), [1, 2]))
@example((Binary("==", Result(), Lit(1)), True))
@example((Binary("<", Result(), Unary("-", Lit(1))), -2))
@example((Predicate("one", Result(), Binary(">", Elem(), Lit(0))), [1, "x"]))  # `one` reads every element
def test_compiled_agrees_with_the_reference(case: tuple[Node, Any]) -> None:
    assert_agrees(*case)


@settings(max_examples=200)
@given(CASES, st.integers(1, 80))
@example(
    (Predicate("any", Result(), Predicate("all", Result(), Binary(">=", Elem(), Lit(0)))), [1, 2, 3, 4]), 20
)
@example((Predicate("all", Result(), Binary(">=", Elem(), Lit(0))), ["x", 1, 2, 3, 4, 5, 6, 7, 8]), 12)
@example((ListLit((Result(),) * 6), 1), 5)  # a tree larger than the budget starts in exact mode
def test_compiled_agrees_with_the_reference_under_small_budgets(case: tuple[Node, Any], budget: int) -> None:
    # a small budget makes the compiled program's up-front charges overflow often: it must then fall back
    # to its exact mode and still give the walk's answer (its budget error at the walk's very step, or an
    # error the walk meets before running out)
    with mock.patch.object(_exprops, "MAX_STEPS", budget):
        assert_agrees(*case)


@given(CASES)
def test_a_program_runs_the_same_every_time(case: tuple[Node, Any]) -> None:
    assert_runs_alike(*case)


@settings(max_examples=200)
@given(CASES)
def test_conditions_from_text_agree_with_the_reference(case: tuple[Node, Any]) -> None:
    # through the public face: the rendered text compiles (or is refused at load time) and evaluates to the
    # reference's true/false or its error
    node, value = case
    src = render(node)
    try:
        condition = compile_condition(src)
    except ExpressionError:
        return
    want = _outcome(evaluate_reference, parse(src), value)
    try:
        got: tuple[str, Any] = ("value", condition.evaluate(value))
    except EvaluationError as exc:
        got = ("error", (type(exc), str(exc)))
    if want[0] == "value" and not isinstance(want[1], bool):
        assert got[0] == "error" and got[1][1].startswith("condition gave "), (src, value, got)
    else:
        assert got[0] == want[0] and _same(got[1], want[1]), (src, value, got, want)


# ---------------------------------------------------------------------------- every operation, every kind

#: one value of every kind a provider returns, and the edges of each
KINDS: list[Any] = [None, True, False, 0, 1, -1, 3, 2**63 - 1, -(2**63), 0.5, -0.0, math.nan, math.inf]
KINDS += [
    -math.inf,
    "",
    "a",
    "ok",
    "1.5",
    " 42 ",
    [],
    [1],
    [0.5, "x"],
    [True, False],
    [[1]],
    {},
    {"a": 1, "ok": True},
]


def _one_operand_forms(x: Node) -> list[Node]:
    keys = [Lit(k) for k in ("a", "ok", "0", 0, 1, -1, 2, True, None, 0.5)]
    return [
        *(Call(fn, (x,)) for fn in _ONE_ARG),
        *(Call(fn, args) for fn in ("max", "min") for args in [(x,), (x, Lit(1)), (Lit(0.5), x)]),
        *(Unary(op, x) for op in ("!", "-", "+")),
        *(Member(x, key) for key in keys),
        *(Chain(Member(x, key, True)) for key in keys),
        *(Slice(x, lo, hi) for lo, hi in [(Lit(1), None), (None, Lit(-1)), (Lit(0.5), None), (None, None)]),
        Cond(x, Lit(1), Lit(2)),
        *(Predicate(fn, x, Elem()) for fn in sorted(PREDICATES)),
        *(Predicate(fn, x, Binary(">", Elem(), Lit(0))) for fn in sorted(PREDICATES)),
    ]


@pytest.mark.parametrize("kind", KINDS, ids=repr)
def test_every_one_operand_form_on_every_kind_of_value(kind: Any) -> None:
    for node in _one_operand_forms(Result()):
        assert_agrees(node, kind)
    for node in _one_operand_forms(Elem()):  # the same forms on each element, inside a predicate
        assert_agrees(Predicate("map", Result(), node), [kind])


@pytest.mark.parametrize("op", _BINARY)
def test_every_operator_on_every_pair_of_kinds(op: str) -> None:
    left, right = Member(Result(), Lit(0)), Member(Result(), Lit(1))
    for a in KINDS:
        for b in KINDS:
            assert_agrees(Binary(op, left, right), [a, b])  # both operands measured
            assert_agrees(Binary(op, left, Lit(b)), [a])  # a constant on the right, as thresholds are written
            assert_agrees(Binary(op, Lit(a), right), [None, b])  # ... or on the left


# ---------------------------------------------------------------------------------- the real budget


@pytest.mark.parametrize(
    ("src", "value"),
    [
        # the walk runs out: the same error, at the same step
        ("all(result, all(result, all(result, # >= 0)))", list(range(90))),
        # the compiled charge overflows, the walk does not: the exact path answers (true, at once)
        ("any(result, # >= 0)", [0.5] * 200_000),
        # ... or the error the walk meets before running out
        ("all(result, # >= 0)", ["x", *[0.5] * 200_000]),
        # a week of 15-second samples stays within the charge
        ("all(result, # >= 0 && # < 1)", [0.5] * 40_320),
    ],
)
def test_the_real_step_budget_agrees_with_the_reference(src: str, value: list[Any]) -> None:
    assert_agrees(parse(src), value)


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    "src", ["result == result", "result in [result]", "result[0] == result[0]", "result < 1"]
)
def test_deeply_nested_values_agree_with_the_reference(src: str) -> None:
    # Python's recursion limit, met at other depths of the stack by the two evaluators, gives the same error
    assert_agrees(parse(src), _deep(5000))


def test_a_too_deep_value_gives_one_message_whatever_the_callers_stack() -> None:
    # Python words a RecursionError by where the limit was met, which moves with the caller's stack depth: a
    # measurement error must not (it enters the engine's state, and decisions are deterministic)
    condition = compile_condition("result == result")

    def at_depth(frames: int) -> str:
        if frames:
            return at_depth(frames - 1)
        with pytest.raises(EvaluationError) as exc:
            condition.evaluate(_deep(5000))
        return str(exc.value)

    assert {at_depth(n) for n in (0, 7, 50, 333)} == {"RecursionError: maximum recursion depth exceeded"}


def test_a_week_of_samples_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    program = compile_tree(parse("all(result, # >= 0 && # < 1)"))

    def refuse(self: Program, result: Any) -> Any:
        raise AssertionError("fell back to the exact path")

    monkeypatch.setattr(Program, "_run_exact", refuse)
    assert program.run([0.5] * 40_320) is True


def test_budget_errors_name_the_budget() -> None:
    with pytest.raises(EvaluationError, match=f"more than {MAX_STEPS} steps"):
        compile_tree(parse("any(result, any(result, any(result, # < 0)))")).run(list(range(100)))


# ---------------------------------------------------------------------------------- what the engine runs


def test_the_engine_judges_with_the_compiled_form(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("the reference walk was used")

    monkeypatch.setattr(_exprref, "_eval", refuse)
    metric = MetricPlan(
        name="m", success_condition="len(result) > 0 && all(result, # > 0.5) && result[0] < 2"
    )
    assert classify(metric, [0.9, 0.8])[0] == "successful"
    assert classify(metric, [0.9, 0.1])[0] == "failed"


_CONDITION_MODULES = ("_exprlang", "_exprops", "_exprcompile", "_exprref", "expr")
_FORBIDDEN = {"eval", "exec", "compile", "getattr", "setattr", "__import__", "globals", "locals", "vars"}


@pytest.mark.parametrize("module", _CONDITION_MODULES)
def test_the_condition_modules_name_no_dynamic_evaluation_or_attribute_lookup(module: str) -> None:
    # by their own text: nothing that runs Python source or reads an attribute chosen at run time; the one
    # dunder they read is the name of a value's type, for messages
    tree = ast.parse((Path(__file__).resolve().parents[2] / "core" / f"{module}.py").read_text())
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    attrs = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    dunders = {attr for attr in attrs if attr.startswith("__")}
    assert not names & _FORBIDDEN and dunders <= {"__name__"}, (module, names & _FORBIDDEN, dunders)


def test_compiling_and_evaluating_never_reach_python_eval_exec_or_compile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Python eval/exec/compile was called")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, refuse)
    src = "result.ok && any(result.xs, {# > 0}) && (result.n ?? 1) > 0 && result.xs[-1] <= 2 ? true : false"
    assert compile_condition(src + " // a source not compiled before").evaluate({"ok": True, "xs": [1, 2]})
