"""The ebbtide command: every command, every format, and bad input (exit code 2, no traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ebbtide.cli.main import app
from ebbtide.core.state import PHASES

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
HEALTHY = str(EX / "scenarios" / "healthy-release.yaml")
FAILING = str(EX / "scenarios" / "fails-at-40.yaml")
CANARY = str(EX / "specs" / "canary.yaml")
CSV = str(EX / "backtest" / "checkout-metrics.csv")
PROM = str(EX / "backtest" / "error-rate.prometheus.json")

RUN_KEYS = {"schema", "run", "seed", "outcome", "timeline", "notifications", "rejected", "events"}
OUTCOME_KEYS = {
    "final_state",
    "result",
    "live_revision",
    "degraded",
    "rolled_back",
    "rollback_reason",
    "failed_revision",
    "detected_at",
    "time_to_detect",
    "time_to_rollback",
    "time_to_live",
    "bad_requests",
    "dropped_requests",
    "false_rollback",
    "ended_at",
    "failure_reason",
    "recorded_failures",
}
SUMMARY_KEYS = {
    "schema",
    "runs",
    "results",
    "final_states",
    "time_to_detect",
    "time_to_rollback",
    "time_to_live",
    "mean_bad_requests",
    "false_rollbacks",
    "false_rollback_rate",
    "rollback_reasons",
    "failure_reasons",
}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})  # wide tables: no wrapping
    assert "Traceback" not in result.stdout + result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


# ----- simulate ------------------------------------------------------------------------------------------
def test_simulate_table_healthy() -> None:
    code, out, _ = run("simulate", HEALTHY, "--runs", "3", "--seed", "1")
    assert code == 0
    assert "outcome: promoted" in out and "│ 3 " in out.replace("│ 3  ", "│ 3 ")
    assert "time to detect" in out and "false rollbacks" in out
    assert out.count("promoted") >= 4  # three run rows and the aggregate


def test_simulate_table_many_runs_shows_only_the_aggregate() -> None:
    code, out, _ = run("simulate", FAILING, "--runs", "25")
    assert code == 0
    assert "aggregate" in out and "runs\n" not in out.split("aggregate")[0]
    assert "outcome: rolled-back │ 25" in " ".join(out.split()).replace("│ 25 │", "│ 25")


def test_simulate_json_schema_failing() -> None:
    code, out, _ = run("simulate", FAILING, "--runs", "2", "--format", "json", "--timeline")
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == "ebbtide.dev/sim-result/v1"
    assert len(doc["runs"]) == 2
    for r in doc["runs"]:
        assert set(r) == RUN_KEYS
        assert set(r["outcome"]) == OUTCOME_KEYS
        assert r["outcome"]["result"] == "rolled-back"
        assert r["timeline"] and {"t", "state", "weights", "replicas", "event"} <= set(r["timeline"][0])
        assert any(n["event"] == "rollout-failed" for n in r["notifications"])
    assert set(doc["summary"]) == SUMMARY_KEYS
    assert doc["summary"]["results"]["rolled-back"] == 2


def test_simulate_json_without_timeline_flag_has_empty_timelines() -> None:
    code, out, _ = run("simulate", HEALTHY, "--runs", "1", "-f", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["runs"][0]["timeline"] == []
    assert doc["runs"][0]["outcome"]["result"] == "promoted"


def test_simulate_jsonl_lines_are_runs_plus_summary() -> None:
    code, out, _ = run("simulate", FAILING, "--runs", "4", "--format", "jsonl")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 5
    runs = [json.loads(line) for line in lines[:-1]]
    assert [r["run"] for r in runs] == [0, 1, 2, 3]
    assert all(set(r) == RUN_KEYS for r in runs)
    assert set(json.loads(lines[-1])["summary"]) == SUMMARY_KEYS


def test_simulate_same_seed_same_output() -> None:
    a = run("simulate", FAILING, "--runs", "3", "-f", "jsonl", "--seed", "9")[1]
    b = run("simulate", FAILING, "--runs", "3", "-f", "jsonl", "--seed", "9", "--workers", "2")[1]
    assert a == b


def test_simulate_out_writes_a_file(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    code, out, _ = run("simulate", HEALTHY, "--runs", "2", "-f", "json", "--out", str(target))
    assert code == 0 and out == ""
    assert json.loads(target.read_text())["summary"]["runs"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temp file left behind


def test_simulate_out_into_missing_directory_is_exit_2(tmp_path: Path) -> None:
    code, _, err = run("simulate", HEALTHY, "--runs", "1", "--out", str(tmp_path / "nope" / "x.json"))
    assert code == 2 and "does not exist" in err


def test_broken_scenario_names_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    text = Path(HEALTHY).read_text().replace("../specs/canary.yaml", str(EX / "specs" / "canary.yaml"))
    bad.write_text(text.replace("revision: v2}", "revision: v3}"))
    out_file = tmp_path / "out.json"
    code, _, err = run("simulate", str(bad), "-f", "json", "--out", str(out_file))
    assert code == 2
    assert str(bad) in err and "spec.actions[0].revision" in err and "'v3'" in err
    assert not out_file.exists()


def test_broken_spec_names_file_document_and_field(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(Path(CANARY).read_text().replace("setWeight: 25", "setWeight: 125"))
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(Path(HEALTHY).read_text().replace("../specs/canary.yaml", str(spec)))
    code, _, err = run("simulate", str(scenario))
    assert code == 2
    assert str(spec) in err and "document 4" in err and "spec.canary.steps[2].setWeight" in err
    code, _, err = run("validate", str(spec))
    assert code == 2 and "spec.canary.steps[2].setWeight" in err


def test_bad_options_exit_2() -> None:
    assert run("simulate", HEALTHY, "--format", "xml")[0] == 2
    assert run("simulate", HEALTHY, "--runs", "0")[0] == 2
    assert run("simulate", "/nonexistent/scenario.yaml")[0] == 2
    code, _, err = run("simulate", HEALTHY, "--plot", "x.jpg")
    assert code == 2 and ".png" in err


# ----- compare, explain ----------------------------------------------------------------------------------
def test_compare_side_by_side() -> None:
    code, out, _ = run("compare", HEALTHY, FAILING, "--runs", "3", "--seed", "5")
    assert code == 0
    header = next(line for line in out.splitlines() if "measure" in line)
    assert "healthy-release" in header and "fails-at-40" in header
    assert "outcome: promoted" in out and "outcome: rolled-back" in out
    code, out, _ = run("compare", HEALTHY, FAILING, "--runs", "2", "-f", "json")
    doc = json.loads(out)
    assert [s["label"] for s in doc["scenarios"]] == ["healthy-release", "fails-at-40"]
    assert doc["scenarios"][1]["summary"]["results"]["rolled-back"] == 2


def test_compare_needs_two() -> None:
    assert run("compare", HEALTHY)[0] == 2


def test_explain_trace() -> None:
    code, out, _ = run("explain", FAILING, "--run", "3")
    assert code == 0
    assert "deploy v2" in out and "in-progress -> verifying" in out
    assert "notify rollout-failed v2" in out and "notify rollout-rolled-back" in out
    assert "outcome: rolled-back" in out and "weights v1=90 v2=10" in out
    # the same run as in a batch
    batch = json.loads(run("simulate", FAILING, "--runs", "4", "-f", "jsonl")[1].splitlines()[3])
    assert "detected at" in out and batch["outcome"]["result"] == "rolled-back"
    one = json.loads(run("explain", FAILING, "--run", "3", "-f", "json")[1])
    assert one["outcome"] == batch["outcome"]


# ----- backtest ------------------------------------------------------------------------------------------
def test_backtest_csv_passes_from_the_start() -> None:
    code, out, _ = run("backtest", CANARY, CSV, "--template", "checkout-health")
    assert code == 0
    assert "verdict: PASSED" in out and "+1m" in out


def test_backtest_csv_fails_after_the_bad_deploy() -> None:
    code, out, _ = run("backtest", CANARY, CSV, "-t", "checkout-health", "--start", "+19m45s", "-f", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["outcome"] == "failed" and doc["metric"] == "success-rate" and doc["index"] == 3
    assert doc["at"] - doc["origin"] == 20 * 60 + 45
    assert doc["limit"].startswith("failureLimit 1")


def test_backtest_prometheus_json_background() -> None:
    code, out, _ = run("backtest", CANARY, PROM, "--template", "error-watch")
    assert code == 0
    assert "background verification" in out
    assert "verdict: FAILED" in out and "+25m30s" in out and "#26" in out and "failureLimit 0" in out


def test_backtest_rolling() -> None:
    code, out, _ = run(
        "backtest", CANARY, CSV, "-t", "checkout-health", "--rolling", "--step", "2m", "-f", "json"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["windows"] == 30 and doc["counts"]["failed"] == 10
    first_bad = next(r for r in doc["results"] if r["outcome"] == "failed")
    assert first_bad["start"] - doc["origin"] == 20 * 60


def test_backtest_bad_input() -> None:
    code, _, err = run("backtest", CANARY, CSV)
    assert code == 2 and "--template" in err and "checkout-health" in err
    code, _, err = run("backtest", CANARY, CSV, "-t", "checkout-health", "--metric", "nope")
    assert code == 2 and "no metric 'nope'" in err
    code, _, err = run("backtest", CANARY, CSV, "-t", "checkout-health", "--start", "soon")
    assert code == 2 and "--start" in err


# ----- validate, plan, diagram ---------------------------------------------------------------------------
def test_validate_ok() -> None:
    code, out, _ = run("validate", CANARY, HEALTHY, str(EX / "specs" / "rolling.yaml"))
    assert code == 0
    assert out.count("OK ") == 3 and "Scenario/healthy-release" in out


def test_validate_reports_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: ebbtide.dev/v1alpha1\nkind: Strategy\nmetadata: {name: s}\n"
        "spec:\n  canary:\n    steps:\n      - setWeight: 120\n"
    )
    worse = tmp_path / "worse.yaml"
    worse.write_text("kind: Strategy\n")
    code, out, err = run("validate", str(bad), CANARY, str(worse))
    assert code == 2
    assert f"{worse}: document 1" in err and "apiVersion: required field is missing" in err
    assert f"OK    {CANARY}" in out and str(bad) not in out
    assert "2 problems" in err and "steps[0].setWeight" in err and "document 1 (Strategy/s)" in err


def test_plan_timeline() -> None:
    code, out, _ = run("plan", CANARY)
    assert code == 0
    assert "rollout checkout" in out and "verification checkout-health" in out and "pause 5m" in out
    assert "minimum time to live (instant readiness, passing verification): 8m" in out
    doc = json.loads(run("plan", CANARY, "--replicas", "4", "-f", "json")[1])
    assert doc["replicas"] == 4
    assert [s["canary_weight"] for s in doc["steps"]] == [10, 10, 25, 25, 25, 50, 50, 80, 100]
    assert [s["canary_replicas"] for s in doc["steps"]][-2:] == [4, 4]
    assert doc["steps"][-1]["cumulative"] == 480.0
    code, out, _ = run("plan", str(EX / "specs" / "pause-policy.yaml"))
    assert "until promoted" in out and "indefinite pause" in out


def test_plan_shows_where_the_background_verification_starts(tmp_path: Path) -> None:
    spec = tmp_path / "late-background.yaml"
    text = Path(CANARY).read_text()
    assert "    backgroundVerification:\n" in text
    spec.write_text(
        text.replace("    backgroundVerification:\n", "    backgroundVerification:\n      startingStep: 2\n")
    )
    code, out, _ = run("plan", str(spec))
    assert code == 0 and "background verification: error-watch (from step 2)" in out
    assert json.loads(run("plan", str(spec), "-f", "json")[1])["background_starting_step"] == 2
    code, out, _ = run("plan", CANARY)
    assert "background verification: error-watch\n" in out  # from the start: nothing added


def test_validate_and_plan_warn_about_an_interval_only_metric_in_a_step(tmp_path: Path) -> None:
    spec = tmp_path / "indefinite.yaml"
    spec.write_text(
        "apiVersion: ebbtide.dev/v1alpha1\nkind: VerificationTemplate\nmetadata: {name: watch}\nspec:\n"
        "  metrics:\n    - name: error-rate\n      interval: 30s\n      successCondition: result < 0.05\n"
        "      provider: {prometheus: {query: errors}}\n---\n"
        "apiVersion: ebbtide.dev/v1alpha1\nkind: Strategy\nmetadata: {name: canary}\nspec:\n  canary:\n"
        "    steps: [{setWeight: 20}, {verification: {templateNames: [watch]}}]\n---\n"
        "apiVersion: ebbtide.dev/v1alpha1\nkind: RolloutSpec\nmetadata: {name: web}\n"
        "spec: {strategy: {name: canary}}\n"
    )
    want = "step 1: metric 'error-rate' of VerificationTemplate 'watch' has an interval and no count"
    for command in ("validate", "plan"):
        code, out, err = run(command, str(spec))
        assert code == 0 and out, "a warning is not a problem"
        assert err.startswith(f"warning: {spec}") and want in err and err.count("warning:") == 1
    assert run("validate", CANARY, HEALTHY)[2] == "", "no warning for metrics with a count"


def test_plan_unknown_rollout_is_exit_2() -> None:
    code, _, err = run("plan", CANARY, "--rollout", "nope")
    assert code == 2 and "--rollout" in err and "'nope'" in err and "canary.yaml" in err


def test_diagram_has_every_phase() -> None:
    code, out, _ = run("diagram")
    assert code == 0 and out.startswith("stateDiagram-v2")
    for phase in PHASES:
        assert phase.replace("-", "_") in out


# ----- pictures ------------------------------------------------------------------------------------------
def test_plot_and_html(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    one, many, page = tmp_path / "one.png", tmp_path / "many.png", tmp_path / "report.html"
    assert run("simulate", FAILING, "--runs", "1", "--plot", str(one))[0] == 0
    assert run("simulate", FAILING, "--runs", "5", "--plot", str(many), "--html", str(page))[0] == 0
    for png in (one, many):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 2 and "<table>" in text and "rollout-failed" in text


def test_console_script_entry_point() -> None:
    from ebbtide.cli import main as module

    assert callable(module.main)


def test_plan_of_a_blue_green_rollout_speaks_of_the_new_revision_and_the_service_switch() -> None:
    from typer.testing import CliRunner

    from ebbtide.cli.main import app

    out = CliRunner().invoke(app, ["plan", str(EX / "specs" / "blue-green.yaml")], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "active service switches all traffic at once" in out.output
    assert "new revision weight" in out.output and "canary weight" not in out.output
