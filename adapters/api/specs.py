"""The spec routes: read, create, update and delete RolloutSpec, Strategy, VerificationTemplate and
VerificationProvider documents of a namespace.

A change is validated with the namespace's whole spec set first (every reference resolved, every RolloutSpec
compiled) and nothing is applied when it does not validate: 422 with the located problems ``ebbtide
validate`` prints. ``{kind}`` is a kind (``RolloutSpec``) or its plural (``rolloutspecs``); each route is
authorized as the same verb on that plural of group ``ebbtide.dev`` (``POST``, which creates or updates,
needs both ``create`` and ``update``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, HTTPException, Request

from ebbtide.adapters.kubernetes.names import SPEC_PLURALS

from .backend import Obj
from .deps import answering, authorize, backend

router = APIRouter(prefix="/api/v1/namespaces/{namespace}/specs", tags=["specs"])
PLURAL_OF = {**SPEC_PLURALS, **{p: p for p in SPEC_PLURALS.values()}}
KIND_OF = {**{k: k for k in SPEC_PLURALS}, **{p: k for k, p in SPEC_PLURALS.items()}}
Document = dict[str, Any]


def _plural(kind: str) -> str:
    if kind not in PLURAL_OF:
        raise HTTPException(404, f"no spec kind {kind!r} (one of {', '.join(SPEC_PLURALS)})")
    return PLURAL_OF[kind]


@router.get("/{kind}/{name}", summary="Read one spec document")
def get_spec(request: Request, namespace: str, kind: str, name: str) -> Obj:
    authorize(request, "get", namespace, _plural(kind), name)
    with answering():
        return backend(request).get_spec(namespace, kind, name)


@router.put("/{kind}/{name}", summary="Create or replace one spec document (validated with the whole set)")
def put_spec(request: Request, namespace: str, kind: str, name: str, document: Document = Body(...)) -> Obj:
    who = authorize(request, "update", namespace, _plural(kind), name)
    raw = document.get("metadata")
    meta: Obj = raw if isinstance(raw, dict) else {}
    for field, value, want in (
        ("kind", document.get("kind"), KIND_OF[kind]),
        ("name", meta.get("name"), name),
    ):
        if value is not None and value != want:
            loc = ["body", "kind"] if field == "kind" else ["body", "metadata", "name"]
            raise HTTPException(422, [{"loc": loc, "msg": f"{value!r} is not the path's {field} {want!r}"}])
    doc = {**document, "kind": KIND_OF[kind], "metadata": {**meta, "name": name}}
    with answering():
        return backend(request).apply_specs(namespace, [doc], who.user)[0]


@router.delete("/{kind}/{name}", summary="Delete one spec document (refused while the set needs it)")
def delete_spec(request: Request, namespace: str, kind: str, name: str) -> Obj:
    who = authorize(request, "delete", namespace, _plural(kind), name)
    with answering():
        backend(request).delete_spec(namespace, kind, name, who.user)
    return {"kind": KIND_OF[kind], "namespace": namespace, "name": name, "deleted": True}


@router.post("", summary="Create or update several spec documents, validated as one set, applied all or none")
def post_specs(request: Request, namespace: str, documents: list[Document] = Body(...)) -> Obj:
    plurals = sorted({_plural(str(d.get("kind"))) for d in documents if d.get("kind") in PLURAL_OF})
    who = None
    for plural in plurals:
        for verb in ("create", "update"):
            who = authorize(request, verb, namespace, plural)
    who = who or authorize(request, "create", namespace, "rolloutspecs")
    with answering():
        return {"items": backend(request).apply_specs(namespace, documents, who.user)}
