"""Backtests: recorded series through the verification rules (timing, limits, dry run, data formats)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ebbtide.core.plan import MetricPlan, TemplatePlan
from ebbtide.core.spec import SpecError
from ebbtide.sim.backtest import (
    Series,
    backtest,
    load_series,
    load_template,
    map_series,
    parse_start,
    rolling,
)

EX = Path(__file__).resolve().parents[2] / "examples"
CANARY = EX / "specs" / "canary.yaml"
CSV = EX / "backtest" / "checkout-metrics.csv"
PROM = EX / "backtest" / "error-rate.prometheus.json"


def series(values: list[float | None], step: float = 10.0, name: str = "m") -> dict[str, Series]:
    return {name: Series(name, [i * step for i in range(len(values))], list(values))}


def metric(**kw: object) -> TemplatePlan:
    base: dict[str, object] = {"name": "m", "success_condition": "result < 1"}
    base.update(kw)
    return TemplatePlan(name="t", metrics=(MetricPlan(**base),))  # type: ignore[arg-type]


def test_shipped_csv_passes_then_fails_after_the_bad_deploy() -> None:
    t = load_template(CANARY, "checkout-health")
    assert not t.background
    data = map_series(t.plan, load_series(CSV))
    ok = backtest(t.plan, data)
    assert ok.outcome == "passed" and ok.at is not None and ok.at - ok.origin == 60
    bad = backtest(t.plan, data, parse_start("+19m45s", ok.origin))
    assert bad.outcome == "failed" and bad.metric == "success-rate" and bad.index == 3
    assert bad.at is not None and bad.at - ok.origin == 20 * 60 + 45
    assert bad.limit == "failureLimit 1 (2 failed > 1)"
    assert [m.outcome for m in bad.measurements if m.metric == "success-rate"] == [
        "successful",
        "failed",
        "failed",
    ]


def test_shipped_prometheus_export_background_error_watch() -> None:
    t = load_template(CANARY, "error-watch")
    assert t.background  # only used as backgroundVerification in the file
    data = map_series(t.plan, load_series(PROM))  # one series, one metric: they go together
    r = backtest(t.plan, data, background=t.background)
    assert r.outcome == "failed" and r.index == 26
    assert r.at is not None and r.at - r.origin == 25 * 60 + 30  # initialDelay 30s, interval 1m
    # as a phase verification an interval-only metric passes on its first successful measurement
    phase = backtest(t.plan, data, background=False)
    assert phase.outcome == "passed" and phase.at == phase.origin + 30


def test_rolling_windows_show_the_bad_period() -> None:
    t = load_template(CANARY, "checkout-health")
    report = rolling(t.plan, map_series(t.plan, load_series(CSV)), step=120)
    counts = report.counts()
    assert counts["failed"] == 10 and counts["passed"] == 20
    starts = [r.start - r.origin for r in report.results if r.outcome == "failed"]
    assert starts[0] == 20 * 60 and starts[-1] == 38 * 60


def test_sample_at_or_before_and_staleness() -> None:
    data = {"m": Series("m", [0.0, 100.0], [0.5, 2.0])}
    plan = metric(interval=30.0, count=4, failure_limit=0)
    r = backtest(plan, data, 0.0)
    # measurements at 0, 30, 60, 90 all take the sample at 0; 90 is still before the 100 s sample
    assert r.outcome == "passed" and [m.sample_t for m in r.measurements] == [0.0] * 4
    stale = backtest(plan, data, 0.0, staleness=45.0)
    assert stale.outcome == "inconclusive" and stale.index == 3  # no data at 60 s: older than 45 s


def test_limits_trip_strictly_above() -> None:
    plan = metric(interval=10.0, count=5, failure_limit=2)
    r = backtest(plan, series([0.1, 5, 5, 0.1, 0.1]))
    assert r.outcome == "passed"
    r = backtest(plan, series([0.1, 5, 5, 5, 0.1]))
    assert r.outcome == "failed" and r.index == 4 and r.limit == "failureLimit 2 (3 failed > 2)"


def test_errors_and_consecutive_error_limit(tmp_path: Path) -> None:
    f = tmp_path / "m.csv"
    f.write_text("timestamp,metric,value\n0,m,0.1\n10,m,error: timeout\n20,m,error\n30,m,error\n")
    plan = metric(interval=10.0, count=5, consecutive_error_limit=2)
    r = backtest(plan, load_series(f))
    assert r.outcome == "errored" and r.index == 4
    assert r.limit is not None and r.limit.startswith("consecutiveErrorLimit 2")


def test_dry_run_never_changes_the_verdict() -> None:
    plan = TemplatePlan(
        name="t",
        metrics=(
            MetricPlan(name="m", interval=10.0, count=3, success_condition="result < 1"),
            MetricPlan(name="d", interval=10.0, count=3, success_condition="result < 1", dry_run=True),
        ),
    )
    data = {**series([0.1, 0.1, 0.1]), **series([5, 5, 5], name="d")}
    r = backtest(plan, data)
    assert r.outcome == "passed"
    assert r.dry_run and r.dry_run[0]["metric"] == "d" and r.dry_run[0]["phase"] == "Failed"


def test_window_ends_an_until_phase_end_metric() -> None:
    plan = metric(interval=10.0, failure_condition="result > 1", success_condition=None)
    r = backtest(plan, series([0.1] * 20), background=True, window=55.0)
    assert r.outcome == "running" and r.stopped == "end of window" and len(r.measurements) == 6


def test_wide_csv_iso_timestamps_nan_and_gaps(tmp_path: Path) -> None:
    f = tmp_path / "wide.csv"
    f.write_text("time,a,b\n2024-01-01T00:00:00Z,1,NaN\n2024-01-01T00:00:10Z,,2\n")
    data = load_series(f)
    assert data["a"].times == [1704067200.0, 1704067210.0] and data["a"].values == [1.0, None]
    assert data["b"].values[0] != data["b"].values[0]  # NaN


def test_bad_data_files_name_the_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text("timestamp,m\n0,1\n10,lots\n")
    with pytest.raises(SpecError) as exc:
        load_series(f)
    p = exc.value.problems[0]
    assert p.file == str(f) and p.field == "line 3, column m" and "not a number" in p.reason
    g = tmp_path / "bad.json"
    g.write_text(json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}))
    with pytest.raises(SpecError) as exc:
        load_series(g)
    assert exc.value.problems[0].field == "data.resultType"


def test_mapping_by_name_and_explicit() -> None:
    t = load_template(CANARY, "checkout-health")
    data = load_series(CSV)
    only = map_series(t.plan, data, ["success-rate"])
    assert list(only) == ["success-rate"]
    swapped = map_series(t.plan, data, ["success-rate=p99-latency"])
    assert swapped["success-rate"].name == "p99-latency"
    with pytest.raises(SpecError, match="no series 'x'"):
        map_series(t.plan, data, ["success-rate=x"])


def test_template_args_and_errors(tmp_path: Path) -> None:
    t = load_template(CANARY, "checkout-health", {"min-success-rate": "0.5"})
    assert t.plan.metrics[0].success_condition == "len(result) > 0 && result[0] >= 0.5"
    spec = tmp_path / "t.yaml"
    spec.write_text(
        "apiVersion: ebbtide.dev/v1alpha1\nkind: VerificationTemplate\nmetadata: {name: t}\nspec:\n"
        "  args: [{name: limit}]\n  metrics:\n    - name: m\n"
        "      successCondition: result < {{args.limit}}\n"
        "      provider: {prometheus: {query: up}}\n"
    )
    with pytest.raises(SpecError, match="--arg"):
        load_template(spec)
    assert load_template(spec, args={"limit": "3"}).plan.metrics[0].success_condition == "result < 3"


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ("timestamp,m\n10,1\n20,2\n10,3\n", "series m", "two samples at the same timestamp (10)"),
        ("timestamp,m\n-10,1\n20,2\n", "line 2, column timestamp", "negative timestamp '-10'"),
        ("timestamp,m\n1969-12-31T23:59:00Z,1\n", "line 2, column timestamp", "negative timestamp"),
        ("timestamp,m\n1e300,1\n", "line 2, column timestamp", "after the year 9999"),
    ],
)
def test_duplicate_negative_or_far_timestamps_are_errors(
    tmp_path: Path, text: str, where: str, reason: str
) -> None:
    path = tmp_path / "m.csv"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_series(path)
    [problem] = info.value.problems
    assert problem.field == where and reason in problem.reason


def test_the_same_timestamp_in_two_series_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("timestamp,metric,value\n10,a,1\n10,b,2\n")
    assert sorted(load_series(path)) == ["a", "b"]


def test_json_nested_too_deeply_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"status": "success", "data": ' + "[" * 100_000)
    with pytest.raises(SpecError) as info:
        load_series(path)
    assert [p.reason for p in info.value.problems] == ["invalid JSON: nested too deeply"]
