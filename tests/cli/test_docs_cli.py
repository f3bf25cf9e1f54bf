"""The error examples of docs/cli.md ("Exit codes") are real output: each command is run and compared (a file
the doc only imagines, such as broken.yaml, is written as the doc describes it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ebbtide.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cli.md"


def _broken() -> str:
    """broken.yaml: the healthy example deploying a revision it does not declare."""
    text = (ROOT / "examples" / "scenarios" / "healthy-release.yaml").read_text()
    text = text.replace("../specs/canary.yaml", str(ROOT / "examples" / "specs" / "canary.yaml"))
    return text.replace("action: deploy, revision: v2}", "action: deploy, revision: v3}")


ILLUSTRATIONS = {"broken.yaml": _broken}


def examples() -> list[tuple[str, str]]:
    """(command line, expected output) of every console block of the Exit codes section."""
    text = DOC.read_text()
    section = text[text.index("## Exit codes") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```console\n\$ (.*?)\n(.*?)```", section, flags=re.S)
    return [(command, output) for command, output in blocks]


def test_the_section_has_examples() -> None:
    assert len(examples()) >= 4


@pytest.mark.parametrize(("command", "expected"), examples())
def test_an_exit_code_example_is_real_output(
    command: str, expected: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    args = command.split()
    assert args[0] == "ebbtide"
    monkeypatch.chdir(ROOT)
    for name in args[1:]:
        if name in ILLUSTRATIONS:  # a file the doc imagines: written as it describes it
            monkeypatch.chdir(tmp_path)
            (tmp_path / name).write_text(ILLUSTRATIONS[name]())
    assert all(Path(a).exists() for a in args[1:] if a.endswith(".yaml"))
    result = CliRunner().invoke(app, args[1:], env={"COLUMNS": "200"})
    shown = result.stdout + result.stderr + f"[exit {result.exit_code}]\n"
    assert shown == expected
