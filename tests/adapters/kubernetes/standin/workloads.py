"""The ReplicaSet controller and kubelet of the stand-in: pods for each ReplicaSet, ready after a delay.

Every ``tick`` seconds a background thread makes each ReplicaSet own ``spec.replicas`` pods (named
``<rs>-<n>``, labelled from the pod template, owned by the ReplicaSet), marks a pod ready once it is
``ready_after`` seconds old, and writes the ReplicaSet's ``status`` (replicas, readyReplicas,
availableReplicas, observedGeneration) when it changes. A behaviour can instead never become ready: its
containers then wait with ``waiting_reason`` (``CrashLoopBackOff``, ``ImagePullBackOff``), as the kubelet
reports them. Behaviours are chosen by ReplicaSet name, else by the first container's image, else default.

A pass looks only at the ReplicaSets that changed since the last one (their own writes, their pods'), and
those still waiting for pods to become ready; every ``full_every`` seconds (and when the store's history
no longer reaches back to the last pass) it looks at all of them, so a behaviour changed by a test takes
effect on ready pods too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import deployments
from .store import ApiError, Obj, Store

RS = ("apps", "v1", "replicasets")
POD = ("", "v1", "pods")


@dataclass(frozen=True, slots=True)
class Behaviour:
    ready_after: float = 0.0
    waiting_reason: str | None = None  # set: the pods never become ready
    #: at most this many pods of a ReplicaSet become ready per sync (None: all that are old enough)
    ready_per_sync: int | None = None

    @classmethod
    def crash_loop(cls) -> Behaviour:
        return cls(waiting_reason="CrashLoopBackOff")

    @classmethod
    def image_pull_error(cls) -> Behaviour:
        return cls(waiting_reason="ImagePullBackOff")


def _image(rs: Obj) -> str:
    containers = rs.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}]
    return str(containers[0].get("image", ""))


@dataclass
class Workloads:
    store: Store
    default: Behaviour = field(default_factory=Behaviour)
    by_name: dict[str, Behaviour] = field(default_factory=dict)
    by_image: dict[str, Behaviour] = field(default_factory=dict)
    tick: float = 0.02
    full_every: float = 1.0
    _born: dict[str, float] = field(default_factory=dict)  # pod uid -> monotonic creation time
    _ready: set[str] = field(default_factory=set)  # uids of the pods marked ready
    _stop: threading.Event = field(default_factory=threading.Event)
    _position: int = -1  # the store's resourceVersion at the last pass (-1: none yet)
    _full_at: float = 0.0  # monotonic time of the last pass over every ReplicaSet
    _waiting: set[tuple[str, str]] = field(default_factory=set)  # (namespace, name): pods not all ready
    _thread: threading.Thread | None = None

    def behaviour(self, rs: Obj) -> Behaviour:
        name = rs["metadata"]["name"]
        return self.by_name.get(name) or self.by_image.get(_image(rs)) or self.default

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="standin-workloads", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def stopped(self) -> bool:
        """Whether the background thread is stopped (the test steps :meth:`sync` by hand)."""
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            self.sync(full=False)

    def sync(self, full: bool = True) -> None:
        """One pass (public so tests can step it by hand): over every Deployment (:mod:`.deployments`),
        then over every ReplicaSet or (``full=False``, the background thread's ticks) over those that
        changed or wait for pods."""
        deployments.sync(self.store)
        rs_type = self.store.resource(*RS)
        assert rs_type is not None
        pod_type = self.store.resource(*POD)
        assert pod_type is not None
        position = self.store.resource_version
        touched = self._touched() if not full else None
        if touched is None:
            self._full_at = time.monotonic()
        self._position = position
        owned: dict[str, list[Obj]] = {}  # pods by owner uid, read once per pass (1,000 ReplicaSets)
        for pod in self.store.peek(pod_type):
            for owner in pod["metadata"].get("ownerReferences") or []:
                owned.setdefault(owner.get("uid", ""), []).append(pod)
        for rs in self.store.peek(rs_type):
            meta = rs["metadata"]
            key = (meta["namespace"], meta["name"])
            if touched is not None and key not in touched:
                continue
            try:
                waiting = self._sync_one(rs, owned.get(meta["uid"], []))
            except ApiError:  # deleted or changed meanwhile: the next tick sees the new state
                continue
            if waiting:
                self._waiting.add(key)
            else:
                self._waiting.discard(key)

    def _touched(self) -> set[tuple[str, str]] | None:
        """The ReplicaSets to look at since the last pass; None: all of them."""
        if self._position < 0 or time.monotonic() - self._full_at >= self.full_every:
            return None
        events, whole = self.store.events_since(self._position)
        if not whole:
            return None
        touched = set(self._waiting)
        for event in events:
            meta = event.object["metadata"]
            if event.resource == RS:
                touched.add((meta.get("namespace", ""), meta["name"]))
            elif event.resource == POD:
                for owner in meta.get("ownerReferences") or []:
                    touched.add((meta.get("namespace", ""), owner.get("name", "")))
        return touched

    def _sync_one(self, rs: Obj, pods: list[Obj]) -> bool:
        """Bring one ReplicaSet's pods and status up to date; True while some of its pods are not ready."""
        pod_type = self.store.resource(*POD)
        rs_type = self.store.resource(*RS)
        assert pod_type is not None and rs_type is not None
        meta = rs["metadata"]
        ns = meta["namespace"]
        wanted = int(rs.get("spec", {}).get("replicas", 1))
        for extra in sorted(pods, key=lambda p: p["metadata"]["name"])[wanted:]:
            self.store.delete(pod_type, ns, extra["metadata"]["name"])
        pods = sorted(pods, key=lambda p: p["metadata"]["name"])[:wanted]
        taken = {p["metadata"]["name"] for p in pods}
        index = 0
        while len(pods) < wanted:
            name = f"{meta['name']}-{index}"
            index += 1
            if name not in taken:
                pods.append(self.store.create(pod_type, ns, self._pod(rs, name)))
        behaviour = self.behaviour(rs)
        ready = newly = 0
        for pod in pods:
            pod_uid = pod["metadata"]["uid"]
            born = self._born.setdefault(pod_uid, time.monotonic())
            is_ready = behaviour.waiting_reason is None and time.monotonic() - born >= behaviour.ready_after
            if is_ready and pod_uid not in self._ready:
                is_ready = behaviour.ready_per_sync is None or newly < behaviour.ready_per_sync
                newly += is_ready
            if is_ready:
                self._ready.add(pod_uid)
            ready += is_ready
            status = self._pod_status(pod, behaviour, is_ready)
            if pod.get("status") != status:
                self.store.replace(pod_type, ns, pod["metadata"]["name"], {**pod, "status": status}, "status")
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": meta.get("generation", 1),
        }
        if rs.get("status") != status:
            self.store.replace(rs_type, ns, meta["name"], {**rs, "status": status}, "status")
        return ready < wanted

    @staticmethod
    def _pod(rs: Obj, name: str) -> Obj:
        template = rs.get("spec", {}).get("template", {})
        meta = rs["metadata"]
        return {
            "metadata": {
                "name": name,
                "labels": dict(template.get("metadata", {}).get("labels") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": template.get("spec", {}),
        }

    @staticmethod
    def _pod_status(pod: Obj, behaviour: Behaviour, ready: bool) -> dict[str, Any]:
        containers = pod.get("spec", {}).get("containers") or [{"name": "main"}]
        if ready:
            state: Obj = {"running": {}}
        elif behaviour.waiting_reason is not None:
            state = {"waiting": {"reason": behaviour.waiting_reason, "message": "stand-in"}}
        else:
            state = {"waiting": {"reason": "ContainerCreating"}}
        crashing = behaviour.waiting_reason == "CrashLoopBackOff"
        return {
            "phase": "Pending" if behaviour.waiting_reason == "ImagePullBackOff" else "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [
                {
                    "name": c.get("name", "main"),
                    "image": c.get("image", ""),
                    "imageID": "",
                    "ready": ready,
                    "restartCount": 3 if crashing else 0,
                    "state": state,
                }
                for c in containers
            ],
        }
