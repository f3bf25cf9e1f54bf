"""``ebbtide simulate`` / ``compare`` / ``explain``: per-run rows, progress off a terminal, measurements in
the timeline, strict JSON and refused non-finite inputs."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ebbtide.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "examples" / "scenarios"
FAILING = str(SCENARIOS / "fails-at-40.yaml")
HEALTHY = str(SCENARIOS / "healthy-release.yaml")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert "Traceback" not in result.stdout + result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def run_rows(table: str) -> list[int]:
    """The run indices of a runs table."""
    return [int(m) for m in re.findall(r"^│\s+(\d+) │", table, re.M)]


def strict(text: str) -> object:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in the output")

    return json.loads(text, parse_constant=refuse)


def test_per_run_rows_when_asked() -> None:
    code, out, _ = run("simulate", FAILING, "--runs", "25", "--per-run")
    assert code == 0 and run_rows(out.split("aggregate")[0]) == list(range(25))
    code, out, _ = run("simulate", FAILING, "--runs", "25")
    assert code == 0 and run_rows(out) == []  # past 20 runs: the aggregate only, unless asked


def test_progress_off_a_terminal_is_a_line_per_tenth_of_the_runs() -> None:
    code, _, err = run("simulate", HEALTHY, "--runs", "60")
    assert code == 0
    assert err.splitlines() == [f"simulating healthy-release: {k}/60 runs" for k in range(6, 61, 6)]
    assert run("simulate", HEALTHY, "--runs", "5")[2] == ""  # a few runs: no progress at all


def test_compare_reports_progress_per_scenario() -> None:
    code, _, err = run("compare", HEALTHY, FAILING, "--runs", "30")
    assert code == 0
    lines = err.splitlines()
    assert "healthy-release: 30/30 runs" in lines and "fails-at-40: 30/30 runs" in lines


def test_measurements_flag_puts_every_measurement_in_the_timeline() -> None:
    code, out, _ = run("simulate", FAILING, "--runs", "1", "-f", "json", "--measurements")
    assert code == 0
    doc = strict(out)
    assert isinstance(doc, dict)
    timeline = doc["runs"][0]["timeline"]
    measured = [e["measurement"] for e in timeline if e["measurement"]]
    assert len(measured) > 10 and {m["metric"] for m in measured} == {
        "success-rate",
        "p99-latency",
        "error-rate",
    }
    verdicts = [v["phase"] for e in timeline for v in e["verdicts"]]
    assert "Successful" in verdicts and "Failed" in verdicts
    code, out, _ = run("explain", FAILING, "--run", "0", "--measurements")
    assert code == 0 and "measured: failed" in out and "background verification error-watch Failed" in out


def test_html_report_has_a_row_per_run_with_per_run(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    page = tmp_path / "report.html"
    assert run("simulate", FAILING, "--runs", "25", "--per-run", "--html", str(page))[0] == 0
    runs_table = page.read_text().split("<h2>Runs</h2>")[1].split("</table>")[0]
    assert runs_table.count("<tr>") == 26  # the header and one row per run


def test_non_finite_number_in_a_scenario_is_exit_2(tmp_path: Path) -> None:
    text = Path(HEALTHY).read_text().replace("../specs/", str(ROOT / "examples" / "specs") + "/")
    bad = tmp_path / "nan.yaml"
    bad.write_text(text.replace("traffic: {rps: 200}", "traffic: {rps: .nan}"))
    code, out, err = run("simulate", str(bad), "-f", "json")
    assert code == 2 and out == ""
    assert f"{bad}: document 1 (Scenario/healthy-release): spec.traffic.rps:" in err and "finite" in err


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_progress_is_a_bar_not_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    from ebbtide.cli import main

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with main.RunProgress(200) as progress:
        advance = progress.task("simulating x", 200)
        assert progress.bar is not None
        for _ in range(200):
            advance()
    assert "200/200 runs\n" not in screen.getvalue()  # no plain progress lines on a terminal
    assert "simulating x" in screen.getvalue()  # the bar (rich draws it on the terminal)
