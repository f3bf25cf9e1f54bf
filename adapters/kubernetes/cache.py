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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import kubernetes

from .informer import Informer, Obj

#: the spec kinds' plurals (as reconcile's ``SPEC_PLURALS``), the workload's, and the built-in kinds read
WORKLOADS = "ebbtidedeployments"
REPLICASETS = "replicasets"
PODS = "pods"
SERVICES = "services"
GROUP, VERSION = "ebbtide.dev", "v1alpha1"

#: the labels the adapter selects by (as ``adapter.WORKLOAD_LABEL`` and ``adapter.HASH_LABEL``)
WORKLOAD_LABEL = "ebbtide.dev/workload"
HASH_LABEL = "pod-template-hash"


class Reads(Protocol):
    def workload(self, namespace: str, name: str) -> Obj: ...
    def specs(self, namespace: str, plural: str) -> list[Obj]: ...
    def replicasets(self, namespace: str, workload: str) -> list[Obj]: ...
    def replicaset(self, namespace: str, name: str) -> Obj | None: ...
    def pods(self, namespace: str, labels: Mapping[str, str]) -> list[Obj]: ...
    def service(self, namespace: str, name: str) -> Obj: ...
    def fresh(self, plural: str, namespace: str, name: str) -> Obj: ...
    def wrote(self, plural: str, obj: Obj) -> None: ...


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

    def pods(self, namespace: str, labels: Mapping[str, str]) -> list[Obj]:
        listed = self.core.list_namespaced_pod(namespace, label_selector=_selector(labels) or None)
        return [_plain(self.client, pod) for pod in listed.items]

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


def by_namespace(obj: Obj) -> list[str]:
    return [obj["metadata"].get("namespace") or ""]


def by_workload(obj: Obj) -> list[str]:
    """A ReplicaSet's ``namespace/workload`` (its ``ebbtide.dev/workload`` label)."""
    meta = obj["metadata"]
    name = (meta.get("labels") or {}).get(WORKLOAD_LABEL)
    return [f"{meta.get('namespace') or ''}/{name}"] if name else []


def by_revision(obj: Obj) -> list[str]:
    """A pod's ``namespace/pod-template-hash``."""
    meta = obj["metadata"]
    revision = (meta.get("labels") or {}).get(HASH_LABEL)
    return [f"{meta.get('namespace') or ''}/{revision}"] if revision else []


#: the indexes each informer the controller builds keeps (by its plural)
INDEXES = {
    WORKLOADS: {},
    REPLICASETS: {"workload": by_workload},
    PODS: {"revision": by_revision},
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

    def pods(self, namespace: str, labels: Mapping[str, str]) -> list[Obj]:
        revision = labels.get(HASH_LABEL)
        if revision is None:
            raise ValueError("pods are read from the cache by revision: labels must name pod-template-hash")
        return [
            pod
            for pod in self._indexed(PODS, "revision", f"{namespace}/{revision}")
            if all((pod["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())
        ]

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
