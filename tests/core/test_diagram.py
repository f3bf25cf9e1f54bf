"""The state diagram is generated from the transition table and pinned by a golden file; the docs show it
verbatim, and their Python examples run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ebbtide.core.machine import TABLE, mermaid
from ebbtide.core.state import PHASES

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "state-diagram.mmd"
DOCS = ROOT / "docs"
REGENERATE = (
    "the transition table changed; if that is intended, regenerate the golden diagram (and paste it into "
    "docs/semantics.md):\n"
    "    python -c \"from ebbtide.core.machine import mermaid; print(mermaid(), end='')\" "
    "> tests/core/golden/state-diagram.mmd"
)


def test_diagram_matches_golden() -> None:
    assert mermaid() == GOLDEN.read_text(), REGENERATE


def test_every_phase_appears_in_the_diagram() -> None:
    diagram = mermaid()
    for phase in PHASES:
        node = phase.replace("-", "_")
        assert re.search(rf"(^|\s){node}(\s|:|$)", diagram, re.M), f"{phase} missing from the diagram"


def test_every_transition_appears_in_the_diagram() -> None:
    lines = set(mermaid().splitlines())
    for trigger, sources, dest, _ in TABLE:
        for src in sources:
            line = f"    {src.replace('-', '_')} --> {dest.replace('-', '_')}: {trigger}"
            assert line in lines, line


def test_semantics_doc_contains_the_golden_diagram_verbatim() -> None:
    doc = (DOCS / "semantics.md").read_text()
    assert f"```mermaid\n{GOLDEN.read_text()}```" in doc, (
        "docs/semantics.md must show tests/core/golden/state-diagram.mmd verbatim in a ```mermaid block"
    )


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


@pytest.mark.parametrize("doc", ["concepts.md", "semantics.md"])
def test_doc_python_blocks_run(doc: str) -> None:
    blocks = _python_blocks(DOCS / doc)
    if doc == "concepts.md":
        assert blocks, "concepts.md has a runnable example"
    namespace: dict[str, object] = {"__name__": f"docs_{doc}"}
    for block in blocks:  # blocks of one page share a namespace, as a reader's session would
        exec(compile(block, f"docs/{doc}", "exec"), namespace)
