"""``workloadRef`` with the controller running against the stand-in (its controllers on their own threads):
the Deployment is a watched template source, a missing one is retried with backoff, and a controller killed
during the adoption leaves a cluster a new one completes, with no dip in ready pods at any point (the oracle
of test_adoption: the stand-in's history replayed)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from kubernetes import client

from ebbtide.adapters.kubernetes.controller import Controller

from .fixtures import NAME, NS, Table, get, replicas, selectors, standin, state
from .standin import Behaviour, StandIn
from .test_adoption import V1, V2, WEB, deployment, lowest_ready, read_deployment, start
from .test_controller import config, metrics_text, sample

TABLE = Table({V1: 0.01, V2: 0.01})


def adopted_pods_slow(api: StandIn) -> None:
    api.workloads.default = Behaviour(ready_after=0.05)
    api.workloads.by_name[f"{NAME}-{V1}"] = Behaviour(ready_after=0.4)


def wait(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.02)


def handed_over(api: StandIn, rev: str) -> bool:
    s = state(api.client)
    return (
        s is not None
        and s.phase == "live"
        and s.stable == rev
        and s.ready.get(rev) == 3
        and not s.scale_downs
        and read_deployment(api).spec.replicas == 0
        and selectors(api.client) == {"orders-stable": rev, "orders-canary": rev}
    )


def test_the_controller_adopts_and_a_template_change_on_the_deployment_rolls_out() -> None:
    with standin(history=100_000) as api:
        adopted_pods_slow(api)
        start(api)
        # a long resync: only the Deployment's watch can start the second rollout in time
        with Controller(api.configuration, config(resync=600.0), measurements_for=lambda ns, n: TABLE):
            wait(lambda: handed_over(api, V1))
            adopted = api.store.resource_version
            client.AppsV1Api(api.client).patch_namespaced_deployment(
                WEB, NS, {"spec": {"template": deployment("orders:2")["spec"]["template"]}}
            )
            wait(lambda: handed_over(api, V2))
        assert replicas(api.client) == {V1: 0, V2: 3}
        assert lowest_ready(api, until=adopted) == (3, 3)  # the adoption (the rollout after: its own tests)


def test_a_missing_deployment_is_retried_with_backoff_and_adopted_once_created() -> None:
    with standin(history=100_000) as api:
        start(api, with_deployment=False)
        with Controller(api.configuration, config(resync=600.0), measurements_for=lambda ns, n: TABLE) as ctl:
            wait(lambda: "not found" in ((get(api.client).get("status") or {}).get("message") or ""))
            time.sleep(0.3)
            assert ctl.healthy() is None  # no crash loop: retried, the controller stays up
            # refused for a reason no watched object clears: retried with backoff, counted as such
            assert sample(metrics_text(ctl), "ebbtide_reconcile_errors_total", error="workload-ref") >= 2
            client.AppsV1Api(api.client).create_namespaced_deployment(NS, deployment("orders:1"))
            wait(lambda: handed_over(api, V1))


@pytest.mark.parametrize("kill_at", ["replicasets", "services", "deployments"])
def test_a_controller_killed_during_the_adoption_and_a_new_one_completes_it(kill_at: str) -> None:
    """The first controller dies at its first write to ``kill_at`` (from then on none of its writes reach
    the cluster, and it is stopped): before the adopted ReplicaSet exists, before the Services are pinned,
    before the Deployment is scaled down. A second one, started afresh, completes the handover."""
    with standin(history=100_000) as api:
        adopted_pods_slow(api)
        start(api)
        dead = threading.Event()

        def gate(verb: str, resource: str) -> bool:
            if resource == kill_at:
                dead.set()
            return not dead.is_set()

        first = Controller(api.configuration, config("first"), measurements_for=lambda ns, n: TABLE)
        first.client.may_write = gate
        with first:
            wait(dead.is_set)
        assert not handed_over(api, V1)
        with Controller(api.configuration, config("second"), measurements_for=lambda ns, n: TABLE):
            wait(lambda: handed_over(api, V1))
        assert read_deployment(api).spec.replicas == 0 and replicas(api.client) == {V1: 3}
        assert lowest_ready(api) == (3, 3)
