"""Where a reconcile reads the cluster from: the API server, or the controller's informer caches.

A reconcile reads the workload, the spec kinds of its namespace, the workload's ReplicaSets, their pods
and the Services the router points. :class:`ApiReads` asks the API server each time (what a reconcile
called on its own, a kopf handler or a test, does). :class:`CachedReads` answers from the controller's
informers (list + watch, shared by all workers), so a reconcile pass sends no read at all and its cost
does not grow with the number of workloads the API server holds.

Reads after our own writes: every write a reconcile makes returns the object as stored, and
:meth:`Reads.wrote` puts it in the cache at once (an informer never replaces a newer version by an
older one, :func:`~.informer.newer`), so the next read sees our write even before its watch event comes.
A write refused with 409 Conflict means the cache was behind someone else's write: :meth:`Reads.fresh`
reads that one object from the API server (and records it) before the write is computed again.

Objects are plain dicts, as the API server serves them (camelCase keys).

What a reconcile derives from cached objects alone, and which costs more than reading them (a namespace's
spec kinds validated into a SpecSet: 1,000 workloads named in a RolloutSpec take milliseconds to validate),
is kept by :meth:`Reads.derived`, keyed by the resourceVersions it was derived from: a new version of any
of them derives it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import kubernetes

from .informer import Informer, Obj

#: the spec kinds' plurals (as reconcile's ``SPEC_PLURALS``), the workload's, and the built-in kinds read
WORKLOADS = "ebbtidedeployments"
REPLICASETS = "replicasets"
PODS = "pods"
SERVICES = "services"
GROUP, VERSION = "ebbtide.dev", "v1alpha1"

#: the label naming a ReplicaSet's workload (as ``adapter.WORKLOAD_LABEL``; adapter imports this module)
WORKLOAD_LABEL = "ebbtide.dev/workload"


T = TypeVar("T")


class Reads(Protocol):
    def workload(self, namespace: str, name: str) -> Obj: ...
    def specs(self, namespace: str, plural: str) -> list[Obj]: ...
    def replicasets(self, namespace: str, workload: str) -> list[Obj]: ...
    def replicaset(self, namespace: str, name: str) -> Obj | None: ...
    def pods(self, namespace: str, replicaset: Obj) -> list[Obj]: ...
    def service(self, namespace: str, name: str) -> Obj: ...
    def fresh(self, plural: str, namespace: str, name: str) -> Obj: ...
    def wrote(self, plural: str, obj: Obj) -> None: ...
    def derived(self, key: Hashable, versions: Hashable, build: Callable[[], T]) -> T: ...


def versions_of(objects: Sequence[Obj]) -> tuple[tuple[str, str, str], ...]:
    """What identifies these objects' contents: (namespace, name, resourceVersion) each, in order."""
    return tuple(
        (
            o["metadata"].get("namespace") or "",
            o["metadata"]["name"],
            o["metadata"].get("resourceVersion") or "",
        )
        for o in objects
    )


def _selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _plain(client: kubernetes.client.ApiClient, obj: Any) -> Obj:
    out: Obj = client.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    return out


class ApiReads:
    """Every read is a request to the API server."""

    def __init__(self, client: kubernetes.client.ApiClient) -> None:
        self.client = client
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.apps = kubernetes.client.AppsV1Api(client)
        self.core = kubernetes.client.CoreV1Api(client)

    def workload(self, namespace: str, name: str) -> Obj:
        return self.fresh(WORKLOADS, namespace, name)

    def specs(self, namespace: str, plural: str) -> list[Obj]:
        listed: Obj = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)  # type: ignore[assignment]
        return list(listed["items"])

    def replicasets(self, namespace: str, workload: str) -> list[Obj]:
        listed = self.apps.list_namespaced_replica_set(
            namespace, label_selector=f"{WORKLOAD_LABEL}={workload}"
        )
        return [_plain(self.client, rs) for rs in listed.items]

    def replicaset(self, namespace: str, name: str) -> Obj | None:
        try:
            return self.fresh(REPLICASETS, namespace, name)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def pods(self, namespace: str, replicaset: Obj) -> list[Obj]:
        labels = ((replicaset.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        listed = self.core.list_namespaced_pod(namespace, label_selector=_selector(labels) or None)
        pods = [_plain(self.client, pod) for pod in listed.items]
        return [pod for pod in pods if _owned_by(pod, replicaset)]

    def service(self, namespace: str, name: str) -> Obj:
        return self.fresh(SERVICES, namespace, name)

    def fresh(self, plural: str, namespace: str, name: str) -> Obj:
        if plural == WORKLOADS:
            obj: Obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)  # type: ignore[assignment]
            return obj
        if plural == SERVICES:
            return _plain(self.client, self.core.read_namespaced_service(name, namespace))
        if plural == REPLICASETS:
            return _plain(self.client, self.apps.read_namespaced_replica_set(name, namespace))
        raise ValueError(f"no fresh read of {plural}")

    def wrote(self, plural: str, obj: Obj) -> None:
        pass  # nothing cached

    def derived(self, key: Hashable, versions: Hashable, build: Callable[[], T]) -> T:
        return build()  # read afresh each time: nothing to keep


def by_namespace(obj: Obj) -> list[str]:
    return [obj["metadata"].get("namespace") or ""]


def by_workload(obj: Obj) -> list[str]:
    """A ReplicaSet's ``namespace/workload`` (its ``ebbtide.dev/workload`` label)."""
    meta = obj["metadata"]
    name = (meta.get("labels") or {}).get(WORKLOAD_LABEL)
    return [f"{meta.get('namespace') or ''}/{name}"] if name else []


def by_owner(obj: Obj) -> list[str]:
    """A pod's ``namespace/replicaset`` for each ReplicaSet owning it."""
    meta = obj["metadata"]
    ns = meta.get("namespace") or ""
    owners = meta.get("ownerReferences") or []
    return [f"{ns}/{o.get('name')}" for o in owners if o.get("kind") == "ReplicaSet"]


def _owned_by(pod: Obj, replicaset: Obj) -> bool:
    uid = replicaset["metadata"].get("uid")
    return any(o.get("uid") == uid for o in pod["metadata"].get("ownerReferences") or [])


#: the indexes each informer the controller builds keeps (by its plural)
INDEXES = {
    WORKLOADS: {},
    REPLICASETS: {"workload": by_workload},
    PODS: {"owner": by_owner},
    SERVICES: {},
}
SPEC_INDEXES = {"namespace": by_namespace}


class CachedReads:
    """Reads from the controller's informers (one or more per kind: one per watched namespace, or one
    for the whole cluster). ``fallback`` answers what no cache holds (a workload not listed yet) and the
    fresh reads after a conflict."""

    def __init__(self, informers: Mapping[str, Sequence[Informer]], fallback: ApiReads) -> None:
        self.informers = informers
        self.fallback = fallback
        self._derived: dict[Hashable, tuple[Hashable, Any]] = {}
        self._lock = threading.Lock()

    def _get(self, plural: str, namespace: str, name: str) -> Obj | None:
        for informer in self.informers.get(plural, ()):
            obj = informer.get(namespace, name)
            if obj is not None:
                return obj
        return None

    def _indexed(self, plural: str, index: str, value: str) -> list[Obj]:
        return [obj for informer in self.informers.get(plural, ()) for obj in informer.by_index(index, value)]

    def workload(self, namespace: str, name: str) -> Obj:
        return self._get(WORKLOADS, namespace, name) or self.fresh(WORKLOADS, namespace, name)

    def specs(self, namespace: str, plural: str) -> list[Obj]:
        return self._indexed(plural, "namespace", namespace)

    def replicasets(self, namespace: str, workload: str) -> list[Obj]:
        return self._indexed(REPLICASETS, "workload", f"{namespace}/{workload}")

    def replicaset(self, namespace: str, name: str) -> Obj | None:
        return self._get(REPLICASETS, namespace, name)

    def pods(self, namespace: str, replicaset: Obj) -> list[Obj]:
        owned = self._indexed(PODS, "owner", f"{namespace}/{replicaset['metadata']['name']}")
        return [pod for pod in owned if _owned_by(pod, replicaset)]

    def service(self, namespace: str, name: str) -> Obj:
        return self._get(SERVICES, namespace, name) or self.fresh(SERVICES, namespace, name)

    def fresh(self, plural: str, namespace: str, name: str) -> Obj:
        obj = self.fallback.fresh(plural, namespace, name)
        self.wrote(plural, obj)
        return obj

    def wrote(self, plural: str, obj: Obj) -> None:
        for informer in self.informers.get(plural, ()):
            if informer.covers(obj):
                informer.record(obj)

    def derived(self, key: Hashable, versions: Hashable, build: Callable[[], T]) -> T:
        with self._lock:
            kept = self._derived.get(key)
        if kept is not None and kept[0] == versions:
            value: T = kept[1]
            return value
        value = build()  # a race builds it twice at worst; both results are equal
        with self._lock:
            self._derived[key] = (versions, value)
        return value
