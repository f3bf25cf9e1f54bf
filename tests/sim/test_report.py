"""Reports: plan timeline, run trace, HTML page and plots."""

from __future__ import annotations

from pathlib import Path

import pytest

from ebbtide.adapters.specfiles import load_spec_files
from ebbtide.core.spec import compile_plan
from ebbtide.sim.report import explain_lines, html_report, plan_timeline, plot_outcomes, plot_run
from ebbtide.sim.runner import aggregate, load_scenario, replay_run, simulate

from .scenarios import TEMPLATE, load, rollout_spec, strategy

EX = Path(__file__).resolve().parents[2] / "examples"


def test_plan_timeline_canary() -> None:
    plan = compile_plan(load_spec_files([EX / "specs" / "canary.yaml"]))
    rows = plan_timeline(plan)
    assert [r.canary_weight for r in rows] == [10, 10, 25, 25, 25, 50, 50, 80, 100]
    assert [r.canary_replicas for r in rows] == [1, 1, 3, 3, 3, 5, 5, 8, 10]
    assert rows[1].window == 60.0 and rows[4].window == 300.0
    assert rows[-1].cumulative == 480.0


def test_plan_timeline_indefinite_pause_and_canary_scale() -> None:
    plan = compile_plan(load_spec_files([EX / "specs" / "pause-policy.yaml"]))
    rows = plan_timeline(plan)
    assert rows[0].canary_replicas == 1 and rows[2].window == 90.0
    assert rows[3].window is None and rows[-1].cumulative is None


def test_explain_and_html() -> None:
    scenario = load_scenario(EX / "scenarios" / "fails-at-40.yaml")
    one = replay_run(scenario, 42, 0)
    lines = explain_lines(one)
    assert any("notify rollout-failed v2" in line for line in lines)
    assert lines[-1].startswith("bad requests")
    page = html_report("t", aggregate(simulate(scenario, runs=2)), runs=[one], trace=lines)
    assert "<table>" in page and "rollout-failed" in page


def test_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    scenario = load_scenario(EX / "scenarios" / "crash-loop-pause.yaml")
    one = replay_run(scenario, 3, 0)
    png = plot_run(one, tmp_path / "run.png")
    assert png[:4] == b"\x89PNG" and (tmp_path / "run.png").stat().st_size == len(png)
    outs = [r.outcome for r in simulate(scenario, runs=5)]
    assert plot_outcomes(outs)[:4] == b"\x89PNG"
    without = replay_run(scenario, 3, 0, keep_timeline=False)
    with pytest.raises(ValueError, match="timeline"):
        plot_run(without)


def test_explain_shows_failures_that_did_not_roll_back(tmp_path: Path) -> None:
    paused = replay_run(load(tmp_path, specs=[TEMPLATE, strategy(), rollout_spec(policy="pause")]), 1, 0)
    lines = explain_lines(paused)
    assert not any(line.startswith("rollback reason") for line in lines)
    assert any(line.startswith("failure reason: verification 'health' failed") for line in lines)
    promoted = replay_run(load(tmp_path, specs=[TEMPLATE, strategy(), rollout_spec(policy="promote")]), 1, 0)
    assert any(line.startswith("recorded failure (promote policy):") for line in explain_lines(promoted))


def test_plan_timeline_sizes_a_basic_canary_by_pod_ratio_and_marks_the_implied_step() -> None:
    rows = plan_timeline(compile_plan(load_spec_files([EX / "specs" / "basic-canary.yaml"])))
    sized = [(r.action, r.canary_replicas) for r in rows if r.action.startswith("setWeight")]
    assert sized == [("setWeight 20", 1), ("setWeight 40", 2), ("setWeight 60", 3), ("setWeight 100", 5)]
    assert [r.index for r in rows if r.note == "implied final step"] == [len(rows) - 1]


def test_a_dry_run_metric_holds_the_step_in_the_plan_timeline() -> None:
    from ebbtide.core.plan import MetricPlan, TemplatePlan
    from ebbtide.sim.report import template_window  # the window one template holds a step

    slow = MetricPlan(name="slow", interval=60, count=5, dry_run=True, success_condition="result < 1")
    fast = MetricPlan(name="fast", interval=10, count=1, success_condition="result < 1")
    span, _ = template_window(TemplatePlan(name="t", metrics=(fast, slow)))
    assert span >= 240, "the run waits for its dry-run metric, as Argo's does"
