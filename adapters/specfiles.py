"""Reading spec files (the I/O side of :mod:`ebbtide.core.spec`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from ebbtide.core.spec import Document, Problem, SpecError, SpecSet, parse_documents

__all__ = ["load_spec_files", "read_documents"]


def read_documents(paths: Sequence[str | Path]) -> list[Document]:
    """Every document of every file; SpecError lists all unreadable files and YAML syntax errors."""
    docs: list[Document] = []
    problems: list[Problem] = []
    for path in paths:
        name = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            problems.append(Problem(name, 0, None, None, "", f"cannot read file: {reason}"))
            continue
        try:
            docs.extend(parse_documents(text, name))
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)
    return docs


def load_spec_files(paths: Sequence[str | Path], ignore_kinds: Iterable[str] = ()) -> SpecSet:
    """Read, parse and validate spec files as one set; SpecError lists every problem of every file."""
    docs: list[Document] = []
    problems: list[Problem] = []
    try:
        docs = read_documents(paths)
    except SpecError as exc:
        problems.extend(exc.problems)
    try:
        specs = SpecSet.from_documents(docs, ignore_kinds=ignore_kinds)
    except SpecError as exc:
        problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)
    return specs
