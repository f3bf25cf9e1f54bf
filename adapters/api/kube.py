"""The API's :class:`~.backend.Backend` on a Kubernetes cluster: :class:`KubeBackend`.

- **Reads** (list, view, history) come from an informer's cache of the ``EbbtideDeployment`` objects (one
  list + watch for the whole process, however many callers poll or watch): the API server is not asked per
  request. ``generation()`` moves with every event the informer receives (an object's new resourceVersion).
- **Actions** are requests recorded on the object (:mod:`ebbtide.adapters.kubernetes.actions`): refused at
  once with the engine's reason when the persisted state already rejects them; else recorded, then the
  controller's result is awaited for ``act_timeout`` seconds (``result: "pending"`` with the id when it did
  not come in time: the controller applies it at its next reconcile).
- **Specs** are the namespace's spec objects; a change is validated with the whole set first
  (:mod:`ebbtide.adapters.kubernetes.specset`) and nothing is written unless it validates.
- **External verification answers** go through :class:`~ebbtide.adapters.kubernetes.external.KubernetesStore`.
"""

from __future__ import annotations

import json
import threading
from functools import partial
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from ebbtide.adapters.external import RolloutStore
from ebbtide.adapters.kubernetes import actions, specset
from ebbtide.adapters.kubernetes.external import KubernetesStore, state_of
from ebbtide.adapters.kubernetes.informer import Informer
from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, SPEC_PLURALS, VERSION
from ebbtide.adapters.view import summary_data, view_data
from ebbtide.core.spec import SpecError

from .backend import InvalidSpec, NotFound, Obj, Rejected

#: the spec kinds the API serves, by the name used in its paths (the kind, or its plural)
KINDS = {**{k: k for k in SPEC_PLURALS}, **{p: k for k, p in SPEC_PLURALS.items()}}


def pending_view(namespace: str, name: str, obj: Obj) -> Obj:
    """The view of a rollout the controller has not reconciled yet (no engine state)."""
    status = obj.get("status") or {}
    return {
        "name": name,
        "namespace": namespace,
        "phase": "pending",
        "message": status.get("message") or "not reconciled yet",
    }


class KubeBackend:
    """Rollouts of a cluster (``namespaces``: the ones served; empty: all), through ``client``."""

    def __init__(
        self,
        client: kubernetes.client.ApiClient,
        namespaces: tuple[str, ...] = (),
        *,
        act_timeout: float = 10.0,
        watch_timeout: int = 300,
        informer_backoff: float = 1.0,
    ) -> None:
        self.client = client
        self.namespaces = namespaces
        self.act_timeout = act_timeout
        self._objects = kubernetes.client.CustomObjectsApi(client)
        self._generation = 0
        self._lock = threading.Lock()
        self.informers = [
            Informer(
                self._lister(ns),
                on_event=self._moved,
                watch_timeout=watch_timeout,
                backoff=informer_backoff,
            )
            for ns in namespaces or (None,)
        ]
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------------------
    def _lister(self, namespace: str | None) -> Any:
        if namespace is None:
            return partial(self._objects.list_cluster_custom_object, GROUP, VERSION, PLURAL)
        return partial(self._objects.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL)

    def start(self) -> KubeBackend:
        for informer in self.informers:
            thread = threading.Thread(target=informer.run, name="ebbtide-api-informer", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def wait_synced(self, timeout: float) -> bool:
        return all(informer.synced.wait(timeout) for informer in self.informers)

    def stop(self) -> None:
        for informer in self.informers:
            informer.stop()
        for thread in self._threads:
            thread.join(5.0)

    def _moved(self, kind: str, obj: Obj) -> None:
        with self._lock:
            self._generation += 1

    def generation(self) -> int:
        with self._lock:
            return self._generation

    # -- reads -------------------------------------------------------------------------------------------
    def _served(self, namespace: str) -> bool:
        return not self.namespaces or namespace in self.namespaces

    def _cached(self, namespace: str, name: str) -> Obj:
        if self._served(namespace):
            for informer in self.informers:
                obj = informer.get(namespace, name)
                if obj is not None:
                    return obj
        raise NotFound(f"no rollout {namespace}/{name}")

    def _view(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        state = state_of(obj)
        if state is None:
            return pending_view(meta["namespace"], meta["name"], obj)
        return view_data(meta["name"], meta["namespace"], state, obj.get("status") or {})

    def list_rollouts(self, namespace: str | None) -> list[Obj]:
        objs = [o for informer in self.informers for o in informer.snapshot().values()]
        chosen = [o for o in objs if namespace is None or o["metadata"].get("namespace") == namespace]
        chosen.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        out = []
        for obj in chosen:
            view = self._view(obj)
            out.append(summary_data(view) if "revisions" in view else view)
        return out

    def view(self, namespace: str, name: str) -> Obj:
        return self._view(self._cached(namespace, name))

    def history(self, namespace: str, name: str) -> list[Obj]:
        obj = self._cached(namespace, name)
        entries = (obj.get("status") or {}).get("liveHistory") or []
        keys = ("revision", "rolloutId", "initiator", "at", "originalRolloutId")
        return [{k: e[k] for k in keys if k in e} for e in entries if isinstance(e, dict)]

    # -- actions -----------------------------------------------------------------------------------------
    def act(
        self, namespace: str, name: str, action: str, to: str | None, by: str, key: str | None = None
    ) -> Obj:
        """Record the action and wait for the controller's result (see the module documentation)."""
        if not self._served(namespace):
            raise NotFound(f"no rollout {namespace}/{name}")
        try:
            obj = actions.read(self._objects, namespace, name)
            known = key is not None and (key in actions.consumed_ids(obj) or _waits(obj, key))
            reason = None if known else actions.rejected_now(obj, action, to)
            if reason is not None:
                raise Rejected(reason)
            req = actions.request(self.client, namespace, name, action, to=to, by=by, key=key)
            result = actions.wait_for(self._objects, namespace, name, req.id, self.act_timeout)
        except actions.NoRollout as exc:
            raise NotFound(str(exc)) from None
        except (actions.BadAction, actions.TooManyPending) as exc:
            raise Rejected(str(exc)) from None
        if result is None:
            return {"id": req.id, "action": action, "result": "pending", "reason": None}
        if result.get("result") != "applied":
            raise Rejected(str(result.get("reason") or "rejected by the controller"))
        return {"id": req.id, "action": action, "result": "accepted", "reason": None}

    # -- specs -------------------------------------------------------------------------------------------
    @staticmethod
    def _kind(kind: str) -> str:
        if kind not in KINDS:
            raise NotFound(f"no spec kind {kind!r} (one of {', '.join(SPEC_PLURALS)})")
        return KINDS[kind]

    def get_spec(self, namespace: str, kind: str, name: str) -> Obj:
        plural = SPEC_PLURALS[self._kind(kind)]
        try:
            got: Obj = self._objects.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)  # type: ignore[assignment]
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(f"no {self._kind(kind)} {namespace}/{name}") from None
            raise
        return got

    def apply_specs(self, namespace: str, documents: list[Obj], by: str) -> list[Obj]:
        """Validate ``documents`` with the namespace's set, then create or replace each; nothing is written
        when the set does not validate (:class:`InvalidSpec`)."""
        problems = _shape_problems(namespace, documents)
        if problems:
            raise InvalidSpec(problems)
        items = specset.read_items(self.client, namespace)
        try:
            specset.validate(items, documents)
        except SpecError as exc:
            raise InvalidSpec(specset.located(exc)) from None
        stored: list[Obj] = []
        for doc in documents:
            kind, name = doc["kind"], doc["metadata"]["name"]
            body = specset.clean(doc)
            body["metadata"]["namespace"] = namespace
            plural = SPEC_PLURALS[kind]
            existing = items[kind].get(name)
            if existing is None:
                got = self._objects.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
            else:
                body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
                got = self._objects.replace_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, name, body
                )
            stored.append(got)  # type: ignore[arg-type]
        return stored

    def delete_spec(self, namespace: str, kind: str, name: str, by: str) -> None:
        """Delete one spec document, refused (:class:`Rejected`) when the set without it does not validate
        (a RolloutSpec still uses it)."""
        kind = self._kind(kind)
        items = specset.read_items(self.client, namespace)
        if name not in items[kind]:
            raise NotFound(f"no {kind} {namespace}/{name}")
        try:
            specset.validate(items, deleted=(kind, name))
        except SpecError as exc:
            users = sorted({f"{p.kind}/{p.name} {p.field}".strip() for p in exc.problems})
            raise Rejected(f"{kind} {name} is still needed by: {', '.join(users)}") from None
        self._objects.delete_namespaced_custom_object(GROUP, VERSION, namespace, SPEC_PLURALS[kind], name)

    # -- external verification ---------------------------------------------------------------------------
    def external(self) -> RolloutStore:
        return KubernetesStore(self.client)


def _waits(obj: Obj, key: str) -> bool:
    return any(item.get("id") == key for item in actions.pending(obj))


def _shape_problems(namespace: str, documents: list[Obj]) -> list[Obj]:
    """What makes a submitted document unusable before any validation: not a spec kind, no name, another
    namespace, the same document twice."""
    problems: list[Obj] = []
    seen: set[tuple[str, str]] = set()
    for i, doc in enumerate(documents):
        where = f"{specset.REQUEST}: document {i + 1}"

        def problem(field: str, reason: str, doc: Obj = doc, where: str = where) -> None:
            problems.append(
                {
                    "document": where,
                    "kind": doc.get("kind"),
                    "name": (doc.get("metadata") or {}).get("name"),
                    "field": field,
                    "reason": reason,
                    "message": f"{where}: {field}: {reason}",
                }
            )

        kind = doc.get("kind")
        meta = doc.get("metadata")
        if kind not in SPEC_PLURALS:
            problem("kind", f"{json.dumps(kind)} is not one of {', '.join(SPEC_PLURALS)}")
            continue
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
            problem("metadata.name", "required")
            continue
        if meta.get("namespace") not in (None, namespace):
            problem("metadata.namespace", f"{meta['namespace']!r} is not the namespace of the path")
        if (kind, meta["name"]) in seen:
            problem("metadata.name", f"{kind} {meta['name']} appears twice in the request")
        seen.add((kind, meta["name"]))
    return problems
