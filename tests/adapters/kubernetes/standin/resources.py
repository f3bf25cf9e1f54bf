"""The resource types the stand-in API server serves: where each lives in the URL space and how it behaves."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status_subresource: bool = False
    custom: bool = False  # declared by a CustomResourceDefinition: no strategic merge patch

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.plural)


BUILTIN: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "pods", "Pod", status_subresource=True),
    ResourceType("", "v1", "services", "Service", status_subresource=True),
    ResourceType("", "v1", "configmaps", "ConfigMap"),
    ResourceType("", "v1", "secrets", "Secret"),
    ResourceType("", "v1", "events", "Event"),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount"),
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, status_subresource=True),
    ResourceType("apps", "v1", "deployments", "Deployment", status_subresource=True),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", status_subresource=True),
    ResourceType("batch", "v1", "jobs", "Job", status_subresource=True),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease"),
    ResourceType("events.k8s.io", "v1", "events", "Event"),
    ResourceType("networking.k8s.io", "v1", "ingresses", "Ingress", status_subresource=True),
    ResourceType("networking.istio.io", "v1beta1", "virtualservices", "VirtualService"),
    ResourceType("networking.istio.io", "v1beta1", "destinationrules", "DestinationRule"),
    ResourceType("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", status_subresource=True),
    ResourceType("split.smi-spec.io", "v1alpha2", "trafficsplits", "TrafficSplit"),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        status_subresource=True,
    ),
)


def from_crd(crd: dict[str, object]) -> list[ResourceType]:
    """The resource types a CustomResourceDefinition declares (one per served version)."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return []
    names = spec.get("names", {})
    out = []
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        out.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                status_subresource="status" in (version.get("subresources") or {}),
                custom=True,
            )
        )
    return out
