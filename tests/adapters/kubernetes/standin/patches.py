"""The three patch kinds of the Kubernetes API: JSON merge patch, JSON patch and strategic merge patch.

Strategic merge is implemented for the cases a controller writes on ReplicaSets, Services, Deployments and
pods: maps merge as in a merge patch; lists of objects merge by their Kubernetes merge key (containers and
env by ``name``, Service ports by ``port``, conditions by ``type``); every other list is replaced, and
``$patch: delete`` / ``$retainKeys`` directives are refused rather than half-understood.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"

# list field name -> the key its items merge by (the upstream patchMergeKey tags of the fields we meet)
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "port",
    "conditions": "type",
    "ownerReferences": "uid",
    "imagePullSecrets": "name",
    "tolerations": "key",
}


class PatchError(ValueError):
    pass


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merge_list(target: list[Any], patch: list[Any], key: str) -> list[Any]:
    if not all(isinstance(item, dict) and key in item for item in patch):
        return copy.deepcopy(patch)
    result = [copy.deepcopy(item) for item in target]
    for item in patch:
        for index, existing in enumerate(result):
            if isinstance(existing, dict) and existing.get(key) == item[key]:
                result[index] = strategic_merge(existing, item)
                break
        else:
            result.append(copy.deepcopy(item))
    return result


def strategic_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if name.startswith("$"):
            raise PatchError(f"strategic merge directive {name!r} is not supported by the stand-in")
        if value is None:
            result.pop(name, None)
        elif isinstance(value, list) and name in MERGE_KEYS and isinstance(result.get(name), list):
            result[name] = _merge_list(result[name], value, MERGE_KEYS[name])
        else:
            result[name] = strategic_merge(result.get(name), value)
    return result


def apply_patch(content_type: str, target: dict[str, Any], patch: Any) -> dict[str, Any]:
    kind = content_type.split(";")[0].strip()
    if kind == MERGE:
        result = merge_patch(target, patch)
    elif kind == STRATEGIC:
        result = strategic_merge(target, patch)
    elif kind == JSON:
        try:
            result = jsonpatch.apply_patch(target, patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise PatchError(str(exc)) from exc
    else:
        raise PatchError(f"unsupported patch type {kind!r}")
    if not isinstance(result, dict):
        raise PatchError("the patched object is not a JSON object")
    return result
