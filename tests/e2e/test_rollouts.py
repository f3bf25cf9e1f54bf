"""Rollouts on a real cluster (kind, k3s, ...): skipped unless ``EBBTIDE_E2E_KUBECONFIG`` names a kubeconfig.

The scenarios of tests/adapters/kubernetes/test_controller.py, test_history.py and test_kopf_operator.py,
on real pods: the controller (``Controller``, in this process, out of cluster, with the kubeconfig's
credentials) and the kopf example each take a canary to live and roll a canary whose verification fails
back; the controller also rolls a live version back by hand and trims the ReplicaSet history. Pods run
``registry.k8s.io/pause`` (the cluster must be able to pull it); revisions differ by an environment
variable. Measurements come from a table (a revision's error rate), as in the stand-in tests: no metrics
backend is needed. Each test works in a namespace of its own, deleted at the end. See docs/kubernetes.md.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import itertools
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from ebbtide.adapters.kubernetes.adapter import revision_of
from ebbtide.adapters.kubernetes.controller import Controller, ControllerConfig
from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, VERSION
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import Measurement

from ..adapters.kubernetes.fixtures import (
    errors_template,
    install,
    replicas,
    rollout_spec,
    selectors,
    set_template,
    state,
    strategy,
    workload,
)
from . import test_cluster
from .test_cluster import KUBECONFIG, apply_crds

pytestmark = pytest.mark.skipif(
    not KUBECONFIG, reason="set EBBTIDE_E2E_KUBECONFIG to a test cluster's kubeconfig"
)

ROOT = Path(__file__).resolve().parents[2]
NAME = "orders"
IMAGE = "registry.k8s.io/pause:3.9"
TIMEOUT = 240.0  # image pulls on a fresh node

SPECS = [
    errors_template("5s", 1),
    strategy("canary", {"setWeight": 40}, {"verification": {"templateNames": ["errors"]}}),
    rollout_spec("canary", replicas=2),
]


def template(version: int) -> dict[str, Any]:
    container = {"name": "app", "image": IMAGE, "env": [{"name": "VERSION", "value": str(version)}]}
    return {"metadata": {"labels": {"app": "orders"}}, "spec": {"containers": [container]}}


REV = {v: revision_of(template(v)) for v in range(1, 6)}
BAD = 3  # version 3's error rate fails the verification


@dataclass
class Table:
    asked: list[str] = field(default_factory=list)

    def measure(self, start: StartMeasurement, now: float) -> Measurement:
        self.asked.append(start.revision)
        value = 0.5 if start.revision == REV[BAD] else 0.01
        return Measurement(verification=start.verification, metric=start.metric.name, value=value)


@pytest.fixture
def api() -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=KUBECONFIG)
    yield api_client
    api_client.close()


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    apply_crds(api)
    name = f"ebbtide-e2e-{uuid.uuid4().hex[:8]}"
    install(api, name, SPECS)
    yield name
    client.CoreV1Api(api).delete_namespace(name)


def create_workload(api: client.ApiClient, ns: str, version: int | None, **spec: Any) -> None:
    """The workload at ``version`` (template form), or as ``spec`` says (``version`` None)."""
    pod_template = None if version is None else template(version)
    body = workload(pod_template, replicas=2 if version else None, **spec)
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)


def set_version(api: client.ApiClient, ns: str, version: int) -> None:
    set_template(api, template(version), ns)


def settled(api: client.ApiClient, ns: str, version: int) -> Callable[[], bool]:
    def check() -> bool:
        s = state(api, ns)
        return (
            s is not None
            and s.phase == "live"
            and s.desired == REV[version]
            and s.ready.get(s.stable or "") == 2
            and not s.scale_downs
        )

    return check


#: image pulls on a fresh node take a while
wait_for = functools.partial(test_cluster.wait_for, timeout=TIMEOUT)


@contextlib.contextmanager
def controller(ns: str, table: Table) -> Iterator[Controller]:
    configuration = client.Configuration()
    config.load_kube_config(config_file=KUBECONFIG, client_configuration=configuration)
    cfg = ControllerConfig(
        namespaces=(ns,), leader_elect=False, resync=10.0, metrics_address="127.0.0.1", metrics_port=0
    )
    with Controller(configuration, cfg, measurements_for=lambda namespace, name: table) as ctl:
        yield ctl


def test_the_controller_rolls_out_rolls_back_and_trims_the_history(
    api: client.ApiClient, namespace: str
) -> None:
    table = Table()
    with controller(namespace, table):
        create_workload(api, namespace, 1, revisionHistoryLimit=2)
        wait_for(settled(api, namespace, 1))
        set_version(api, namespace, 2)  # a healthy canary
        wait_for(settled(api, namespace, 2))
        assert selectors(api, namespace) == {"orders-stable": REV[2], "orders-canary": REV[2]}
        set_version(api, namespace, BAD)  # its verification fails: rolled back at once
        wait_for(settled(api, namespace, BAD))
        s = state(api, namespace)
        assert s is not None and s.stable == REV[2] and s.degraded and s.weights == {REV[2]: 100}
        assert selectors(api, namespace) == {"orders-stable": REV[2], "orders-canary": REV[2]}
        set_version(api, namespace, 4)
        wait_for(settled(api, namespace, 4))
        set_version(api, namespace, 2)  # a manual rollback of the live version to an older one
        wait_for(settled(api, namespace, 2))
        # limit 2: the stable (2) and the one before it (4); 1 and the failed 3 are deleted
        wait_for(lambda: replicas(api, namespace) == {REV[2]: 2, REV[4]: 0}, timeout=60)
    # measured (a retried reconcile may ask again): each canary, and the version rolled back to by hand
    assert [rev for rev, _ in itertools.groupby(table.asked)] == [REV[2], REV[BAD], REV[4], REV[2]]
    reasons = [
        e.reason
        for e in client.CoreV1Api(api).list_namespaced_event(namespace).items
        if e.source and e.source.component == "ebbtide-controller"
    ]
    assert {"rollout-started", "rollout-finished", "rollout-failed", "rollout-rolled-back"} <= set(reasons)


def test_the_kopf_example_rolls_a_canary_out_and_a_failed_one_back(
    api: client.ApiClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kopf = pytest.importorskip("kopf")
    monkeypatch.setenv("KUBECONFIG", str(KUBECONFIG))
    name = "ebbtide_kopf_example"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "kopf" / "operator.py")
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    table = Table()
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=kopf.run,
        kwargs={
            "standalone": True,
            "namespaces": [namespace],
            "stop_flag": stop,
            "ready_flag": ready,
            "memo": kopf.Memo(measurements=table),
        },
        daemon=True,
    )
    thread.start()
    try:
        assert ready.wait(60)
        create_workload(api, namespace, 1)
        wait_for(settled(api, namespace, 1))
        set_version(api, namespace, 2)
        wait_for(settled(api, namespace, 2))
        set_version(api, namespace, BAD)
        wait_for(settled(api, namespace, BAD))
        s = state(api, namespace)
        assert s is not None and s.stable == REV[2] and s.degraded and s.weights == {REV[2]: 100}
        assert selectors(api, namespace) == {"orders-stable": REV[2], "orders-canary": REV[2]}
    finally:
        stop.set()
        thread.join(30)
    assert [rev for rev, _ in itertools.groupby(table.asked)] == [REV[2], REV[BAD]]


def test_the_controller_adopts_a_running_deployment_without_a_dip_and_rolls_its_template_out(
    api: client.ApiClient, namespace: str
) -> None:
    """workloadRef on real pods: a Deployment of 2 ready pods is adopted (the ready pods of the app, polled,
    never fewer than 2), scaled to 0 once the adopted pods are ready, and a later change of its template is
    rolled out. The API server defaults the Deployment's template, so revisions are read from the state."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    deployment = {
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "orders"}}, "template": template(1)},
    }
    apps.create_namespaced_deployment(namespace, deployment)
    wait_for(lambda: (apps.read_namespaced_deployment("web", namespace).status.ready_replicas or 0) == 2)
    ready_seen: list[int] = []

    def handed_over() -> bool:
        pods = core.list_namespaced_pod(namespace, label_selector="app=orders").items
        ready_seen.append(
            sum(
                any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []) for p in pods
            )
        )
        s = state(api, namespace)
        return (
            s is not None
            and s.phase == "live"
            and s.ready.get(s.stable or "") == 2
            and apps.read_namespaced_deployment("web", namespace).spec.replicas == 0
            and selectors(api, namespace)["orders-stable"] == s.stable
        )

    with controller(namespace, Table()):
        create_workload(api, namespace, None, workloadRef={"name": "web"})
        wait_for(handed_over)
        adopted = state(api, namespace).stable  # type: ignore[union-attr]
        assert min(ready_seen) >= 2
        apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": template(2)}})
        wait_for(lambda: handed_over() and state(api, namespace).stable != adopted)  # type: ignore[union-attr]
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 0
