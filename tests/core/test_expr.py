import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebbtide.core.expr import EvaluationError, ExpressionError, compile_condition


@pytest.mark.parametrize(
    ("src", "value", "expected"),
    [
        ("result[0] >= 0.95", [0.96], True),
        ("result[0] >= 0.95", [0.5], False),
        ("result < 0.05 && result >= 0", 0.01, True),
        ("result < 0.05 && result >= 0", -0.01, False),
        ("result == true", True, True),
        ("result == false", True, False),
        ("len(result) > 0", [], False),
        ("len(result) > 0", [1.0], True),
        ("isNaN(result)", math.nan, True),
        ("isNaN(result)", 1.0, False),
        ("isInf(result)", math.inf, True),
        ("!(result > 1)", 2, False),
        ("!(result > 1)", 0, True),
        ("!result == false", True, True),
        ("result > 0 || result < -1", -2, True),
        ("result > 0 || result < -1", -0.5, False),
        ("result in [1,2]", 2, True),
        ("result not in [1, 2]", 3, True),
        ("result == nil", None, True),
        ("result != 'a&&b'", "a&&b", False),
        ('result == "ok"', "ok", True),
        ("abs(result) < 1 && max(result, 0) == result", 0.5, True),
        ("result ^ 2 == 4", 2, True),
        ("result <\n  0.5", 0.1, True),
        ("all(result)", [True, True], True),
        ("result[-1] > 0.9", [0.1, 0.95], True),
    ],
)
def test_conditions(src: str, value: object, expected: bool) -> None:
    assert compile_condition(src).evaluate(value) is expected


@pytest.mark.parametrize(
    ("src", "reason"),
    [
        ("", "empty"),
        ("result >", "cannot parse"),
        ("__import__('os')", "only these functions"),
        ("open('f')", "only these functions"),
        ("result.__class__", "Attribute is not allowed"),
        ("foo > 1", "unknown name 'foo'"),
        ("lambda: 1", "'lambda' is not allowed"),
        ("[r for r in result]", "'for' is not allowed"),
        ("True", "write true"),
        ("len == 1", "is a function"),
        ("result is None", "'is' is not allowed"),
        ("~result", "'~'"),
        ("result) or (1", "cannot parse"),
        ("len(result, key=1)", "keyword"),
    ],
)
def test_compile_errors(src: str, reason: str) -> None:
    with pytest.raises(ExpressionError) as exc:
        compile_condition(src)
    assert reason in str(exc.value)
    assert isinstance(exc.value, ValueError)


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
        ("result ^ 100000000 > 1", 10),
    ],
)
def test_evaluation_errors(src: str, value: object) -> None:
    cond = compile_condition(src)  # compiles fine
    with pytest.raises(EvaluationError):
        cond.evaluate(value)


def test_compiled_once() -> None:
    assert compile_condition("result > 0.5") is compile_condition("result > 0.5")


@given(st.floats(allow_nan=False), st.floats(allow_nan=False, allow_infinity=False))
def test_comparison_matches_python(x: float, threshold: float) -> None:
    assert compile_condition(f"result >= {threshold!r}").evaluate(x) is (x >= threshold)


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=5))
def test_len_and_index(xs: list[float]) -> None:
    cond = compile_condition("len(result) > 0 && result[0] >= 0")
    assert cond.evaluate(xs) is (len(xs) > 0 and xs[0] >= 0)
