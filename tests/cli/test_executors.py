"""``simulate`` / ``compare`` ``--executor dask``: the same output as one process; bad options are exit 2."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ebbtide.cli.main import app

SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
FAILING = str(SCENARIOS / "fails-at-40.yaml")
FLAKY = str(SCENARIOS / "flaky-metric.yaml")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert "Traceback" not in result.stdout + result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_compare_on_a_local_dask_cluster_prints_what_one_process_prints() -> None:
    pytest.importorskip("distributed")
    args = ["compare", FAILING, FLAKY, "--runs", "40", "--seed", "3", "--format", "json"]
    code, alone, _ = run(*args)
    assert code == 0
    code, spread, _ = run(*args, "--executor", "dask", "--workers", "2")
    assert code == 0
    assert spread == alone


def test_a_scheduler_without_the_dask_executor_is_exit_2() -> None:
    code, out, err = run("simulate", FAILING, "--runs", "2", "--dask-scheduler", "tcp://127.0.0.1:8786")
    assert code == 2 and out == ""
    assert "--dask-scheduler tcp://127.0.0.1:8786: only with --executor dask" in err


def test_an_unreachable_scheduler_is_exit_2_before_any_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("distributed")
    import ebbtide.sim.dask_executor as dx

    monkeypatch.setattr(dx, "DaskExecutor", functools.partial(dx.DaskExecutor, timeout=1))  # a quick test
    out_file = tmp_path / "out.json"
    code, _, err = run(
        "compare",
        FAILING,
        FLAKY,
        "--executor",
        "dask",
        "--dask-scheduler",
        "tcp://127.0.0.1:9",
        "-o",
        str(out_file),
    )
    assert code == 2 and "tcp://127.0.0.1:9: cannot connect" in err
    assert not out_file.exists() and list(tmp_path.iterdir()) == []


def test_without_dask_installed_the_dask_executor_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import ebbtide.sim.dask_executor as dx

    monkeypatch.setattr(dx, "dask_available", lambda: False)
    code, _, err = run("simulate", FAILING, "--runs", "2", "--executor", "dask")
    assert code == 2 and "pip install 'ebbtide[dask]'" in err
