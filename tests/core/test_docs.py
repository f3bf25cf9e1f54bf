"""The embedding guide's example runs, and prints what the guide says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "embedding.md"


def test_embedding_example_runs_and_prints_what_the_doc_says() -> None:
    text = DOC.read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(code) == 1
    printed = re.search(r"It prints:\n\n```\n(.*?)```", text, re.S)
    assert printed is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code[0], str(DOC), "exec"), {"__name__": "docs_embedding"})
    assert out.getvalue() == printed.group(1)


def test_testing_guide_property_runs() -> None:
    doc = DOC.parent / "testing.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)
    assert blocks, "docs/testing.md has a runnable example"
    namespace: dict[str, object] = {"__name__": "docs_testing"}
    for block in blocks:
        exec(compile(block, str(doc), "exec"), namespace)  # the block runs its own property
    assert callable(namespace["test_healthy_rollouts_go_live_without_failure_notifications"])
