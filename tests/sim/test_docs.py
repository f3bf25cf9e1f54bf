"""The Python examples of the simulator docs run, and print what the docs say they print.

A ```python block followed by "It prints:" and a plain ``` block is run from the repository root and its
output compared exactly (seeded simulations print the same figures every time). When an output changes on
purpose, regenerate the printed blocks:

    EBBTIDE_REGENERATE_DOCS=1 python -m pytest tests/sim/test_docs.py
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest
import yaml

from ebbtide.adapters.memory import Signal
from ebbtide.sim.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = re.compile(r"```python\n(.*?)```\n\nIt prints:\n\n```\n(.*?)```", re.S)
REGENERATE = os.environ.get("EBBTIDE_REGENERATE_DOCS") == "1"


@pytest.mark.parametrize("doc", ["docs/simulator.md", "docs/scenario.md"])
def test_python_examples_print_what_the_doc_shows(doc: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    path = ROOT / doc
    text = path.read_text()
    examples = EXAMPLE.findall(text)
    assert examples, f"{doc} has runnable examples"
    for code, shown in examples:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, doc, "exec"), {"__name__": "docs_example"})
        if REGENERATE:
            text = text.replace(
                f"{code}```\n\nIt prints:\n\n```\n{shown}```",
                f"{code}```\n\nIt prints:\n\n```\n{out.getvalue()}```",
                1,
            )
            continue
        assert out.getvalue() == shown, f"{doc}: regenerate with EBBTIDE_REGENERATE_DOCS=1"
    if REGENERATE:
        path.write_text(text)


def test_the_scenario_reference_examples_validate() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "scenario.md").read_text(), re.S)
    scenario = Scenario.model_validate(yaml.safe_load(blocks[0]))  # the annotated example is valid
    assert scenario.spec.revisions and scenario.spec.actions
    signal = next(b for b in blocks if b.startswith("value:"))
    assert Signal.model_validate(yaml.safe_load(signal)).value is not None  # and so is the signal model


def _table_fields(text: str, header: str) -> set[str]:
    """The backquoted names in the first column of the markdown table whose header cell is ``header``."""
    table = text.split(f"| {header} |", 1)[1].split("\n\n", 1)[0]
    names: set[str] = set()
    for row in table.splitlines()[2:]:
        names.update(re.findall(r"`([a-z_]+)`", row.split("|")[1]))
    return names


def test_the_documented_result_fields_are_the_real_ones() -> None:
    from dataclasses import fields

    from ebbtide.sim.outcome import Outcome
    from ebbtide.sim.runner import load_scenario, replay_run

    text = (ROOT / "docs" / "scenario.md").read_text()
    assert _table_fields(text, "outcome field") == {f.name for f in fields(Outcome)}
    run = replay_run(load_scenario(ROOT / "examples" / "scenarios" / "fails-at-40.yaml"), 42, 0)
    assert _table_fields(text, "entry field") == set(run.timeline[0])
