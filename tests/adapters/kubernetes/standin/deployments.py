"""The Deployment controller of the stand-in, as far as the adoption tests need it: each Deployment owns one
ReplicaSet for its current template (``<deployment>-<hash>``, its pods labelled ``pod-template-hash``), scaled
to ``spec.replicas``; a ReplicaSet of an older template is scaled to 0 (a Recreate strategy, no surge), and
the Deployment's status counts the pods of its ReplicaSets. The pods themselves are the ReplicaSet
controller's (:mod:`.workloads`), which calls :func:`sync` first on each pass."""

from __future__ import annotations

import hashlib
import json

from .store import ApiError, Obj, Store

DEPLOYMENT = ("apps", "v1", "deployments")
RS = ("apps", "v1", "replicasets")


def template_hash(template: Obj) -> str:
    return hashlib.sha1(json.dumps(template, sort_keys=True).encode()).hexdigest()[:9] + "d"


def sync(store: Store) -> None:
    dep_type, rs_type = store.resource(*DEPLOYMENT), store.resource(*RS)
    assert dep_type is not None and rs_type is not None
    replicasets = store.list(rs_type, None)[0]
    for dep in store.list(dep_type, None)[0]:
        owned = [rs for rs in replicasets if _owner(rs) == dep["metadata"]["uid"]]
        try:
            _sync_one(store, dep, owned)
        except ApiError:  # changed meanwhile: the next pass sees it
            continue


def _owner(rs: Obj) -> str | None:
    for ref in rs["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == "Deployment":
            return str(ref.get("uid"))
    return None


def _sync_one(store: Store, dep: Obj, owned: list[Obj]) -> None:
    dep_type, rs_type = store.resource(*DEPLOYMENT), store.resource(*RS)
    assert dep_type is not None and rs_type is not None
    meta, spec = dep["metadata"], dep.get("spec") or {}
    ns, wanted = meta["namespace"], int(spec.get("replicas", 1))
    template = spec.get("template") or {}
    current = f"{meta['name']}-{template_hash(template)}"
    if not any(rs["metadata"]["name"] == current for rs in owned):
        owned.append(store.create(rs_type, ns, _replicaset(dep, current, template, wanted)))
    for rs in owned:
        replicas = wanted if rs["metadata"]["name"] == current else 0
        if rs["spec"].get("replicas") != replicas:
            store.replace(
                rs_type, ns, rs["metadata"]["name"], {**rs, "spec": {**rs["spec"], "replicas": replicas}}
            )
    status = {
        "observedGeneration": meta.get("generation", 1),
        "replicas": sum((rs.get("status") or {}).get("replicas", 0) for rs in owned),
        "readyReplicas": sum((rs.get("status") or {}).get("readyReplicas", 0) for rs in owned),
        "availableReplicas": sum((rs.get("status") or {}).get("availableReplicas", 0) for rs in owned),
    }
    if dep.get("status") != status:
        store.replace(dep_type, ns, meta["name"], {**dep, "status": status}, "status")


def _replicaset(dep: Obj, name: str, template: Obj, replicas: int) -> Obj:
    pod_hash = name.rsplit("-", 1)[1]
    labels = {**(dep["spec"].get("selector") or {}).get("matchLabels", {}), "pod-template-hash": pod_hash}
    pod_template = json.loads(json.dumps(template))
    pod_template.setdefault("metadata", {})["labels"] = {
        **(pod_template["metadata"].get("labels") or {}),
        **labels,
    }
    return {
        "metadata": {
            "name": name,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": dep["metadata"]["name"],
                    "uid": dep["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": pod_template},
    }
