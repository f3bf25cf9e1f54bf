"""The adapter contract, run against every adapter: the in-memory cluster and the Kubernetes adapter on the
stand-in API server (tests/adapters/kubernetes/contract.py says how its clock is stepped)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ebbtide.adapters.base import Adapter
from ebbtide.adapters.memory import ClusterConfig, MemoryCluster
from ebbtide.core.effects import Notify, ScaleRevision, SetTraffic, StartMeasurement, StopVerification
from ebbtide.core.events import Measurement, ReplicasObserved
from ebbtide.core.plan import MetricPlan

CONFIG = ClusterConfig.model_validate(
    {
        "revisions": {
            "v1": {"readiness": {"delay": "5s"}, "signals": {"errorRate": 0.01}},
            "v2": {"readiness": {"delay": "10s", "jitter": "4s"}, "signals": {"errorRate": 0.02}},
        },
        "metrics": [{"metric": "error-rate", "signal": "errorRate"}],
        "rps": 10,
    }
)
METRIC = MetricPlan(name="error-rate", interval=30, count=3, success_condition="result < 0.05")


def _memory() -> Iterator[Adapter]:
    yield MemoryCluster(CONFIG, seed=1)


def _kubernetes() -> Iterator[Adapter]:
    from tests.adapters.kubernetes.contract import stepped_cluster

    with stepped_cluster() as cluster:
        yield cluster


ADAPTERS: dict[str, Callable[[], Iterator[Adapter]]] = {"memory": _memory, "kubernetes": _kubernetes}


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> Iterator[Adapter]:
    yield from ADAPTERS[request.param]()


def settle(adapter: Adapter, now: float, until: float) -> tuple[float, dict[str, ReplicasObserved]]:
    """Observe until ``until`` (jumping to the adapter's next changes); the last observation per revision."""
    seen: dict[str, ReplicasObserved] = {}
    t = now
    while True:
        for ev in adapter.observe(t):
            if isinstance(ev, ReplicasObserved):
                seen[ev.revision] = ev
        nxt = adapter.next_change(t)
        if nxt is None or nxt > until:
            return t, seen
        t = nxt


def test_is_an_adapter(adapter: Adapter) -> None:
    assert isinstance(adapter, Adapter)


def test_scaling_converges_and_reports_readiness(adapter: Adapter) -> None:
    adapter.apply(ScaleRevision(revision="v2", replicas=3), 0.0)
    first = [e for e in adapter.observe(0.0) if isinstance(e, ReplicasObserved)]
    assert first and first[0].desired == 3 and first[0].ready == 0
    _, seen = settle(adapter, 0.0, 600.0)
    assert seen["v2"].ready == seen["v2"].available == seen["v2"].desired == 3
    adapter.apply(ScaleRevision(revision="v2", replicas=1), 600.0)
    _, seen = settle(adapter, 600.0, 1200.0)
    assert (seen["v2"].desired, seen["v2"].ready) == (1, 1)


def test_observe_reports_only_changes(adapter: Adapter) -> None:
    adapter.apply(ScaleRevision(revision="v1", replicas=2), 0.0)
    settle(adapter, 0.0, 600.0)
    assert adapter.observe(700.0) == []
    adapter.resync()
    again = adapter.observe(700.0)
    assert [e.revision for e in again if isinstance(e, ReplicasObserved)] == ["v1"]


def test_effects_are_idempotent(adapter: Adapter) -> None:
    scale = ScaleRevision(revision="v1", replicas=2)
    traffic = SetTraffic(weights={"v1": 100})
    adapter.apply(scale, 0.0)
    adapter.apply(traffic, 0.0)
    _, once = settle(adapter, 0.0, 600.0)
    adapter.apply(scale, 600.0)
    adapter.apply(traffic, 600.0)
    assert adapter.observe(600.0) == []  # nothing changed
    _, twice = settle(adapter, 600.0, 1200.0)
    assert twice == {} and once["v1"].ready == 2


def test_traffic_weights_observed_equal_applied(adapter: Adapter) -> None:
    adapter.apply(ScaleRevision(revision="v1", replicas=2), 0.0)
    adapter.apply(ScaleRevision(revision="v2", replicas=1), 0.0)
    settle(adapter, 0.0, 600.0)
    adapter.apply(SetTraffic(weights={"v1": 60, "v2": 40}), 600.0)
    assert adapter.weights == {"v1": 60, "v2": 40}  # type: ignore[attr-defined]


def test_measurements_come_back_for_their_verification(adapter: Adapter) -> None:
    adapter.apply(ScaleRevision(revision="v2", replicas=1), 0.0)
    start = StartMeasurement(verification="run-7", template="t", metric=METRIC, revision="v2", stable="v1")
    adapter.apply(start, 1.0)
    adapter.apply(start, 1.0)  # asked twice: answered once
    results = [e for e in adapter.observe(1.0) if isinstance(e, Measurement)]
    assert len(results) == 1
    assert results[0].verification == "run-7" and results[0].metric == "error-rate"
    assert results[0].value == pytest.approx(0.02) and results[0].error is None
    # a stopped verification's pending result is dropped
    adapter.apply(start, 2.0)
    adapter.apply(StopVerification(verification="run-7"), 2.0)
    assert [e for e in adapter.observe(2.0) if isinstance(e, Measurement)] == []


def test_notifications_are_recorded(adapter: Adapter) -> None:
    n = Notify(event="rollout-started", payload={"revision": "v2"})
    adapter.apply(n, 3.0)
    assert adapter.notifications == [(3.0, n)]
