"""Every command output shown in the docs and the README is a real run's, re-run here and compared.

A doc block is a ```console fence whose first line is ``$ ebbtide ...`` (optionally piped through
``head -N``, ``tail -N`` or ``cut -c1-N``), followed by what the command printed on stdout and stderr,
interleaved as a terminal shows them, and ``[exit N]`` when the block says so. Commands run in a directory
that holds ``examples/`` and the files of ``tests/cli/doc-files`` (``broken.yaml``, ``bad.yaml``), with
``COLUMNS=120``. Nothing in these outputs varies between runs (seeded simulations, no timings), so the
comparison is exact but for trailing spaces. When an output changes on purpose, regenerate the blocks:

    EBBTIDE_REGENERATE_DOCS=1 python -m pytest tests/cli/test_doc_outputs.py
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ebbtide.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
FILES = Path(__file__).parent / "doc-files"
DOCS = ["README.md", "docs/cli.md", "docs/simulator.md", "docs/scenario.md", "docs/spec-reference.md"]
BLOCK = re.compile(r"```console\n(\$ ebbtide [^\n]*)\n(.*?)```", re.S)
REGENERATE = os.environ.get("EBBTIDE_REGENERATE_DOCS") == "1"


def blocks(doc: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer((ROOT / doc).read_text())]


def pipe(text: str, stage: str) -> str:
    words = shlex.split(stage)
    lines = text.splitlines(keepends=True)
    if words[0] == "head":
        return "".join(lines[: int(words[1].lstrip("-n"))])
    if words[0] == "tail":
        return "".join(lines[-int(words[1].lstrip("-n")) :])
    if words[0] == "cut" and words[1].startswith("-c1-"):
        n = int(words[1][4:])
        return "".join(line.rstrip("\n")[:n] + "\n" for line in lines)
    raise ValueError(f"unsupported pipe stage in a doc block: {stage!r}")


def render(command: str) -> tuple[str, int]:
    """What ``command`` prints, as a doc block shows it, and its exit code."""
    stages = command[2:].split(" | ")
    args = shlex.split(stages[0])[1:]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "120"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    text = result.output
    for stage in stages[1:]:
        text = pipe(text, stage)
    return text, result.exit_code


def normal(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.splitlines())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("docs")
    (where / "examples").symlink_to(ROOT / "examples")
    for f in FILES.iterdir():
        shutil.copy(f, where / f.name)
    return where


@pytest.mark.parametrize("doc", DOCS)
def test_doc_outputs_are_real(doc: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    found = blocks(doc)
    if doc != "docs/scenario.md":
        assert found, f"{doc} shows no command output"
    path = ROOT / doc
    text = path.read_text()
    for command, shown in found:
        exit_line = re.search(r"^\[exit \d+\]\n\Z", shown, re.M)
        output, code = render(command)
        if exit_line is not None:
            output += f"[exit {code}]\n"
        if REGENERATE:
            text = text.replace(
                f"```console\n{command}\n{shown}```", f"```console\n{command}\n{output}```", 1
            )
            continue
        assert normal(output) == normal(shown), (
            f"{doc}: the output of `{command[2:]}` changed; if that is intended, regenerate the docs:\n"
            "    EBBTIDE_REGENERATE_DOCS=1 python -m pytest tests/cli/test_doc_outputs.py"
        )
    if REGENERATE:
        path.write_text(text)
