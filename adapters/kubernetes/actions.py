"""Rollout actions on a Kubernetes workload: requests recorded on the object, consumed exactly once.

An action (promote, promoteFull, pause, resume, abort, retry, rollback [to a revision]) is written by
``ebbtide rollout ...`` (or any client allowed to update the ``EbbtideDeployment``: Kubernetes RBAC decides
who may act) into the annotation ``ebbtide.dev/actions``: a JSON list of pending requests, oldest first,

    [{"id": "<uuid hex>", "action": "rollback", "to": "<revision>", "at": "<RFC 3339>", "by": "<user>"}]

(``to`` only for rollback, ``by`` when known). :func:`request` appends one with the resourceVersion it read
(a 409 re-reads and retries), dropping the requests the status already reports as consumed, so the list
holds only what waits, at most :data:`MAX_PENDING`.

Each reconcile (:func:`consume`, called before the pump) turns every pending request whose id is not in
``status.actions`` into the engine's :class:`~ebbtide.core.events.Command`, in order, and returns the status
fields recording the result: ``status.actions`` (the last :data:`KEEP` results) and ``status.lastAction``,
each ``{"id", "action", "to"?, "result": "applied" | "rejected", "reason"?, "at"}``. They are written in the
same status write as the new engine state, with the resourceVersion read, so a request is applied exactly
once: a conflicting write is recomputed from the fresh object (where the request is still pending), and a
controller that restarts after the write finds the id consumed. A rejected command leaves the engine state
unchanged and its result carries the engine's reason.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args

import kubernetes

from ebbtide.adapters.driver import Driver
from ebbtide.core.engine import step
from ebbtide.core.events import Command, CommandAction

from .external import state_of
from .routers.base import Obj

ANNOTATION = "ebbtide.dev/actions"
GROUP, VERSION, PLURAL = "ebbtide.dev", "v1alpha1", "ebbtidedeployments"
ACTIONS: tuple[str, ...] = get_args(CommandAction)
#: requests that may wait on one object (a writer is refused beyond that)
MAX_PENDING = 16
#: consumed results kept in ``status.actions`` (more than MAX_PENDING: every pending id stays findable)
KEEP = 20


class NoRollout(LookupError):
    """The workload does not exist."""


class BadAction(ValueError):
    """The request itself is malformed (unknown action, ``to`` without rollback)."""


class TooManyPending(RuntimeError):
    """MAX_PENDING requests already wait for the controller."""


@dataclass(frozen=True)
class Request:
    id: str
    action: str
    to: str | None = None
    at: str = ""
    by: str | None = None

    def as_json(self) -> Obj:
        out: Obj = {"id": self.id, "action": self.action, "at": self.at}
        if self.to is not None:
            out["to"] = self.to
        if self.by is not None:
            out["by"] = self.by
        return out


def pending(obj: Obj) -> list[Obj]:
    """The requests recorded on the object that the status does not report as consumed."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    if not raw:
        return []
    try:
        items = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    done = consumed_ids(obj)
    return [i for i in items if isinstance(i, dict) and str(i.get("id", "")) not in done]


def results(obj: Obj) -> list[Obj]:
    """The consumed requests' results in the status, oldest first."""
    got = (obj.get("status") or {}).get("actions") or []
    return [r for r in got if isinstance(r, dict)]


def consumed_ids(obj: Obj) -> set[str]:
    return {str(r.get("id")) for r in results(obj)}


def result_of(obj: Obj, action_id: str) -> Obj | None:
    """The result of request ``action_id`` once a reconcile consumed it; None while it waits."""
    return next((r for r in results(obj) if r.get("id") == action_id), None)


def check(action: str, to: str | None) -> None:
    if action not in ACTIONS:
        raise BadAction(f"action {action!r}: not one of {', '.join(ACTIONS)}")
    if to is not None and action != "rollback":
        raise BadAction(f"action {action!r}: 'to' is only for rollback")
    if to is not None and not to.strip():
        raise BadAction("to: empty revision")


def read(api: kubernetes.client.CustomObjectsApi, namespace: str, name: str) -> Obj:
    try:
        obj: Obj = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)  # type: ignore[assignment]
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            raise NoRollout(f"no EbbtideDeployment {namespace}/{name}") from None
        raise
    return obj


def request(
    client: kubernetes.client.ApiClient,
    namespace: str,
    name: str,
    action: str,
    *,
    to: str | None = None,
    by: str | None = None,
    attempts: int = 8,
    key: str | None = None,
) -> Request:
    """Record a request on the workload (resourceVersion concurrency); returns it with its id. With ``key``
    (a client's idempotency key) the id is ``key``, and a request with that id already pending or consumed
    is returned as it is, nothing written: a client retrying after a lost answer acts once."""
    check(action, to)
    req = Request(
        id=key or uuid.uuid4().hex,
        action=action,
        to=to,
        at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        by=by,
    )
    api = kubernetes.client.CustomObjectsApi(client)
    for attempt in range(attempts):
        obj = read(api, namespace, name)
        waiting = pending(obj)
        if key is not None and (key in consumed_ids(obj) or any(w.get("id") == key for w in waiting)):
            return req
        if len(waiting) >= MAX_PENDING:
            raise TooManyPending(
                f"{namespace}/{name}: {len(waiting)} actions already wait for the controller"
            )
        meta = dict(obj["metadata"])
        meta["annotations"] = {
            **(meta.get("annotations") or {}),
            ANNOTATION: json.dumps([*waiting, req.as_json()], sort_keys=True),
        }
        body = {k: v for k, v in obj.items() if k != "status"} | {"metadata": meta}
        try:
            api.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body)
        except kubernetes.client.ApiException as exc:
            if exc.status == 409 and attempt < attempts - 1:
                continue
            raise
        return req
    raise AssertionError("unreachable")  # pragma: no cover


def consume(obj: Obj, driver: Driver, now: float, declared: str) -> Obj:
    """Send every pending request to the engine, in order; the status fields recording the results
    (empty when nothing was pending: the status keeps what it had). ``declared`` is the revision of the
    workload's pod template: when an applied action moves the engine's desired revision away from it (a
    rollback), ``status.templateOverride`` records that, so the template is not deployed again over it."""
    todo = pending(obj)
    if not todo:
        return {}
    driver.pump(now)  # what is due now acts first: the action meets the world as it is at this instant
    done = results(obj)
    out: Obj = {}
    for item in todo:
        before = driver.state.desired
        result = _apply(item, driver, now)
        done.append(result)
        desired = driver.state.desired
        if result["result"] == "applied" and desired != before and desired != declared:
            out["templateOverride"] = {"revision": declared, "actionId": result["id"], "desired": desired}
    done = done[-KEEP:]
    return {**out, "actions": done, "lastAction": done[-1]}


def deploys(obj: Obj, acted: Obj, declared: str) -> bool:
    """Whether the declared pod template's revision may be deployed (when it differs from the engine's desired
    one): not while an applied rollback overrides exactly that template. A template changed since (to any
    other revision, the rollback target included) clears the override (written into ``acted``)."""
    override = acted.get("templateOverride", (obj.get("status") or {}).get("templateOverride")) or {}
    if override.get("revision") == declared:
        return False
    if override:
        acted["templateOverride"] = {}
    return True


def _apply(item: Obj, driver: Driver, now: float) -> Obj:
    action, to = str(item.get("action", "")), item.get("to")
    out: Obj = {"id": str(item.get("id", "")), "action": action, "at": item.get("at", "")}
    if to is not None:
        out["to"] = to
    if item.get("by"):
        out["by"] = item["by"]
    try:
        check(action, None if to is None else str(to))
    except BadAction as exc:
        return {**out, "result": "rejected", "reason": str(exc)}
    cmd = Command(action=action, revision=None if to is None else str(to))  # type: ignore[arg-type]
    rejected = driver.handle(cmd, now).rejected
    if rejected is not None:
        return {**out, "result": "rejected", "reason": rejected}
    return {**out, "result": "applied"}


def rejected_now(obj: Obj, action: str, to: str | None) -> str | None:
    """The engine's reason when the command would be rejected in the persisted state (None: accepted, or
    requests wait before it: the controller decides). :class:`BadAction` for a malformed request. Callers
    record nothing for a command rejected here."""
    check(action, to)
    state = state_of(obj)
    if state is None or pending(obj):
        return None
    return step(state, Command(action=action, revision=to), state.updated_at).rejected  # type: ignore[arg-type]


def wait_for(
    api: kubernetes.client.CustomObjectsApi,
    namespace: str,
    name: str,
    action_id: str,
    timeout: float,
    poll: float = 0.1,
) -> Obj | None:
    """The result of request ``action_id`` once the controller consumed it; None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = result_of(read(api, namespace, name), action_id)
        if result is not None or time.monotonic() >= deadline:
            return result
        time.sleep(poll)


def describe(result: Obj) -> str:
    """One line for a person: ``rollback (to abc) applied`` / ``retry rejected: <reason>``."""
    what = str(result.get("action", "?")) + (f" to {result['to']}" if result.get("to") else "")
    if result.get("result") == "rejected":
        return f"{what} rejected: {result.get('reason', '')}"
    return f"{what} {result.get('result', 'pending')}"
