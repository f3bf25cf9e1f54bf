"""SMI: a TrafficSplit (split.smi-spec.io/v1alpha2) of a root Service between the stable and canary
Services. Created when there is none; otherwise only the two backends' weights change (order, other
fields and metadata kept). SMI TrafficSplit has no header matches: header routes cannot be expressed."""

from __future__ import annotations

from dataclasses import dataclass

from .base import CannotExpress, Obj, Result, Traffic, Write, copied, two_way

API_VERSION = "split.smi-spec.io/v1alpha2"


@dataclass(frozen=True)
class SmiSplit:
    name: str
    namespace: str
    root_service: str
    stable_service: str
    canary_service: str


def traffic_split(existing: Obj | None, traffic: Traffic, config: SmiSplit) -> Result:
    if traffic.header_routes:
        return CannotExpress("an SMI TrafficSplit cannot route by header")
    split = two_way(traffic)
    if isinstance(split, CannotExpress):
        return split
    out = copied(existing) or {
        "apiVersion": API_VERSION,
        "kind": "TrafficSplit",
        "metadata": {"name": config.name, "namespace": config.namespace},
        "spec": {"service": config.root_service, "backends": []},
    }
    spec = out.setdefault("spec", {})
    backends = spec.setdefault("backends", [])
    wanted = {config.stable_service: split.stable, config.canary_service: split.canary}
    for backend in backends:
        service = backend.get("service")
        if service in wanted:
            backend["weight"] = wanted.pop(service)
        elif backend.get("weight"):
            return CannotExpress(f"TrafficSplit {config.name!r}: backend {service!r} also takes traffic")
    backends.extend({"service": service, "weight": weight} for service, weight in wanted.items())
    return Write((out,))
