"""The reconciler against the stand-in API server: reconcile in a loop, the stand-in's ReplicaSet controller
making pods ready between calls (synchronously: its thread is stopped, so every run is the same)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from ebbtide.adapters.kubernetes import crds
from ebbtide.adapters.kubernetes.adapter import HASH_LABEL, revision_of
from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, VERSION, reconcile
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import Measurement
from ebbtide.core.state import RolloutState

from .standin import StandIn

ROOT = Path(__file__).resolve().parents[3]
NS, NAME = "shop", "orders"

SPECS = """
apiVersion: ebbtide.dev/v1alpha1
kind: VerificationTemplate
metadata: {name: errors}
spec:
  metrics:
    - name: error-rate
      interval: 10s
      count: 2
      successCondition: result < 0.05
      failureLimit: 0
      provider:
        prometheus: {query: "sum(rate(errors[1m]))"}
---
apiVersion: ebbtide.dev/v1alpha1
kind: Strategy
metadata: {name: steps}
spec:
  canary:
    steps:
      - setWeight: 20
      - verification: {templateNames: [errors]}
      - setWeight: 60
      - pause: {duration: 30s}
---
apiVersion: ebbtide.dev/v1alpha1
kind: RolloutSpec
metadata: {name: orders}
spec:
  spotDeployment: {name: orders}
  replicas: 5
  strategy: {name: steps}
  traffic: {canaryService: orders-canary, stableService: orders-stable}
  failurePolicy: {action: rollback}
"""


def template(image: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "orders"}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


V1, V2 = revision_of(template("orders:1")), revision_of(template("orders:2"))


@dataclass
class Table:
    """A MeasurementProvider answering from a table: image revision -> value; every request is kept."""

    values: Mapping[str, float]
    asked: list[StartMeasurement] = field(default_factory=list)

    def measure(self, start: StartMeasurement, now: float) -> Measurement:
        self.asked.append(start)
        return Measurement(
            verification=start.verification, metric=start.metric.name, value=self.values[start.revision]
        )


@pytest.fixture
def cluster() -> Iterator[StandIn]:
    with StandIn(bookmark_every=0.05, tick=0.01) as api:
        api.workloads.stop()  # the tests call sync() themselves, between reconciles
        extensions = client.ApiextensionsV1Api(api.client)
        for path in sorted((ROOT / "deploy" / "crds").glob("*.yaml")):
            extensions.create_custom_resource_definition(yaml.safe_load(path.read_text()))
        core = client.CoreV1Api(api.client)
        core.create_namespace({"metadata": {"name": NS}})
        for svc in ("orders-stable", "orders-canary"):
            core.create_namespaced_service(
                NS,
                {"metadata": {"name": svc}, "spec": {"selector": {"app": "orders"}, "ports": [{"port": 80}]}},
            )
        objects = client.CustomObjectsApi(api.client)
        for doc in yaml.safe_load_all(SPECS):
            plural = {k.kind: k.plural for k in crds.KINDS}[doc["kind"]]
            objects.create_namespaced_custom_object(GROUP, VERSION, NS, plural, doc)
        objects.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, workload("orders:1"))
        yield api


def workload(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "ebbtide.dev/v1alpha1",
        "kind": "EbbtideDeployment",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "orders"}}, "template": template(image)},
    }


def get(api: StandIn) -> dict[str, Any]:
    obj: dict[str, Any] = client.CustomObjectsApi(api.client).get_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, NAME
    )
    return obj


def set_image(api: StandIn, image: str) -> None:
    client.CustomObjectsApi(api.client).patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, NAME, {"spec": {"template": template(image)}}
    )


def state_of(api: StandIn) -> RolloutState:
    return RolloutState.from_json(json.dumps(get(api)["status"]["engineState"]))


def replicas(api: StandIn) -> dict[str, int]:
    rss = client.AppsV1Api(api.client).list_namespaced_replica_set(NS).items
    return {rs.metadata.labels[HASH_LABEL]: rs.spec.replicas for rs in rss}


def selectors(api: StandIn) -> dict[str, str | None]:
    core = client.CoreV1Api(api.client)
    return {
        s: core.read_namespaced_service(s, NS).spec.selector.get(HASH_LABEL)
        for s in ("orders-stable", "orders-canary")
    }


def run(
    api: StandIn,
    now: float,
    until: Callable[[RolloutState], bool],
    provider: Table | None = None,
    limit: int = 200,
    step: float = 5.0,
    each: Callable[[float], None] | None = None,
) -> float:
    """Reconcile every ``step`` virtual seconds, pods synced in between, until the state meets ``until``."""
    for _ in range(limit):
        reconcile(api.client, NS, NAME, now, measurements=provider)
        api.workloads.sync()
        if each is not None:
            each(now)
        if until(state_of(api)):
            return now
        now += step
    raise AssertionError(f"not reached: {state_of(api)}")


def live(rev: str) -> Callable[[RolloutState], bool]:
    return lambda s: s.phase == "live" and s.stable == rev and s.ready.get(rev) == 5


def test_first_deploy_goes_live_and_writes_the_summary(cluster: StandIn) -> None:
    run(cluster, 0.0, live(V1))
    status = get(cluster)["status"]
    assert status["phase"] == "live" and status["stableRevision"] == V1
    assert status["summary"]["revisions"] == [{"revision": V1, "desired": 5, "ready": 5}]
    assert replicas(cluster) == {V1: 5}
    rs = client.AppsV1Api(cluster.client).read_namespaced_replica_set(f"{NAME}-{V1}", NS)
    assert rs.metadata.owner_references[0].name == NAME and rs.metadata.owner_references[0].controller
    assert rs.spec.template.metadata.labels == {"app": "orders", HASH_LABEL: V1}


def test_a_healthy_canary_rolls_out_to_live(cluster: StandIn) -> None:
    table = Table({V1: 0.01, V2: 0.01})
    now = run(cluster, 0.0, live(V1), table)
    set_image(cluster, "orders:2")
    seen: list[dict[str, str | None]] = []
    run(
        cluster,
        now + 5,
        live(V2),
        table,
        each=lambda _: seen.append(selectors(cluster)),
    )
    status = get(cluster)["status"]
    assert (status["phase"], status["stableRevision"], status["weights"]) == ("live", V2, f"{V2}=100")
    assert replicas(cluster) == {V1: 0, V2: 5}
    assert selectors(cluster) == {"orders-stable": V2, "orders-canary": V2}
    # on the way the canary Service pointed at the canary while the stable one stayed on V1
    assert {"orders-stable": V1, "orders-canary": V2} in seen
    assert table.asked and all(s.revision == V2 for s in table.asked)
    reasons = [e.reason for e in client.CoreV1Api(cluster.client).list_namespaced_event(NS).items]
    assert "rollout-started" in reasons and "rollout-finished" in reasons


def test_a_failed_measurement_rolls_back_at_once(cluster: StandIn) -> None:
    table = Table({V1: 0.01, V2: 0.5})
    now = run(cluster, 0.0, live(V1), table)
    set_image(cluster, "orders:2")
    run(cluster, now + 5, lambda s: s.rollback is not None, table)
    state = state_of(cluster)
    assert state.weights == {V1: 100} and state.stable == V1
    assert selectors(cluster) == {"orders-stable": V1, "orders-canary": V1}
    assert get(cluster)["status"]["summary"]["rollback"]["target"] == V1
    run(cluster, now + 600, lambda s: s.phase == "live" and s.degraded and s.replicas.get(V2, 0) == 0, table)
    status = get(cluster)["status"]
    healthy = next(c for c in status["conditions"] if c["type"] == "Healthy")
    assert healthy["status"] == "False" and healthy["reason"] == "Degraded"
    events = client.CoreV1Api(cluster.client).list_namespaced_event(NS).items
    failed = [e for e in events if e.reason == "rollout-failed"]
    assert failed and failed[0].type == "Warning" and failed[0].involved_object.name == NAME


def test_a_manual_rollback_sets_the_template_back(cluster: StandIn) -> None:
    table = Table({V1: 0.01, V2: 0.01})
    now = run(cluster, 0.0, live(V1), table)
    set_image(cluster, "orders:2")
    now = run(cluster, now + 5, lambda s: s.weights.get(V2, 0) >= 20, table)
    set_image(cluster, "orders:1")
    run(cluster, now + 5, lambda s: live(V1)(s) and s.replicas.get(V2, 0) == 0, table)
    assert state_of(cluster).weights == {V1: 100}
    assert selectors(cluster) == {"orders-stable": V1, "orders-canary": V1}
