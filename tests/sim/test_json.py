"""Results are plain JSON: never ``Infinity`` or ``NaN``; such numbers in a scenario file are refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ebbtide.core.spec import SpecError
from ebbtide.sim.outcome import Outcome, RunResult, aggregate, dumps, finite
from ebbtide.sim.runner import load_scenario, replay_run

from .scenarios import HEALTHY, load, scenario_doc, write


def strict_loads(text: str) -> object:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_figures_become_null() -> None:
    outcome = Outcome("live", "promoted", "v1", False, False, None, time_to_detect=math.inf)
    run = RunResult(index=0, seed=1, outcome=outcome, timeline=[{"t": 1.0, "x": [math.nan, 2.0]}])
    doc = strict_loads(run.to_json())
    assert isinstance(doc, dict)
    assert doc["outcome"]["time_to_detect"] is None and doc["timeline"][0]["x"] == [None, 2.0]
    assert finite({"a": (math.inf, -math.inf)}) == {"a": [None, None]}
    assert strict_loads(aggregate([run]).to_json())


def test_dumps_maps_non_finite_to_null() -> None:
    assert dumps({"a": 1.5, "b": [math.inf, -math.inf, math.nan]}) == '{"a": 1.5, "b": [null, null, null]}'


def test_a_real_run_is_strict_json(tmp_path: Path) -> None:
    r = replay_run(load(tmp_path), 1, 0, measurements=True)
    assert strict_loads(r.to_json())


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (".nan", "spec.revisions.v2.signals.sr.value"),
        (".inf", "spec.revisions.v2.signals.sr.misbehaving"),
        ("-.inf", "spec.traffic.rps"),
    ],
)
def test_scenario_files_refuse_non_finite_numbers(tmp_path: Path, value: str, field: str) -> None:
    path = write(tmp_path / "s.yaml", scenario_doc(revisions={"v1": HEALTHY, "v2": HEALTHY}))
    text = path.read_text()
    key = field.rsplit(".", 1)[1]
    if field.startswith("spec.traffic"):
        text = text.replace("rps: 10", f"rps: {value}")
    else:
        doc = scenario_doc(revisions={"v1": HEALTHY, "v2": {"signals": {"sr": {"value": 0.99, key: "@@"}}}})
        text = write(tmp_path / "s.yaml", doc).read_text().replace("'@@'", value)
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_scenario(path)
    problems = {p.field: p.reason for p in info.value.problems}
    assert field in problems and "finite" in problems[field]
    assert all(p.file == str(path) and p.document == 1 for p in info.value.problems)
