"""A measurement result the controller polled counts only once a written status records it.

The controller's provider is a :class:`~ebbtide.adapters.providers.dispatch.Dispatcher` scope: its ``poll``
hands each result out once. A reconcile whose status write conflicts (a real 409: someone wrote the object
in between) decides again over the object read afresh, and a reconcile can give up (conflicts every time,
an API error). The oracle is the provider's own count of the requests it answered and the persisted
engine state: the result reaches the persisted state, and the provider is not asked again for it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from ebbtide.adapters.kubernetes.cache import ApiReads
from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, VERSION, ReconcileConflict, reconcile
from ebbtide.adapters.kubernetes.routers.base import CannotExpress, Obj, Result, Traffic
from ebbtide.adapters.kubernetes.routers.services import replica_ratio
from ebbtide.adapters.providers.dispatch import Dispatcher, ScopedProvider
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import Measurement
from ebbtide.core.state import RolloutState

from .fixtures import (
    NAME,
    NS,
    Table,
    errors_template,
    get,
    install,
    rollout_spec,
    run,
    set_image,
    standin,
    state_of,
    strategy,
    template,
    workload,
)
from .standin import StandIn
from .test_reconcile import V1, V2, live, standin_cluster


class StaleFirstRead(ApiReads):
    """Reads whose first read of the workload is the object as it was before someone else's write."""

    def __init__(self, api: StandIn, stale: dict[str, Any]) -> None:
        super().__init__(api.client)
        self.stale: dict[str, Any] | None = stale

    def workload(self, namespace: str, name: str) -> dict[str, Any]:
        stale, self.stale = self.stale, None
        return stale if stale is not None else super().workload(namespace, name)


class Gated(Table):
    """A table that answers only once the test opens the gate (a slow metrics backend)."""

    def __init__(self) -> None:
        super().__init__({V1: 0.01, V2: 0.01})
        self.gate = threading.Event()

    def measure(self, start: StartMeasurement, now: float) -> Measurement:
        assert self.gate.wait(10)
        return super().measure(start, now)


def someone_writes(api: StandIn) -> None:
    """A concurrent writer (a person's annotation): the object's resourceVersion moves on."""
    patch = {"metadata": {"annotations": {"example.com/touched": "yes"}}}
    client.CustomObjectsApi(api.client).patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, NAME, patch
    )


def measured(state: RolloutState) -> int:
    """Measurements the persisted state has recorded, over every verification run."""
    return sum(m.count for run in state.verifications for m in run.metrics)


#: one measurement decides the verification, and the step after it moves traffic
ONE_MEASUREMENT = [
    errors_template("10s", 1),
    strategy("steps", {"setWeight": 20}, {"verification": {"templateNames": ["errors"]}}, {"setWeight": 60}),
    rollout_spec("steps", replicas=5),
]


@contextlib.contextmanager
def one_measurement_cluster() -> Iterator[StandIn]:
    with standin(background=False) as api:
        install(api.client, NS, ONE_MEASUREMENT, workload=workload(template("orders:1")))
        yield api


@contextlib.contextmanager
def waiting_for_a_result(
    cluster: Callable[[], contextlib.AbstractContextManager[StandIn]] = standin_cluster,
) -> Iterator[tuple[StandIn, Table, ScopedProvider, float]]:
    """v2 in its verification step with one measurement answered by the provider and not yet polled."""
    table = Gated()
    with cluster() as api, Dispatcher(table, timeout=60) as pool:
        scope = pool.for_scope(f"{NS}/{NAME}")
        now = run(api, 0.0, live(V1))
        set_image(api, "orders:2")
        now = run(api, now + 5, lambda s: s.phase == "verifying" and bool(pool.in_flight()), scope)
        table.gate.set()
        assert pool.wait(10) and len(table.asked) == 1  # answered: waiting in the dispatcher for a poll
        assert measured(state_of(api)) == 0
        yield api, table, scope, now


def test_a_result_polled_by_a_decision_whose_write_conflicted_is_recorded_by_the_next_attempt() -> None:
    with waiting_for_a_result() as (api, table, scope, now):
        stale = get(api)
        someone_writes(api)
        outcome = reconcile(
            api.client, NS, NAME, now + 1, measurements=scope, reads=StaleFirstRead(api, stale)
        )
        assert outcome.attempts == 2  # the first decision's write was refused: it polled the result
        assert measured(state_of(api)) == 1
        assert len(table.asked) == 1  # not asked again


@pytest.mark.parametrize("failure", ["conflicts", "api-error"])
def test_a_reconcile_that_gives_up_hands_its_polled_results_to_the_next(failure: str) -> None:
    with waiting_for_a_result() as (api, table, scope, now):
        if failure == "conflicts":
            api.faults.conflict_every(1, verbs=frozenset({"update"}), plural=PLURAL)
            expected: type[Exception] = ReconcileConflict
        else:
            api.faults.fail_next(1, status=500, verbs=frozenset({"update"}), plural=PLURAL)
            expected = client.ApiException
        with pytest.raises(expected):
            reconcile(api.client, NS, NAME, now + 1, measurements=scope)
        api.faults.clear()
        assert measured(state_of(api)) == 0  # nothing persisted
        reconcile(api.client, NS, NAME, now + 2, measurements=scope)
        assert measured(state_of(api)) == 1
        assert len(table.asked) == 1  # the next reconcile recorded the same answer: not asked again


def test_a_result_taken_by_a_decision_the_router_could_not_express_waits_for_the_next() -> None:
    """The result ends the verification and the next step moves traffic the router cannot express: that
    decision is not persisted (the step waits), so the result it took is not lost either."""
    refuse = True

    def router(stable: Obj, canary: Obj | None, traffic: Traffic, labels: Any) -> Result:
        if refuse and traffic.weights.get(V2, 0) > 20:
            return CannotExpress("this router cannot send 60% yet")
        return replica_ratio(stable, canary, traffic, labels)

    with waiting_for_a_result(one_measurement_cluster) as (api, table, scope, now):
        reconcile(api.client, NS, NAME, now + 1, measurements=scope, router=router)
        assert measured(state_of(api)) == 0 and state_of(api).phase == "verifying"  # not persisted
        refuse = False
        reconcile(api.client, NS, NAME, now + 2, measurements=scope, router=router)
        assert state_of(api).step_index == 2  # verified with the same answer, on to setWeight 60
        assert len(table.asked) == 1


def test_the_controller_asks_the_provider_once_per_measurement() -> None:
    """The controller wired as ``ebbtide controller`` wires it (a dispatcher whose results wake the
    workload): every reconcile restores the persisted state and re-sends the measurements in flight, yet
    the provider is asked exactly as many times as the rollout takes measurements (the template's count of
    two, once per verification run), and the rollout goes live."""
    from ebbtide.adapters.kubernetes.controller import Controller

    from . import test_controller as tc

    table = Table({tc.V1: 0.01, tc.V2: 0.01})
    with tc.standin_cluster() as api, Dispatcher(table, timeout=10) as pool:
        ctl = Controller(
            api.configuration, tc.config(), measurements_for=lambda ns, n: pool.for_scope(f"{ns}/{n}")
        )
        pool.on_result = lambda scope: ctl.queue.add(tuple(scope.split("/", 1)))  # type: ignore[arg-type]
        with ctl:
            tc.wait_for(api, tc.settled(tc.V1))
            tc.set_image(api, "orders:2")
            tc.wait_for(api, tc.settled(tc.V2))
        runs = {start.verification for start in table.asked}
        assert len(runs) == 1 and len(table.asked) == 2, [s.verification for s in table.asked]
