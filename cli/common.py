"""Shared plumbing of the commands: consoles, errors (exit code 2), atomic output files."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from ebbtide.core.spec import Problem, SpecError, SpecWarning
from ebbtide.sim.report import PlotUnavailable

#: exit code of every bad input (spec, scenario, data file, option)
EXIT_BAD_INPUT = 2
#: time one run and estimate the total from this many runs on
ESTIMATE_FROM = 1000
#: warn when the runs are estimated to take longer than this (seconds)
WARN_AFTER = 60.0

F = TypeVar("F", bound=Callable[..., Any])


class TableOrJson(StrEnum):
    table = "table"
    json = "json"


class SimFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


class TextOrJson(StrEnum):
    text = "text"
    json = "json"


def err_console() -> Console:
    """Messages on stderr. Markup is off: user text (names, paths, values) is printed as written."""
    return Console(file=sys.stderr, highlight=False, markup=False)


def out_console(stream: IO[str] | None = None) -> Console:
    """A console for data: stdout (or ``stream``); wide and colourless when not a terminal."""
    stream = stream if stream is not None else sys.stdout
    tty = (hasattr(stream, "isatty") and stream.isatty()) or "COLUMNS" in os.environ
    return Console(
        file=stream,
        width=None if tty else 200,
        no_color=not (hasattr(stream, "isatty") and stream.isatty()),
        highlight=False,
        markup=False,  # table cells and lines hold user text: never read it as markup
        soft_wrap=True,
    )


_ERROR = Text("error:", style="bold red")


class BadInput(Exception):
    """A bad input found by the command line itself (an option value, a missing file)."""


def fail(message: str) -> typer.Exit:
    """Print ``message`` on stderr and return the Exit(2) to raise."""
    err_console().print(_ERROR, message, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


def problem_text(p: Problem) -> str:
    """A problem on one line; problems outside any YAML document (data files, options) name no document."""
    if p.document:
        return str(p)
    where = f"{p.field}: " if p.field else ""
    return f"{p.file}: {where}{p.reason}"


def print_warnings(warnings: Iterable[SpecWarning]) -> None:
    """``warning: FILE: Kind/name: field.path: reason`` on stderr, one a line (not an error: exit code 0)."""
    console = err_console()
    for w in warnings:
        console.print(f"warning: {w}", soft_wrap=True)


def spec_error(exc: SpecError) -> typer.Exit:
    console = err_console()
    n = len(exc.problems)
    console.print(_ERROR, f"{n} problem{'s' if n != 1 else ''}:")
    for p in exc.problems:
        console.print(f"  {problem_text(p)}", soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


def guard(fn: F) -> F:
    """Turn every bad input into a clear message on stderr and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except SpecError as exc:
            raise spec_error(exc) from None
        except BadInput as exc:
            raise fail(str(exc)) from None
        except PlotUnavailable as exc:
            raise fail(str(exc)) from None
        except OSError as exc:
            name = f"{exc.filename}: " if exc.filename else ""
            raise fail(f"{name}{exc.strerror or exc}") from None
        except KeyboardInterrupt:
            err_console().print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def output(path: Path | None, binary: bool = False) -> Iterator[IO[Any]]:
    """Where data goes: stdout, or ``path`` written atomically (a temp file renamed only on success)."""
    if path is None:
        yield sys.stdout.buffer if binary else sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    directory = check_output_path(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise BadInput(f"{target}: cannot write the file: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as fh:
            yield fh
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except OSError as exc:  # the temporary file is ours: name the file the user asked for
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise BadInput(f"{target}: cannot write the file: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_output_path(path: Path, option: str = "") -> Path:
    """Where ``path`` will be written, checked before any work: its directory exists and is writable,
    and it is not itself a directory. Returns the directory; raises :class:`BadInput`."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    name = f"{option} {target}" if option else str(target)
    if target.is_dir():
        raise BadInput(f"{name}: is a directory, not a file name")
    if not directory.is_dir():
        raise BadInput(f"{name}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise BadInput(f"{name}: the directory {directory} is not writable")
    return directory


def check_outputs(*options: tuple[str, Path | None]) -> None:
    """Check every output option given (``("--out", path)``, ...) before a long run."""
    for option, path in options:
        if path is not None:
            check_output_path(path, option)


def check_plotting(plot: Path | None, html_file: Path | None) -> None:
    """Pictures need matplotlib: say so before the runs, not after them."""
    if (plot is not None or html_file is not None) and importlib.util.find_spec("matplotlib") is None:
        raise PlotUnavailable("plots need matplotlib: install ebbtide[plot] (pip install 'ebbtide[plot]')")


def cap_workers(workers: int) -> int:
    """At most one worker process per CPU: more only slow the runs down. Says so on stderr."""
    cpus = os.cpu_count() or 1
    if workers <= cpus:
        return workers
    err_console().print(f"warning: --workers {workers}: this machine has {cpus} CPUs, using {cpus}")
    return cpus


def warn_run_time(runs: int, workers: int, one_run: Callable[[], object]) -> None:
    """Past :data:`ESTIMATE_FROM` runs, time one run and warn on stderr when all of them would take longer
    than :data:`WARN_AFTER` seconds (the runs still start: Ctrl-C stops them)."""
    if runs < ESTIMATE_FROM:
        return
    started = time.perf_counter()
    one_run()
    per_run = time.perf_counter() - started
    total = per_run * runs / workers
    if total > WARN_AFTER:
        err_console().print(
            f"warning: {runs} runs will take about {_minutes(total)} "
            f"({per_run:.3f} s per run measured, {workers} worker{'s' if workers != 1 else ''}); "
            "Ctrl-C stops them"
        )


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{max(minutes, 1)} min"


def write_atomic(path: Path, data: bytes | str) -> None:
    with output(path, binary=isinstance(data, bytes)) as fh:
        fh.write(data)


def check_suffix(path: Path | None, suffixes: tuple[str, ...], option: str) -> None:
    if path is not None and path.suffix.lower() not in suffixes:
        raise BadInput(f"{option} {path}: the file name must end with {' or '.join(suffixes)}")


def parse_pairs(entries: list[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"{option} {entry!r}: write NAME=VALUE")
        out[key.strip()] = value
    return out
