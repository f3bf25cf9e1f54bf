"""A generic, thread-safe object store with the API server's write semantics.

One global resourceVersion counter (as etcd's revision) stamps every write; a write that names a stale
resourceVersion is refused with 409 Conflict; resources with a status subresource keep spec and status
apart (a write to the object ignores its status, a write to ``/status`` ignores everything else) and bump
``metadata.generation`` only when the spec changes; a write that changes nothing is a no-op (no new
resourceVersion, no watch event). A bounded event history serves watches from a resourceVersion; a watch
from before the history answers 410 Gone, as a compacted etcd does.

Objects are kept by resource type, and the history in resourceVersion order, so a list costs the objects
of its type and a watch's wake-up costs the events it has not seen (bisected): 1,000 workloads with their
ReplicaSets and pods stay fast.
"""

from __future__ import annotations

import bisect
import copy
import datetime
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from . import patches
from .resources import BUILTIN, ResourceType, from_crd

Obj = dict[str, Any]
Key = tuple[tuple[str, str, str], str, str]  # (resource key, namespace or "", name)


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> Obj:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


@dataclass(frozen=True, slots=True)
class Event:
    rv: int
    resource: tuple[str, str, str]
    type: str  # ADDED | MODIFIED | DELETED
    object: Obj


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _content(obj: Obj) -> Obj:
    """What ``metadata.generation`` tracks: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _conflict(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.plural}{"." + rt.group if rt.group else ""} "{name}": '
        "the object has been modified; please apply your changes to the latest version and try again",
    )


def not_found(rt: ResourceType, name: str) -> ApiError:
    group = f".{rt.group}" if rt.group else ""
    return ApiError(404, "NotFound", f'{rt.plural}{group} "{name}" not found')


class Store:
    def __init__(self, history: int = 10_000) -> None:
        self._cond = threading.Condition()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._objects: dict[Key, Obj] = {}
        #: the same objects by resource type: (namespace, name) -> object
        self._by_type: dict[tuple[str, str, str], dict[tuple[str, str], Obj]] = {}
        self._rv = 0
        self._events: list[Event] = []  # in resourceVersion order
        self._rvs: list[int] = []  # the events' resourceVersions, for bisecting
        self._start = 0  # events before this index are compacted away (dropped in batches)
        self._history = history
        self._compacted = 0  # events with rv <= this are no longer served
        self._names = itertools.count(1)
        self.closed = False
        for rt in BUILTIN:
            self.register(rt)

    # -- resource types -------------------------------------------------------------------------
    def register(self, rt: ResourceType) -> None:
        with self._cond:
            self._types[rt.key] = rt

    def types(self) -> list[ResourceType]:
        with self._cond:
            return list(self._types.values())

    def resource(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._cond:
            return self._types.get((group, version, plural))

    # -- reads ----------------------------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        with self._cond:
            return self._rv

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        with self._cond:
            obj = self._objects.get((rt.key, namespace, name))
            if obj is None:
                raise not_found(rt, name)
            return copy.deepcopy(obj)

    def list(
        self, rt: ResourceType, namespace: str | None, match: Callable[[Obj], bool] = lambda o: True
    ) -> tuple[list[Obj], int]:
        with self._cond:
            found = [
                (k, obj)
                for k, obj in self._by_type.get(rt.key, {}).items()
                if (namespace is None or k[0] == namespace) and match(obj)
            ]  # filtered before sorting and copying: a list costs its matches, not the whole store
            items = [copy.deepcopy(obj) for _, obj in sorted(found, key=lambda item: item[0])]
            return items, self._rv

    def peek(self, rt: ResourceType) -> list[Obj]:
        """The objects of a type as stored, not copied: for readers that never change them (the stand-in's
        own ReplicaSet controller reads 1,000 ReplicaSets every tick)."""
        with self._cond:
            return list(self._by_type.get(rt.key, {}).values())

    def events_since(self, position: int) -> tuple[list[Event], bool]:
        """The events after resourceVersion ``position``, and whether all of them are still held."""
        with self._cond:
            return self._after(position), position >= self._compacted

    def history(self) -> list[Event]:
        """Every write so far, in order (for oracles that check each state the cluster went through);
        refused once the history was compacted, since a state would then be missing."""
        with self._cond:
            if self._compacted:
                raise AssertionError(f"the history was compacted (up to {self._compacted}): make it longer")
            return [Event(e.rv, e.resource, e.type, copy.deepcopy(e.object)) for e in self._events]

    # -- writes ---------------------------------------------------------------------------------
    def create(self, rt: ResourceType, namespace: str, body: Obj) -> Obj:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        with self._cond:
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{next(self._names):05d}"
            name = meta.get("name")
            if not name:
                raise ApiError(422, "Invalid", f"{rt.kind}: metadata.name: Required value")
            key = (rt.key, namespace if rt.namespaced else "", name)
            if key in self._objects:
                group = f".{rt.group}" if rt.group else ""
                raise ApiError(409, "AlreadyExists", f'{rt.plural}{group} "{name}" already exists')
            obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
            if rt.namespaced:
                meta["namespace"] = namespace
            meta.pop("resourceVersion", None)
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
            if rt.status_subresource:
                obj.pop("status", None)
            return self._store(rt, key, obj, "ADDED")

    def replace(self, rt: ResourceType, namespace: str, name: str, body: Obj, subresource: str = "") -> Obj:
        with self._cond:
            key, old = self._current(rt, namespace, name)
            wanted = body.get("metadata", {}).get("resourceVersion")
            if wanted and wanted != old["metadata"]["resourceVersion"]:
                raise _conflict(rt, name)
            return self._update(rt, key, old, copy.deepcopy(body), subresource)

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        patch: Any,
        subresource: str = "",
    ) -> Obj:
        with self._cond:
            key, old = self._current(rt, namespace, name)
            if rt.custom and content_type.startswith(patches.STRATEGIC):
                raise ApiError(
                    415, "UnsupportedMediaType", "strategic merge patch is not supported for custom resources"
                )
            try:
                new = patches.apply_patch(content_type, copy.deepcopy(old), patch)
            except patches.PatchError as exc:
                raise ApiError(422, "Invalid", str(exc)) from exc
            wanted = new.get("metadata", {}).get("resourceVersion")
            if wanted and wanted != old["metadata"]["resourceVersion"]:
                raise _conflict(rt, name)
            return self._update(rt, key, old, new, subresource)

    def delete(self, rt: ResourceType, namespace: str, name: str, resource_version: str | None = None) -> Obj:
        with self._cond:
            key, old = self._current(rt, namespace, name)
            if resource_version and resource_version != old["metadata"]["resourceVersion"]:
                raise _conflict(rt, name)
            if old["metadata"].get("finalizers"):
                new = copy.deepcopy(old)
                new["metadata"].setdefault("deletionTimestamp", _now())
                return self._store(rt, key, new, "MODIFIED") if new != old else old
            return self._remove(rt, key)

    def compact(self) -> None:
        """Forget the whole event history: any watch from an older resourceVersion now gets 410 Gone."""
        with self._cond:
            self._events.clear()
            self._rvs.clear()
            self._start = 0
            self._compacted = self._rv
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    # -- internals (called with the lock held) ----------------------------------------------------
    def _current(self, rt: ResourceType, namespace: str, name: str) -> tuple[Key, Obj]:
        key = (rt.key, namespace if rt.namespaced else "", name)
        old = self._objects.get(key)
        if old is None:
            raise not_found(rt, name)
        return key, old

    def _update(self, rt: ResourceType, key: Key, old: Obj, new: Obj, subresource: str) -> Obj:
        if subresource not in ("", "status") or (subresource == "status" and not rt.status_subresource):
            raise ApiError(404, "NotFound", f"{rt.plural}/{subresource}: no such subresource")
        if subresource == "status":
            merged = copy.deepcopy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
        else:
            if rt.status_subresource:
                new.pop("status", None)
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
            meta = new.setdefault("metadata", {})
            for field in ("name", "namespace", "uid", "creationTimestamp", "generation", "deletionTimestamp"):
                if field in old["metadata"]:
                    meta[field] = old["metadata"][field]
                else:
                    meta.pop(field, None)
            new["apiVersion"], new["kind"] = rt.api_version, rt.kind
            if _content(new) != _content(old):
                meta["generation"] = old["metadata"].get("generation", 1) + 1
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old:
            return copy.deepcopy(old)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._keep(key, new)
            return self._remove(rt, key)
        return self._store(rt, key, new, "MODIFIED")

    def _store(self, rt: ResourceType, key: Key, obj: Obj, kind: str) -> Obj:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._keep(key, obj)
        self._record(rt, kind, obj)
        if rt.kind == "CustomResourceDefinition" and kind == "ADDED":
            for declared in from_crd(obj):
                self._types[declared.key] = declared
            # served at once, as the real API server says once it has checked the schema
            obj["status"] = {
                "conditions": [{"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}]
            }
        return copy.deepcopy(obj)

    def _keep(self, key: Key, obj: Obj) -> None:
        self._objects[key] = obj
        self._by_type.setdefault(key[0], {})[key[1:]] = obj

    def _remove(self, rt: ResourceType, key: Key) -> Obj:
        obj = self._objects.pop(key)
        del self._by_type[key[0]][key[1:]]
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._record(rt, "DELETED", obj)
        uid = obj["metadata"]["uid"]
        for dep_key, dep in list(self._objects.items()):  # the garbage collector's cascade, done at once
            owners = dep["metadata"].get("ownerReferences") or []
            if dep_key in self._objects and any(o.get("uid") == uid for o in owners):
                self._remove(self._types[dep_key[0]], dep_key)
        return copy.deepcopy(obj)

    def _record(self, rt: ResourceType, kind: str, obj: Obj) -> None:
        self._events.append(Event(self._rv, rt.key, kind, copy.deepcopy(obj)))
        self._rvs.append(self._rv)
        if len(self._events) - self._start > self._history:
            self._start = len(self._events) - self._history
            self._compacted = self._rvs[self._start - 1]
            if self._start > max(self._history, 1024):
                del self._events[: self._start], self._rvs[: self._start]
                self._start = 0
        self._cond.notify_all()

    def _after(self, position: int) -> list[Event]:
        return self._events[bisect.bisect_right(self._rvs, position, lo=self._start) :]

    # -- watch ----------------------------------------------------------------------------------
    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        match: Callable[[Obj], bool],
        since: str | None,
        bookmark_every: float | None,
        until: float,
        stopped: Callable[[], bool],
    ) -> Iterator[Obj]:
        """Watch events as the API server sends them (dicts with type and object), until ``until``
        (a time.monotonic deadline), until ``stopped()`` or until the store closes."""

        def wanted(e: Event) -> bool:
            ns = e.object["metadata"].get("namespace", "")
            return e.resource == rt.key and (namespace is None or ns == namespace) and match(e.object)

        with self._cond:
            if since in (None, "", "0"):
                items, position = self.list(rt, namespace, match)
                backlog = [{"type": "ADDED", "object": o} for o in items]
            else:
                position, backlog = int(since), []
        yield from backlog
        last_bookmark = time.monotonic()
        while not stopped():
            with self._cond:
                if position < self._compacted:
                    yield self._gone(position)
                    return
                fresh = self._after(position)
                if not fresh and not self.closed:
                    self._cond.wait(timeout=0.02)
                    fresh = self._after(position)
                if self.closed:
                    return
                if fresh:
                    position = fresh[-1].rv
            for e in fresh:
                if wanted(e):
                    yield {"type": e.type, "object": copy.deepcopy(e.object)}
            now = time.monotonic()
            if now >= until:
                return
            if bookmark_every is not None and now - last_bookmark >= bookmark_every:
                last_bookmark = now
                yield {
                    "type": "BOOKMARK",
                    "object": {
                        "kind": rt.kind,
                        "apiVersion": rt.api_version,
                        "metadata": {"resourceVersion": str(position)},
                    },
                }

    @staticmethod
    def _gone(position: int) -> Obj:
        error = ApiError(410, "Expired", f"too old resource version: {position}")
        return {"type": "ERROR", "object": error.status()}
