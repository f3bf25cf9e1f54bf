"""Conditions compiled once into Python closures: the evaluator the engine runs.

:func:`compile_tree` turns a syntax tree of :mod:`ebbtide.core._exprlang` into one closure per node, built
once per condition source (:mod:`ebbtide.core.expr` caches them). Each closure is called as ``f(r, e, b)``:
``r`` the measured value, ``e`` the ``#`` of the innermost predicate, ``b`` the step budget. Nothing here
gives user text to Python's ``eval``/``exec``/``compile``, reads a Python attribute of a value or reaches a
builtin the language does not name: the closures only call the operators and functions of
:mod:`ebbtide.core._exprops`, the same ones the reference walk (:mod:`ebbtide.core._exprref`) calls. A
closure differs from the walk only in what it decides once, when it is built: which operator it applies,
which constant key it reads, whether a part is a constant. The tests hold it to the walk, value for value and
error for error.

The step budget, without counting every node. The walk counts every node it visits and fails past
:data:`~ebbtide.core._exprops.MAX_STEPS`. A tree outside its predicate bodies visits each node at most once,
and a predicate's body visits each of its nodes at most once per element, so the compiled program charges
those sizes up front: the tree's size before it starts, ``len(items) * size(body)`` before a predicate runs
its body. That is never less than what the walk has counted at the same point, so while the charges stay
within the budget the walk's would too, and the result (value or error) is the walk's. When a charge would
overflow the budget, the program stops and runs again in *exact* mode: a closure for every node, none folded
away, each counting its own visit like the walk, which gives the walk's answer whatever it is (the budget
error at the walk's very step, or an error met before it). Measured values only reach that for nested
predicates over long vectors; a week of 15-second samples through ``all(result, # >= 0 && # < 1)`` stays on
the fast path.

Constant parts (no ``result``, no ``#``) are evaluated once, in exact mode, and become their value;
:mod:`ebbtide.core.expr` refuses at load time the conditions whose constant parts cannot be evaluated.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
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
    children,
)

__all__ = ["Program", "compile_tree", "evaluate_exact", "reads_data"]


#: the steps an evaluation has left, in a one-item list (cheaper to make per evaluation than an object)
_Budget = list[int]


class _OverBudget(Exception):
    """The fast program's charges passed the budget: run again in exact mode."""


#: the budget handed to a fast program without predicates: nothing spends it
_UNSPENT: _Budget = [ops.MAX_STEPS]

#: a compiled node: (result, the current ``#``, the budget) -> value
Fn = Callable[[Any, Any, _Budget], Any]


class Program:
    """A compiled tree; :meth:`run` gives exactly what the reference walk gives on the same value."""

    __slots__ = ("_exact", "_fast", "_node", "_start")

    def __init__(self, node: Node) -> None:
        self._node = node
        cost = _cost(node)
        # only predicates spend the fast program's budget: without one, nothing to make per evaluation
        self._start = ops.MAX_STEPS - cost if _has_predicate(node) else None
        self._fast: Fn | None = _Builder(exact=False).build(node) if cost <= ops.MAX_STEPS else None
        self._exact: Fn | None = None  # built when first needed

    def run(self, result: Any) -> Any:
        """The value of the tree with ``result`` bound; every failure is an :class:`EvaluationError`."""
        if self._fast is not None:
            start = self._start
            try:
                return _guarded(self._fast, result, _UNSPENT if start is None else [start])
            except _OverBudget:
                pass
        return self._run_exact(result)

    def _run_exact(self, result: Any) -> Any:
        if self._exact is None:
            self._exact = _Builder(exact=True).build(self._node)
        return _guarded(self._exact, result, [ops.MAX_STEPS])


def compile_tree(node: Node) -> Program:
    """Compile a tree once; run the result as often as needed."""
    return Program(node)


def evaluate_exact(node: Node, result: Any) -> Any:
    """Evaluate a tree once in exact mode (every node's visit counted, as the walk counts it)."""
    return _guarded(_Builder(exact=True).build(node), result, [ops.MAX_STEPS])


def _guarded(fn: Fn, result: Any, budget: _Budget) -> Any:
    """Run a compiled tree; every failure but :class:`_OverBudget` becomes an :class:`EvaluationError`."""
    try:
        return fn(result, None, budget)
    except EvaluationError:
        raise
    except ops.NilChain:  # only a tree evaluated apart from its chain lets a `?.` escape
        return None
    except ops.PYTHON_ERRORS as exc:
        raise ops.python_error(exc) from None


def reads_data(node: Node) -> bool:
    """Whether a part reads ``result`` or ``#`` (if not, it has one value)."""
    return isinstance(node, Result | Elem) or any(reads_data(c) for c in children(node))


def _has_predicate(node: Node) -> bool:
    return isinstance(node, Predicate) or any(_has_predicate(c) for c in children(node))


def _cost(node: Node) -> int:
    """The most visits one evaluation makes of this part, counting a predicate's body as nothing."""
    if isinstance(node, Predicate):
        return 1 + _cost(node.seq)
    return 1 + sum(_cost(c) for c in children(node))


def _constant(node: Node) -> tuple[bool, Any]:
    """(True, value) for a part whose one value can be computed now; (False, None) if evaluating it fails."""
    try:
        return True, _Builder(exact=True).build(node)(None, None, [ops.MAX_STEPS])
    except (EvaluationError, ops.NilChain, *ops.PYTHON_ERRORS):
        return False, None


# ---- the builder -----------------------------------------------------------------------------------------

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}
_PLAIN = frozenset({int, float, str})  # equal to each other by Python's == when of the same type


class _Builder:
    """Builds the closure of each node.

    ``exact``: every node keeps a closure of its own that counts its visit, as the walk does (no constant
    folded, no constant key or threshold read in place of its node)."""

    def __init__(self, *, exact: bool) -> None:
        self.exact = exact

    def build(self, node: Node) -> Fn:
        if self.exact:
            return _counted(self._build(node))
        if not isinstance(node, Lit | Result | Elem) and not reads_data(node):
            ok, value = _constant(node)
            if ok:
                return _const(value)
        return self._build(node)

    def _build(self, node: Node) -> Fn:
        if isinstance(node, Lit):
            return _const(node.value)
        if isinstance(node, Result):
            return _result
        if isinstance(node, Elem):
            return _elem
        if isinstance(node, ListLit):
            return _list(tuple(self.build(item) for item in node.items))
        if isinstance(node, Member):
            return self._member(node)
        if isinstance(node, Chain):
            return _chain(self.build(node.node))
        if isinstance(node, Slice):
            lo, hi = (None if n is None else self.build(n) for n in (node.lo, node.hi))
            return _slice(self.build(node.obj), lo, hi)
        if isinstance(node, Unary):
            operand = self.build(node.operand)
            return _not(operand) if node.op == "!" else _negate(operand, node.op)
        if isinstance(node, Binary):
            return self._binary(node)
        if isinstance(node, Cond):
            return _cond(self.build(node.test), self.build(node.then), self.build(node.orelse))
        if isinstance(node, Call):
            return _call(node.fn, tuple(self.build(arg) for arg in node.args))
        return self._predicate(node)

    def known(self, node: Node) -> tuple[bool, Any]:
        """(True, value) for a part the fast program may treat as a constant, else (False, None)."""
        if self.exact or reads_data(node):
            return False, None
        return (True, node.value) if isinstance(node, Lit) else _constant(node)

    def _member(self, node: Member) -> Fn:
        obj = self.build(node.obj)
        known, key = self.known(node.key)
        if known and isinstance(key, str):
            return _field(obj, key, node.optional)
        if known and isinstance(key, int) and not isinstance(key, bool):
            return _index(obj, key, node.optional)
        return _member(obj, self.build(node.key), node.optional)

    def _binary(self, node: Binary) -> Fn:
        op, left = node.op, self.build(node.left)
        if op in ("&&", "||"):
            return _and(left, self.build(node.right)) if op == "&&" else _or(left, self.build(node.right))
        if op == "??":
            return _coalesce(left, self.build(node.right))
        if op in _ORDER:
            known, number = self.known(node.right)
            if known and ops.is_num(number):
                return _threshold(op, node.left, left, number)
        right = self.build(node.right)
        if op in ("==", "!="):
            return _equal(left, right) if op == "==" else _not_equal(left, right)
        if op in _ORDER:
            return _order(op, left, right)
        if op in ("in", "contains", "startsWith", "endsWith"):
            return _binop(ops.contains, op, left, right)
        return _binop(ops.arith, op, left, right)

    def _predicate(self, node: Predicate) -> Fn:
        seq, body, what = self.build(node.seq), self.build(node.body), f"{node.fn}()"
        cost = 0 if self.exact else _cost(node.body)

        def items_of(r: Any, e: Any, b: _Budget) -> Any:
            items = seq(r, e, b)
            if type(items) is not list:
                items = ops.array(items, what)
            if cost:
                b[0] -= len(items) * cost
                if b[0] < 0:
                    raise _OverBudget
            return items

        return _PREDICATES[node.fn](items_of, body, f"the predicate of {node.fn}()")


def _counted(fn: Fn) -> Fn:
    def counted(r: Any, e: Any, b: _Budget) -> Any:
        b[0] -= 1
        if b[0] < 0:
            raise EvaluationError(ops.STEPS_MESSAGE)
        return fn(r, e, b)

    return counted


# ---- leaves, lists, members ---------------------------------------------------------------------------


def _const(value: Any) -> Fn:
    return lambda r, e, b: value


def _result(r: Any, e: Any, b: _Budget) -> Any:
    return r


def _elem(r: Any, e: Any, b: _Budget) -> Any:
    return e


def _list(items: tuple[Fn, ...]) -> Fn:
    return lambda r, e, b: [item(r, e, b) for item in items]


def _member(obj: Fn, key: Fn, optional: bool) -> Fn:
    def member(r: Any, e: Any, b: _Budget) -> Any:
        value = obj(r, e, b)
        if value is None and optional:
            raise ops.NilChain
        return ops.member(value, key(r, e, b))

    return member


def _field(obj: Fn, key: str, optional: bool) -> Fn:
    """``obj.key`` with a constant key: a map's ``get`` when obj is a map."""

    def field(r: Any, e: Any, b: _Budget) -> Any:
        value = obj(r, e, b)
        if type(value) is dict:
            return value.get(key)
        if value is None and optional:
            raise ops.NilChain
        return ops.member(value, key)

    return field


def _index(obj: Fn, key: int, optional: bool) -> Fn:
    """``obj[n]`` with a constant integer: a list's item when it is in range."""

    def index(r: Any, e: Any, b: _Budget) -> Any:
        value = obj(r, e, b)
        if type(value) is list and -len(value) <= key < len(value):
            return value[key]
        if value is None and optional:
            raise ops.NilChain
        return ops.member(value, key)

    return index


def _chain(node: Fn) -> Fn:
    def chain(r: Any, e: Any, b: _Budget) -> Any:
        try:
            return node(r, e, b)
        except ops.NilChain:
            return None

    return chain


def _slice(obj: Fn, lo: Fn | None, hi: Fn | None) -> Fn:
    def slice_(r: Any, e: Any, b: _Budget) -> Any:
        value = ops.sliceable(obj(r, e, b))
        low = None if lo is None else lo(r, e, b)
        high = None if hi is None else hi(r, e, b)
        return ops.slice_of(value, low, high)

    return slice_


# ---- operators ----------------------------------------------------------------------------------------


def _not(operand: Fn) -> Fn:
    def not_(r: Any, e: Any, b: _Budget) -> Any:
        value = operand(r, e, b)
        if value is True or value is False:
            return not value
        return not ops.boolean(value, "!")

    return not_


def _negate(operand: Fn, op: str) -> Fn:
    return lambda r, e, b: ops.negate(operand(r, e, b), op)


def _and(left: Fn, right: Fn) -> Fn:
    def and_(r: Any, e: Any, b: _Budget) -> Any:
        value = left(r, e, b)
        if value is False:
            return False
        if value is not True:
            ops.boolean(value, "&&")
        value = right(r, e, b)
        return value if value is True or value is False else ops.boolean(value, "&&")

    return and_


def _or(left: Fn, right: Fn) -> Fn:
    def or_(r: Any, e: Any, b: _Budget) -> Any:
        value = left(r, e, b)
        if value is True:
            return True
        if value is not False:
            ops.boolean(value, "||")
        value = right(r, e, b)
        return value if value is True or value is False else ops.boolean(value, "||")

    return or_


def _coalesce(left: Fn, right: Fn) -> Fn:
    def coalesce(r: Any, e: Any, b: _Budget) -> Any:
        value = left(r, e, b)
        return right(r, e, b) if value is None else value

    return coalesce


def _equal(left: Fn, right: Fn) -> Fn:
    def equal(r: Any, e: Any, b: _Budget) -> Any:
        a, c = left(r, e, b), right(r, e, b)
        if type(a) is type(c) and type(a) in _PLAIN:
            return a == c
        return ops.equal(a, c)

    return equal


def _not_equal(left: Fn, right: Fn) -> Fn:
    def not_equal(r: Any, e: Any, b: _Budget) -> Any:
        a, c = left(r, e, b), right(r, e, b)
        if type(a) is type(c) and type(a) in _PLAIN:
            return a != c
        return not ops.equal(a, c)

    return not_equal


def _order(op: str, left: Fn, right: Fn) -> Fn:
    compare = _ORDER[op]

    def order(r: Any, e: Any, b: _Budget) -> Any:
        a, c = left(r, e, b), right(r, e, b)
        if (type(a) is float or type(a) is int) and (type(c) is float or type(c) is int):
            return compare(a, c)
        return ops.order(op, a, c)

    return order


def _order_number(op: str, left: Fn, number: int | float) -> Fn:
    """A comparison with a number written in the condition: ``result[0] >= 0.95``."""
    compare = _ORDER[op]

    def order(r: Any, e: Any, b: _Budget) -> Any:
        a = left(r, e, b)
        if type(a) is float or type(a) is int:
            return compare(a, number)
        return ops.order(op, a, number)

    return order


def _threshold(op: str, node: Node, left: Fn, number: int | float) -> Fn:
    """A comparison with a number written in the condition, its left side read in place when it is one of
    the forms most conditions take: ``result``, ``#``, ``result[0]``, ``len(result)`` (when the value is not
    of the type the shortcut reads, ``left`` gives it as it gives every other value)."""
    compare = _ORDER[op]
    if isinstance(node, Result | Elem):
        elem = isinstance(node, Elem)

        def plain(r: Any, e: Any, b: _Budget) -> Any:
            a = e if elem else r
            if type(a) is float or type(a) is int:
                return compare(a, number)
            return ops.order(op, a, number)

        return plain
    if isinstance(node, Member) and isinstance(node.obj, Result) and isinstance(node.key, Lit):
        key = node.key.value
        if type(key) is int:

            def item(r: Any, e: Any, b: _Budget) -> Any:
                if type(r) is list and -len(r) <= key < len(r):
                    a = r[key]
                    if type(a) is float or type(a) is int:
                        return compare(a, number)
                return _ordered(op, compare, left(r, e, b), number)

            return item
    if (
        isinstance(node, Call)
        and node.fn == "len"
        and len(node.args) == 1
        and isinstance(node.args[0], Result)
    ):

        def length(r: Any, e: Any, b: _Budget) -> Any:
            if type(r) is list:
                return compare(len(r), number)
            return _ordered(op, compare, left(r, e, b), number)

        return length
    return _order_number(op, left, number)


def _ordered(op: str, compare: Callable[[Any, Any], bool], a: Any, number: int | float) -> Any:
    if type(a) is float or type(a) is int:
        return compare(a, number)
    return ops.order(op, a, number)


def _binop(apply: Callable[[str, Any, Any], Any], op: str, left: Fn, right: Fn) -> Fn:
    return lambda r, e, b: apply(op, left(r, e, b), right(r, e, b))


def _cond(test: Fn, then: Fn, orelse: Fn) -> Fn:
    def cond(r: Any, e: Any, b: _Budget) -> Any:
        value = test(r, e, b)
        if value is not True and value is not False:
            ops.boolean(value, "the test of ?:")
        return then(r, e, b) if value else orelse(r, e, b)

    return cond


#: functions with a shortcut for the argument types they are mostly given (the same answer, fewer checks)
_SHORTCUTS: dict[str, tuple[frozenset[type], Callable[[Any], Any]]] = {
    "len": (frozenset({list, str, dict}), len),
    "isNaN": (frozenset({float}), math.isnan),
    "isInf": (frozenset({float}), math.isinf),
}


def _call(name: str, args: tuple[Fn, ...]) -> Fn:
    fn = ops.FUNCTIONS[name]
    if len(args) == 1 and name in _SHORTCUTS:
        (arg,) = args
        types, shortcut = _SHORTCUTS[name]

        def call(r: Any, e: Any, b: _Budget) -> Any:
            value = arg(r, e, b)
            return shortcut(value) if type(value) in types else fn(value)

        return call
    if len(args) == 1:
        (arg,) = args
        return lambda r, e, b: fn(arg(r, e, b))
    return lambda r, e, b: fn(*[arg(r, e, b) for arg in args])


# ---- predicates: fn(seq, body) with # bound to each element ----------------------------------------------

Items = Callable[[Any, Any, _Budget], Any]


def _all(items_of: Items, body: Fn, what: str) -> Fn:
    def all_(r: Any, e: Any, b: _Budget) -> Any:
        for item in items_of(r, e, b):
            ok = body(r, item, b)
            if ok is not True:
                if ok is False:
                    return False
                ops.boolean(ok, what)
        return True

    return all_


def _any(items_of: Items, body: Fn, what: str) -> Fn:
    def any_(r: Any, e: Any, b: _Budget) -> Any:
        for item in items_of(r, e, b):
            ok = body(r, item, b)
            if ok is not False:
                if ok is True:
                    return True
                ops.boolean(ok, what)
        return False

    return any_


def _none(items_of: Items, body: Fn, what: str) -> Fn:
    any_ = _any(items_of, body, what)
    return lambda r, e, b: not any_(r, e, b)


def _count(items_of: Items, body: Fn, what: str) -> Fn:
    def count(r: Any, e: Any, b: _Budget) -> Any:
        n = 0
        for item in items_of(r, e, b):
            ok = body(r, item, b)
            if ok is True:
                n += 1
            elif ok is not False:
                ops.boolean(ok, what)
        return n

    return count


def _one(items_of: Items, body: Fn, what: str) -> Fn:
    count = _count(items_of, body, what)
    return lambda r, e, b: count(r, e, b) == 1


def _filter(items_of: Items, body: Fn, what: str) -> Fn:
    def filter_(r: Any, e: Any, b: _Budget) -> Any:
        kept = []
        for item in items_of(r, e, b):
            if ops.boolean(body(r, item, b), what):
                kept.append(item)
        return kept

    return filter_


def _map(items_of: Items, body: Fn, what: str) -> Fn:
    return lambda r, e, b: [body(r, item, b) for item in items_of(r, e, b)]


def _find(items_of: Items, body: Fn, what: str) -> Fn:
    def find(r: Any, e: Any, b: _Budget) -> Any:
        for item in items_of(r, e, b):
            if ops.boolean(body(r, item, b), what):
                return item
        return None

    return find


def _find_index(items_of: Items, body: Fn, what: str) -> Fn:
    def find_index(r: Any, e: Any, b: _Budget) -> Any:
        for i, item in enumerate(items_of(r, e, b)):
            if ops.boolean(body(r, item, b), what):
                return i
        return None  # nil when none is found

    return find_index


_PREDICATES: dict[str, Callable[[Items, Fn, str], Fn]] = {
    "all": _all,
    "any": _any,
    "none": _none,
    "one": _one,
    "count": _count,
    "filter": _filter,
    "map": _map,
    "find": _find,
    "findIndex": _find_index,
}
