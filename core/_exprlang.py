"""The syntax of conditions: expr-lang's grammar (the language Argo Rollouts and Ocean CD use), parsed into a
small tree of the forms ebbtide supports.

:func:`parse` turns source text into a :data:`Node`; anything outside the supported forms is an
:class:`ExpressionError` naming what and where. The parser follows expr-lang's precedence table (lowest
first): ternary ``?:``; ``||``/``or``; ``&&``/``and``; comparisons, ``in``, ``contains``, ``startsWith``,
``endsWith``; ``+ -``; ``* / %``; ``**``/``^`` (right-associative); ``??``; then postfix member access,
indexing and calls. Unary ``!``/``not`` binds like expr-lang's (looser than ``* / %``: ``!a * b`` is
``!(a * b)``), unary ``-``/``+`` looser than ``**`` only. A predicate (the second argument of ``all``,
``filter``, ...) may use ``#`` (the element), ``#.field`` or ``.field``, with or without braces.

:func:`render` writes a tree back as text (error messages quote parts of a condition with it). Nothing here
evaluates anything: the meaning of each node is in :mod:`ebbtide.core.expr`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FUNCTIONS",
    "PREDICATES",
    "Binary",
    "Call",
    "Chain",
    "Cond",
    "Elem",
    "ExpressionError",
    "ListLit",
    "Lit",
    "Member",
    "Node",
    "Predicate",
    "Result",
    "Slice",
    "Unary",
    "children",
    "parse",
    "quote",
    "render",
]


class EvaluationError(ValueError):
    """The condition cannot be evaluated on this value (re-exported by :mod:`ebbtide.core.expr`)."""


class ExpressionError(EvaluationError):
    """The condition cannot be parsed or uses something that is not allowed.

    A kind of :class:`EvaluationError`: a condition that cannot compile can be evaluated on no value, so a
    caller that evaluates an unvalidated condition under ``except EvaluationError`` records it as one."""


# ---- the tree ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lit:
    """A literal: number, string, true/false, nil."""

    value: Any


@dataclass(frozen=True, slots=True)
class Result:
    """The measured value, ``result``."""


@dataclass(frozen=True, slots=True)
class Elem:
    """``#``: the current element inside a predicate."""


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Member:
    """``obj.key``, ``obj["key"]``, ``obj[0]``; ``optional`` for ``obj?.key`` (nil when obj is nil)."""

    obj: Node
    key: Node
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Chain:
    """A member chain holding a ``?.``: the whole chain is nil as soon as a ``?.`` meets nil."""

    node: Node


@dataclass(frozen=True, slots=True)
class Slice:
    obj: Node
    lo: Node | None
    hi: Node | None


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "!", "-", "+"
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # "||", "&&", "==", "<", "in", "contains", "+", "**", "??", ... (word forms normalised)
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Cond:
    """``test ? then : orelse``."""

    test: Node
    then: Node
    orelse: Node


@dataclass(frozen=True, slots=True)
class Call:
    fn: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Predicate:
    """``fn(seq, body)`` where ``body`` is evaluated per element with ``#`` bound to it."""

    fn: str
    seq: Node
    body: Node


Node = Lit | Result | Elem | ListLit | Member | Chain | Slice | Unary | Binary | Cond | Call | Predicate


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of a node."""
    if isinstance(node, ListLit):
        return node.items
    if isinstance(node, Member):
        return (node.obj, node.key)
    if isinstance(node, Chain):
        return (node.node,)
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Slice):
        return tuple(n for n in (node.obj, node.lo, node.hi) if n is not None)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Cond):
        return (node.test, node.then, node.orelse)
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Predicate):
        return (node.seq, node.body)
    return ()


#: callable functions and how many arguments each takes (min, max); their meaning is in expr.py
FUNCTIONS: dict[str, tuple[int, int]] = {
    "len": (1, 1),
    "abs": (1, 1),
    "max": (1, 64),
    "min": (1, 64),
    "sum": (1, 1),
    "mean": (1, 1),
    "median": (1, 1),
    "ceil": (1, 1),
    "floor": (1, 1),
    "round": (1, 1),
    "int": (1, 1),
    "float": (1, 1),
    "first": (1, 1),
    "last": (1, 1),
    "lower": (1, 1),
    "upper": (1, 1),
    "isNaN": (1, 1),
    "isInf": (1, 1),
    "asInt": (1, 1),
    "asFloat": (1, 1),
}
#: functions whose second argument is a predicate over ``#``; ``all``/``any`` also take a list of bools alone
PREDICATES = frozenset({"all", "any", "none", "one", "filter", "map", "count", "find", "findIndex"})
_ONE_ARG_PREDICATES = frozenset({"all", "any", "count"})

#: how deeply expressions may nest (parentheses, operands, arguments): far beyond any real condition
MAX_DEPTH = 100
_INT64 = 2**63

# ---- tokens --------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<num>0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+
           |(?:\d[\d_]*(?:\.\d[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\?\?|\?\.|\*\*|&&|\|\||==|!=|<=|>=|\.\.|[-+*/%^<>!?:.,()\[\]{}\#|])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0", "a": "\a", "b": "\b"}
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)", re.DOTALL)
#: Python spellings a user might try, each with what to write instead
_PYTHON_WORDS = {"True": "true", "False": "false", "None": "nil"}
_REFUSED_WORDS = frozenset({"lambda", "if", "else", "is", "for", "await", "yield", "let", "def", "import"})
_REFUSED_OPS = {
    "|": "the pipe operator '|' is not supported",
    "..": "the range operator '..' is not supported",
    "matches": "'matches' (regular expressions) is not supported",
}
_WORD_OPS = {"and": "&&", "or": "||", "not": "!"}
_BINARY: dict[str, tuple[int, bool]] = {  # precedence, right-associative
    "||": (10, False),
    "&&": (15, False),
    "==": (20, False),
    "!=": (20, False),
    "<": (20, False),
    ">": (20, False),
    "<=": (20, False),
    ">=": (20, False),
    "in": (20, False),
    "contains": (20, False),
    "startsWith": (20, False),
    "endsWith": (20, False),
    "+": (30, False),
    "-": (30, False),
    "*": (60, False),
    "/": (60, False),
    "%": (60, False),
    "**": (100, True),
    "??": (500, False),
}
#: the operators of precedence 20, which chain
_COMPARISONS = frozenset({"==", "!=", "<", ">", "<=", ">=", "in", "contains", "startsWith", "endsWith"})
_NEGATABLE = frozenset({"in", "contains", "startsWith", "endsWith", "matches"})
_UNARY = {"!": 50, "-": 90, "+": 90}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # num, str, word, op, end
    text: str
    pos: int


def _tokenize(src: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None:
            raise _error(src, pos, f"unexpected character {src[pos]!r}")
        kind = m.lastgroup
        assert kind is not None
        if kind != "space":
            text = m.group()
            if kind == "word" and text in _PYTHON_WORDS:
                raise ExpressionError(f"{text!r} is not allowed in a condition (write {_PYTHON_WORDS[text]})")
            if kind == "word" and text in _REFUSED_WORDS:
                raise ExpressionError(f"{text!r} is not allowed in a condition")
            out.append(_Tok(kind, text, pos))
        pos = m.end()
    out.append(_Tok("end", "", len(src)))
    return out


def _error(src: str, pos: int, reason: str) -> ExpressionError:
    return ExpressionError(f"cannot parse {quote(src)}: {reason} at column {pos + 1}")


def quote(text: str) -> str:
    """Condition text quoted for a message, shortened when long."""
    return repr(text) if len(text) <= 80 else repr(text[:77] + "...")


def _number(text: str) -> int | float:
    digits = text.replace("_", "")
    if digits[:2].lower() in ("0x", "0o", "0b") or not any(c in digits for c in ".eE"):
        value = int(digits, 0) if digits[:2].lower() in ("0x", "0o", "0b") else int(digits)
        if value >= _INT64:
            raise ExpressionError(f"integer literal {text} does not fit in 64 bits")
        return value
    number = float(digits)
    if number == float("inf"):
        raise ExpressionError(f"float literal {text} is out of range")
    return number


def _string(text: str) -> str:
    body = text[1:-1]
    if text[0] == "`":
        return body  # raw string

    def unescape(m: re.Match[str]) -> str:
        code = m.group(1)
        if len(code) > 1:
            return chr(int(code[1:], 16))
        if code not in _ESCAPES:
            raise ExpressionError(f"unknown escape \\{code} in {text}")
        return _ESCAPES[code]

    return _ESCAPE.sub(unescape, body)


# ---- the parser ----------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.toks = _tokenize(src)
        self.i = 0
        self.depth = 0  # nesting of expressions being parsed
        self.in_predicate = 0

    # token helpers
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def at(self, text: str) -> bool:
        return self.tok.kind in ("op", "word") and self.tok.text == text

    def advance(self) -> _Tok:
        tok = self.tok
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        if not self.at(text):
            raise self.fail(f"expected {text!r}")
        self.advance()

    def fail(self, reason: str, tok: _Tok | None = None) -> ExpressionError:
        tok = tok or self.tok
        shown = f"unexpected {tok.text!r}" if tok.kind != "end" else "unexpected end"
        return _error(self.src, tok.pos, f"{reason} ({shown})" if reason else shown)

    # grammar
    def expression(self, min_prec: int = 0) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"condition nests deeper than {MAX_DEPTH} levels")
        left = self.unary()
        prev_op = ""
        last: Node = left  # the right operand of the last comparison, for chains
        while True:
            op, width = self.binary_op()
            if op is None or _BINARY[op][0] < min_prec:
                break
            start = self.tok
            self.i += width
            if prev_op == "??" and op != "??":
                raise self.fail("'??' cannot be mixed with other operators: add parentheses", start)
            prec, right_assoc = _BINARY[op]
            right = self.expression(prec if right_assoc else prec + 1)
            node: Node = Binary(op, last if prev_op in _COMPARISONS and op in _COMPARISONS else left, right)
            if width == 2:  # `not in`, `not contains`, ...
                node = Unary("!", node)
            # a chain of comparisons `a < b < c` means `a < b && b < c`, as in expr-lang
            left = Binary("&&", left, node) if prev_op in _COMPARISONS and op in _COMPARISONS else node
            prev_op, last = ("" if width == 2 else op), right
        if min_prec == 0 and self.at("?"):
            left = self.ternary(left)
        self.depth -= 1
        return left

    def binary_op(self) -> tuple[str | None, int]:
        """The binary operator at the cursor (normalised) and how many tokens it takes."""
        tok = self.tok
        if tok.kind not in ("op", "word"):
            return None, 0
        if tok.text == "not":  # `not in`, `not contains`, ...
            nxt = self.toks[self.i + 1]
            if nxt.text in _NEGATABLE:
                self.refuse(nxt)
                return nxt.text, 2
            raise self.fail("'not' here needs in, contains, startsWith or endsWith after it", nxt)
        self.refuse(tok)
        text = {"^": "**", **_WORD_OPS}.get(tok.text, tok.text)
        return (text, 1) if text in _BINARY and text != "!" else (None, 0)

    def refuse(self, tok: _Tok) -> None:
        if tok.text in _REFUSED_OPS and tok.kind in ("op", "word"):
            raise ExpressionError(f"{_REFUSED_OPS[tok.text]} (at column {tok.pos + 1})")

    def ternary(self, test: Node) -> Node:
        self.expect("?")
        if self.at(":"):  # `a ?: b` (elvis): a when a is true
            self.advance()
            return Cond(test, test, self.expression(0))
        then = self.expression(0)
        self.expect(":")
        return Cond(test, then, self.expression(0))

    def unary(self) -> Node:
        tok = self.tok
        op = _WORD_OPS.get(tok.text, tok.text) if tok.kind in ("op", "word") else ""
        if op in _UNARY:
            self.advance()
            return Unary(op, self.expression(_UNARY[op]))
        return self.postfix(self.primary())

    def primary(self) -> Node:
        tok = self.advance()
        if tok.kind == "num":
            return Lit(_number(tok.text))
        if tok.kind == "str":
            return Lit(_string(tok.text))
        if tok.kind == "word":
            return self.word(tok)
        if tok.text == "(":
            inner = self.expression(0)
            self.expect(")")
            return inner
        if tok.text == "[":
            return ListLit(self.arguments("]"))
        if tok.text in ("#", "."):
            if not self.in_predicate:
                raise self.fail(
                    f"'{tok.text}' is only allowed inside a predicate, as in all(result, # > 1)", tok
                )
            if tok.text == ".":
                self.i -= 1  # `.field` is `#.field`: the postfix loop reads the `.field`
            return Elem()
        if tok.text == "{":
            raise self.fail("map literals are not supported", tok)
        raise self.fail("", tok)

    def word(self, tok: _Tok) -> Node:
        name = tok.text
        if name in ("true", "false"):
            return Lit(name == "true")
        if name == "nil":
            return Lit(None)
        if name == "result":
            return Result()
        if name in FUNCTIONS or name in PREDICATES:
            if not self.at("("):
                raise ExpressionError(f"{name!r} is a function; call it like {name}(result)")
            self.advance()
            return self.call(name, tok)
        if name in _REFUSED_OPS:
            raise ExpressionError(f"{_REFUSED_OPS[name]} (at column {tok.pos + 1})")
        if self.at("("):
            known = ", ".join(sorted([*FUNCTIONS, *PREDICATES]))
            raise ExpressionError(f"unknown function {name!r}: only these functions can be called: {known}")
        raise ExpressionError(
            f"unknown name {name!r}: a condition reads only 'result' (and '#' in predicates)"
        )

    def call(self, name: str, tok: _Tok) -> Node:
        if name in PREDICATES:
            seq = self.expression(0)
            if self.at(")") and name in _ONE_ARG_PREDICATES:
                self.advance()
                return Predicate(name, seq, Elem())
            self.expect(",")
            body = self.predicate_body()
            self.expect(")")
            return Predicate(name, seq, body)
        args = self.arguments(")")
        low, high = FUNCTIONS[name]
        if not low <= len(args) <= high:
            want = str(low) if low == high else f"{low} to {high}"
            raise _error(self.src, tok.pos, f"{name}() takes {want} argument(s), got {len(args)}")
        return Call(name, args)

    def predicate_body(self) -> Node:
        braces = self.at("{")
        if braces:
            self.advance()
        self.in_predicate += 1
        body = self.expression(0)
        self.in_predicate -= 1
        if braces:
            self.expect("}")
        return body

    def arguments(self, close: str) -> tuple[Node, ...]:
        items: list[Node] = []
        while not self.at(close):
            items.append(self.expression(0))
            if not self.at(close):
                self.expect(",")
        self.advance()
        return tuple(items)

    def postfix(self, node: Node) -> Node:
        optional = False
        while True:
            if self.at(".") or self.at("?."):
                opt = self.advance().text == "?."
                optional = optional or opt
                name = self.advance()
                if name.kind != "word":
                    raise self.fail("expected a field name after '.'", name)
                node = Member(node, Lit(_field(name.text)), opt)
            elif self.at("["):
                self.advance()
                node = self.index(node)
            elif self.at("("):
                raise self.fail("only functions can be called")
            else:
                return Chain(node) if optional else node

    def index(self, obj: Node) -> Node:
        lo = None if self.at(":") else self.expression(0)
        if self.at("]"):
            self.advance()
            if lo is None:
                raise self.fail("expected an index")
            if isinstance(lo, Lit) and isinstance(lo.value, str):
                _field(lo.value)
            return Member(obj, lo)
        self.expect(":")
        hi = None if self.at("]") else self.expression(0)
        self.expect("]")
        return Slice(obj, lo, hi)


def _field(name: str) -> str:
    if name.startswith("__") and name.endswith("__") and len(name) > 4:
        raise ExpressionError(f"{name!r} is not allowed: a condition reads map keys, never Python attributes")
    return name


def parse(src: str) -> Node:
    """Parse a condition; raises :class:`ExpressionError` with the reason and column."""
    parser = _Parser(src)
    if parser.tok.kind == "end":
        raise ExpressionError("empty condition")
    node = parser.expression(0)
    if parser.tok.kind != "end":
        raise parser.fail("")
    _check_depth(node)
    return node


def _check_depth(root: Node) -> None:
    # `1 + 1 + ... + 1` parses in a loop but builds a deep tree; measure without recursion
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(f"condition nests deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children(node))


# ---- back to text ----------------------------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def render(node: Node) -> str:
    """A node as condition text (for messages): ``9 ** 9 ** 9``, ``result.data?.rate``."""
    if isinstance(node, Lit):
        return _literal(node.value)
    if isinstance(node, Result | Elem):
        return "result" if isinstance(node, Result) else "#"
    if isinstance(node, ListLit):
        return "[" + ", ".join(render(n) for n in node.items) + "]"
    if isinstance(node, Chain):
        return render(node.node)
    if isinstance(node, Member):
        key = node.key
        if isinstance(key, Lit) and isinstance(key.value, str) and _dotted(key.value):
            return f"{_operand(node.obj, 1000)}{'?.' if node.optional else '.'}{key.value}"
        return f"{_operand(node.obj, 1000)}[{render(key)}]"
    if isinstance(node, Slice):
        lo, hi = (render(n) if n is not None else "" for n in (node.lo, node.hi))
        return f"{_operand(node.obj, 1000)}[{lo}:{hi}]"
    if isinstance(node, Unary):
        return f"{node.op}{_operand(node.operand, _UNARY[node.op] + 1)}"
    if isinstance(node, Binary):
        prec, right_assoc = _BINARY[node.op]
        chain = node.op in _COMPARISONS and isinstance(node.left, Binary) and node.left.op in _COMPARISONS
        left = _operand(node.left, prec + 1 if right_assoc or chain else prec)
        return f"{left} {node.op} {_operand(node.right, prec if right_assoc else prec + 1)}"
    if isinstance(node, Cond):
        return f"{_operand(node.test, 1)} ? {render(node.then)} : {render(node.orelse)}"
    if isinstance(node, Call):
        return f"{node.fn}(" + ", ".join(render(n) for n in node.args) + ")"
    return f"{node.fn}({render(node.seq)}, {render(node.body)})"


def _dotted(key: str) -> bool:
    return bool(_IDENT.fullmatch(key)) and key not in _PYTHON_WORDS and key not in _REFUSED_WORDS


def _literal(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _operand(node: Node, min_prec: int) -> str:
    """``node`` as an operand that must bind at least as tightly as ``min_prec``, in parentheses if not."""
    if isinstance(node, Binary):
        prec = _BINARY[node.op][0] if node.op != "??" else -1  # `??` mixes with nothing unparenthesised
    elif isinstance(node, Unary):
        prec = _UNARY[node.op]
    elif isinstance(node, Cond):
        prec = 0
    elif isinstance(node, Chain):
        prec = 999  # `(a?.b)[0]` is not `a?.b[0]` (the whole chain is nil when a is)
    else:
        return render(node)
    return render(node) if prec >= min_prec else f"({render(node)})"
