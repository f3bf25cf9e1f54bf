"""The spec documents of a namespace as the controller reads them, validated as one set before any change.

``ebbtide rollout set-failure-policy`` and the HTTP API's spec routes change spec documents (RolloutSpec,
Strategy, VerificationTemplate, VerificationProvider) on a cluster. Either writes nothing unless the whole set
*with the change* still validates and every RolloutSpec in it still compiles: :func:`validate` raises the
same located :class:`~ebbtide.core.spec.SpecError` as ``ebbtide validate``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import kubernetes

from ebbtide.core.spec import Document, Problem, SpecError, SpecSet, compile_plan

from .reconcile import GROUP, SPEC_PLURALS, VERSION

Obj = dict[str, Any]
#: the spec objects of one namespace: kind -> name -> object
Items = dict[str, dict[str, Obj]]
#: the name a document submitted in a request is reported under
REQUEST = "request"


def read_items(client: kubernetes.client.ApiClient, namespace: str) -> Items:
    """Every spec object of the namespace, by kind and name."""
    api = kubernetes.client.CustomObjectsApi(client)
    out: Items = {}
    for kind, plural in SPEC_PLURALS.items():
        listed: Any = api.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        out[kind] = {item["metadata"]["name"]: item for item in listed["items"]}
    return out


def clean(body: Obj) -> Obj:
    """The document a user wrote: no status, and only the metadata a user sets."""
    meta = {
        k: v
        for k, v in (body.get("metadata") or {}).items()
        if k in ("name", "namespace", "labels", "annotations")
    }
    return {k: v for k, v in body.items() if k != "status"} | {"metadata": meta}


def rollout_spec_of(items: Items, workload: str) -> Obj | None:
    """The RolloutSpec naming the workload (the first by name), or None."""
    for name in sorted(items.get("RolloutSpec", {})):
        item = items["RolloutSpec"][name]
        spec = item.get("spec") or {}
        refs = [spec.get("spotDeployment"), spec.get("workload"), *(spec.get("spotDeployments") or [])]
        if any(isinstance(r, dict) and r.get("name") == workload for r in refs):
            return item
    return None


def validate(items: Items, changed: Sequence[Obj] = (), deleted: tuple[str, str] | None = None) -> None:
    """The namespace's spec set with ``changed`` documents (new or replacing the same kind and name; reported
    as ``request`` document N, 1-based) and without ``deleted`` (kind, name), as the controller will read it:
    every document valid, every reference resolved, every RolloutSpec compiled. SpecError on a problem."""
    submitted = {(d.get("kind"), (d.get("metadata") or {}).get("name")): i for i, d in enumerate(changed)}
    docs = [Document(REQUEST, i + 1, json.loads(json.dumps(clean(d)))) for i, d in enumerate(changed)]
    for kind in SPEC_PLURALS:
        for name in sorted(items.get(kind, {})):
            if (kind, name) in submitted or (kind, name) == deleted:
                continue
            docs.append(Document(f"{SPEC_PLURALS[kind]}/{name}", 1, clean(items[kind][name])))
    specs = SpecSet.from_documents(docs)
    problems: list[Problem] = []
    for rollout in sorted(specs.rollout_specs):
        try:
            compile_plan(specs, rollout)
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)


def located(error: SpecError) -> list[Obj]:
    """The problems as JSON: where (file, document, kind, name, field), why; the line ``validate`` prints."""
    return [
        {
            "document": f"{p.file}: document {p.document}",
            "kind": p.kind,
            "name": p.name,
            "field": p.field,
            "reason": p.reason,
            "message": str(p),
        }
        for p in error.problems
    ]
