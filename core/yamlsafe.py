"""Safe YAML: every user YAML document goes through :func:`load_documents`, with bounded memory.

PyYAML's safe loader already refuses to build arbitrary Python objects, but it happily composes
documents that cost unbounded memory or stack once something walks them:

- an alias bomb ("billion laughs"): ``b: [*a, *a, ...]``, ``c: [*b, *b, ...]`` -- a 1 KB file that
  expands to billions of values when validated or copied;
- a recursive alias (``&a [*a]``), which never ends when expanded;
- nesting hundreds of levels deep, which exhausts the recursion limit of whatever walks it.

So each document's node graph is measured (iteratively, before any Python value is built) and refused
beyond :data:`MAX_DEPTH` levels of nesting or :data:`MAX_ALIAS_EXPANSION` values added by aliases. The
libyaml parser (``yaml.CSafeLoader``) is used when PyYAML was built with it: about five times faster.

Pure: text in, values out; reading files (and bounding their size) is :mod:`ebbtide.adapters.specfiles`'
job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

__all__ = [
    "MAX_ALIAS_EXPANSION",
    "MAX_DEPTH",
    "LoadedDocument",
    "YamlProblem",
    "load_documents",
]

#: the deepest nesting of mappings and sequences accepted in one document
MAX_DEPTH = 100
#: how many values aliases (``*name``) may add to one document once expanded
MAX_ALIAS_EXPANSION = 100_000

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class LoadedDocument:
    #: 1-based position in the stream (empty documents count)
    index: int
    body: Any
    #: 1-based line where the document starts
    line: int


class YamlProblem(ValueError):
    """The text is not acceptable YAML; ``document`` is the 1-based index of the document at fault."""

    def __init__(self, document: int, reason: str) -> None:
        super().__init__(reason)
        self.document = document
        self.reason = reason


def load_documents(text: str) -> list[LoadedDocument]:
    """Every non-empty document of a YAML stream; raises :class:`YamlProblem` (syntax, limits)."""
    docs: list[LoadedDocument] = []
    index = 1  # the document being read
    try:
        loader = _Loader(text)
        try:
            while loader.check_node():
                node = loader.get_node()
                if node is not None:
                    _check_size(node, index)
                    body = loader.construct_document(node)
                    if body is not None:
                        docs.append(LoadedDocument(index, body, node.start_mark.line + 1))
                index += 1
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (control characters, ...)
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise YamlProblem(index, f"at line {line}, column {column}: {exc.reason} in YAML") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(index, f"YAML syntax error {_where(exc)}{_reason(exc)}") from None
    except RecursionError:  # the pure-Python composer recurses per nesting level
        raise YamlProblem(index, f"nested more than {MAX_DEPTH} levels deep") from None
    return docs


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return f"at line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""


def _reason(exc: yaml.YAMLError) -> str:
    return str(getattr(exc, "problem", None) or exc)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if type(node) is yaml.MappingNode:
        return [n for pair in node.value for n in pair]
    return list(node.value)  # a sequence (scalars are never measured: they hold nothing)


def _check_size(root: yaml.Node, document: int) -> None:
    """Refuse a document nested too deeply, with a recursive alias, or that aliases blow up.

    One iterative depth-first pass: each distinct collection is measured once (its expanded size and
    height are remembered), so a bomb is measured in time proportional to the text, not to its expansion.
    """
    if type(root) is yaml.ScalarNode:
        return
    scalar = yaml.ScalarNode
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values once expanded, nesting height)
    written = 0  # values as written: each collection once, each scalar where it appears
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, list[yaml.Node] | None]] = [(root, None)]
    while stack:
        node, kids = stack.pop()
        key = id(node)
        if kids is not None:  # every child measured: measure the node
            on_path.discard(key)
            size, height = 1, 0
            for kid in kids:
                if type(kid) is scalar:
                    size += 1
                else:
                    kid_size, kid_height = measured[id(kid)]
                    size += kid_size
                    height = max(height, kid_height)
            if height >= MAX_DEPTH:
                line = node.start_mark.line + 1
                raise YamlProblem(document, f"nested more than {MAX_DEPTH} levels deep (line {line})")
            measured[key] = (size, height + 1)
            continue
        if key in measured:
            continue
        kids = _children(node)
        written += 1
        on_path.add(key)
        stack.append((node, kids))
        for kid in kids:
            if type(kid) is scalar:
                written += 1
            elif id(kid) in on_path:
                line = kid.start_mark.line + 1
                raise YamlProblem(document, f"the value at line {line} contains an alias to itself")
            elif id(kid) not in measured:
                stack.append((kid, None))
    expanded = measured[id(root)][0]
    if expanded - written > MAX_ALIAS_EXPANSION:
        raise YamlProblem(
            document,
            f"aliases (*name) expand this document to {expanded:,} values; at most "
            f"{MAX_ALIAS_EXPANSION:,} may come from aliases",
        )
