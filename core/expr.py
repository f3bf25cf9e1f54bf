"""Safe condition expressions over ``result`` (the expr-lang dialect Argo Rollouts and Ocean CD use).

Users write conditions such as ``result[0] >= 0.95``, ``result < 0.05 && result >= 0``,
``result.ok && result.successPercent >= 0.9``, ``all(result, # > 0.9)`` or ``isNaN(result)``. They are
never given to Python's ``eval`` and never touch a Python attribute: :mod:`ebbtide.core._exprlang` parses
the source into a small tree of the supported forms, :mod:`ebbtide.core._exprcompile` compiles that tree
once into closures, and :mod:`ebbtide.core._exprops` gives each operator and function expr-lang's meaning
on the measured value bound to ``result`` (JSON-like data: numbers, strings, bools, ``nil``, lists and
string-keyed maps). :mod:`ebbtide.core._exprref` walks the tree node by node instead: the tests' reference,
which the compiled form must match value for value and error for error.

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

Evaluation is bounded without a timer: every node visited is a step (at most :data:`MAX_STEPS`); integers
stay within 64 bits (an overflow is an error); powers are computed in floating point as expr-lang does
(overflow gives ±Inf); there is no string repetition and no range operator.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from ebbtide.core._exprcompile import Program, compile_tree, evaluate_exact, reads_data
from ebbtide.core._exprlang import (
    Binary,
    Call,
    Cond,
    EvaluationError,
    ExpressionError,
    ListLit,
    Lit,
    Node,
    Predicate,
    Slice,
    Unary,
    children,
    parse,
    quote,
    render,
)
from ebbtide.core._exprops import FUNCTIONS, MAX_STEPS, desc, show

__all__ = ["FUNCTIONS", "MAX_STEPS", "Condition", "EvaluationError", "ExpressionError", "compile_condition"]


# ---- load-time checks ----------------------------------------------------------------------------------


def _check_constants(node: Node) -> None:
    """Every part that reads neither ``result`` nor ``#`` has one value: it must be computable and finite."""
    for child in children(node):
        _check_constants(child)
    if isinstance(node, Lit) or reads_data(node):
        return
    try:
        value = evaluate_exact(node, None)
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
        form = f"the constant {show(node.value)}"
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

    __slots__ = ("_program", "source")

    def __init__(self, source: str, program: Program) -> None:
        self.source = source
        self._program = program

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"

    def evaluate(self, result: Any) -> bool:
        """``True``/``False``, or :class:`EvaluationError` saying why the condition cannot be evaluated."""
        value = self._program.run(result)
        if value is True or value is False:
            return value
        raise EvaluationError(f"condition gave {desc(value)}, not true/false")


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
    return Condition(src, compile_tree(node))
