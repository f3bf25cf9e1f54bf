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
