"""Shared scaffolding of the Kubernetes tests, against the stand-in or a real cluster (``tests/e2e``): the
workload ``shop/orders`` with its stable and canary Services, the spec kinds from YAML, and the reads the
tests make of the cluster (the API server's objects, independent of the code under test).

    with standin() as api:                       # CRDs registered, the workload's Services created
        install(api.client, NS, SPECS, workload=workload(template("orders:1")))
        run(api, 0.0, lambda s: s.phase == "live")   # reconcile, pods synced in between
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client import ApiException

from ebbtide.adapters.kubernetes import crds
from ebbtide.adapters.kubernetes.adapter import HASH_LABEL, WORKLOAD_LABEL, Router
from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, VERSION, ReconcileConflict, reconcile
from ebbtide.adapters.kubernetes.routers.services import replica_ratio
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import Measurement
from ebbtide.core.state import RolloutState

from .standin import StandIn

ROOT = Path(__file__).resolve().parents[3]
NS, NAME = "shop", "orders"
SERVICES = ("orders-stable", "orders-canary")
PLURALS = {k.kind: k.plural for k in crds.KINDS}
Obj = dict[str, Any]
#: a stand-in (its client is used) or a client of any API server
Api = StandIn | client.ApiClient


def _client(api: Api) -> client.ApiClient:
    return api.client if isinstance(api, StandIn) else api


def template(image: str, app: str = "orders") -> Obj:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def workload(pod_template: Obj | None = None, replicas: int | None = 5, **spec: Any) -> Obj:
    """An ``EbbtideDeployment`` named ``orders`` (template form, or whatever ``spec`` says instead)."""
    body: Obj = {"apiVersion": crds.API_VERSION, "kind": "EbbtideDeployment", "metadata": {"name": NAME}}
    body["spec"] = {} if replicas is None else {"replicas": replicas}
    if pod_template is not None:
        labels = pod_template["metadata"]["labels"]
        body["spec"] |= {"selector": {"matchLabels": dict(labels)}, "template": pod_template}
    body["spec"] |= spec
    return body


def errors_template(interval: str, count: int) -> Obj:
    """The VerificationTemplate ``errors``: an error rate below 5 %, ``count`` measurements."""
    metric = {
        "name": "error-rate",
        "interval": interval,
        "count": count,
        "successCondition": "result < 0.05",
        "failureLimit": 0,
        "provider": {"prometheus": {"query": "sum(rate(errors[1m]))"}},
    }
    return _doc("VerificationTemplate", "errors", {"metrics": [metric]})


def strategy(name: str, *steps: Obj) -> Obj:
    return _doc("Strategy", name, {"canary": {"steps": list(steps)}})


def rollout_spec(strategy: str, **spec: Any) -> Obj:
    """The RolloutSpec ``orders`` of the workload ``orders``: the stable and canary Services, rollback on
    failure, and ``spec``."""
    base = {
        "spotDeployment": {"name": NAME},
        "strategy": {"name": strategy},
        "traffic": {"canaryService": SERVICES[1], "stableService": SERVICES[0]},
        "failurePolicy": {"action": "rollback"},
    }
    return _doc("RolloutSpec", NAME, base | spec)


def _doc(kind: str, name: str, spec: Obj) -> Obj:
    return {"apiVersion": crds.API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}


@contextlib.contextmanager
def standin(*, background: bool = True, **options: Any) -> Iterator[StandIn]:
    """A stand-in API server with the CRDs of ``deploy/crds``; ``background=False`` stops its ReplicaSet
    controller (the test then calls ``api.workloads.sync()`` itself, between reconciles)."""
    with StandIn(**({"bookmark_every": 0.05, "tick": 0.01} | options)) as api:
        if not background:
            api.workloads.stop()
        extensions = client.ApiextensionsV1Api(api.client)
        for path in sorted((ROOT / "deploy" / "crds").glob("*.yaml")):
            extensions.create_custom_resource_definition(yaml.safe_load(path.read_text()))
        yield api


def install(
    api: Api,
    ns: str,
    specs: str | Iterable[Obj],
    *,
    workload: Obj | None = None,
    edit: Callable[[Obj], None] | None = None,
) -> None:
    """The namespace, the stable and canary Services (selecting ``app: orders``), the spec kinds (``specs``:
    YAML, or the documents; each passed to ``edit`` first) and the ``workload``."""
    core = client.CoreV1Api(_client(api))
    core.create_namespace({"metadata": {"name": ns}})
    for svc in SERVICES:
        core.create_namespaced_service(
            ns, {"metadata": {"name": svc}, "spec": {"selector": {"app": "orders"}, "ports": [{"port": 80}]}}
        )
    objects = client.CustomObjectsApi(_client(api))
    for doc in yaml.safe_load_all(specs) if isinstance(specs, str) else copy.deepcopy(list(specs)):
        if edit is not None:
            edit(doc)
        objects.create_namespaced_custom_object(GROUP, VERSION, ns, PLURALS[doc["kind"]], doc)
    if workload is not None:
        objects.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, workload)


def write_kubeconfig(path: Path, url: str, *, namespace: str | None = None, token: str | None = None) -> Path:
    context: Obj = {"cluster": "standin", "user": "tester"} | ({"namespace": namespace} if namespace else {})
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "standin", "cluster": {"server": url}}],
                "users": [{"name": "tester", "user": {"token": token} if token else {}}],
                "contexts": [{"name": "test", "context": context}],
                "current-context": "test",
            }
        )
    )
    return path


# ----- reading the cluster ---------------------------------------------------------------------------
def get(api: Api, ns: str = NS) -> Obj:
    objects = client.CustomObjectsApi(_client(api))
    obj: Obj = objects.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, NAME)
    return obj


def state(api: Api, ns: str = NS) -> RolloutState | None:
    """The engine state persisted in the workload's status (None before the first write)."""
    raw = (get(api, ns).get("status") or {}).get("engineState")
    return None if raw is None else RolloutState.from_json(json.dumps(raw))


def state_of(api: Api, ns: str = NS) -> RolloutState:
    found = state(api, ns)
    assert found is not None, "no engine state persisted yet"
    return found


def replicas(api: Api, ns: str = NS) -> dict[str, int]:
    """``spec.replicas`` of the workload's ReplicaSets, by revision."""
    apps = client.AppsV1Api(_client(api))
    rss = apps.list_namespaced_replica_set(ns, label_selector=WORKLOAD_LABEL).items
    return {rs.metadata.labels[HASH_LABEL]: rs.spec.replicas for rs in rss}


def selectors(api: Api, ns: str = NS) -> dict[str, str | None]:
    """The revision each Service selects (None: not pinned to one)."""
    core = client.CoreV1Api(_client(api))
    return {s: core.read_namespaced_service(s, ns).spec.selector.get(HASH_LABEL) for s in SERVICES}


def set_template(api: Api, pod_template: Obj, ns: str = NS) -> None:
    client.CustomObjectsApi(_client(api)).patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, NAME, {"spec": {"template": pod_template}}
    )


def set_image(api: Api, image: str, ns: str = NS) -> None:
    set_template(api, template(image), ns)


# ----- driving the reconciler by hand ------------------------------------------------------------------
@dataclass
class Table:
    """A MeasurementProvider answering from a table: revision -> value; every request is kept."""

    values: Mapping[str, float]
    asked: list[StartMeasurement] = field(default_factory=list)

    def measure(self, start: StartMeasurement, now: float) -> Measurement:
        self.asked.append(start)
        return Measurement(
            verification=start.verification, metric=start.metric.name, value=self.values[start.revision]
        )


def run(
    api: StandIn,
    now: float,
    until: Callable[[RolloutState], bool],
    provider: Table | None = None,
    *,
    limit: int = 300,
    step: float = 5.0,
    each: Callable[[float], None] | None = None,
    router: Router = replica_ratio,
    tolerant: bool = False,
) -> float:
    """Reconcile every ``step`` virtual seconds, pods synced in between, until the state meets ``until``;
    ``tolerant``: a reconcile failing on an API error or a conflict is the controller dying or giving up a
    round (the next starts again from the persisted status)."""
    for _ in range(limit):
        with contextlib.suppress(*((ApiException, ReconcileConflict) if tolerant else ())):
            reconcile(api.client, NS, NAME, now, measurements=provider, router=router)
        api.workloads.sync()
        if each is not None:
            each(now)
        if until(state_of(api)):
            return now
        now += step
    raise AssertionError(f"not reached: {state(api)}")
