"""The error examples of docs/cli.md ("Exit codes") are real output: each command is run and compared."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ebbtide.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cli.md"


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
    command: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = command.split()
    assert args[0] == "ebbtide"
    if not all((ROOT / a).exists() for a in args[1:] if a.endswith(".yaml")):
        pytest.skip("an illustration with a file that is not in the repository")
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, args[1:], env={"COLUMNS": "200"})
    shown = result.stdout + result.stderr + f"[exit {result.exit_code}]\n"
    assert shown == expected
