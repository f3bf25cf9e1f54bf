"""Argo Rollouts fields ebbtide accepts and ignores: which ones earn the user a warning, and why.

A field is ignored **silently** when nothing a user expects from it changes a rollout's course (the pod
template, the selector, the ``workloadRef``'s apiVersion and kind). It is ignored **with a warning** when a
user could expect it to change behaviour (``minReadySeconds``, ``paused``, ``pingPong``, pod labels, ...):
the warning names the file, the document, the Argo field path and what ebbtide does instead.

:data:`WARNED` is the one list; :func:`ignored_warnings` finds the fields of a document that it names. A
path segment ``[*]`` stands for every item of a list. ``same_when``: the value with which Argo behaves as
ebbtide does (``progressDeadlineAbort: true``), so that giving it warns of nothing.

Pure: documents in, :class:`~ebbtide.core.spec.SpecWarning` records out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .spec import Document, SpecWarning

__all__ = ["SILENT", "WARNED", "Ignored", "ignored_warnings"]

_NO_PODS = "ebbtide's revisions stand in for pods: it sets no pod labels or annotations"
_NO_RUNS = "ebbtide keeps no AnalysisRun objects: each verification's counters live in the rollout state"
_RETENTION = "ebbtide keeps counters and the last value per metric, not a list of measurements"


@dataclass(frozen=True)
class Ignored:
    """An Argo field accepted and ignored with a warning."""

    #: the Argo kind (``Rollout`` or ``AnalysisTemplate``, which stands for ``ClusterAnalysisTemplate`` too)
    kind: str
    #: the field path, ``[*]`` for every item of a list
    path: str
    #: what ebbtide does instead (the warning's text)
    reason: str
    #: a value with which Argo behaves as ebbtide does: giving it warns of nothing
    same_when: Any = None


_CANARY = "spec.strategy.canary"
_BLUE_GREEN = "spec.strategy.blueGreen"

#: every Argo field accepted and ignored with a warning
WARNED: tuple[Ignored, ...] = (
    Ignored("Rollout", "spec.minReadySeconds", "ebbtide counts a pod available as soon as it is ready", 0),
    Ignored(
        "Rollout",
        "spec.paused",
        "ebbtide starts the rollout unpaused; pause it with a pause action",
        False,
    ),
    Ignored("Rollout", "spec.restartAt", "ebbtide restarts no pods"),
    Ignored(
        "Rollout",
        "spec.progressDeadlineAbort",
        "ebbtide always rolls back when replicas are not ready within progressDeadlineSeconds (as Argo does "
        "with progressDeadlineAbort: true)",
        True,
    ),
    Ignored("Rollout", "spec.analysis.successfulRunHistoryLimit", _NO_RUNS),
    Ignored("Rollout", "spec.analysis.unsuccessfulRunHistoryLimit", _NO_RUNS),
    Ignored(
        "Rollout",
        "spec.workloadRef.scaleDown",
        "ebbtide takes the Deployment's replicas and template and never scales the Deployment itself",
    ),
    Ignored(
        "Rollout",
        f"{_CANARY}.trafficRouting.maxTrafficWeight",
        "ebbtide's weights are percentages (the total is always 100)",
        100,
    ),
    Ignored("Rollout", f"{_CANARY}.canaryMetadata", _NO_PODS),
    Ignored("Rollout", f"{_CANARY}.stableMetadata", _NO_PODS),
    Ignored("Rollout", f"{_CANARY}.antiAffinity", "pod placement is the cluster scheduler's business"),
    Ignored(
        "Rollout",
        f"{_CANARY}.pingPong",
        "ebbtide routes to the canary and stable services as named and never swaps them",
    ),
    Ignored(
        "Rollout",
        f"{_CANARY}.minPodsPerReplicaSet",
        "a revision's pods follow its weight (setCanaryScale) alone, with no minimum",
    ),
    Ignored(
        "Rollout",
        f"{_CANARY}.replicaProgressThreshold",
        "ebbtide waits for every desired replica of a step to be ready",
    ),
    Ignored("Rollout", f"{_CANARY}.steps[*].analysis.measurementRetention", _RETENTION),
    Ignored("Rollout", f"{_CANARY}.analysis.measurementRetention", _RETENTION),
    Ignored("Rollout", f"{_BLUE_GREEN}.previewMetadata", _NO_PODS),
    Ignored("Rollout", f"{_BLUE_GREEN}.activeMetadata", _NO_PODS),
    Ignored("Rollout", f"{_BLUE_GREEN}.antiAffinity", "pod placement is the cluster scheduler's business"),
    Ignored(
        "Rollout",
        f"{_BLUE_GREEN}.maxUnavailable",
        "it is Argo's budget for restarting pods, and ebbtide restarts no pods",
    ),
    Ignored("Rollout", f"{_BLUE_GREEN}.prePromotionAnalysis.measurementRetention", _RETENTION),
    Ignored("Rollout", f"{_BLUE_GREEN}.postPromotionAnalysis.measurementRetention", _RETENTION),
    Ignored("AnalysisTemplate", "spec.measurementRetention", _RETENTION),
)

#: Argo fields accepted and ignored without a warning: nothing a user expects of them changes a rollout
SILENT: tuple[tuple[str, str], ...] = (
    ("Rollout", "metadata"),
    ("Rollout", "status"),
    ("Rollout", "spec.selector"),
    ("Rollout", "spec.template"),
    ("Rollout", "spec.workloadRef.apiVersion"),
    ("Rollout", "spec.workloadRef.kind"),
    ("Rollout", "spec.strategy.canary.steps[*].analysis.templates[*].clusterScope"),
    ("AnalysisTemplate", "metadata"),
)


def ignored_warnings(doc: Document) -> list[SpecWarning]:
    """A warning for every field of :data:`WARNED` that an Argo document gives (in the order of WARNED)."""
    kind = "AnalysisTemplate" if doc.kind == "ClusterAnalysisTemplate" else doc.kind
    out: list[SpecWarning] = []
    for entry in WARNED:
        if entry.kind != kind:
            continue
        for path, value in _found(doc.body, entry.path.split(".")):
            same = entry.same_when is not None and type(value) is type(entry.same_when)
            if not (same and value == entry.same_when):
                out.append(doc.warning(path, entry.reason))
    return out


def _found(node: Any, parts: list[str], at: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) of every node a path (``a.b[*].c``) reaches."""
    if not parts:
        yield at, node
        return
    head, rest = parts[0], parts[1:]
    key, every = (head[:-3], True) if head.endswith("[*]") else (head, False)
    if not isinstance(node, dict) or key not in node:
        return
    here = f"{at}.{key}" if at else key
    if not every:
        yield from _found(node[key], rest, here)
    elif isinstance(node[key], list):
        for i, item in enumerate(node[key]):
            yield from _found(item, rest, f"{here}[{i}]")
