"""A mirror route in the simulator: requests copied to the canary are answered by no one, so a misbehaving
canary that only receives mirrored requests serves no user a bad answer; the same rules as a header route
send the users' matching requests to it (the control)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ebbtide.sim.runner import load_scenario, simulate

SPEC = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  replicas: 4
  strategy:
    canary:
      trafficRouting: {istio: {virtualService: {name: shop}}, managedRoutes: [{name: m}]}
      steps:
        - setCanaryScale: {replicas: 2}
        - %s
        - pause: {duration: 10m}
---
apiVersion: ebbtide.dev/v1alpha1
kind: Scenario
metadata: {name: mirror}
spec:
  stable: {revision: v1}
  revisions:
    v1: {readiness: {delay: 5s}}
    v2: {readiness: {delay: 5s}, misbehaveAt: {time: 0s}}
  traffic: {rps: 100, headerShare: 0.2}
  actions:
    - {at: 1m, action: deploy, revision: v2}
  duration: 8m
"""
MIRROR = "setMirrorRoute: {name: m, percentage: 50, match: [{headers: {x-tester: {exact: 'yes'}}}]}"
HEADER = "setHeaderRoute: {name: m, match: [{headerName: x-tester, headerValue: {exact: 'yes'}}]}"


@pytest.mark.parametrize(("step", "bad"), [(MIRROR, False), (HEADER, True)])
def test_mirrored_requests_reach_no_user(tmp_path: Path, step: str, bad: bool) -> None:
    f = tmp_path / "mirror.yaml"
    f.write_text(SPEC % step)
    (r,) = simulate(load_scenario(f), runs=1, seed=1, keep_timelines=True)
    assert all(e["weights"] == {"v1": 100} for e in r.timeline), "the weights never move"
    assert r.timeline[-1]["state"] == "paused" and r.timeline[-1]["ready"]["v2"] == 2
    assert (r.outcome.bad_requests > 0) == bad
