"""What the operators and functions of a condition mean on values (expr-lang's rules).

Shared by the compiled evaluator (:mod:`ebbtide.core._exprcompile`, the one the engine uses) and the
tree-walking reference (:mod:`ebbtide.core._exprref`, the oracle of the tests), so the two can differ only in
how they walk a tree, never in what a value, an operator or a function means. Values are JSON-like data:
numbers, strings, bools, ``nil`` (None), lists and string-keyed maps.

Bounds (no timer): integers stay within 64 bits (an overflow is an error), ``/`` and ``**`` compute in
floating point (overflow gives ±Inf), there is no string repetition, and one evaluation may visit at most
:data:`MAX_STEPS` tree nodes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from ebbtide.core import _exprlang
from ebbtide.core._exprlang import EvaluationError

#: the most tree nodes one evaluation may visit (nested predicates over long vectors hit it, nothing else)
MAX_STEPS = 500_000
STEPS_MESSAGE = f"condition needs more than {MAX_STEPS} steps on this value"
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1

#: Python's own exceptions a measured value can provoke (a deeply nested value, float() of a huge integer)
PYTHON_ERRORS = (ArithmeticError, TypeError, ValueError, RecursionError)


class NilChain(Exception):
    """A ``?.`` met nil: the enclosing member chain is nil."""


def python_error(exc: BaseException) -> EvaluationError:
    """One of :data:`PYTHON_ERRORS` as the evaluation error a caller sees.

    A recursion error says only that: Python words it by where the limit was met (``... in comparison``,
    ``... in __instancecheck__``), which depends on how deep the caller's stack already was."""
    if isinstance(exc, RecursionError):
        return EvaluationError("RecursionError: maximum recursion depth exceeded")
    return EvaluationError(f"{type(exc).__name__}: {exc}")


# ---- values -------------------------------------------------------------------------------------------


def type_name(x: Any) -> str:
    """expr-lang's name for a value's type, for messages."""
    if x is None:
        return "nil"
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, int):
        return "int"
    if isinstance(x, float):
        return "float"
    if isinstance(x, str):
        return "string"
    if isinstance(x, list | tuple):
        return "array"
    if isinstance(x, dict):
        return "map"
    return type(x).__name__


def is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def num(x: Any, what: str) -> int | float:
    if not is_num(x):
        raise EvaluationError(f"{what} wants a number, got {desc(x)}")
    return x  # type: ignore[no-any-return]


def array(x: Any, what: str) -> Sequence[Any]:
    if not isinstance(x, list | tuple):
        raise EvaluationError(f"{what} wants an array, got {desc(x)}")
    return x


def boolean(x: Any, what: str) -> bool:
    if not isinstance(x, bool):
        raise EvaluationError(f"{what} wants true/false, got {desc(x)}")
    return x


def int64(x: int) -> int:
    if not _INT_MIN <= x <= _INT_MAX:
        raise EvaluationError("integer overflow (beyond 64 bits)")
    return x


def desc(x: Any) -> str:
    """A value with its type, for messages: ``float 0.5``, ``nil``."""
    return "nil" if x is None else f"{type_name(x)} {show(x)}"


def show(x: Any) -> str:
    """A value as a condition would write it (``nil``, ``true``, ``"up"``, ``{"ok": true}``), shortened."""
    if x is None:
        return "nil"
    try:
        text = json.dumps(x, ensure_ascii=False, default=repr)
    except (ValueError, RecursionError):
        text = f"<{type_name(x)}>"
    return text if len(text) <= 40 else text[:37] + "..."


def equal(a: Any, b: Any) -> bool:
    """expr-lang's ``==``: numbers by value (1 == 1.0), else same type and same content; never an error."""
    if is_num(a) and is_num(b):
        return bool(a == b)
    if type_name(a) != type_name(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return bool(a == b)


# ---- operators ----------------------------------------------------------------------------------------


def order(op: str, a: Any, b: Any) -> bool:
    """``<``, ``>``, ``<=``, ``>=``: two numbers or two strings, anything else is an error."""
    if not (is_num(a) and is_num(b)) and not (isinstance(a, str) and isinstance(b, str)):
        raise EvaluationError(f"cannot compare {desc(a)} {op} {desc(b)}")
    if op == "<":
        return bool(a < b)
    if op == ">":
        return bool(a > b)
    if op == "<=":
        return bool(a <= b)
    return bool(a >= b)


def arith(op: str, a: Any, b: Any) -> Any:
    """``+ - * / % **``; ``+`` also joins two strings."""
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    if not (is_num(a) and is_num(b)):
        raise EvaluationError(f"cannot compute {desc(a)} {op} {desc(b)}")
    if op == "/":
        return divide(float(a), float(b))
    if op == "**":
        return power(float(a), float(b))
    if op == "%":
        if not (isinstance(a, int) and isinstance(b, int)):
            raise EvaluationError(f"% wants integers, got {show(a)} % {show(b)}")
        if b == 0:
            raise EvaluationError("integer modulo by zero")
        rest = abs(a) % abs(b)  # Go's %: the sign of the dividend
        return rest if a >= 0 else -rest
    value = a + b if op == "+" else a - b if op == "-" else a * b
    return int64(value) if isinstance(value, int) else value


def divide(a: float, b: float) -> float:
    # expr-lang divides in floating point: x / 0 is ±Inf, 0 / 0 is NaN (as a Prometheus ratio with no traffic)
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def power(a: float, b: float) -> float:
    # expr-lang's ** is Go's math.Pow: constant time, overflow gives ±Inf rather than an error
    try:
        return math.pow(a, b)
    except OverflowError:
        odd = b.is_integer() and b % 2 == 1
        return -math.inf if (a < 0 and odd) else math.inf
    except ValueError:  # 0 ** negative, negative ** fraction
        return math.inf if a == 0 else math.nan


def negate(value: Any, op: str) -> Any:
    """Unary ``-`` and ``+``."""
    value = num(value, f"unary {op}")
    if op == "+":
        return value
    return int64(-value) if isinstance(value, int) else -value


def member(obj: Any, key: Any) -> Any:
    """``obj.key``, ``obj[key]``: a missing map key is nil, an index out of range an error."""
    if isinstance(obj, dict):
        if not isinstance(key, str):
            raise EvaluationError(f"a map is indexed by strings, got {desc(key)}")
        return obj.get(key)  # a missing key is nil, as in expr-lang
    if isinstance(obj, list | tuple | str):
        if isinstance(key, bool) or not isinstance(key, int):
            kind = "a string" if isinstance(obj, str) else "an array"
            raise EvaluationError(f"{kind} is indexed by integers, got {desc(key)}")
        if not -len(obj) <= key < len(obj):
            raise EvaluationError(f"index {key} out of range (length {len(obj)})")
        return obj[key]
    shown = f"field {key!r}" if isinstance(key, str) else f"index {show(key)}"
    raise EvaluationError(f"cannot read {shown} of {desc(obj)}")


def slice_of(obj: Any, lo: Any, hi: Any) -> Any:
    """``obj[lo:hi]`` once ``obj`` was checked with :func:`sliceable` (a bound of None is open)."""
    for b in (lo, hi):
        if b is not None and (isinstance(b, bool) or not isinstance(b, int)):
            raise EvaluationError(f"slice bounds are integers, got {desc(b)}")
    return obj[lo:hi]


def sliceable(obj: Any) -> Any:
    if not isinstance(obj, list | tuple | str):
        raise EvaluationError(f"cannot slice {desc(obj)}")
    return obj


def contains(op: str, a: Any, b: Any) -> bool:
    """``in``, ``contains``, ``startsWith``, ``endsWith``."""
    if op == "in":
        if b is None:  # as expr-lang: nothing is in nil
            return False
        if isinstance(b, dict):
            if not isinstance(a, str):
                raise EvaluationError(f"the keys of a map are strings, got {desc(a)}")
            return a in b
        return any(equal(a, x) for x in array(b, "'in'"))
    if not (isinstance(a, str) and isinstance(b, str)):
        raise EvaluationError(f"'{op}' wants strings, got {type_name(a)} and {type_name(b)}")
    if op == "contains":
        return b in a
    return a.startswith(b) if op == "startsWith" else a.endswith(b)


# ---- functions ----------------------------------------------------------------------------------------


def _numbers(args: Sequence[Any], fn: str) -> list[int | float]:
    items = array(args[0], f"{fn}()") if len(args) == 1 and isinstance(args[0], list | tuple) else args
    if not items:
        raise EvaluationError(f"{fn}() of an empty array")
    return [num(x, f"{fn}()") for x in items]


def _sum(xs: Any) -> int | float:
    total: int | float = 0
    for x in array(xs, "sum()"):
        total = arith("+", total, num(x, "sum()"))
    return total


def _mean(xs: Any) -> float:
    values = _numbers([array(xs, "mean()")], "mean")
    return math.fsum(values) / len(values)


def _median(xs: Any) -> float:
    values = sorted(_numbers([array(xs, "median()")], "median"))
    mid = len(values) // 2
    return float(values[mid]) if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _whole(fn: Callable[[float], int], x: Any, what: str) -> float:
    n = float(num(x, what))
    return float(fn(n)) if math.isfinite(n) else n


def _round(x: Any) -> float:
    n = float(num(x, "round()"))
    return n if not math.isfinite(n) else math.copysign(math.floor(abs(n) + 0.5), n)  # half away from zero


def _to_int(x: Any) -> int:
    if isinstance(x, str):
        return _as_int(x)
    n = num(x, "int()")
    if not math.isfinite(n):
        raise EvaluationError(f"int() of {n}")
    return int64(int(n))


def _to_float(x: Any) -> float:
    return _as_float(x) if isinstance(x, str) else float(num(x, "float()"))


def _as_int(x: Any) -> int:
    """Argo's ``asInt``: a string holding an integer."""
    if not isinstance(x, str):
        raise EvaluationError(f"asInt() wants a string, got {type_name(x)}")
    try:
        return int64(int(x.strip(), 10))
    except ValueError:
        raise EvaluationError(f"asInt(): {x!r} is not an integer") from None


def _as_float(x: Any) -> float:
    """Argo's ``asFloat``: a string holding a number."""
    if not isinstance(x, str):
        raise EvaluationError(f"asFloat() wants a string, got {type_name(x)}")
    try:
        return float(x.strip())
    except ValueError:
        raise EvaluationError(f"asFloat(): {x!r} is not a number") from None


def _len(x: Any) -> int:
    if not isinstance(x, str | list | tuple | dict):
        raise EvaluationError(f"len() wants a string, array or map, got {desc(x)}")
    return len(x)


def _string_fn(fn: str, method: Callable[[str], str]) -> Callable[[Any], str]:
    def call(x: Any) -> str:
        if not isinstance(x, str):
            raise EvaluationError(f"{fn}() wants a string, got {type_name(x)}")
        return method(x)

    return call


#: the functions a condition may call (predicates such as ``all(result, # > 1)`` are evaluated in place)
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": _len,
    "abs": lambda x: abs(num(x, "abs()")),
    "max": lambda *xs: max(_numbers(xs, "max")),
    "min": lambda *xs: min(_numbers(xs, "min")),
    "sum": _sum,
    "mean": _mean,
    "median": _median,
    "ceil": lambda x: _whole(math.ceil, x, "ceil()"),
    "floor": lambda x: _whole(math.floor, x, "floor()"),
    "round": _round,
    "int": _to_int,
    "float": _to_float,
    "first": lambda xs: xs[0] if array(xs, "first()") else None,
    "last": lambda xs: xs[-1] if array(xs, "last()") else None,
    "lower": _string_fn("lower", str.lower),
    "upper": _string_fn("upper", str.upper),
    "isNaN": lambda x: math.isnan(num(x, "isNaN()")),
    "isInf": lambda x: math.isinf(num(x, "isInf()")),
    "asInt": _as_int,
    "asFloat": _as_float,
}
assert FUNCTIONS.keys() == _exprlang.FUNCTIONS.keys()  # the grammar knows their names and arities
