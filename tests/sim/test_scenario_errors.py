"""A broken scenario reports every problem at once (structure and cross-checks), at the user's paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from ebbtide.core.spec import SpecError
from ebbtide.sim.runner import load_scenario

SPECS = Path(__file__).resolve().parents[2] / "examples" / "specs" / "canary.yaml"


def test_structural_and_cross_check_problems_together(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        f"""
apiVersion: ebbtide.dev/v1alpha1
kind: Scenario
metadata: {{name: bad}}
spec:
  specs: [{SPECS}]
  stable: {{revision: v1}}
  revisions:
    v1: {{readiness: {{delay: 20s}}}}
    v2: {{readiness: {{delay: -5s}}}}
  metrics:
    - {{metric: success-rate, signal: successRate}}
  actions:
    - {{at: 1m, action: deploy, revision: v3}}
    - {{at: -1m, action: promote}}
    - {{at: 2m, action: rollback, revision: v9}}
  duration: 2h
"""
    )
    with pytest.raises(SpecError) as info:
        load_scenario(path)
    found = {p.field: p.reason for p in info.value.problems}
    assert all(p.file == str(path) and p.document == 1 for p in info.value.problems)
    assert "negative" in found["spec.revisions.v2.readiness.delay"]
    assert "negative" in found["spec.actions[1].at"]
    assert "'v3' is not declared" in found["spec.actions[0].revision"]
    # actions[1] is cut from the repaired copy; the unknown v9 is still reported at actions[2]
    assert "'v9' is not declared" in found["spec.actions[2].revision"]
    assert "no signal" in found["spec.metrics"] or "maps to no signal" in found["spec.metrics"]


BOUNDS = f"""
apiVersion: ebbtide.dev/v1alpha1
kind: Scenario
metadata: {{name: bounds}}
spec:
  specs: [{SPECS}]
  replicas: 1000000000000
  stable: {{revision: v1}}
  revisions: {{v1: {{}}, v2: {{}}}}
  traffic: {{rps: .inf}}
  actions: [{", ".join(["{at: 1m, action: deploy, revision: v2}"] * 10_001)}]
  duration: 8761h
  runs: 1000001
"""


def test_sizes_and_durations_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "bounds.yaml"
    path.write_text(BOUNDS)
    with pytest.raises(SpecError) as info:
        load_scenario(path)
    found = {p.field: p.reason for p in info.value.problems}
    assert found["spec.replicas"] == "must be <= 10000, not 1000000000000"
    assert found["spec.runs"] == "must be <= 1000000, not 1000001"
    assert "at most 10000 items" in found["spec.actions"]
    assert "longer than the most accepted, 8760h" in found["spec.duration"]
    assert "spec.traffic.rps" in found


def test_a_scenario_that_is_not_utf8_is_a_located_problem(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"apiVersion: ebbtide.dev/v1alpha1\nkind: Scenario\nmetadata: {name: caf\xe9}\n")
    with pytest.raises(SpecError) as info:
        load_scenario(path)
    [problem] = info.value.problems
    assert problem.file == str(path)
    assert problem.reason == "not UTF-8 text: byte 0xe9 at line 3, column 21 (save the file as UTF-8)"


def test_request_rates_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "rps.yaml"
    path.write_text(BOUNDS.replace("rps: .inf", "rps: 1e300"))
    with pytest.raises(SpecError) as info:
        load_scenario(path)
    found = {p.field: p.reason for p in info.value.problems}
    assert found["spec.traffic.rps"].startswith("must be <= 10000000")
