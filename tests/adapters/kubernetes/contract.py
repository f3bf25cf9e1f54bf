"""The Kubernetes adapter on the stand-in, shaped for the adapter contract suite (test_contract.py).

A real cluster does not say when it will change (``next_change`` is None: the controller is watch driven).
The contract's ``settle`` loop needs to know, so :class:`SteppedCluster` plays the kubelet's clock: every
``observe`` runs the stand-in's ReplicaSet controller once *after* looking (the cluster moves after you
look), and ``next_change`` is one second on while some ReplicaSet's status still differs from what was last
observed. Revisions ``v1`` and ``v2`` have their own pod templates; measurements come from a table."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ebbtide.adapters.kubernetes.adapter import KubernetesAdapter
from ebbtide.core.effects import Effect, Notify
from ebbtide.core.events import Event

from .standin import StandIn
from .test_reconcile import Table, get, standin_cluster, template


class SteppedCluster:
    def __init__(self, api: StandIn) -> None:
        self.api = api
        self.inner = KubernetesAdapter(
            api.client,
            get(api),
            stable_service="orders-stable",
            canary_service="orders-canary",
            measurements=Table({"v1": 0.01, "v2": 0.02}),
            templates={"v1": template("orders:1"), "v2": template("orders:2")},
        )

    @property
    def notifications(self) -> list[tuple[float, Notify]]:
        return self.inner.notifications

    @property
    def weights(self) -> dict[str, int] | None:
        return self.inner.weights

    def apply(self, effect: Effect, now: float) -> None:
        self.inner.apply(effect, now)

    def observe(self, now: float) -> list[Event]:
        events = self.inner.observe(now)
        self.api.workloads.sync()
        return events

    def resync(self) -> None:
        self.inner.resync()

    def next_change(self, now: float) -> float | None:
        # the ReplicaSets' counts as the next observe would see them, against what was reported
        pending = self.inner._counts() != self.inner._reported
        return now + 1.0 if pending else None


@contextlib.contextmanager
def stepped_cluster() -> Iterator[SteppedCluster]:
    with standin_cluster() as api:
        yield SteppedCluster(api)
