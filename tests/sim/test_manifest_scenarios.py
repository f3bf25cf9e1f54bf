"""The manifests of examples/manifests (Ocean CD flat entities with a SpotDeployment, split across files; an
Argo Rollout with workloadRef and its Deployment) simulate, with the outcomes their scenarios describe."""

from __future__ import annotations

from pathlib import Path

import pytest

from ebbtide.sim.runner import load_scenario, replay_run

SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "manifests" / "scenarios"

#: scenario -> (replicas the workload gives, result, live revision), from the manifests and scenarios by hand
EXPECTED = {
    "payments-healthy.yaml": (5, "promoted", "v2"),  # SpotDeployment replicas: 5; v2 as healthy as v1
    "search-slow.yaml": (8, "paused", "v1"),  # failurePolicy pause: a slow v2 holds, v1 stays live
    "orders-failing.yaml": (6, "rolled-back", "v1"),  # Deployment of workloadRef: 6; errors roll back
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_manifest_scenarios(name: str) -> None:
    scenario = load_scenario(SCENARIOS / name)
    replicas, result, live = EXPECTED[name]
    assert scenario.plan.replicas == replicas
    outcome = replay_run(scenario, seed=1, index=0).outcome
    assert (outcome.result, outcome.live_revision) == (result, live)
    assert not outcome.false_rollback


def test_every_manifest_scenario_is_checked() -> None:
    assert sorted(p.name for p in SCENARIOS.glob("*.yaml")) == sorted(EXPECTED)
