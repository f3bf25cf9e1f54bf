"""Strict inputs: every bad input is exit code 2 with a located message, never a traceback, in bounded time
and memory; user text (names, paths, values) is printed as written, square brackets included."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ebbtide.cli import common
from ebbtide.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
HEALTHY = EX / "scenarios" / "healthy-release.yaml"
CANARY = EX / "specs" / "canary.yaml"
CSV = EX / "backtest" / "checkout-metrics.csv"


def run(*args: str | Path) -> tuple[int, str, str]:
    """Exit code, stdout, stderr; any exception other than the exit itself fails the test."""
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    assert "Traceback" not in result.stdout + result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def scenario(tmp_path: Path, name: str = "s.yaml") -> Path:
    """The healthy example scenario, its spec path made absolute."""
    path = tmp_path / name
    path.write_text(HEALTHY.read_text().replace("../specs/canary.yaml", str(CANARY)))
    return path


def with_text(tmp_path: Path, name: str, old: str, new: str, source: Path = HEALTHY) -> Path:
    text = source.read_text().replace("../specs/canary.yaml", str(CANARY))
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new))
    return path


# ----- YAML safety ---------------------------------------------------------------------------------------
def laughs(indent: str, levels: int = 9) -> str:
    lines = [f"{indent}a0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"{indent}a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


BOMB_SPEC = (
    "apiVersion: ebbtide.dev/v1alpha1\nkind: VerificationTemplate\nmetadata: {name: t}\nspec:\n"
    "  metrics:\n    - name: m\n      successCondition: result > 0\n      provider:\n        job:\n"
    "          spec:\n" + laughs(" " * 12)
)


@pytest.mark.parametrize("command", ["validate", "plan", "simulate"])
def test_an_alias_bomb_is_exit_2_at_once(tmp_path: Path, command: str) -> None:
    spec = tmp_path / "bomb.yaml"
    spec.write_text(BOMB_SPEC)
    assert len(BOMB_SPEC) < 1400
    target = spec if command != "simulate" else with_text(tmp_path, "sc.yaml", str(CANARY), str(spec))
    # a separate process with a time limit: before the limit this hung, eating memory without end
    done = subprocess.run(
        [sys.executable, "-m", "ebbtide.cli.main", command, str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{spec}: document 1" in done.stderr and "aliases (*name) expand this document" in done.stderr


def test_deep_nesting_is_exit_2(tmp_path: Path) -> None:
    for i, text in enumerate(["kind: Strategy\nspec: " + "[" * 600 + "]" * 600, "a: " + "[" * 5000]):
        path = tmp_path / f"deep{i}.yaml"
        path.write_text(text)
        code, _, err = run("validate", path)
        assert code == 2 and f"{path}: document 1" in err


# ----- encodings -----------------------------------------------------------------------------------------
def latin1(path: Path) -> Path:
    path.write_bytes(path.read_bytes().replace(b"healthy-release", b"caf\xe9"))
    return path


@pytest.mark.parametrize("command", ["simulate", "explain", "compare", "validate", "plan"])
def test_a_scenario_that_is_not_utf8_is_exit_2(tmp_path: Path, command: str) -> None:
    bad = latin1(scenario(tmp_path))
    extra = {"explain": ["--run", "0"], "compare": [str(HEALTHY)]}.get(command, [])
    code, _, err = run(command, bad, *extra)
    lines = bad.read_bytes().split(b"\n")
    line = next(i for i, text in enumerate(lines, start=1) if b"\xe9" in text)
    column = lines[line - 1].index(b"\xe9") + 1
    assert code == 2
    assert f"{bad}: not UTF-8 text: byte 0xe9 at line {line}, column {column}" in err


def test_a_spec_that_is_not_utf8_is_located_in_the_scenario(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(CANARY.read_bytes().replace(b"checkout-health", b"checkout-h\xffalth"))
    sc = with_text(tmp_path, "sc.yaml", str(CANARY), str(spec))
    code, _, err = run("simulate", sc)
    assert code == 2 and "spec.specs[0]" in err and "not UTF-8 text: byte 0xff" in err


def test_metrics_that_are_not_utf8_are_exit_2(tmp_path: Path) -> None:
    data = tmp_path / "m.csv"
    data.write_bytes(CSV.read_bytes() + b"1732609999,0.9\xff,0.2\n")
    code, _, err = run("backtest", CANARY, data, "--template", "checkout-health")
    assert code == 2 and "not UTF-8 text" in err


# ----- square brackets are text --------------------------------------------------------------------------
def test_brackets_in_names_and_paths_are_printed_as_written(tmp_path: Path) -> None:
    folder = tmp_path / "d[" / "x]"
    folder.mkdir(parents=True)
    sc = with_text(folder, "s[red].yaml", "name: healthy-release", "name: 'h[/x][bold]'")
    code, out, _ = run("simulate", sc, "--runs", "2")
    assert code == 0 and "scenario h[/x][bold] (" in out and "s[red].yaml" in out
    code, out, _ = run("compare", sc, HEALTHY, "--runs", "1")  # the names head the table's columns
    assert code == 0 and "┃ h[/x][bold] " in out
    code, _, err = run("simulate", sc, "--runs", "2", "--out", folder / "nope" / "a[b].json")
    assert code == 2 and f"{folder}/nope does not exist" in err
    code, _, err = run("validate", with_text(folder, "b[i].yaml", "stable: {revision: v1}", "stable: [/x]"))
    assert code == 2 and "b[i].yaml" in err and "spec.stable" in err


def test_brackets_in_a_backtest_series_name_are_printed(tmp_path: Path) -> None:
    data = tmp_path / "m.csv"
    data.write_text(CSV.read_text().replace("success-rate", "[/s]", 1))
    code, out, err = run("backtest", CANARY, data, "-t", "checkout-health", "-m", "success-rate=[/s]")
    assert code == 0, err
    assert "success-rate <- series [/s]" in out


# ----- never a traceback, whatever the bytes -------------------------------------------------------------
FRAGMENTS = [
    b"apiVersion: ebbtide.dev/v1alpha1\n",
    b"kind: Scenario\n",
    b"kind: RolloutSpec\n",
    b"kind: Strategy\n",
    b"kind: VerificationTemplate\n",
    b"metadata: {name: '[/x]'}\n",
    b"spec:\n",
    b"  replicas: 1000000000000\n",
    b"  duration: 1e400\n",
    b"  steps: [{setWeight: 50}, {pause: {}}]\n",
    b"  stable: {revision: v1}\n",
    b"  revisions: {v1: {}}\n",
    b"  specs: [x.yaml]\n",
    b"---\n",
    b"! ! !\n",
    b"&a [*a]\n",
    b"[[[[[[[[[[\n",
    b"\xff\xfe\x00",
    b"\t: :\n",
    b"{? [1] : 2}\n",
    b"timestamp,m\n1,2\n1,3\n-5,1\n",
    b'{"status": "success", "data": {"resultType": "matrix", "result": [[[[[',
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    parts=st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=30), max_size=8),
    command=st.sampled_from(["validate", "plan", "simulate", "explain", "compare", "backtest"]),
)
def test_any_bytes_give_exit_0_or_2_and_never_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, parts: list[bytes], command: str
) -> None:
    folder = tmp_path_factory.mktemp("fuzz[x]")
    path = folder / "in[x]].yaml"
    path.write_bytes(b"".join(parts))
    args: list[str | Path] = {
        "validate": [path],
        "plan": [path],
        "simulate": [path, "--runs", "1"],
        "explain": [path, "--run", "0"],
        "compare": [path, path, "--runs", "1"],
        "backtest": [CANARY, path, "-t", "checkout-health"],
    }[command]
    code, _, err = run(command, *args)
    assert code in (0, 2)
    if code == 2:
        assert err.startswith("error:") and str(path) in err


@settings(max_examples=30, deadline=None)
@given(
    st.recursive(
        st.text(st.characters(categories=("L", "N", "P", "S", "Zs")), max_size=4),
        lambda c: (
            st.lists(c, max_size=2)
            | st.dictionaries(st.text(st.characters(categories=("L", "N")), max_size=3), c, max_size=2)
        ),
        max_leaves=30,
    )
)
def test_any_nested_value_in_a_scenario_field_is_a_located_error(value: object) -> None:
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        sc = with_text(
            Path(tmp), "s.yaml", "stable: {revision: v1}", f"stable: {json.dumps(value, ensure_ascii=False)}"
        )
        code, _, err = run("validate", sc)
        assert code == 2 and "spec.stable" in err


# ----- bounds --------------------------------------------------------------------------------------------
def test_replicas_are_bounded_everywhere(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(CANARY.read_text().replace("  replicas: 10\n", "  replicas: 1000000000000\n"))
    assert spec.read_text() != CANARY.read_text()
    code, _, err = run("validate", spec)
    assert code == 2 and "spec.replicas: must be <= 10000, not 1000000000000" in err
    code, _, err = run("plan", CANARY, "--replicas", "10001")
    assert code == 2 and "'--replicas'" in err and "less than or equal to 10000" in err
    sc = with_text(tmp_path, "sc.yaml", "  stable:", "  replicas: 1000000000000\n  stable:")
    code, _, err = run("simulate", sc)
    assert code == 2 and "spec.replicas" in err


def test_runs_and_actions_are_bounded(tmp_path: Path) -> None:
    code, _, err = run("simulate", scenario(tmp_path), "--runs", "1000001")
    assert code == 2 and "--runs" in err
    actions = "".join(f"    - {{at: {i}, action: pause}}\n" for i in range(10_001))
    sc = with_text(tmp_path, "sc.yaml", "  actions:\n", "  actions:\n" + actions)
    code, _, err = run("validate", sc)
    assert code == 2 and "spec.actions: List should have at most 10000 items" in err


def test_durations_are_finite_and_bounded(tmp_path: Path) -> None:
    for value, reason in (("8761h", "longer than the most accepted, 8760h"), (".inf", "not a finite number")):
        sc = with_text(tmp_path, "sc.yaml", "duration: 2h", f"duration: {value}")
        code, _, err = run("validate", sc)
        assert code == 2 and "spec.duration" in err and reason in err


def test_workers_are_capped_at_the_cpus(tmp_path: Path) -> None:
    cpus = os.cpu_count() or 1
    code, _, err = run("simulate", scenario(tmp_path), "--runs", "2", "--workers", str(cpus + 1))
    assert code == 0
    assert f"warning: --workers {cpus + 1}: this machine has {cpus} CPUs, using {cpus}" in err


def test_a_long_batch_is_announced_with_an_estimate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "ESTIMATE_FROM", 3)
    monkeypatch.setattr(common, "WARN_AFTER", 0.0)
    code, _, err = run("simulate", scenario(tmp_path), "--runs", "3", "-f", "json")
    assert code == 0 and "warning: 3 runs will take about" in err and "s per run measured, 1 worker)" in err
    monkeypatch.setattr(common, "WARN_AFTER", 3600.0)
    code, _, err = run("simulate", scenario(tmp_path), "--runs", "3", "-f", "json")
    assert code == 0 and "warning" not in err


# ----- output paths --------------------------------------------------------------------------------------
@pytest.mark.parametrize("option", ["--out", "--html", "--plot"])
def test_output_paths_are_checked_before_the_runs(
    tmp_path: Path, option: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ebbtide.cli.main as cli

    def no_runs(*args: object, **kwargs: object) -> object:
        raise AssertionError("the runs started before the output path was checked")

    monkeypatch.setattr(cli, "simulate", no_runs)
    suffix = {"--out": ".json", "--html": ".html", "--plot": ".png"}[option]
    folder = tmp_path / f"x{suffix}"
    folder.mkdir()
    code, _, err = run("simulate", scenario(tmp_path), option, folder)
    assert code == 2 and f"{option} {folder}: is a directory" in err
    missing = tmp_path / "missing" / f"x{suffix}"
    code, _, err = run("simulate", scenario(tmp_path), option, missing)
    assert code == 2 and f"{option} {missing}: the directory {missing.parent} does not exist" in err


def test_an_unwritable_directory_is_refused_before_the_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access

    def access(path: object, mode: int) -> bool:  # root may write anywhere: answer as for a user
        return False if Path(str(path)) == locked and mode & os.W_OK else real_access(path, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(common.os, "access", access)
    code, _, err = run("compare", HEALTHY, HEALTHY, "--runs", "1", "--out", locked / "a.json")
    assert code == 2 and f"--out {locked}/a.json: the directory {locked} is not writable" in err


def test_a_failed_write_never_names_the_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(src: str, dst: object) -> None:
        raise OSError(28, "No space left on device", src)

    monkeypatch.setattr(common.os, "replace", full)
    target = tmp_path / "out.json"
    code, _, err = run("simulate", scenario(tmp_path), "--runs", "1", "-f", "json", "--out", target)
    assert code == 2 and f"{target}: cannot write the file: No space left on device" in err
    assert ".tmp" not in err and sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


# ----- backtest, empty files -----------------------------------------------------------------------------
def test_backtest_start_after_the_data_is_exit_2() -> None:
    code, _, err = run("backtest", CANARY, CSV, "-t", "checkout-health", "--start", "+1000h")
    assert code == 2 and "--start '+1000h' is after the last sample of the data (+" in err


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ("1732608000,0.99,0.2\n1732608000,0.98,0.2\n", "two samples at the same timestamp (1.73261e+09)"),
        ("-15,0.99,0.2\n0,0.98,0.2\n", "negative timestamp '-15'"),
    ],
)
def test_backtest_duplicate_or_negative_timestamps_are_exit_2(tmp_path: Path, rows: str, reason: str) -> None:
    data = tmp_path / "m.csv"
    data.write_text("timestamp,success-rate,p99-latency\n" + rows)
    code, _, err = run("backtest", CANARY, data, "-t", "checkout-health")
    assert code == 2 and reason in err and str(data) in err


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n---\n"])
def test_validate_an_empty_file_is_not_ok(tmp_path: Path, text: str) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text(text)
    code, out, err = run("validate", empty, CANARY)
    assert code == 2 and f"OK    {empty}" not in out and f"OK    {CANARY}" in out
    assert f"{empty}: the file holds no YAML document: nothing to check" in err


def test_plan_of_files_without_a_rollout_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    code, _, err = run("plan", empty)
    assert code == 2 and f"{empty}: no RolloutSpec (or Argo Rollout) to plan" in err


# ----- version -------------------------------------------------------------------------------------------
def test_version_comes_from_the_installed_distribution() -> None:
    code, out, _ = run("--version")
    assert code == 0 and out == f"ebbtide {importlib.metadata.version('ebbtide')}\n"
