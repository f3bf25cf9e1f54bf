"""Safe condition expressions over ``result`` (the expr-lang dialect Argo Rollouts and Ocean CD use).

Users write conditions such as ``result[0] >= 0.95``, ``result < 0.05 && result >= 0``,
``len(result) > 0`` or ``isNaN(result)``. They are never given to Python's ``eval``:

1. the source is tokenised so that string literals are left alone, and the expr-lang operators and
   literals outside them are translated to Python syntax (``&&`` -> ``and``, ``||`` -> ``or``,
   ``!`` -> a unary operator with expr-lang's precedence, ``true``/``false``/``nil`` ->
   ``True``/``False``/``None``, ``^`` -> ``**``);
2. the translation is parsed once with :func:`ast.parse` (``mode="eval"``) and every node is checked
   against a whitelist (only the name ``result``, a fixed set of functions, literals, arithmetic,
   comparisons, boolean operators, indexing and slicing);
3. the checked tree is evaluated with :mod:`simpleeval` (which also bounds powers and string
   repetition), per measurement, with ``result`` bound to the measured value.

:func:`compile_condition` raises :class:`ExpressionError` for an expression that cannot parse or uses
something outside the whitelist (a spec error, found at load time); :meth:`Condition.evaluate`
raises :class:`EvaluationError` when the expression cannot be evaluated on a value (index out of
range, a type mismatch, a non-boolean outcome), which the engine records as a measurement error.
"""

from __future__ import annotations

import ast
import contextvars
import functools
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

from simpleeval import DEFAULT_OPERATORS, EvalWithCompoundTypes

__all__ = ["FUNCTIONS", "Condition", "EvaluationError", "ExpressionError", "compile_condition"]


class ExpressionError(ValueError):
    """The condition cannot be parsed or uses something that is not allowed."""


class EvaluationError(ValueError):
    """The condition cannot be evaluated on this value."""


def _number(x: Any, fn: str) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise TypeError(f"{fn}() wants a number, got {type(x).__name__}")
    return float(x)


def _is_nan(x: Any) -> bool:
    return math.isnan(_number(x, "isNaN"))


def _is_inf(x: Any) -> bool:
    return math.isinf(_number(x, "isInf"))


def _all(xs: Iterable[Any]) -> bool:
    return all(xs)


def _any(xs: Iterable[Any]) -> bool:
    return any(xs)


def _float(x: Any) -> float:
    return float(x)


def _int(x: Any) -> int:
    return int(x)


#: the functions a condition may call
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "isNaN": _is_nan,
    "isInf": _is_inf,
    "abs": abs,
    "min": min,
    "max": max,
    "sum": sum,
    "all": _all,
    "any": _any,
    "float": _float,
    "int": _int,
}

_NAMES = frozenset({"result"})

_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Mod,
    ast.Pow,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Subscript,
    ast.Slice,
    ast.List,
    ast.Tuple,
)

# string literals, then the operators/words to translate; anything else passes through unchanged
_TOKEN = re.compile(
    r"""
    (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<and>&&)
  | (?P<or>\|\|)
  | (?P<neq>!=)
  | (?P<not>!)
  | (?P<pow>\^)
  | (?P<tilde>~)
  | (?P<word>[A-Za-z_][A-Za-z_0-9]*)
    """,
    re.VERBOSE,
)
_WORDS = {"true": "True", "false": "False", "nil": "None"}
_PY_ONLY_WORDS = frozenset({"True", "False", "None", "lambda", "if", "else", "is", "for", "await", "yield"})


def _translate(src: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(src):
        out.append(src[pos : m.start()])
        pos = m.end()
        kind = m.lastgroup
        text = m.group()
        if kind == "and":
            out.append(" and ")
        elif kind == "or":
            out.append(" or ")
        elif kind == "not":
            # `~` binds like expr-lang's `!` (tighter than comparisons); rewritten to `not` after parsing
            out.append("~")
        elif kind == "pow":
            out.append("**")
        elif kind == "tilde":
            raise ExpressionError("'~' is not an operator of the condition language")
        elif kind == "word":
            if text in _PY_ONLY_WORDS:
                hint = f" (write {text.lower() if text != 'None' else 'nil'})" if text[0].isupper() else ""
                raise ExpressionError(f"{text!r} is not allowed in a condition{hint}")
            out.append(_WORDS.get(text, text))
        else:
            out.append(text)
    out.append(src[pos:])
    return "".join(out)


class _Rewrite(ast.NodeTransformer):
    """Turn the placeholder ``~x`` back into ``not x``."""

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Invert):
            return ast.copy_location(ast.UnaryOp(op=ast.Not(), operand=node.operand), node)
        return node


def _check(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ExpressionError(f"{type(node).__name__} is not allowed in a condition")
        if isinstance(node, ast.Name):
            if node.id not in _NAMES and node.id not in FUNCTIONS:
                raise ExpressionError(f"unknown name {node.id!r} (only 'result' and functions are allowed)")
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                raise ExpressionError(f"only these functions can be called: {', '.join(sorted(FUNCTIONS))}")
            if node.keywords:
                raise ExpressionError("keyword arguments are not allowed")
        elif isinstance(node, ast.Constant) and not isinstance(node.value, int | float | str | bool | None):
            raise ExpressionError(f"literal {node.value!r} is not allowed")
    # a bare function name used as a value (e.g. `len == 1`) is not a value
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            called = isinstance(node, ast.Call) and node.func is child
            if isinstance(child, ast.Name) and child.id in FUNCTIONS and not called:
                raise ExpressionError(f"{child.id!r} is a function; call it like {child.id}(result)")


_OPERATORS = dict(DEFAULT_OPERATORS)
_OPERATORS[ast.Not] = lambda x: not x


class _ResultNames:
    """The evaluator's names: ``result`` is read from a context variable set by each evaluate call,
    so that one shared evaluator serves every condition and thread."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        if key == "result":
            return _RESULT.get()
        raise KeyError(key)


_RESULT: contextvars.ContextVar[Any] = contextvars.ContextVar("ebbtide_expr_result")
# a copy of FUNCTIONS: simpleeval adds its own (dict, list, ...) which the whitelist never lets through
_EVALUATOR = EvalWithCompoundTypes(operators=_OPERATORS, functions=dict(FUNCTIONS), names=_ResultNames())


class Condition:
    """A compiled, checked condition; :meth:`evaluate` binds ``result`` and evaluates it."""

    __slots__ = ("_node", "source")

    def __init__(self, source: str, node: ast.expr) -> None:
        self.source = source
        self._node = node

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"

    def evaluate(self, result: Any) -> bool:
        token = _RESULT.set(result)
        try:
            value = _EVALUATOR.eval(self.source, previously_parsed=self._node)
        except Exception as exc:  # simpleeval and the operators raise many types; all mean "cannot"
            raise EvaluationError(f"{type(exc).__name__}: {exc}") from None
        finally:
            _RESULT.reset(token)
        if not isinstance(value, bool):
            raise EvaluationError(f"condition gave {type(value).__name__} {value!r}, not true/false")
        return value


@functools.lru_cache(maxsize=4096)
def compile_condition(src: str) -> Condition:
    """Parse and check a condition once; raises :class:`ExpressionError` with the reason."""
    if not isinstance(src, str):
        raise ExpressionError("a condition must be a string")
    if not src.strip():
        raise ExpressionError("empty condition")
    translated = _translate(src.strip())
    try:
        # a condition may span lines (YAML block scalars): line breaks are blanks, as in expr-lang
        tree = ast.parse(translated.replace("\r", " ").replace("\n", " ").strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse {src!r}: {exc.msg}") from None
    tree = _Rewrite().visit(tree)
    assert isinstance(tree, ast.Expression)
    _check(tree)
    return Condition(src, tree.body)
