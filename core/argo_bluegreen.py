"""An Argo Rollout with ``spec.strategy.blueGreen`` -> a ``Strategy`` with ``blueGreen`` + a ``RolloutSpec``.

The blueGreen fields keep their names (see :class:`ebbtide.core.spec.BlueGreen`); its analyses
``{templates: [{templateName}], args, dryRun}`` become ``{templateNames, dryRun}`` as a canary's do (their
args go to the RolloutSpec's strategy args); ``scaleDownDelaySeconds`` and ``abortScaleDownDelaySeconds``
move to the RolloutSpec, where a canary's are. Argo's failure behaviour: abort, i.e. roll back at once.

The analysis conversion is :mod:`ebbtide.core.argo`'s; it is passed in (``verification``), so this module
does not import that one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .spec import API_VERSION, Document, Problem

__all__ = ["BLUE_GREEN_FIELDS", "BLUE_GREEN_KNOWN", "IGNORED_BLUE_GREEN_FIELDS", "convert_blue_green"]

#: Argo's strategy.blueGreen fields kept in the Strategy's blueGreen (validated by its model)
BLUE_GREEN_FIELDS = (
    "activeService",
    "previewService",
    "previewReplicaCount",
    "autoPromotionEnabled",
    "autoPromotionSeconds",
    "scaleDownDelayRevisionLimit",
    "antiAffinity",
)
#: accepted and dropped, with a warning (see core/argo_ignored.py): pod labels of the preview and active pods,
#: and the budget of a pod restart (ebbtide restarts no pods)
IGNORED_BLUE_GREEN_FIELDS = frozenset({"previewMetadata", "activeMetadata", "maxUnavailable"})
_ANALYSES = ("prePromotionAnalysis", "postPromotionAnalysis")
_DELAYS = ("scaleDownDelaySeconds", "abortScaleDownDelaySeconds")
_ROLLOUT_FIELDS = ("replicas", "progressDeadlineSeconds", "revisionHistoryLimit", "rollbackWindow")
_ANALYSIS_FIELDS = ("templates", "args", "dryRun", "measurementRetention")
#: every blueGreen field name this module uses or accepts
BLUE_GREEN_KNOWN = frozenset({*BLUE_GREEN_FIELDS, *IGNORED_BLUE_GREEN_FIELDS, *_ANALYSES, *_DELAYS})

#: (doc, field path, analysis block, args by name, problems) -> a verification block
Verification = Callable[[Document, str, Any, dict[str, dict[str, Any]], list[Problem]], dict[str, Any]]


def convert_blue_green(doc: Document, verification: Verification) -> tuple[list[Document], list[Problem]]:
    """The Strategy and RolloutSpec documents of a blue-green Rollout, and the problems found."""
    problems: list[Problem] = []
    spec = doc.body.get("spec") or {}
    blue_green = spec["strategy"]["blueGreen"]
    at = "spec.strategy.blueGreen"
    if not isinstance(blue_green, dict):
        return [], [doc.problem(at, "must be a mapping")]
    name = doc.name or "rollout"
    args: dict[str, dict[str, Any]] = {}
    out: dict[str, Any] = {}
    path_map: list[tuple[str, str]] = []
    rspec: dict[str, Any] = {
        "workload": {"name": name},
        "failurePolicy": {"action": "rollback", "rollback": {"mode": "immediate"}},
    }
    rmap: list[tuple[str, str]] = []
    for key, value in blue_green.items():
        if key in _ANALYSES:
            out[key] = verification(doc, f"{at}.{key}", value, args, problems)
            extra = [k for k in value if k not in _ANALYSIS_FIELDS] if isinstance(value, dict) else []
            problems += [doc.problem(f"{at}.{key}.{k}", "unknown field") for k in extra]
            path_map.append((f"spec.blueGreen.{key}", f"{at}.{key}"))
        elif key in _DELAYS:
            rspec[key] = value
            rmap.append((f"spec.{key}", f"{at}.{key}"))
        elif key in BLUE_GREEN_FIELDS:
            out[key] = value
        elif key in IGNORED_BLUE_GREEN_FIELDS:
            continue
        else:
            problems.append(doc.problem(f"{at}.{key}", "unknown field"))
    path_map.append(("spec.blueGreen", at))
    rspec["strategy"] = {"name": name, "args": list(args.values())}
    rmap.insert(0, ("spec.strategy.args", f"{at}.*Analysis.args"))
    for key in _ROLLOUT_FIELDS:
        if key in spec:
            rspec[key] = spec[key]
    meta = {"name": name}
    strategy_doc = {
        "apiVersion": API_VERSION,
        "kind": "Strategy",
        "metadata": meta,
        "spec": {"blueGreen": out},
    }
    rollout_doc = {"apiVersion": API_VERSION, "kind": "RolloutSpec", "metadata": meta, "spec": rspec}
    return [
        dataclasses.replace(doc, body=strategy_doc, path_map=tuple(path_map), source_kind=doc.kind),
        dataclasses.replace(doc, body=rollout_doc, path_map=tuple(rmap), source_kind=doc.kind),
    ], problems
