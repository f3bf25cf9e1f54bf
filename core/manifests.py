"""Manifests as users keep them: which documents of a set are specs, which are workloads, which are skipped.

Users keep their rollout specs beside everything else a service needs. :func:`sort_documents` reads a whole
set of documents and sorts them into

- **specs** for :class:`ebbtide.core.spec.SpecSet`: the wrapped form (``apiVersion`` / ``kind`` /
  ``metadata`` / ``spec``), Argo Rollouts documents (converted later by :mod:`ebbtide.core.argo`), and Ocean
  CD's **flat** form, the one its docs, ``oceancd apply -f`` and its Rollout Spec API take: ``kind`` and
  ``name`` at the top level and the fields beside them, ``kind`` written ``verificationTemplate`` or
  ``VerificationTemplate`` (and likewise for strategy, rolloutSpec, verificationProvider). A flat entity is
  rewritten into the wrapped form, with a path map so that problems are reported at the user's own field
  paths (``canary.steps[1].setWeight``). An Ocean CD phase may hold several actions (``setWeight`` with
  ``verification`` and ``pause``): it becomes one ebbtide step per action, in the order setCanaryScale,
  setWeight, setHeaderRoute, verification, pause;
- **workloads**: ``SpotDeployment`` (Ocean CD) and ``Deployment`` documents, whose ``spec.replicas`` a
  RolloutSpec takes when it sets none (``spotDeployment: {name}``, or an Argo Rollout's ``workloadRef``);
- **services**: the names of the ``Service`` documents, to check that the services a rollout names exist when
  the set holds Services at all;
- **skipped**: every other kind ebbtide does not own (Ingress, VirtualService, Secret, Kustomization, ...),
  listed for ``validate -v``, never an error.

Pure: documents in, documents and records out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .plan import MAX_REPLICAS
from .spec import (
    API_VERSION,
    ARGO_API_VERSION,
    ARGO_KINDS,
    KINDS,
    OCEAN_API_VERSIONS,
    Document,
    Problem,
    SpecSet,
)

__all__ = [
    "PHASE_ORDER",
    "Skipped",
    "Sorted",
    "Workload",
    "canonical_kind",
    "defined_names",
    "describe",
    "form_label",
    "missing_reference",
    "service_problems",
    "set_hints",
    "sort_documents",
    "unflatten",
]

#: the actions of one Ocean CD phase, in the order ebbtide runs them as separate steps
PHASE_ORDER = ("setCanaryScale", "setWeight", "setHeaderRoute", "verification", "pause")
#: workload kinds a rollout takes its replicas from (under any apiVersion but ebbtide's, Ocean CD's, Argo's)
WORKLOAD_KINDS = frozenset({"SpotDeployment", "Deployment"})


@dataclass(frozen=True)
class Workload:
    """A SpotDeployment or Deployment of the set: what a rollout takes from it."""

    kind: str
    name: str
    #: ``spec.replicas``; None when not given (Kubernetes' default is 1)
    replicas: int | None
    #: the pod template, accepted as is (the simulator's revisions stand in for its pods)
    template: Any
    file: str
    index: int
    #: what is wrong with a Deployment (reported only when a rollout names it)
    problem: Problem | None = None


@dataclass(frozen=True)
class Skipped:
    """A document of a kind ebbtide does not own."""

    file: str
    index: int
    kind: str
    name: str | None

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}" if self.name else self.kind


@dataclass
class Sorted:
    """A document set sorted by what ebbtide does with each document."""

    specs: list[Document] = field(default_factory=list)
    workloads: dict[tuple[str, str], Workload] = field(default_factory=dict)
    #: Service names; None when the set holds no Service at all (nothing to check against)
    services: set[str] | None = None
    skipped: list[Skipped] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def canonical_kind(kind: str) -> str | None:
    """``verificationTemplate`` or ``VerificationTemplate`` -> ``VerificationTemplate``; None if not ours."""
    for known in KINDS:
        if kind in (known, known[0].lower() + known[1:]):
            return known
    return None


def form_label(doc: Document) -> str:
    """How a document was read, as ``validate`` prints it."""
    if doc.form == "flat":
        return "Ocean CD flat"
    if doc.form == "argo":
        return f"Argo {doc.source_kind}"
    return "wrapped"


def describe(specs: SpecSet) -> dict[str, str]:
    """What ``validate`` read in each file: ``Kind/name`` per spec and per SpotDeployment or Deployment a
    rollout takes its replicas from, each run of them followed by how it was read: ``(wrapped)``,
    ``(Ocean CD flat)``, ``(Argo Rollout)``, ``(workload)``."""
    read: dict[str, list[tuple[str, str]]] = {}
    for (kind, name), doc in specs.origins.items():
        read.setdefault(doc.file, []).append((f"{kind}/{name}", form_label(doc)))
    used = {specs.workload_key(name) for name in specs.rollout_specs}
    for key, w in specs.workloads.items():
        if w.kind == "SpotDeployment" or key in used:
            read.setdefault(w.file, []).append((f"{w.kind}/{w.name}", "workload"))
    out: dict[str, str] = {}
    for file, entries in read.items():
        words = [
            f"{what} ({label})" if i + 1 == len(entries) or entries[i + 1][1] != label else what
            for i, (what, label) in enumerate(entries)
        ]
        out[file] = " ".join(words)
    return out


def _mapping(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _is_flat(body: dict[str, Any]) -> bool:
    return "apiVersion" not in body and "metadata" not in body and "name" in body


def _meta_name(body: dict[str, Any]) -> str | None:
    meta = body.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else None


def sort_documents(docs: Iterable[Document], ignored: Iterable[str] = ()) -> Sorted:
    """Sort every document (see the module docstring); problems only for documents that claim to be ours."""
    skip = set(ignored)
    out = Sorted()
    for doc in docs:
        body = doc.body
        if not isinstance(body, dict):
            out.problems.append(doc.problem("", f"a document must be a mapping, not {type(body).__name__}"))
            continue
        kind, api = doc.kind, doc.api_version
        if kind in skip:
            continue
        if kind is not None and api is None and _is_flat(body) and canonical_kind(kind):
            out.specs.append(unflatten(doc, canonical_kind(kind) or kind))
        elif kind is None or api is None or _is_ours(api, kind):
            out.specs.append(_canonical(doc))  # SpecSet reports what is missing or unknown
        elif kind in WORKLOAD_KINDS:
            _add_workload(doc, out)
        else:
            if kind == "Service" and api == "v1":
                out.services = (out.services or set()) | {doc.name or ""}
            out.skipped.append(Skipped(doc.file, doc.index, kind, _meta_name(body)))
    return out


def _is_ours(api: str, kind: str) -> bool:
    """Documents SpecSet validates (errors included): ebbtide, Ocean CD and Argo Rollouts apiVersions, and our
    kinds under any apiVersion (a wrong apiVersion on a Strategy is a mistake, not a foreign kind)."""
    if kind == "SpotDeployment":
        return False
    if api == ARGO_API_VERSION or api.startswith("argoproj.io/") or kind in ARGO_KINDS:
        return True
    return api in OCEAN_API_VERSIONS or api.startswith("ocean.spot.io/") or canonical_kind(kind) is not None


def _canonical(doc: Document) -> Document:
    """A wrapped document whose kind is spelled in lower camel case, with the kind ebbtide's models use."""
    kind = doc.kind
    known = canonical_kind(kind) if kind is not None else None
    if known is None or known == kind:
        return doc
    return Document(doc.file, doc.index, {**doc.body, "kind": known}, doc.line, doc.path_map, kind)


def _add_workload(doc: Document, out: Sorted) -> None:
    """A SpotDeployment is Ocean CD's own kind: its problems are reported. A Deployment is someone else's: one
    without a usable name is skipped, and its problems count only if a rollout names it (see SpecSet)."""
    spec = _mapping(doc.body.get("spec"))
    replicas = spec.get("replicas")
    kind, name = doc.kind or "", doc.name
    problem: Problem | None = None
    if not name:
        problem = doc.problem("metadata.name", "required field is missing")
    elif replicas is not None and (
        isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= MAX_REPLICAS
    ):
        problem = doc.problem("spec.replicas", f"must be an integer 0..{MAX_REPLICAS}, not {replicas!r}")
        replicas = None
    elif (kind, name) in out.workloads:
        first = out.workloads[(kind, name)]
        where = f"{first.file} document {first.index}"
        problem = doc.problem("metadata.name", f"duplicate {kind} name {name!r} (first defined in {where})")
    if kind == "SpotDeployment" and problem is not None:
        out.problems.append(problem)
    elif not name or (kind, name) in out.workloads:
        out.skipped.append(Skipped(doc.file, doc.index, kind, name or None))
    else:
        template = spec.get("template")
        out.workloads[(kind, name)] = Workload(kind, name, replicas, template, doc.file, doc.index, problem)


# ----------------------------------------------------------------------------------------- flat form


def unflatten(doc: Document, kind: str) -> Document:
    """A flat Ocean CD entity as the wrapped document, with a path map back to the user's field paths."""
    body = doc.body
    spec = {k: v for k, v in body.items() if k not in ("kind", "name")}
    path_map: list[tuple[str, str]] = []
    if kind == "Strategy":
        for style in ("canary", "rolling"):
            block = spec.get(style)
            if isinstance(block, dict) and isinstance(block.get("steps"), list):
                steps, step_map = _split_phases(style, block["steps"])
                spec[style] = {**block, "steps": steps}
                path_map += step_map
    path_map += [("metadata.name", "name"), ("metadata", "name"), ("spec", "")]
    wrapped = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": body["name"]} if body.get("name") is not None else {},
        "spec": spec,
    }
    return Document(doc.file, doc.index, wrapped, doc.line, tuple(path_map), doc.kind, form="flat")


def _split_phases(style: str, phases: Sequence[Any]) -> tuple[list[Any], list[tuple[str, str]]]:
    """Ocean CD phases (several actions each) as ebbtide steps (one action each), and the path map."""
    steps: list[Any] = []
    path_map: list[tuple[str, str]] = []
    for i, phase in enumerate(phases):
        actions = [a for a in PHASE_ORDER if isinstance(phase, dict) and a in phase]
        if len(actions) < 2:
            path_map.append((f"spec.{style}.steps[{len(steps)}]", f"{style}.steps[{i}]"))
            steps.append(phase)
            continue
        rest = {k: v for k, v in phase.items() if k not in PHASE_ORDER}
        for j, action in enumerate(actions):
            first = rest if j == 0 else {k: v for k, v in rest.items() if k == "name"}
            step = {**first, action: phase[action]}
            path_map.append((f"spec.{style}.steps[{len(steps)}]", f"{style}.steps[{i}]"))
            steps.append(step)
    return steps, path_map


# ------------------------------------------------------------------------------------------- services


def service_problems(docs: Iterable[Document], services: set[str] | None) -> list[Problem]:
    """The services a rollout names that the set does not hold, when it holds Services at all."""
    if services is None:
        return []
    out: list[Problem] = []
    for doc in docs:
        for at, name in _named_services(doc):
            if name not in services:
                known = ", ".join(sorted(services))
                out.append(doc.problem(at, f"no Service {name!r} in this file set (its Services: {known})"))
    return out


def _named_services(doc: Document) -> list[tuple[str, str]]:
    spec = _mapping(_mapping(doc.body).get("spec"))
    blocks: list[tuple[str, Any, tuple[str, ...]]] = []
    if doc.kind == "Rollout":
        strategy = _mapping(spec.get("strategy"))
        blocks.append(("spec.strategy.canary", strategy.get("canary"), ("canaryService", "stableService")))
        blue_green = ("activeService", "previewService")
        blocks.append(("spec.strategy.blueGreen", strategy.get("blueGreen"), blue_green))
    elif doc.kind == "RolloutSpec":
        blocks.append(("spec.traffic", spec.get("traffic"), ("canaryService", "stableService")))
    found: list[tuple[str, str]] = []
    for prefix, block, keys in blocks:
        if isinstance(block, dict):
            found += [(f"{prefix}.{k}", block[k]) for k in keys if isinstance(block.get(k), str)]
    return found


# ------------------------------------------------------------------------------- templates elsewhere

_MISSING = re.compile(r"^unknown (VerificationTemplate|AnalysisTemplate|Strategy) '([^']*)'")
SET_HINT = "if another file defines it, validate the files together: ebbtide validate --set"
#: the kinds that define what a missing reference names, by the word its problem uses
_DEFINERS = {
    "VerificationTemplate": "template",
    "AnalysisTemplate": "template",
    "ClusterAnalysisTemplate": "template",
    "Strategy": "Strategy",
}


def missing_reference(word: str, name: str, known: Sequence[str]) -> str:
    """The one problem for a Strategy or template a rollout uses that the set does not define."""
    return f"unknown {word} {name!r} (known: {', '.join(known) or 'none in this set'}); {SET_HINT} FILE..."


def set_hints(problems: Sequence[Problem], defined: Mapping[str, set[tuple[str, str]]]) -> list[Problem]:
    """``validate`` of files one by one: a missing Strategy or template that another of the files defines gets
    the exact ``validate --set`` command (``defined``: what each file defines, see :func:`defined_names`)."""
    out: list[Problem] = []
    for p in problems:
        m = _MISSING.match(p.reason)
        wanted = (_DEFINERS[m.group(1)], m.group(2)) if m else None
        files = [f for f, names in defined.items() if f != p.file and wanted in names]
        if files:
            command = " ".join([SET_HINT, p.file, *files])
            p = replace(p, reason=p.reason[: p.reason.index(SET_HINT)] + command)
        out.append(p)
    return out


def defined_names(docs: Iterable[Document]) -> set[tuple[str, str]]:
    """What the documents define that a rollout may name: ``("template", name)`` for a VerificationTemplate,
    AnalysisTemplate or ClusterAnalysisTemplate, ``("Strategy", name)``; wrapped, flat or Argo."""
    out: set[tuple[str, str]] = set()
    for doc in docs:
        if not isinstance(doc.body, dict) or doc.kind is None:
            continue
        family = _DEFINERS.get(canonical_kind(doc.kind) or doc.kind)
        name = doc.body.get("name") if doc.api_version is None and _is_flat(doc.body) else doc.name
        if family is not None and isinstance(name, str):
            out.add((family, name))
    return out
