"""The table of docs/argo-examples.md is a measurement: which of Argo Rollouts' own ``examples/`` manifests
``ebbtide validate`` loads alone and as a set with the two shared template files. Re-measured here when a git
directory of the argo-rollouts repository is given (``EBBTIDE_ARGO_ROLLOUTS=/path/to/argo-rollouts/.git``,
or a bare mirror); skipped otherwise (the files are Argo's, not ours: they are not copied into this repo)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ebbtide.cli.main import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "argo-examples.md"
GIT_DIR = os.environ.get("EBBTIDE_ARGO_ROLLOUTS", "")
NONE = "\N{EN DASH}"  #: the table's mark for "not measured"
SHARED = ["examples/analysis-templates.yaml", "examples/cluster-analysis-templates.yaml"]
ROW = re.compile(r"^\| `(examples/[^`]+)` \| (ok|fails) \| (ok|fails|" + NONE + r") \| .* \|$", re.M)


def validate(*files: str) -> bool:
    return CliRunner().invoke(app, ["validate", *files]).exit_code == 0


def measure(root: Path) -> list[tuple[str, str, str]]:
    """(file, alone, with the shared template files) for every YAML file under examples/."""
    rows: list[tuple[str, str, str]] = []
    os.chdir(root)
    files = sorted(str(p) for p in Path("examples").rglob("*") if p.suffix in (".yaml", ".yml"))
    for f in files:
        alone = "ok" if validate(f) else "fails"
        together = NONE if f in SHARED else ("ok" if validate("--set", f, *SHARED) else "fails")
        rows.append((f, alone, together))
    return rows


def test_the_doc_table_lists_a_measurement() -> None:
    rows = ROW.findall(DOC.read_text())
    assert len(rows) == 37 and len({f for f, _, _ in rows}) == 37
    alone = sum(a == "ok" for _, a, _ in rows)
    together = sum(t == "ok" for _, _, t in rows)
    assert f"{alone} of 37 load alone" in DOC.read_text()
    assert f"{together} of the other 35 load" in DOC.read_text()


@pytest.mark.skipif(not GIT_DIR, reason="set EBBTIDE_ARGO_ROLLOUTS to a git directory of argo-rollouts")
def test_argo_examples_load_as_the_doc_says(tmp_path: Path) -> None:
    archive = subprocess.run(
        ["git", f"--git-dir={GIT_DIR}", "archive", "HEAD", "examples"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tmp_path, filter="data")
    cwd = os.getcwd()
    try:
        measured = measure(tmp_path)
    finally:
        os.chdir(cwd)
    assert measured == ROW.findall(DOC.read_text())
