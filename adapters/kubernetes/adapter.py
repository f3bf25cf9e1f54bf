"""The Kubernetes adapter: the engine's effects on one ``EbbtideDeployment`` (template form), through the API.

- ``ScaleRevision`` -> one ReplicaSet per revision, named ``<workload>-<revision>``, its pods labelled
  ``pod-template-hash: <revision>`` (as a Deployment's ReplicaSets are) and owned by the workload. A missing
  ReplicaSet is created from the workload's template when the revision is the template's; ``spec.replicas``
  is patched only when it differs (level-based: applying twice writes once).
- ``SetTraffic`` -> a traffic router (the replica-ratio router on the stable and canary Services for now). A
  router answering :class:`CannotExpress` writes nothing and sets :attr:`cannot_express`: the reconciler
  then keeps the step where it was (the engine never advances on a weight that was not applied).
- ``observe`` -> a ``ReplicasObserved`` per ReplicaSet whose counts changed (``failed``: pods waiting in
  CrashLoopBackOff, ImagePullBackOff and the like, which are never ready, so the progress deadline applies),
  and the results of measurements the injected :class:`MeasurementProvider` answered (an asynchronous one,
  a :class:`PolledProvider` such as a dispatcher's scope, is polled).
- ``Notify`` -> recorded in :attr:`notifications` and emitted as a Kubernetes Event on the workload, its
  reason the engine's event name (``rollout-started``, ``rollout-failed``, ...).

A real cluster does not say when it will change: ``next_change`` is None (the controller is watch driven).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import kubernetes

from ebbtide.adapters.base import MeasurementProvider, PolledProvider
from ebbtide.core.effects import (
    Effect,
    Notify,
    ScaleRevision,
    SetTraffic,
    StartMeasurement,
    StopVerification,
)
from ebbtide.core.events import Event, Measurement, ReplicasObserved

from .cache import REPLICASETS, SERVICES, ApiReads, Reads
from .routers.base import CannotExpress, Obj, Result, Traffic, Write
from .routers.services import replica_ratio

#: the label naming the revision of a pod (what a Deployment's ReplicaSets use)
HASH_LABEL = "pod-template-hash"
#: the label naming the workload a ReplicaSet belongs to
WORKLOAD_LABEL = "ebbtide.dev/workload"
#: container waiting reasons of a pod that will not become ready on its own
STUCK = frozenset(
    {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "InvalidImageName"}
)
#: events that go out as Warning rather than Normal
WARNINGS = frozenset({"rollout-failed", "rollout-failed-to-roll-back", "rollout-rolled-back"})

Router = Callable[[Obj, Obj | None, Traffic, Mapping[str, Mapping[str, str]]], Result]


def revision_of(template: Mapping[str, Any]) -> str:
    """The revision name of a pod template: a short hash of its canonical JSON (stable across processes)."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _json(call: Callable[..., Any], *args: Any) -> Obj:
    """The object a write returns, as the plain dict the server sent (what the caches hold)."""
    response = call(*args, _preload_content=False)
    out: Obj = json.loads(response.data)
    return out


def _stuck(pod: Obj) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return any(((s.get("state") or {}).get("waiting") or {}).get("reason") in STUCK for s in statuses)


def _again_on_conflict(write: Callable[[], None], attempts: int = 3) -> None:
    for attempt in range(attempts):
        try:
            write()
            return
        except kubernetes.client.ApiException as exc:
            if exc.status != 409 or attempt == attempts - 1:
                raise


class KubernetesAdapter:
    """The adapter protocol (:mod:`ebbtide.adapters.base`) for one workload, over the kubernetes client."""

    def __init__(
        self,
        client: kubernetes.client.ApiClient,
        workload: Obj,
        *,
        stable_service: str | None = None,
        canary_service: str | None = None,
        measurements: MeasurementProvider | None = None,
        router: Router = replica_ratio,
        templates: Mapping[str, Obj] | None = None,
        reads: Reads | None = None,
    ) -> None:
        #: where the cluster is read from: the API server, or the controller's informer caches
        self.reads: Reads = reads if reads is not None else ApiReads(client)
        self.apps = kubernetes.client.AppsV1Api(client)
        self.core = kubernetes.client.CoreV1Api(client)
        self.workload = workload
        meta = workload["metadata"]
        self.name: str = meta["name"]
        self.namespace: str = meta["namespace"]
        spec = workload["spec"]
        self.template: Obj = spec["template"]
        self.revision = revision_of(self.template)
        #: the pod template of each revision this adapter may create a ReplicaSet for
        self.templates: dict[str, Obj] = dict(templates) if templates else {self.revision: self.template}
        self.match_labels: dict[str, str] = dict((spec.get("selector") or {}).get("matchLabels") or {})
        self.stable_service = stable_service
        self.canary_service = canary_service
        self.measurements = measurements
        self.router = router
        #: the revision the engine treats as stable (set by the reconciler): which Service is which
        self.stable_hint: str | None = None
        #: the weights last applied; None until a SetTraffic was applied
        self.weights: dict[str, int] | None = None
        #: why the last SetTraffic could not be applied (None: it was)
        self.cannot_express: str | None = None
        #: a ScaleRevision that could not be applied (a revision whose ReplicaSet and template are gone)
        self.problems: list[str] = []
        self._notifications: list[tuple[float, Notify]] = []
        self._pending: dict[tuple[str, str], Measurement] = {}
        self._reported: dict[str, tuple[int, int, int, int]] = {}
        #: deferred mode (the reconciler's): scaling and traffic are recorded, and only the last of each is
        #: written by :meth:`flush`, so the re-applied persisted world and the new decisions of one reconcile
        #: never write an object back and forth
        self.deferred = False
        self._scale_wanted: dict[str, int] = {}
        self._traffic_wanted: SetTraffic | None = None
        self._events_wanted: list[tuple[float, Notify]] = []
        #: the workload's ReplicaSets as the last observe listed them (what :meth:`trim` may delete)
        self._listed: list[Obj] = []

    def emit(self) -> None:
        """Send the Events deferred mode recorded (the reconciler calls it once the state is persisted, so a
        retried reconcile does not announce the same transition twice)."""
        for now, effect in self._events_wanted:
            self._event(effect, now)
        self._events_wanted.clear()

    def flush(self) -> None:
        """Write what deferred mode recorded: the ReplicaSets that grow, then the traffic, then the
        ReplicaSets that shrink — so traffic moves only onto pods already asked for, and never stays on pods
        already asked to go (at the end of a rollout the stable Service moves to the new revision before the
        old one is scaled to 0). Each write is level based (it reads the object first), so a 409 on one is
        answered by doing it again."""
        grow, shrink = self._split(self._scale_wanted)
        self._scale_wanted.clear()
        for revision, replicas in grow:
            _again_on_conflict(lambda: self._scale(revision, replicas))  # noqa: B023 (called at once)
        if (traffic := self._traffic_wanted) is not None:
            _again_on_conflict(lambda: self._traffic(traffic))
            self._traffic_wanted = None
        for revision, replicas in shrink:
            _again_on_conflict(lambda: self._scale(revision, replicas))  # noqa: B023 (called at once)

    def _split(self, wanted: dict[str, int]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """(revisions to grow or create, revisions to shrink), each sorted, by the replicas each has now."""
        grow: list[tuple[str, int]] = []
        shrink: list[tuple[str, int]] = []
        for revision, replicas in sorted(wanted.items()):
            rs = self.reads.replicaset(self.namespace, self.rs_name(revision))
            now = ((rs or {}).get("spec") or {}).get("replicas") or 0
            (shrink if replicas < now else grow).append((revision, replicas))
        return grow, shrink

    # ----- the protocol ------------------------------------------------------------------------------
    @property
    def notifications(self) -> list[tuple[float, Notify]]:
        return self._notifications

    def apply(self, effect: Effect, now: float) -> None:
        if isinstance(effect, ScaleRevision):
            if self.deferred:
                self._scale_wanted[effect.revision] = effect.replicas
            else:
                self._scale(effect.revision, effect.replicas)
        elif isinstance(effect, SetTraffic):
            if self.deferred:
                self._traffic_wanted = effect
                self._check(effect)
            else:
                self._traffic(effect)
        elif isinstance(effect, StartMeasurement):
            self._measure(effect, now)
        elif isinstance(effect, StopVerification):
            for key in [k for k in self._pending if k[0] == effect.verification]:
                del self._pending[key]
        elif isinstance(effect, Notify):
            self._notifications.append((now, effect))
            if self.deferred:
                self._events_wanted.append((now, effect))
            else:
                self._event(effect, now)

    def observe(self, now: float) -> list[Event]:
        events: list[Event] = []
        for revision, counts in sorted(self._counts().items()):
            if self._reported.get(revision) != counts:
                self._reported[revision] = counts
                desired, ready, available, failed = counts
                events.append(
                    ReplicasObserved(
                        revision=revision, desired=desired, ready=ready, available=available, failed=failed
                    )
                )
        events.extend(self._pending.values())
        self._pending.clear()
        if isinstance(self.measurements, PolledProvider):  # answers of an asynchronous provider
            events.extend(self.measurements.poll())
        return events

    def resync(self) -> None:
        self._reported.clear()

    def next_change(self, now: float) -> float | None:
        return None

    # ----- ReplicaSets -------------------------------------------------------------------------------
    def rs_name(self, revision: str) -> str:
        return f"{self.name}-{revision}"

    def pod_labels(self, revision: str) -> dict[str, str]:
        return {**self.match_labels, HASH_LABEL: revision}

    def _selector(self) -> str:
        return f"{WORKLOAD_LABEL}={self.name}"

    def _scale(self, revision: str, replicas: int) -> None:
        name = self.rs_name(revision)
        rs = self.reads.replicaset(self.namespace, name)
        if rs is None:
            if replicas == 0:
                return
            if revision not in self.templates:
                self.problems.append(f"revision {revision}: no ReplicaSet {name} and no template for it")
                return
            try:
                made = _json(
                    self.apps.create_namespaced_replica_set, self.namespace, self._new_rs(revision, replicas)
                )
            except kubernetes.client.ApiException as exc:
                if exc.status != 409:
                    raise
                rs = self._existing(name, exc)  # AlreadyExists: the cache was behind
            else:
                self.reads.wrote(REPLICASETS, made)
                return
        if ((rs.get("spec") or {}).get("replicas") or 0) != replicas:
            patched = _json(
                self.apps.patch_namespaced_replica_set, name, self.namespace, {"spec": {"replicas": replicas}}
            )
            self.reads.wrote(REPLICASETS, patched)

    def _existing(self, name: str, refused: kubernetes.client.ApiException) -> Obj:
        """The ReplicaSet a create was refused with 409 for, read afresh; a 409 that was not AlreadyExists
        (there is none) is raised again, so that the create is retried."""
        try:
            return self.reads.fresh(REPLICASETS, self.namespace, name)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                raise refused from None
            raise

    def trim(self, kept: set[str]) -> list[str]:
        """Delete the ReplicaSets the last observe listed whose revision is not ``kept`` (see
        :mod:`.history`), once scaled to 0 with no pods left. Each delete carries the resourceVersion
        listed, so a ReplicaSet scaled up meanwhile is not deleted (409: left for the next reconcile).
        Returns the revisions deleted."""
        deleted = []
        for rs in self._listed:
            meta = rs["metadata"]
            revision = (meta.get("labels") or {}).get(HASH_LABEL)
            if not revision or revision in kept or self._scale_wanted.get(revision):
                continue
            if ((rs.get("spec") or {}).get("replicas") or 0) != 0 or (rs.get("status") or {}).get("replicas"):
                continue
            options = kubernetes.client.V1DeleteOptions(
                preconditions=kubernetes.client.V1Preconditions(resource_version=meta.get("resourceVersion"))
            )
            try:
                self.apps.delete_namespaced_replica_set(meta["name"], self.namespace, body=options)
            except kubernetes.client.ApiException as exc:
                if exc.status not in (404, 409):  # gone already, or changed: the next reconcile decides
                    raise
                continue
            deleted.append(revision)
        self._listed = []
        return deleted

    def _new_rs(self, revision: str, replicas: int) -> Obj:
        labels = self.pod_labels(revision)
        template = json.loads(json.dumps(self.templates[revision]))
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels}
        meta = self.workload["metadata"]
        return {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": self.rs_name(revision),
                "namespace": self.namespace,
                "labels": {**labels, WORKLOAD_LABEL: self.name},
                "ownerReferences": [
                    {
                        "apiVersion": self.workload.get("apiVersion", "ebbtide.dev/v1alpha1"),
                        "kind": self.workload.get("kind", "EbbtideDeployment"),
                        "name": self.name,
                        "uid": meta.get("uid", ""),
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template},
        }

    def _counts(self) -> dict[str, tuple[int, int, int, int]]:
        """(desired, ready, available, failed) per revision, from the ReplicaSets and their pods."""
        rss = self.reads.replicasets(self.namespace, self.name)
        self._listed = list(rss)
        out: dict[str, tuple[int, int, int, int]] = {}
        for rs in rss:
            revision = (rs["metadata"].get("labels") or {}).get(HASH_LABEL)
            if not revision:
                continue
            status = rs.get("status") or {}
            desired = self._scale_wanted.get(revision, (rs.get("spec") or {}).get("replicas") or 0)
            stuck = sum(_stuck(pod) for pod in self.reads.pods(self.namespace, rs))
            out[revision] = (
                desired,
                status.get("readyReplicas") or 0,
                status.get("availableReplicas") or 0,
                stuck,
            )
        return out

    # ----- traffic -----------------------------------------------------------------------------------
    def _roles(self, weights: Mapping[str, int]) -> tuple[str, str | None]:
        """(stable, canary) of a split: the stable hint if it serves, else the heaviest revision."""
        serving = sorted((r for r, w in weights.items() if w > 0), key=lambda r: (-weights[r], r))
        if not serving:
            return (self.stable_hint or self.revision, None)
        stable = self.stable_hint if self.stable_hint in serving else serving[0]
        others = [r for r in serving if r != stable]
        return stable, (others[0] if others else None)

    def _routed(self, effect: SetTraffic) -> Result:
        """What the router makes of ``effect`` (reads the router's objects, writes nothing)."""
        stable, canary = self._roles(effect.weights)
        traffic = Traffic(
            weights=dict(effect.weights), stable=stable, canary=canary, header_routes=effect.header_routes
        )
        if self.stable_service is None:
            if traffic.header_routes:
                return CannotExpress("no traffic router: header routes cannot be expressed")
            return Write(())
        return self._route(traffic)

    def _check(self, effect: SetTraffic) -> None:
        result = self._routed(effect)
        self.cannot_express = result.reason if isinstance(result, CannotExpress) else None

    def _traffic(self, effect: SetTraffic) -> None:
        result = self._routed(effect)
        if isinstance(result, CannotExpress):
            self.cannot_express = result.reason
            return
        for obj in result.objects:
            self._write_service(obj)
        self.cannot_express = None
        self.weights = dict(effect.weights)

    def _route(self, traffic: Traffic) -> Result:
        assert self.stable_service is not None
        stable = self._read_service(self.stable_service)
        canary = self._read_service(self.canary_service) if self.canary_service else None
        revisions = {r for r in (traffic.stable, traffic.canary) if r}
        return self.router(stable, canary, traffic, {r: self.pod_labels(r) for r in revisions})

    def _read_service(self, name: str) -> Obj:
        return self.reads.service(self.namespace, name)

    def _write_service(self, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        current = self._read_service(name)
        if current.get("spec", {}).get("selector") == obj.get("spec", {}).get("selector"):
            return
        try:
            written = _json(self.core.replace_namespaced_service, name, self.namespace, obj)
        except kubernetes.client.ApiException as exc:
            if exc.status == 409:  # written since we read it: read it afresh, the retry recomputes
                self.reads.fresh(SERVICES, self.namespace, name)
            raise
        self.reads.wrote(SERVICES, written)

    # ----- measurements and events ------------------------------------------------------------------
    def _measure(self, start: StartMeasurement, now: float) -> None:
        key = (start.verification, start.metric.name)
        if key in self._pending:
            return
        if self.measurements is None:
            result: Measurement | None = Measurement(
                verification=start.verification, metric=start.metric.name, error="no measurement provider"
            )
        else:
            result = self.measurements.measure(start, now)
        if result is not None:
            self._pending[key] = result

    def _event(self, effect: Notify, now: float) -> None:
        payload = json.dumps(effect.payload, sort_keys=True, default=str)
        digest = hashlib.sha256(f"{now}|{effect.event}|{payload}".encode()).hexdigest()[:12]
        meta = self.workload["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{self.name}.{digest}", "namespace": self.namespace},
            "involvedObject": {
                "apiVersion": self.workload.get("apiVersion", "ebbtide.dev/v1alpha1"),
                "kind": self.workload.get("kind", "EbbtideDeployment"),
                "name": self.name,
                "namespace": self.namespace,
                "uid": meta.get("uid", ""),
            },
            "reason": effect.event,
            "message": payload,
            "type": "Warning" if effect.event in WARNINGS else "Normal",
            "source": {"component": "ebbtide-controller"},
        }
        try:
            self.core.create_namespaced_event(self.namespace, body)  # type: ignore[arg-type]
        except kubernetes.client.ApiException as exc:
            if exc.status != 409:  # the same event, emitted again after a retried reconcile
                raise
