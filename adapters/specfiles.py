"""Reading user files: spec and scenario YAML, recorded metrics (the I/O side of :mod:`ebbtide.core.spec`).

Every user file is read through :func:`read_text`: at most a bounded number of bytes (a file larger than
that, or an endless device, is refused without reading it all) and UTF-8 only, with the position of the
first byte that is not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from ebbtide.core.spec import Document, Problem, SpecError, SpecSet, parse_documents

__all__ = [
    "MAX_DATA_BYTES",
    "MAX_YAML_BYTES",
    "FileProblem",
    "load_spec_files",
    "read_documents",
    "read_text",
]

#: the largest spec or scenario file read
MAX_YAML_BYTES = 8 * 1024 * 1024
#: the largest recorded-metrics file (CSV or JSON) read
MAX_DATA_BYTES = 256 * 1024 * 1024


class FileProblem(ValueError):
    """A user file cannot be read as text; ``reason`` says why, without naming the file."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_text(path: str | Path, limit: int = MAX_YAML_BYTES) -> str:
    """The UTF-8 text of a user file of at most ``limit`` bytes; raises :class:`FileProblem`."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise FileProblem(f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise FileProblem(f"the file is larger than {_size(limit)}, the most accepted")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise FileProblem(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line}, column {column} "
            "(save the file as UTF-8)"
        ) from None


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB"


def read_documents(paths: Sequence[str | Path]) -> list[Document]:
    """Every document of every file; SpecError lists all unreadable files and YAML syntax errors."""
    docs: list[Document] = []
    problems: list[Problem] = []
    for path in paths:
        name = str(path)
        try:
            text = read_text(path)
        except FileProblem as exc:
            problems.append(Problem(name, 0, None, None, "", exc.reason))
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
