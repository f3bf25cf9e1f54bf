"""The reference evaluator of conditions: a plain walk of the syntax tree, node by node.

This is the meaning of a condition written the slowest, most literal way: :func:`evaluate_reference` visits
each node with ``result`` bound to the measured value, counts every visit against
:data:`~ebbtide.core._exprops.MAX_STEPS`, and leaves every operator and function to
:mod:`ebbtide.core._exprops`. The engine never runs it: it evaluates the closures of
:mod:`ebbtide.core._exprcompile`, and the tests hold those to this walk (same value or same error, type and
message) on generated trees and values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ebbtide.core import _exprops as ops
from ebbtide.core._exprlang import (
    Binary,
    Call,
    Chain,
    Cond,
    Elem,
    EvaluationError,
    ListLit,
    Lit,
    Member,
    Node,
    Predicate,
    Result,
    Slice,
    Unary,
)

__all__ = ["evaluate_reference"]


def evaluate_reference(node: Node, result: Any) -> Any:
    """The value of a tree with ``result`` bound; every failure is an :class:`EvaluationError`."""
    try:
        return _eval(node, _Env(result))
    except EvaluationError:
        raise
    except ops.NilChain:  # only a tree evaluated apart from its chain lets a `?.` escape
        return None
    except ops.PYTHON_ERRORS as exc:
        raise ops.python_error(exc) from None


class _Env:
    """One evaluation: the measured value, the ``#`` of each enclosing predicate, the steps taken."""

    __slots__ = ("elems", "result", "steps")

    def __init__(self, result: Any) -> None:
        self.result = result
        self.elems: list[Any] = []
        self.steps = 0


def _eval(node: Node, env: _Env) -> Any:
    env.steps += 1
    if env.steps > ops.MAX_STEPS:
        raise EvaluationError(ops.STEPS_MESSAGE)
    return _EVAL[type(node)](node, env)


def _eval_binary(node: Binary, env: _Env) -> Any:
    op = node.op
    left = _eval(node.left, env)
    if op == "&&":
        return ops.boolean(left, "&&") and ops.boolean(_eval(node.right, env), "&&")
    if op == "||":
        return ops.boolean(left, "||") or ops.boolean(_eval(node.right, env), "||")
    if op == "??":
        return _eval(node.right, env) if left is None else left
    right = _eval(node.right, env)
    if op == "==":
        return ops.equal(left, right)
    if op == "!=":
        return not ops.equal(left, right)
    if op in ("<", ">", "<=", ">="):
        return ops.order(op, left, right)
    if op in ("in", "contains", "startsWith", "endsWith"):
        return ops.contains(op, left, right)
    return ops.arith(op, left, right)


def _eval_unary(node: Unary, env: _Env) -> Any:
    value = _eval(node.operand, env)
    if node.op == "!":
        return not ops.boolean(value, "!")
    return ops.negate(value, node.op)


def _eval_member(node: Member, env: _Env) -> Any:
    obj = _eval(node.obj, env)
    if obj is None and node.optional:
        raise ops.NilChain
    return ops.member(obj, _eval(node.key, env))


def _eval_chain(node: Chain, env: _Env) -> Any:
    try:
        return _eval(node.node, env)
    except ops.NilChain:
        return None


def _eval_slice(node: Slice, env: _Env) -> Any:
    obj = ops.sliceable(_eval(node.obj, env))
    lo, hi = (None if n is None else _eval(n, env) for n in (node.lo, node.hi))
    return ops.slice_of(obj, lo, hi)


def _eval_cond(node: Cond, env: _Env) -> Any:
    test = ops.boolean(_eval(node.test, env), "the test of ?:")
    return _eval(node.then if test else node.orelse, env)


def _eval_call(node: Call, env: _Env) -> Any:
    return ops.FUNCTIONS[node.fn](*(_eval(arg, env) for arg in node.args))


def _eval_predicate(node: Predicate, env: _Env) -> Any:
    items = ops.array(_eval(node.seq, env), f"{node.fn}()")
    fn = node.fn

    def each() -> Iterator[tuple[Any, Any]]:
        for item in items:
            env.elems.append(item)
            try:
                value = _eval(node.body, env)
            finally:
                env.elems.pop()
            yield item, (value if fn == "map" else ops.boolean(value, f"the predicate of {fn}()"))

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
