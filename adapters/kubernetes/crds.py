"""The CustomResourceDefinitions of the ``ebbtide.dev`` group, generated from the pydantic models.

The spec kinds come from :mod:`ebbtide.core.spec` (RolloutSpec, Strategy, VerificationTemplate,
VerificationProvider), the workload kind from :mod:`.workload`. Each ``spec`` schema is the model's own
(made structural by :mod:`.schema`), so the API server refuses what ``ebbtide validate`` refuses at the
field level; what a schema cannot say (exactly-one-of rules, expressions, cross-references) the controller
checks and reports as an ``InvalidSpec`` condition. Every kind has a status subresource; the workload's
status carries the engine state and the summary its printer columns show.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel

from ebbtide.core import spec

from . import workload
from .schema import ANYTHING, Schema, model_schema

GROUP = "ebbtide.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# the shared types a before-validator reads from an int or a string ("30s", 30; "25%", 2)
_INT_OR_STRING = frozenset(typing.get_args(t)[1].func for t in (spec.Duration, spec.IntOrPercent))

_CONDITIONS: Schema = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer"},
        },
    },
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}

_SPEC_STATUS: Schema = {
    "type": "object",
    "properties": {"observedGeneration": {"type": "integer"}, "conditions": _CONDITIONS},
}

_WORKLOAD_STATUS: Schema = {
    "type": "object",
    "description": "What the controller observed and decided; written only through the status subresource.",
    "properties": {
        "observedGeneration": {"type": "integer"},
        "conditions": _CONDITIONS,
        "phase": {
            "type": "string",
            "description": "live, in-progress, verifying, paused, failed, rolling-back",
        },
        "step": {"type": "string", "description": "the running step, as index/total"},
        "weights": {"type": "string", "description": "traffic per revision, e.g. 'v1=80 v2=20'"},
        "stableRevision": {"type": "string"},
        "canaryRevision": {"type": "string"},
        "message": {"type": "string"},
        "replicas": {"type": "integer", "description": "pods of every revision (for the scale subresource)"},
        "selector": {"type": "string", "description": "the label selector, serialized (scale subresource)"},
        "summary": {**ANYTHING, "type": "object", "description": "the detailed rollout view"},
        "engineState": {**ANYTHING, "type": "object", "description": "the engine state (RolloutState JSON)"},
        "actions": {
            "type": "array",
            "items": {**ANYTHING, "type": "object"},
            "description": "the last results of rollout actions (ids consumed)",
        },
        "templateOverride": {
            **ANYTHING,
            "type": "object",
            "description": "a rollback away from spec.template",
        },
        "lastAction": {**ANYTHING, "type": "object", "description": "the last consumed action's result"},
        "liveHistory": {
            "type": "array",
            "items": {**ANYTHING, "type": "object"},
            "description": "the revisions that reached live, with rollout id and initiator",
        },
    },
}


def _column(name: str, path: str, kind: str = "string", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": kind, "jsonPath": path}
    if priority:
        column["priority"] = priority
    return column


_AGE = _column("Age", ".metadata.creationTimestamp", "date")


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    model: type[BaseModel]  # the wrapped model: apiVersion, kind, metadata, spec
    status: Schema = field(default_factory=lambda: dict(_SPEC_STATUS))
    columns: tuple[dict[str, Any], ...] = (_AGE,)
    short_names: tuple[str, ...] = ()
    scale: bool = False

    @property
    def name(self) -> str:
        return f"{self.plural}.{GROUP}"


KINDS: tuple[Kind, ...] = (
    Kind(
        workload.KIND,
        "ebbtidedeployments",
        workload.Workload,
        status=_WORKLOAD_STATUS,
        columns=(
            _column("Desired", ".spec.replicas", "integer"),
            _column("Phase", ".status.phase"),
            _column("Step", ".status.step"),
            _column("Weights", ".status.weights"),
            _column("Stable", ".status.stableRevision"),
            _column("Canary", ".status.canaryRevision"),
            _AGE,
            _column("Message", ".status.message", priority=1),
        ),
        short_names=("ebd",),
        scale=True,
    ),
    Kind(
        "RolloutSpec",
        "rolloutspecs",
        spec.RolloutSpec,
        columns=(
            _column("Workload", ".spec.spotDeployment.name"),
            _column("Strategy", ".spec.strategy.name"),
            _AGE,
        ),
    ),
    Kind("Strategy", "strategies", spec.Strategy),
    Kind("VerificationTemplate", "verificationtemplates", spec.VerificationTemplate),
    Kind("VerificationProvider", "verificationproviders", spec.VerificationProvider, short_names=("vp",)),
)


def spec_schema(kind: Kind) -> Schema:
    spec_part: Schema = model_schema(kind.model, _INT_OR_STRING)["properties"]["spec"]
    return spec_part


def crd(kind: Kind) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "required": ["spec"],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": spec_schema(kind),
                    "status": kind.status,
                },
            }
        },
        "subresources": {"status": {}},
        "additionalPrinterColumns": list(kind.columns),
    }
    if kind.scale:
        version["subresources"]["scale"] = {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        }
    names: dict[str, Any] = {
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
        "plural": kind.plural,
        "singular": kind.kind.lower(),
        "categories": ["ebbtide"],
    }
    if kind.short_names:
        names["shortNames"] = list(kind.short_names)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.name, "labels": {"app.kubernetes.io/part-of": "ebbtide"}},
        "spec": {"group": GROUP, "scope": "Namespaced", "names": names, "versions": [version]},
    }


def all_crds() -> list[dict[str, Any]]:
    return [crd(kind) for kind in KINDS]


def file_name(kind: Kind) -> str:
    return f"{kind.name}.yaml"


def to_yaml(document: dict[str, Any]) -> str:
    header = "# generated by `ebbtide crd` from the pydantic models; do not edit by hand\n"
    return header + yaml.safe_dump(document, sort_keys=False, width=110)
