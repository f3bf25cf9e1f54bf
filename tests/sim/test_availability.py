"""End to end over the simulator: the availability promise holds in every bundled example.

The engine never routes traffic to a revision with no ready replicas (promise 5); in the simulated cluster
that means no request is ever sent to a revision without a ready pod (``dropped_requests``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ebbtide.sim.runner import load_scenario, simulate

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "examples" / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_no_request_is_routed_to_a_revision_without_ready_pods(path: Path) -> None:
    scenario = load_scenario(path)
    results = list(simulate(scenario, runs=10, seed=7))
    assert len(results) == 10
    for r in results:
        assert r.outcome.dropped_requests == 0, (path.name, r.index, r.outcome.dropped_requests)
