"""``ebbtide backtest --prometheus`` and ``ebbtide record`` against a real Prometheus server.

The server (the Debian ``prometheus`` binary, as in tests/adapters/providers/conftest.py) holds one hour of
an incident backfilled with ``promtool``, at fixed times so that outputs can be pinned in the docs: from
2024-11-26T08:00:00Z, ``http_requests_total{service="checkout"}`` grows by 200 requests a second, of which 1/s
has ``code="500"`` until 08:30 and 40/s from 08:30 on (samples every 15 s).

The oracle of the error-rate ratio is computed here from those figures: ``rate(x[5m])`` at time T sees the
increase between the 21 samples of [T-5m, T] (Prometheus 2, as Debian ships it; both rates of the ratio are
extrapolated alike), so the ratio at T is the share of 500s among the requests of the 5 minutes before T.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ebbtide.adapters.recorded import load_recording
from ebbtide.cli.main import app
from ebbtide.sim.runner import load_scenario, simulate
from tests.adapters.providers.conftest import _wait_ready, free_port

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "specs" / "canary.yaml"
RECORDING = ROOT / "examples" / "recordings" / "checkout-error-rate.jsonl"
SCENARIO = ROOT / "examples" / "scenarios" / "replay-recorded-incident.yaml"
DOC = ROOT / "docs" / "simulator.md"
START = 1_732_608_000  # 2024-11-26T08:00:00Z
INCIDENT = START + 1800  # 08:30: the 500s jump from 1/s to 40/s
STEP, SPAN, TOTAL = 15, 3600, 200
RECORD_ARGS = ["--start", "2024-11-26T08:05:00Z", "--end", "2024-11-26T09:00:00Z", "--step", "1m"]


def errors_per_second(t: float) -> int:
    return 1 if t < INCIDENT else 40


def ratio(at: int) -> float:
    """The error ratio Prometheus answers at ``at``: the share of 500s in the 5 minutes before it."""
    seconds = range(at - 300, at)
    return sum(errors_per_second(s) for s in seconds) / (TOTAL * len(seconds))


def openmetrics() -> str:
    lines = ["# HELP http_requests Requests served.", "# TYPE http_requests counter"]
    errors = ok = 0
    series: list[tuple[int, int, int]] = []
    for t in range(START, START + SPAN + 1, STEP):
        series.append((t, ok, errors))
        e = errors_per_second(t)
        errors += e * STEP
        ok += (TOTAL - e) * STEP
    for t, o, _ in series:
        lines.append(f'http_requests_total{{service="checkout",code="200"}} {o} {t}')
    for t, _, e in series:
        lines.append(f'http_requests_total{{service="checkout",code="500"}} {e} {t}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a Prometheus server holding the incident hour."""
    binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if binary is None or promtool is None:
        if os.environ.get("EBBTIDE_REQUIRE_PROMETHEUS"):
            pytest.fail("EBBTIDE_REQUIRE_PROMETHEUS is set but prometheus/promtool are not on PATH")
        pytest.skip("the prometheus and promtool binaries are absent (apt-get install prometheus)")
    root = tmp_path_factory.mktemp("incident")
    (root / "backfill.om").write_text(openmetrics())
    (root / "prometheus.yml").write_text("global: {}\n")
    subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(root / "backfill.om"),
            str(root / "data"),
        ],
        check=True,
        capture_output=True,
    )
    address = f"http://127.0.0.1:{free_port()}"
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'data'}",
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address={address.removeprefix('http://')}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(address, proc, log, time.monotonic() + 30)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "120"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def backtest(address: str, *extra: str) -> tuple[int, str]:
    return run("backtest", str(SPEC), "--template", "error-watch", "--prometheus", address, *extra)


# ---------------------------------------------------------------------------------------- backtest
def test_the_backtest_fails_the_verification_when_the_error_rate_breaches(incident: str) -> None:
    code, out = backtest(incident, *RECORD_ARGS[:4], "--format", "json")
    assert code == 0, out
    import json

    result = json.loads(out)
    # the oracle: the first minute-aligned evaluation after 08:05 whose ratio is over 0.05
    breach = next(t for t in range(START + 300, START + SPAN, 60) if ratio(t) > 0.05)
    assert breach == INCIDENT + 120  # 08:32
    # error-watch measures 30 s after the start, then every minute: the first at or after the breach
    # reads the 08:32 sample
    assert result["outcome"] == "failed"
    assert result["at"] == breach + 30
    assert result["metric"] == "error-rate"
    assert result["value"] == [pytest.approx(ratio(breach))]
    healthy = [m for m in result["measurements"] if m["t"] < breach]
    assert healthy and all(m["outcome"] == "successful" for m in healthy)
    assert healthy[0]["value"] == [pytest.approx(ratio(START + 300))]


def test_the_doc_shows_a_real_backtest_against_prometheus(incident: str) -> None:
    """The ```text block after the backtest --prometheus command in docs/simulator.md is this run's output."""
    command = "$ ebbtide backtest examples/specs/canary.yaml --template error-watch --prometheus http://prometheus:9090"
    text = DOC.read_text()
    match = re.search(re.escape(command) + r" ([^\n]*)\n(.*?)```", text, re.S)
    assert match, "the doc block is missing"
    extra = match.group(1).split(" | ")
    code, out = backtest(incident, *extra[0].split())
    assert code == 0
    out = out.replace(incident, "http://prometheus:9090")
    if len(extra) > 1:
        n = int(extra[1].split()[1].lstrip("-"))
        out = "".join(out.splitlines(keepends=True)[-n:])
    got = "\n".join(line.rstrip() for line in out.splitlines())
    if os.environ.get("EBBTIDE_REGENERATE_DOCS") == "1":
        DOC.write_text(text[: match.start(2)] + got + "\n" + text[match.end(2) :])
        return
    assert got == "\n".join(line.rstrip() for line in match.group(2).splitlines())


def test_an_unreachable_server_is_a_clear_error_with_exit_code_2() -> None:
    code, out = backtest(f"http://127.0.0.1:{free_port()}", *RECORD_ARGS[:4])
    assert code == 2
    assert "cannot reach Prometheus" in out and "metric 'error-rate'" in out
    assert "Traceback" not in out


def test_a_query_error_names_the_metric(incident: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: ebbtide.dev/v1alpha1\nkind: VerificationTemplate\nmetadata: {name: t}\nspec:\n"
        "  metrics:\n  - name: broken\n    interval: 1m\n    successCondition: result[0] < 1\n"
        "    provider: {prometheus: {query: 'sum(rate(x[5m]'}}\n"
    )
    code, out = run("backtest", str(bad), "--prometheus", incident, *RECORD_ARGS[:4])
    assert code == 2
    assert "metric 'broken'" in out and "bad_data" in out


def test_an_empty_range_is_a_clear_error(incident: str) -> None:
    code, out = backtest(incident, "--last", "1h")  # the incident is two years old
    assert code == 2
    assert "no data for metric 'error-rate'" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--start", "2024-11-26T09:00:00Z", "--end", "2024-11-26T08:00:00Z"], "must be after --start"),
        (["--start", "2024-11-26T08:00:00Z"], "--start and --end"),
        (["--last", "6h", "--start", "2024-11-26T08:00:00Z"], "--last replaces"),
        (["--last", "6h", "--query-step", "0s"], "--query-step must be positive"),
    ],
)
def test_bad_ranges_are_refused_before_querying(extra: list[str], message: str) -> None:
    code, out = backtest("http://127.0.0.1:9", *extra)
    assert code == 2 and message in out


def test_a_metrics_file_and_prometheus_together_are_refused() -> None:
    csv = ROOT / "examples" / "backtest" / "checkout-metrics.csv"
    code, out = run("backtest", str(SPEC), str(csv), "-t", "error-watch", "--prometheus", "http://x:9")
    assert code == 2 and "not both" in out


# ---------------------------------------------------------------------------------------- record + replay
def test_record_writes_the_example_recording(incident: str, tmp_path: Path) -> None:
    """examples/recordings/checkout-error-rate.jsonl is what ``ebbtide record`` writes for the incident."""
    out = tmp_path / "rec.jsonl"
    code, text = run(
        "record", str(SPEC), "-t", "error-watch", "--prometheus", incident, *RECORD_ARGS, "-o", str(out)
    )
    assert code == 0, text
    recording = load_recording(out)
    track = recording.tracks[("error-rate", "canary")]
    assert track.times == tuple(float(t) for t in range(START + 300, START + SPAN + 1, 60))
    assert [v for v, _ in track.samples] == [[pytest.approx(ratio(int(t)))] for t in track.times]
    if os.environ.get("EBBTIDE_REGENERATE_DOCS") == "1":
        RECORDING.parent.mkdir(exist_ok=True)
        RECORDING.write_text(out.read_text())
    assert out.read_text() == RECORDING.read_text()


def test_a_scenario_replays_the_recorded_incident_and_rolls_back_when_it_shows() -> None:
    scenario = load_scenario(SCENARIO)
    offset = scenario.spec.recordings[0].offset
    # the recording's t=0 is 08:05 (its start); the breach is in the 08:32 sample: run time 27m - offset
    breach = INCIDENT + 120 - (START + 300) - offset
    runs = list(simulate(scenario, runs=5, seed=5))
    again = list(simulate(scenario, runs=5, seed=5))
    assert [r.to_json() for r in runs] == [r.to_json() for r in again]
    for r in runs:
        assert r.outcome.result == "rolled-back", r.outcome
        assert "metric 'error-rate' failed" in (r.outcome.rollback_reason or "")
        assert r.outcome.detected_at is not None
        # error-watch measures every minute: the first measurement at or after the breach catches it
        assert breach <= r.outcome.detected_at < breach + 60


def test_a_query_returning_several_series_must_be_aggregated(incident: str, tmp_path: Path) -> None:
    split = tmp_path / "split.yaml"
    split.write_text(
        "apiVersion: ebbtide.dev/v1alpha1\nkind: VerificationTemplate\nmetadata: {name: t}\nspec:\n"
        "  metrics:\n  - name: by-code\n    interval: 1m\n    successCondition: result[0] < 1\n"
        "    provider: {prometheus: {query: 'sum by (code) (rate(http_requests_total[5m]))'}}\n"
    )
    code, out = run("backtest", str(split), "--prometheus", incident, *RECORD_ARGS[:4])
    assert code == 2
    assert "metric by-code" in out and "returns 2 series" in out and 'code="500"' in out


def test_record_refuses_an_unreachable_server_and_records_the_stable_role(
    incident: str, tmp_path: Path
) -> None:
    code, out = run(
        "record",
        str(SPEC),
        "-t",
        "error-watch",
        "--prometheus",
        f"http://127.0.0.1:{free_port()}",
        *RECORD_ARGS,
    )
    assert code == 2 and "cannot reach Prometheus" in out
    target = tmp_path / "stable.jsonl"
    code, out = run(
        "record",
        str(SPEC),
        "-t",
        "error-watch",
        "--prometheus",
        incident,
        *RECORD_ARGS,
        "--role",
        "stable",
        "-o",
        str(target),
    )
    assert code == 0, out
    assert set(load_recording(target).tracks) == {("error-rate", "stable")}
    code, out = run(
        "record", str(SPEC), "-t", "error-watch", "--prometheus", incident, *RECORD_ARGS, "--role", "baseline"
    )
    assert code == 2 and "--role" in out
