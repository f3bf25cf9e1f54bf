"""Ocean CD-compatible routes, for scripts migrating from Ocean CD (its public API, ``/ocean/cd/...``).

- ``GET /ocean/cd/rollout/{rolloutId}``: the rollout; ``PUT /ocean/cd/rollout/{rolloutId}`` with
  ``{"action": ...}``: a rollout action (Ocean CD's; ebbtide also takes ``to`` for rollback).
- ``PUT /ocean/cd/rollout/{rolloutId}/externalVerification`` with ``{"status": "passed" | "failed"}``.
- ``POST /ocean/cd/rolloutSpec`` with ``{"rolloutSpec": {...}}``; ``GET|PUT|DELETE
  /ocean/cd/rolloutSpec/{rolloutSpecName}`` (``?namespace=``, default ``default``).

A rollout id is ``{namespace}.{name}.{rollout number}`` (what ebbtide's notifications carry as
``rolloutDetails.id``). Answers come in Ocean CD's envelope ``{"request": {...}, "response": {"status",
"kind", "items", "count"}}``; errors are the native ``{"detail": ...}`` with the same status codes as the
native routes. Authorization is the native routes' (rollouts, rolloutspecs of group ``ebbtide.dev``).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from .backend import ACTIONS, Obj
from .deps import answering, authorize, backend, idempotency_key
from .verification import Answer, answer

router = APIRouter(prefix="/ocean/cd", tags=["Ocean CD compatible"])
ActionName = Literal["promote", "promoteFull", "pause", "resume", "abort", "retry", "rollback"]
assert set(ActionName.__args__) == set(ACTIONS)  # type: ignore[attr-defined]


class OceanAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: ActionName
    to: str | None = None


def envelope(request: Request, kind: str, items: list[Obj], code: int = 200) -> JSONResponse:
    body = {
        "request": {
            "id": request.headers.get("x-request-id"),
            "url": request.url.path,
            "method": request.method,
        },
        "response": {
            "status": {"code": code, "message": "OK" if code == 200 else "Accepted"},
            "kind": f"oceanCD:{kind}",
            "items": items,
            "count": len(items),
        },
    }
    return JSONResponse(body, code)


def parse_id(rollout_id: str) -> tuple[str, str, int]:
    ns, _, rest = rollout_id.partition(".")
    name, _, number = rest.rpartition(".")
    if not ns or not name or not number.isdigit():
        raise HTTPException(
            404, f"rolloutId {rollout_id!r}: must be {{namespace}}.{{name}}.{{rollout number}}"
        )
    return ns, name, int(number)


def _current(request: Request, ns: str, name: str, number: int, acting: bool = False) -> Obj:
    """The rollout's view, when ``number`` is its current rollout (else 404; 409 for an action)."""
    with answering():
        view = backend(request).view(ns, name)
    if view.get("rolloutId") != number:
        reason = f"rollout {number} of {ns}/{name} is not the current one ({view.get('rolloutId')})"
        raise HTTPException(409, {"reason": reason}) if acting else HTTPException(404, reason)
    return view


@router.get("/rollout/{rolloutId}", summary="Ocean CD: describe a rollout")
def get_rollout(request: Request, rolloutId: str) -> JSONResponse:
    ns, name, number = parse_id(rolloutId)
    authorize(request, "get", ns, "rollouts", name)
    view = _current(request, ns, name, number)
    return envelope(request, "rollout", [{"id": rolloutId, **view}])


@router.put("/rollout/{rolloutId}", summary="Ocean CD: rollout actions")
def put_action(request: Request, rolloutId: str, body: OceanAction) -> JSONResponse:
    ns, name, number = parse_id(rolloutId)
    who = authorize(request, "update", ns, "rollouts", name)
    _current(request, ns, name, number, acting=True)
    key = idempotency_key(request)
    with answering():
        result = backend(request).act(ns, name, body.action, body.to, who.user, key)
    return envelope(request, "rolloutAction", [result], 202 if result.get("result") == "pending" else 200)


@router.put("/rollout/{rolloutId}/externalVerification", summary="Ocean CD: answer an external verification")
def put_verification(request: Request, rolloutId: str, body: Answer) -> JSONResponse:
    ns, name, _ = parse_id(rolloutId)
    return answer(request, ns, name, body)


def _document(spec: Obj, name: str) -> Obj:
    fields = {k: v for k, v in spec.items() if k not in ("name", "createdAt", "updatedAt")}
    return {
        "apiVersion": "ebbtide.dev/v1alpha1",
        "kind": "RolloutSpec",
        "metadata": {"name": name},
        "spec": fields,
    }


def _ocean(doc: Obj) -> Obj:
    meta = doc.get("metadata") or {}
    return {"name": meta.get("name"), **(doc.get("spec") or {}), "createdAt": meta.get("creationTimestamp")}


def _namespace(spec: Obj, namespace: str | None) -> str:
    ref = spec.get("spotDeployment")
    from_ref = ref.get("namespace") if isinstance(ref, dict) else None
    return namespace or (str(from_ref) if from_ref else "default")


def _apply(request: Request, spec: Obj, name: str, namespace: str | None) -> JSONResponse:
    ns = _namespace(spec, namespace)
    who = None
    for verb in ("create", "update"):
        who = authorize(request, verb, ns, "rolloutspecs", name)
    assert who is not None
    with answering():
        stored = backend(request).apply_specs(ns, [_document(spec, name)], who.user)
    return envelope(request, "rolloutSpec", [_ocean(d) for d in stored])


class OceanSpec(BaseModel):
    rolloutSpec: dict[str, Any]


@router.post("/rolloutSpec", summary="Ocean CD: create a rollout spec")
def create_spec(request: Request, body: OceanSpec, namespace: str | None = Query(None)) -> JSONResponse:
    name = body.rolloutSpec.get("name")
    if not isinstance(name, str) or not name:
        raise HTTPException(422, [{"loc": ["body", "rolloutSpec", "name"], "msg": "required"}])
    return _apply(request, body.rolloutSpec, name, namespace)


@router.put("/rolloutSpec/{rolloutSpecName}", summary="Ocean CD: update a rollout spec (full update)")
def update_spec(
    request: Request,
    rolloutSpecName: str,
    body: OceanSpec,
    namespace: str | None = Query(None),
) -> JSONResponse:
    return _apply(request, body.rolloutSpec, rolloutSpecName, namespace)


@router.get("/rolloutSpec/{rolloutSpecName}", summary="Ocean CD: get a rollout spec")
def get_spec(request: Request, rolloutSpecName: str, namespace: str = Query("default")) -> JSONResponse:
    authorize(request, "get", namespace, "rolloutspecs", rolloutSpecName)
    with answering():
        doc = backend(request).get_spec(namespace, "RolloutSpec", rolloutSpecName)
    return envelope(request, "rolloutSpec", [_ocean(doc)])


@router.delete("/rolloutSpec/{rolloutSpecName}", summary="Ocean CD: delete a rollout spec")
def delete_spec(request: Request, rolloutSpecName: str, namespace: str = Query("default")) -> JSONResponse:
    who = authorize(request, "delete", namespace, "rolloutspecs", rolloutSpecName)
    with answering():
        backend(request).delete_spec(namespace, "RolloutSpec", rolloutSpecName, who.user)
    return envelope(request, "rolloutSpec", [])
