"""Istio: weights on the stable and canary destinations of a VirtualService's HTTP routes, and header
routes as managed HTTP routes at the top; with subsets, a DestinationRule whose stable and canary subsets
select the revisions' pods.

Host-based (``stable_host`` / ``canary_host`` are Services, short or fully qualified names) or
subset-based (one host, ``stable_subset`` / ``canary_subset``). The routes rewritten are those named in
``routes``, or, when none is named, every route with a stable destination. Header routes are only ever
added, replaced and removed by name among ``managed_routes`` (as Argo Rollouts' managedRoutes), so the
user's other routes are never touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .base import CannotExpress, Obj, Result, Split, Traffic, Write, copied, two_way
from .headers import istio_headers


@dataclass(frozen=True)
class IstioRoute:
    stable_host: str
    canary_host: str
    routes: Sequence[str] = ()
    stable_subset: str | None = None
    canary_subset: str | None = None
    managed_routes: Sequence[str] = ()

    def _host(self, host: str, name: str) -> bool:
        return host == name or host.startswith(f"{name}.")

    def side(self, destination: Obj) -> str | None:
        host, subset = destination.get("host", ""), destination.get("subset")
        if self.stable_subset is not None:
            if self._host(host, self.stable_host) and subset in (self.stable_subset, self.canary_subset):
                return "stable" if subset == self.stable_subset else "canary"
            return None
        if self._host(host, self.stable_host):
            return "stable"
        return "canary" if self._host(host, self.canary_host) else None


def _reweigh(route: Obj, config: IstioRoute, split: Split, name: str) -> Obj | CannotExpress:
    sides = [config.side(d.get("destination") or {}) for d in route.get("route") or []]
    if sorted(s for s in sides if s) != ["canary", "stable"]:
        return CannotExpress(f"http route {name!r} needs exactly one stable and one canary destination")
    if None in sides:
        return CannotExpress(f"http route {name!r} has a destination that is neither stable nor canary")
    out = copied(route)
    for destination, side in zip(out["route"], sides, strict=True):
        destination["weight"] = split.stable if side == "stable" else split.canary
    return out


def _header_route(name: str, template: Obj, headers: Obj, config: IstioRoute) -> Obj:
    canary = next(d for d in template["route"] if config.side(d["destination"]) == "canary")
    match = [{**m, "headers": {**(m.get("headers") or {}), **headers}} for m in template.get("match") or [{}]]
    return {
        "name": name,
        "match": match,
        "route": [{"destination": copied(canary["destination"]), "weight": 100}],
    }


def virtual_service(existing: Obj, traffic: Traffic, config: IstioRoute) -> Result:
    split = two_way(traffic)
    if isinstance(split, CannotExpress):
        return split
    out = copied(existing)
    managed = set(config.managed_routes)
    http = [r for r in out.get("spec", {}).get("http") or [] if r.get("name") not in managed]
    chosen = [
        i
        for i, r in enumerate(http)
        if (
            r.get("name") in config.routes
            if config.routes
            else any(config.side(d.get("destination") or {}) == "stable" for d in r.get("route") or [])
        )
    ]
    name = existing.get("metadata", {}).get("name")
    if not chosen:
        return CannotExpress(f"VirtualService {name!r} has no http route to the stable destination")
    for i in chosen:
        route = _reweigh(http[i], config, split, http[i].get("name") or f"#{i}")
        if isinstance(route, CannotExpress):
            return route
        http[i] = route
    added = []
    for header_route in traffic.header_routes:
        if header_route.name not in managed:
            return CannotExpress(f"header route {header_route.name!r} is not listed in managedRoutes")
        headers = istio_headers(header_route.matches)
        if headers is None:
            return CannotExpress(f"header route {header_route.name!r} matches one header twice")
        added.append(_header_route(header_route.name, http[chosen[0]], headers, config))
    out.setdefault("spec", {})["http"] = added + http
    return Write((out,))


def destination_rule(
    existing: Obj, traffic: Traffic, config: IstioRoute, pod_labels: Mapping[str, Mapping[str, str]]
) -> Result:
    if config.stable_subset is None or config.canary_subset is None:
        return CannotExpress("a DestinationRule needs stable and canary subset names")
    canary = traffic.canary if traffic.canary is not None else traffic.stable
    wanted = {config.stable_subset: traffic.stable, config.canary_subset: canary}
    out = copied(existing)
    subsets = out.setdefault("spec", {}).setdefault("subsets", [])
    for subset_name, revision in wanted.items():
        if revision not in pod_labels:
            return CannotExpress(f"no pod labels known for revision {revision!r}")
        subset = next((s for s in subsets if s.get("name") == subset_name), None)
        if subset is None:
            subset = {"name": subset_name}
            subsets.append(subset)
        subset["labels"] = {**(subset.get("labels") or {}), **pod_labels[revision]}
    return Write((out,))
