"""Safe condition expressions over ``result`` (the expr-lang dialect Argo Rollouts and Ocean CD use).

Users write conditions such as ``result[0] >= 0.95``, ``result < 0.05 && result >= 0``,
``result.ok && result.successPercent >= 0.9``, ``all(result, # > 0.9)`` or ``isNaN(result)``. They are
never given to Python's ``eval`` and never touch a Python attribute: :mod:`ebbtide.core._exprlang` parses
the source into a small tree of the supported forms, and this module gives each form expr-lang's meaning
by walking that tree with ``result`` bound to the measured value (JSON-like data: numbers, strings, bools,
``nil``, lists and string-keyed maps).

The contract:

- :func:`compile_condition` raises :class:`ExpressionError` when a condition cannot parse, uses anything
  outside the language (an unknown name, ``result.__class__``, a Python keyword), nests absurdly, or holds
  a constant part that can never be evaluated (``9 ** 9 ** 9`` overflows, ``1 % 0``, a literal beyond 64
  bits), or whose outcome visibly is not true/false (``result * 100``). Spec loading calls it, so these are
  spec errors found at load time.
- :meth:`Condition.evaluate` returns ``True`` or ``False``, or raises :class:`EvaluationError` when the
  condition cannot be evaluated on that value (index out of range, a comparison expr-lang rejects such as
  ``nil > 1``, a non-boolean outcome, more than :data:`MAX_STEPS` steps). The engine records it as a
  measurement error.
- :class:`ExpressionError` is a kind of :class:`EvaluationError`, so ``compile_condition(src).evaluate(v)``
  raises nothing but :class:`EvaluationError` for any user input, even for a condition that was never
  validated (a plan built in code): bad input is a measurement error there, never a crash.

Evaluation is bounded without a timer: every node visited is a step; integers stay within 64 bits (an
overflow is an error); powers are computed in floating point as expr-lang does (overflow gives ±Inf);
there is no string repetition and no range operator.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ebbtide.core import _exprlang
from ebbtide.core._exprlang import (
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
    children,
    parse,
    quote,
    render,
)

__all__ = ["FUNCTIONS", "MAX_STEPS", "Condition", "EvaluationError", "ExpressionError", "compile_condition"]

#: the most tree nodes one evaluation may visit (nested predicates over long vectors hit it, nothing else)
MAX_STEPS = 500_000
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


# ---- values -------------------------------------------------------------------------------------------


def _type(x: Any) -> str:
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


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _num(x: Any, what: str) -> int | float:
    if not _is_num(x):
        raise EvaluationError(f"{what} wants a number, got {_desc(x)}")
    return x  # type: ignore[no-any-return]


def _array(x: Any, what: str) -> Sequence[Any]:
    if not isinstance(x, list | tuple):
        raise EvaluationError(f"{what} wants an array, got {_desc(x)}")
    return x


def _bool(x: Any, what: str) -> bool:
    if not isinstance(x, bool):
        raise EvaluationError(f"{what} wants true/false, got {_desc(x)}")
    return x


def _int(x: int) -> int:
    if not _INT_MIN <= x <= _INT_MAX:
        raise EvaluationError("integer overflow (beyond 64 bits)")
    return x


def _desc(x: Any) -> str:
    """A value with its type, for messages: ``float 0.5``, ``nil``."""
    return "nil" if x is None else f"{_type(x)} {_show(x)}"


def _show(x: Any) -> str:
    """A value as a condition would write it (``nil``, ``true``, ``"up"``, ``{"ok": true}``), shortened."""
    if x is None:
        return "nil"
    try:
        text = json.dumps(x, ensure_ascii=False, default=repr)
    except (ValueError, RecursionError):
        text = f"<{_type(x)}>"
    return text if len(text) <= 40 else text[:37] + "..."


def _equal(a: Any, b: Any) -> bool:
    """expr-lang's ``==``: numbers by value (1 == 1.0), else same type and same content; never an error."""
    if _is_num(a) and _is_num(b):
        return bool(a == b)
    if _type(a) != _type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return bool(a == b)


# ---- operators ----------------------------------------------------------------------------------------


def _order(op: str, a: Any, b: Any) -> bool:
    if not (_is_num(a) and _is_num(b)) and not (isinstance(a, str) and isinstance(b, str)):
        raise EvaluationError(f"cannot compare {_desc(a)} {op} {_desc(b)}")
    if op == "<":
        return bool(a < b)
    if op == ">":
        return bool(a > b)
    if op == "<=":
        return bool(a <= b)
    return bool(a >= b)


def _arith(op: str, a: Any, b: Any) -> Any:
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    if not (_is_num(a) and _is_num(b)):
        raise EvaluationError(f"cannot compute {_desc(a)} {op} {_desc(b)}")
    if op == "/":
        return _divide(float(a), float(b))
    if op == "**":
        return _power(float(a), float(b))
    if op == "%":
        if not (isinstance(a, int) and isinstance(b, int)):
            raise EvaluationError(f"% wants integers, got {_show(a)} % {_show(b)}")
        if b == 0:
            raise EvaluationError("integer modulo by zero")
        rest = abs(a) % abs(b)  # Go's %: the sign of the dividend
        return rest if a >= 0 else -rest
    value = a + b if op == "+" else a - b if op == "-" else a * b
    return _int(value) if isinstance(value, int) else value


def _divide(a: float, b: float) -> float:
    # expr-lang divides in floating point: x / 0 is ±Inf, 0 / 0 is NaN (as a Prometheus ratio with no traffic)
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _power(a: float, b: float) -> float:
    # expr-lang's ** is Go's math.Pow: constant time, overflow gives ±Inf rather than an error
    try:
        return math.pow(a, b)
    except OverflowError:
        odd = b.is_integer() and b % 2 == 1
        return -math.inf if (a < 0 and odd) else math.inf
    except ValueError:  # 0 ** negative, negative ** fraction
        return math.inf if a == 0 else math.nan


def _member(obj: Any, key: Any) -> Any:
    if isinstance(obj, dict):
        if not isinstance(key, str):
            raise EvaluationError(f"a map is indexed by strings, got {_desc(key)}")
        return obj.get(key)  # a missing key is nil, as in expr-lang
    if isinstance(obj, list | tuple | str):
        if isinstance(key, bool) or not isinstance(key, int):
            kind = "a string" if isinstance(obj, str) else "an array"
            raise EvaluationError(f"{kind} is indexed by integers, got {_desc(key)}")
        if not -len(obj) <= key < len(obj):
            raise EvaluationError(f"index {key} out of range (length {len(obj)})")
        return obj[key]
    shown = f"field {key!r}" if isinstance(key, str) else f"index {_show(key)}"
    raise EvaluationError(f"cannot read {shown} of {_desc(obj)}")


def _contains(op: str, a: Any, b: Any) -> bool:
    if op == "in":
        if b is None:  # as expr-lang: nothing is in nil
            return False
        if isinstance(b, dict):
            if not isinstance(a, str):
                raise EvaluationError(f"the keys of a map are strings, got {_desc(a)}")
            return a in b
        return any(_equal(a, x) for x in _array(b, "'in'"))
    if not (isinstance(a, str) and isinstance(b, str)):
        raise EvaluationError(f"'{op}' wants strings, got {_type(a)} and {_type(b)}")
    if op == "contains":
        return b in a
    return a.startswith(b) if op == "startsWith" else a.endswith(b)


# ---- functions ----------------------------------------------------------------------------------------


def _numbers(args: Sequence[Any], fn: str) -> list[int | float]:
    items = _array(args[0], f"{fn}()") if len(args) == 1 and isinstance(args[0], list | tuple) else args
    if not items:
        raise EvaluationError(f"{fn}() of an empty array")
    return [_num(x, f"{fn}()") for x in items]


def _sum(xs: Any) -> int | float:
    total: int | float = 0
    for x in _array(xs, "sum()"):
        total = _arith("+", total, _num(x, "sum()"))
    return total


def _mean(xs: Any) -> float:
    values = _numbers([_array(xs, "mean()")], "mean")
    return math.fsum(values) / len(values)


def _median(xs: Any) -> float:
    values = sorted(_numbers([_array(xs, "median()")], "median"))
    mid = len(values) // 2
    return float(values[mid]) if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _whole(fn: Callable[[float], int], x: Any, what: str) -> float:
    n = float(_num(x, what))
    return float(fn(n)) if math.isfinite(n) else n


def _round(x: Any) -> float:
    n = float(_num(x, "round()"))
    return n if not math.isfinite(n) else math.copysign(math.floor(abs(n) + 0.5), n)  # half away from zero


def _to_int(x: Any) -> int:
    if isinstance(x, str):
        return _as_int(x)
    n = _num(x, "int()")
    if not math.isfinite(n):
        raise EvaluationError(f"int() of {n}")
    return _int(int(n))


def _to_float(x: Any) -> float:
    return _as_float(x) if isinstance(x, str) else float(_num(x, "float()"))


def _as_int(x: Any) -> int:
    """Argo's ``asInt``: a string holding an integer."""
    if not isinstance(x, str):
        raise EvaluationError(f"asInt() wants a string, got {_type(x)}")
    try:
        return _int(int(x.strip(), 10))
    except ValueError:
        raise EvaluationError(f"asInt(): {x!r} is not an integer") from None


def _as_float(x: Any) -> float:
    """Argo's ``asFloat``: a string holding a number."""
    if not isinstance(x, str):
        raise EvaluationError(f"asFloat() wants a string, got {_type(x)}")
    try:
        return float(x.strip())
    except ValueError:
        raise EvaluationError(f"asFloat(): {x!r} is not a number") from None


def _len(x: Any) -> int:
    if not isinstance(x, str | list | tuple | dict):
        raise EvaluationError(f"len() wants a string, array or map, got {_desc(x)}")
    return len(x)


def _string_fn(fn: str, method: Callable[[str], str]) -> Callable[[Any], str]:
    def call(x: Any) -> str:
        if not isinstance(x, str):
            raise EvaluationError(f"{fn}() wants a string, got {_type(x)}")
        return method(x)

    return call


#: the functions a condition may call (predicates such as ``all(result, # > 1)`` are in :data:`_PREDICATES`)
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": _len,
    "abs": lambda x: abs(_num(x, "abs()")),
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
    "first": lambda xs: xs[0] if _array(xs, "first()") else None,
    "last": lambda xs: xs[-1] if _array(xs, "last()") else None,
    "lower": _string_fn("lower", str.lower),
    "upper": _string_fn("upper", str.upper),
    "isNaN": lambda x: math.isnan(_num(x, "isNaN()")),
    "isInf": lambda x: math.isinf(_num(x, "isInf()")),
    "asInt": _as_int,
    "asFloat": _as_float,
}
assert FUNCTIONS.keys() == _exprlang.FUNCTIONS.keys()  # the grammar knows their names and arities


# ---- the evaluator -------------------------------------------------------------------------------------


class _NilChain(Exception):
    """A ``?.`` met nil: the enclosing :class:`Chain` is nil."""


class _Env:
    """One evaluation: the measured value, the ``#`` of each enclosing predicate, the steps taken."""

    __slots__ = ("elems", "result", "steps")

    def __init__(self, result: Any) -> None:
        self.result = result
        self.elems: list[Any] = []
        self.steps = 0


def _eval(node: Node, env: _Env) -> Any:
    env.steps += 1
    if env.steps > MAX_STEPS:
        raise EvaluationError(f"condition needs more than {MAX_STEPS} steps on this value")
    return _EVAL[type(node)](node, env)


def _eval_binary(node: Binary, env: _Env) -> Any:
    op = node.op
    left = _eval(node.left, env)
    if op == "&&":
        return _bool(left, "&&") and _bool(_eval(node.right, env), "&&")
    if op == "||":
        return _bool(left, "||") or _bool(_eval(node.right, env), "||")
    if op == "??":
        return _eval(node.right, env) if left is None else left
    right = _eval(node.right, env)
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    if op in ("<", ">", "<=", ">="):
        return _order(op, left, right)
    if op in ("in", "contains", "startsWith", "endsWith"):
        return _contains(op, left, right)
    return _arith(op, left, right)


def _eval_unary(node: Unary, env: _Env) -> Any:
    value = _eval(node.operand, env)
    if node.op == "!":
        return not _bool(value, "!")
    value = _num(value, f"unary {node.op}")
    if node.op == "+":
        return value
    return _int(-value) if isinstance(value, int) else -value


def _eval_member(node: Member, env: _Env) -> Any:
    obj = _eval(node.obj, env)
    if obj is None and node.optional:
        raise _NilChain
    return _member(obj, _eval(node.key, env))


def _eval_chain(node: Chain, env: _Env) -> Any:
    try:
        return _eval(node.node, env)
    except _NilChain:
        return None


def _eval_slice(node: Slice, env: _Env) -> Any:
    obj = _eval(node.obj, env)
    if not isinstance(obj, list | tuple | str):
        raise EvaluationError(f"cannot slice {_desc(obj)}")
    bounds = [None if n is None else _eval(n, env) for n in (node.lo, node.hi)]
    for b in bounds:
        if b is not None and (isinstance(b, bool) or not isinstance(b, int)):
            raise EvaluationError(f"slice bounds are integers, got {_desc(b)}")
    return obj[bounds[0] : bounds[1]]


def _eval_cond(node: Cond, env: _Env) -> Any:
    test = _bool(_eval(node.test, env), "the test of ?:")
    return _eval(node.then if test else node.orelse, env)


def _eval_call(node: Call, env: _Env) -> Any:
    return FUNCTIONS[node.fn](*(_eval(arg, env) for arg in node.args))


def _eval_predicate(node: Predicate, env: _Env) -> Any:
    items = _array(_eval(node.seq, env), f"{node.fn}()")
    fn = node.fn

    def each() -> Iterator[tuple[Any, Any]]:
        for item in items:
            env.elems.append(item)
            try:
                value = _eval(node.body, env)
            finally:
                env.elems.pop()
            yield item, (value if fn == "map" else _bool(value, f"the predicate of {fn}()"))

    if fn == "all":
        return all(ok for _, ok in each())
    if fn == "any":
        return any(ok for _, ok in each())
    if fn == "none":
        return not any(ok for _, ok in each())
    if fn == "one":
        return sum(1 for _, ok in each() if ok) == 1
    if fn == "count":
        return sum(1 for _, ok in each() if ok)
    if fn == "filter":
        return [item for item, ok in each() if ok]
    if fn == "map":
        return [value for _, value in each()]
    if fn == "find":
        return next((item for item, ok in each() if ok), None)
    return next((i for i, (_, ok) in enumerate(each()) if ok), None)  # findIndex: nil when none is found


_EVAL: dict[type[Any], Callable[[Any, _Env], Any]] = {
    Lit: lambda node, env: node.value,
    Result: lambda node, env: env.result,
    Elem: lambda node, env: env.elems[-1],
    ListLit: lambda node, env: [_eval(item, env) for item in node.items],
    Member: _eval_member,
    Chain: _eval_chain,
    Slice: _eval_slice,
    Unary: _eval_unary,
    Binary: _eval_binary,
    Cond: _eval_cond,
    Call: _eval_call,
    Predicate: _eval_predicate,
}


def _run(node: Node, result: Any) -> Any:
    """Evaluate a tree; every failure is an :class:`EvaluationError`."""
    try:
        return _eval(node, _Env(result))
    except EvaluationError:
        raise
    except _NilChain:  # only a load-time check evaluates a `?.` outside its chain
        return None
    except (ArithmeticError, TypeError, ValueError, RecursionError) as exc:
        # a deeply nested measured value, a float conversion of a huge integer, ...
        raise EvaluationError(f"{type(exc).__name__}: {exc}") from None


# ---- load-time checks ----------------------------------------------------------------------------------


def _reads_data(node: Node) -> bool:
    return isinstance(node, Result | Elem) or any(_reads_data(c) for c in children(node))


def _check_constants(node: Node) -> None:
    """Every part that reads neither ``result`` nor ``#`` has one value: it must be computable and finite."""
    for child in children(node):
        _check_constants(child)
    if isinstance(node, Lit) or _reads_data(node):
        return
    try:
        value = _run(node, None)
    except EvaluationError as exc:
        raise ExpressionError(f"{quote(render(node))} can never be evaluated: {exc}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ExpressionError(f"{quote(render(node))} is always {value}: too large or undefined")


_NON_BOOL = frozenset({"+", "-", "*", "/", "%", "**"})


def _check_outcome(node: Node, src: str) -> None:
    """Refuse a condition whose outcome can be seen, from its form alone, not to be true/false."""
    if isinstance(node, Cond):  # either branch may be the outcome
        _check_outcome(node.then, src)
        _check_outcome(node.orelse, src)
        return
    if isinstance(node, Binary) and node.op == "??":  # the right side is, whenever the left is nil
        _check_outcome(node.right, src)
        return
    form = ""
    if isinstance(node, Lit) and not isinstance(node.value, bool):
        form = f"the constant {_show(node.value)}"
    elif (
        (isinstance(node, Binary) and node.op in _NON_BOOL)
        or (isinstance(node, Unary) and node.op != "!")
        or (isinstance(node, Predicate) and node.fn in ("count", "findIndex"))
    ):
        form = "a number"
    elif isinstance(node, ListLit | Slice) or (isinstance(node, Predicate) and node.fn in ("map", "filter")):
        form = "an array"
    elif isinstance(node, Call) and node.fn not in ("isNaN", "isInf", "first", "last"):
        form = f"the value of {node.fn}()"
    if form:
        raise ExpressionError(f"{quote(src)} gives {form}, not true/false (compare it with something)")


# ---- the public face -----------------------------------------------------------------------------------


class Condition:
    """A compiled, checked condition; :meth:`evaluate` binds ``result`` and evaluates it."""

    __slots__ = ("_node", "source")

    def __init__(self, source: str, node: Node) -> None:
        self.source = source
        self._node = node

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"

    def evaluate(self, result: Any) -> bool:
        """``True``/``False``, or :class:`EvaluationError` saying why the condition cannot be evaluated."""
        value = _run(self._node, result)
        if not isinstance(value, bool):
            raise EvaluationError(f"condition gave {_desc(value)}, not true/false")
        return value


def compile_condition(src: Any) -> Condition:
    """Parse and check a condition once (cached by source).

    Raises :class:`ExpressionError` with the reason for anything that is not a valid condition (see the
    module docstring). :class:`ExpressionError` is an :class:`EvaluationError`, so a caller that evaluates
    with ``compile_condition(src).evaluate(value)`` under ``except EvaluationError`` gets no other
    exception for bad user input, whether or not the condition was validated when its spec was loaded."""
    if not isinstance(src, str):
        raise ExpressionError(f"a condition must be a string, got {type(src).__name__}")
    return _compile(src)


@functools.lru_cache(maxsize=4096)
def _compile(src: str) -> Condition:
    node = parse(src)
    _check_outcome(node, src)
    _check_constants(node)
    return Condition(src, node)
