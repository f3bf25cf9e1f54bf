"""maxSurge / maxUnavailable in the simulated cluster: the pods alive and ready, as the cluster counts them.

A basic canary (no traffic router) realises weights as pod ratios within the budget: never more pods alive
than ``replicas + maxSurge``, never fewer ready than ``replicas - maxUnavailable``. With a router, Argo sizes
the canary by weight beside a full stable (no surge bound), which the cluster's ``peak_pods`` shows too.
"""

from __future__ import annotations

import pytest

from ebbtide.adapters.driver import Driver
from ebbtide.adapters.memory import ClusterConfig, MemoryCluster
from ebbtide.core.engine import initial_state
from ebbtide.core.events import Command, Deploy
from ebbtide.core.plan import MetricPlan, Plan, StepPlan, TemplatePlan

METRIC = MetricPlan(name="error-rate", interval=30, count=2, success_condition="result < 0.05")
REVISIONS = ("v1", "v2")


def plan(router: bool, surge: int, unavailable: int) -> Plan:
    steps = (20, 40, 60, 80)
    return Plan(
        steps=tuple(
            s
            for w in steps
            for s in (StepPlan(kind="setWeight", weight=w), StepPlan(kind="verification", templates=("t",)))
        ),
        templates={"t": TemplatePlan(name="t", metrics=(METRIC,))},
        replicas=5,
        max_surge=surge,
        max_unavailable=unavailable,
        traffic_router=router,
    )


def config(bad_v2: bool) -> ClusterConfig:
    v2: dict[str, object] = {
        "readiness": {"delay": "10s", "jitter": "20s"},
        "signals": {"e": {"value": 0.01}},
    }
    if bad_v2:
        v2["misbehaveAt"] = {"weight": 40}
        v2["signals"] = {"e": {"value": 0.01, "misbehaving": 0.2}}
    return ClusterConfig.model_validate(
        {
            "revisions": {
                "v1": {"readiness": {"delay": "10s", "jitter": "20s"}, "signals": {"e": {"value": 0.01}}},
                "v2": v2,
            },
            "metrics": [{"metric": "error-rate", "signal": "e"}],
            "rps": 10,
        }
    )


def drive(p: Plan, bad_v2: bool, seed: int, abort_at: float | None = None) -> tuple[Driver, int, int]:
    """Run v1 to live, then v2; return the driver, the most pods alive and the fewest pods ready (both
    counted by the cluster at every step of the run, after v1 was first fully ready)."""
    cluster = MemoryCluster(config(bad_v2), seed=seed)
    driver = Driver(cluster, initial_state(p))
    driver.send(Deploy(revision="v1"), 0.0)
    now = 0.0
    while (t := driver.next_time(now)) is not None and t <= 60:
        now = t
        driver.pump(now)
    assert cluster.replica_counts("v1", 60.0)[1] == p.replicas, "v1 is fully ready before v2 comes"
    driver.send(Deploy(revision="v2"), 60.0)
    now, peak, low = 60.0, 0, p.replicas
    aborted = False
    while (t := driver.next_time(now)) is not None and t <= 7200:
        if abort_at is not None and not aborted and t >= abort_at:
            driver.send(Command(action="abort"), t)
            aborted = True
        now = t
        driver.pump(now)
        peak = max(peak, sum(cluster.pods(r) for r in REVISIONS))
        low = min(low, sum(cluster.replica_counts(r, now)[1] for r in REVISIONS))
    return driver, peak, low


@pytest.mark.parametrize(("surge", "unavailable"), [(1, 0), (0, 1), (2, 1)])
@pytest.mark.parametrize("bad_v2", [False, True], ids=["healthy", "fails-at-40"])
def test_basic_canary_keeps_pods_within_surge_and_unavailable(
    surge: int, unavailable: int, bad_v2: bool
) -> None:
    for seed in range(3):
        driver, peak, low = drive(plan(False, surge, unavailable), bad_v2, seed)
        assert driver.state.phase == "live"
        assert driver.state.stable == ("v1" if bad_v2 else "v2")
        assert peak <= 5 + surge, f"{peak} pods alive (limit {5 + surge})"
        assert low >= 5 - unavailable, f"{low} pods ready (floor {5 - unavailable})"


def test_basic_canary_abort_keeps_the_budget() -> None:
    driver, peak, low = drive(plan(False, 1, 0), False, 1, abort_at=200)
    assert driver.state.phase == "live" and driver.state.stable == "v1"
    assert peak <= 6 and low >= 5


def test_with_a_router_the_stable_stays_full_beside_the_canary() -> None:
    """Argo's canary with traffic routing: the canary is sized by weight and the stable keeps all its
    replicas (without dynamicStableScale), so more than replicas + maxSurge pods run at 80%."""
    driver, peak, low = drive(plan(True, 1, 0), False, 1)
    assert driver.state.phase == "live" and driver.state.stable == "v2"
    assert peak == 10, "5 stable + 5 canary at the final step"
    assert low >= 5
