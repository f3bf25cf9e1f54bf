"""``workloadRef``: an ``EbbtideDeployment`` that adopts an existing Deployment (``apps/v1``), as an Argo
Rollout's ``workloadRef`` does.

- **The template source is the Deployment.** Every reconcile reads it: its pod template and selector stand
  in the workload's spec (:func:`resolve`), so a later change of the Deployment's template is a new
  revision, and a new rollout. ``replicas``, when the workload does not set it, is the Deployment's (the
  count it had before it was scaled down is kept in its annotation :data:`REPLICAS_ANNOTATION`).
- **The handover never drops ready pods.** The adopted revision's ReplicaSet is created beside the
  Deployment's pods (same labels, plus ``pod-template-hash``). While its pods are not all ready and the
  Deployment still has pods, a traffic write that sends everything to it is held (:func:`holding`): the
  Services keep their selectors, which select both the Deployment's pods and the adopted ones. Once all are
  ready, the Services are pinned to the revision, and then the Deployment is scaled down
  (:func:`scale_down`): ``onsuccess`` (the default) to 0 at once, ``progressively`` by one pod for each
  adopted pod ready, ``never`` not at all.
- **Deleting the workload leaves the Deployment where it is** (at 0 after an ``onsuccess`` handover): the
  workload's ReplicaSets go with it (owner references), the Deployment is not scaled back up. Scale it to
  the count in :data:`REPLICAS_ANNOTATION` first (docs/kubernetes.md says how).
- **A Deployment that is missing or cannot be adopted** is a :class:`RefProblem` naming the field: the
  reconciler refuses with an ``InvalidSpec`` condition, :func:`announce` sends a Warning Event, and the
  controller retries with backoff.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

import kubernetes

from .adapter import HASH_LABEL, Router
from .routers.base import Obj, Result, Traffic, Write
from .workload import Workload

#: on the Deployment: its ``spec.replicas`` before ebbtide first scaled it down
REPLICAS_ANNOTATION = "ebbtide.dev/replicas-before-adoption"
#: the reason of the Warning Event sent when the Deployment cannot be adopted
EVENT_REASON = "WorkloadRefInvalid"


class RefProblem(Exception):
    """The referenced Deployment is missing or cannot be adopted (the message names the field)."""


@dataclass(frozen=True)
class Adopted:
    """The workload seen through its Deployment."""

    #: the workload object with the Deployment's ``template`` and ``selector`` in its spec (the adapter's)
    workload: Obj
    deployment: Obj
    #: the replicas the adopted revision runs with
    replicas: int
    scale_down: str

    @property
    def name(self) -> str:
        return str(self.deployment["metadata"]["name"])

    @property
    def deployment_replicas(self) -> int:
        return int((self.deployment.get("spec") or {}).get("replicas", 1))

    @property
    def deployment_pods(self) -> int:
        """The Deployment's pods as it says: what it asks for, or what it still has while they go."""
        status = self.deployment.get("status") or {}
        return max(self.deployment_replicas, int(status.get("replicas") or 0))

    @property
    def original_replicas(self) -> int:
        """The Deployment's replicas before ebbtide first scaled it down."""
        recorded = (self.deployment["metadata"].get("annotations") or {}).get(REPLICAS_ANNOTATION)
        return int(recorded) if recorded is not None else self.deployment_replicas


def resolve(client: kubernetes.client.ApiClient, obj: Obj, workload: Workload) -> Adopted:
    ref = workload.spec.workload_ref
    assert ref is not None
    namespace = obj["metadata"]["namespace"]
    apps = kubernetes.client.AppsV1Api(client)
    try:
        found = apps.read_namespaced_deployment(ref.name, namespace)
    except kubernetes.client.ApiException as exc:
        if exc.status != 404:
            raise
        raise RefProblem(
            f"spec.workloadRef.name: Deployment {ref.name} not found in namespace {namespace}"
        ) from None
    deployment: Obj = apps.api_client.sanitize_for_serialization(found)
    spec = deployment.get("spec") or {}
    selector = spec.get("selector") or {}
    where = f"spec.workloadRef.name: Deployment {ref.name}"
    if not selector.get("matchLabels") or selector.get("matchExpressions"):
        raise RefProblem(f"{where}: spec.selector must be matchLabels only (they label each revision's pods)")
    if workload.spec.selector is not None and _selector(workload) != selector:
        raise RefProblem(f"spec.selector: differs from Deployment {ref.name}'s spec.selector")
    shaped = copy.deepcopy(obj)
    shaped["spec"] = {
        **shaped["spec"],
        "template": copy.deepcopy(spec.get("template") or {}),
        "selector": {"matchLabels": dict(selector["matchLabels"])},
    }
    adopted = Adopted(shaped, deployment, workload.spec.replicas, ref.scale_down)
    if "replicas" not in workload.spec.model_fields_set and adopted.original_replicas > 0:
        # the Deployment's, as it was before adoption
        adopted = dataclasses.replace(adopted, replicas=adopted.original_replicas)
    return adopted


def _selector(workload: Workload) -> Obj:
    assert workload.spec.selector is not None
    return dict(workload.spec.selector.model_dump(by_alias=True, exclude_none=True))


def refers_to(workload: Obj, deployment: Obj) -> bool:
    """Whether ``workload`` (an EbbtideDeployment as listed) adopts ``deployment``."""
    ref = (workload.get("spec") or {}).get("workloadRef") or {}
    same_ns = workload["metadata"].get("namespace") == deployment["metadata"].get("namespace")
    return same_ns and bool(ref.get("name") == deployment["metadata"]["name"])


def _ready(client: kubernetes.client.ApiClient, namespace: str, rs_name: str) -> int:
    apps = kubernetes.client.AppsV1Api(client)
    try:
        rs = apps.read_namespaced_replica_set(rs_name, namespace)
    except kubernetes.client.ApiException as exc:
        if exc.status != 404:
            raise
        return 0
    return int((rs.status.ready_replicas or 0) if rs.status else 0)


def holding(client: kubernetes.client.ApiClient, adopted: Adopted, router: Router) -> Router:
    """``router``, except while the adoption is handing over: as long as the stable Service is not pinned to
    a revision yet, the Deployment still has pods and the revision that would take all the traffic is not
    all ready, nothing is written (the Services keep selecting both the Deployment's pods and the adopted
    ones)."""
    namespace = adopted.workload["metadata"]["namespace"]
    name = adopted.workload["metadata"]["name"]

    def route(stable: Obj, canary: Obj | None, traffic: Traffic, labels: Any) -> Result:
        pinned = HASH_LABEL in ((stable.get("spec") or {}).get("selector") or {})
        alone = traffic.canary is None or traffic.canary == traffic.stable
        if not pinned and alone and adopted.deployment_pods > 0:
            if _ready(client, namespace, f"{name}-{traffic.stable}") < adopted.replicas:
                return Write(())
        return router(stable, canary, traffic, labels)

    return route


def scale_down(client: kubernetes.client.ApiClient, adopted: Adopted, revision: str) -> int | None:
    """Scale the Deployment down as ``scaleDown`` says, given the ready pods of ``revision`` (the stable
    one); the first scale-down records the Deployment's replicas in :data:`REPLICAS_ANNOTATION`. Never
    scales it up. Returns the replicas written, or None."""
    current = adopted.deployment_replicas
    if adopted.scale_down == "never" or current == 0:
        return None
    meta = adopted.workload["metadata"]
    ready = _ready(client, meta["namespace"], f"{meta['name']}-{revision}")
    if ready >= adopted.replicas:
        wanted = 0
    elif adopted.scale_down == "progressively":
        wanted = max(0, adopted.original_replicas - ready)
    else:
        wanted = current
    if wanted >= current:
        return None
    annotations = adopted.deployment["metadata"].get("annotations") or {}
    patch: Obj = {"spec": {"replicas": wanted}}
    if REPLICAS_ANNOTATION not in annotations:
        patch["metadata"] = {"annotations": {REPLICAS_ANNOTATION: str(current)}}
    apps = kubernetes.client.AppsV1Api(client)
    apps.patch_namespaced_deployment(adopted.name, meta["namespace"], patch)
    return wanted


def announce(client: kubernetes.client.ApiClient, obj: Obj, problem: RefProblem) -> None:
    """A Warning Event on the workload, once per workload generation and message (a retry sends none)."""
    meta = obj["metadata"]
    message = str(problem)
    digest = hashlib.sha256(f"{meta.get('generation')}|{message}".encode()).hexdigest()[:12]
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{digest}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion", "ebbtide.dev/v1alpha1"),
            "kind": obj.get("kind", "EbbtideDeployment"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
        },
        "reason": EVENT_REASON,
        "message": message,
        "type": "Warning",
        "source": {"component": "ebbtide-controller"},
    }
    try:
        kubernetes.client.CoreV1Api(client).create_namespaced_event(meta["namespace"], body)  # type: ignore[arg-type]
    except kubernetes.client.ApiException as exc:
        if exc.status != 409:  # announced already
            raise
