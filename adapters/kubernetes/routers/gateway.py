"""Gateway API: ``backendRefs`` weights of an HTTPRoute's rules, and header routes as managed rules.

Every rule that has a backendRef to the stable Service is rewritten (it must also have one to the canary
Service). Header routes become rules named after them (``rules[].name``), each copying the path matches
of the first weighted rule with the header matches added (all must hold) and sending everything to the
canary Service. Only rules named in ``managed_routes`` are ever added or removed. Gateway API matches a
header exactly or by regular expression: a prefix match becomes an anchored regular expression.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .base import CannotExpress, Obj, Result, Traffic, Write, copied, two_way
from .headers import gateway_headers


@dataclass(frozen=True)
class GatewayRoute:
    stable_service: str
    canary_service: str
    managed_routes: Sequence[str] = ()


def _is(ref: Obj, service: str) -> bool:
    return bool(ref.get("name") == service and ref.get("kind", "Service") == "Service")


def http_route(existing: Obj, traffic: Traffic, config: GatewayRoute) -> Result:
    split = two_way(traffic)
    if isinstance(split, CannotExpress):
        return split
    out = copied(existing)
    managed = set(config.managed_routes)
    rules = [r for r in out.get("spec", {}).get("rules") or [] if r.get("name") not in managed]
    weighted = [r for r in rules if any(_is(b, config.stable_service) for b in r.get("backendRefs") or [])]
    name = existing.get("metadata", {}).get("name")
    if not weighted:
        return CannotExpress(f"HTTPRoute {name!r} has no rule with a backendRef to {config.stable_service!r}")
    for rule in weighted:
        refs = rule["backendRefs"]
        if not any(_is(b, config.canary_service) for b in refs):
            return CannotExpress(f"HTTPRoute {name!r}: a rule has no backendRef to {config.canary_service!r}")
        for ref in refs:
            if _is(ref, config.stable_service):
                ref["weight"] = split.stable
            elif _is(ref, config.canary_service):
                ref["weight"] = split.canary
            elif ref.get("weight", 1):
                return CannotExpress(f"HTTPRoute {name!r}: backendRef {ref.get('name')!r} also takes traffic")
    added = []
    for header_route in traffic.header_routes:
        if header_route.name not in managed:
            return CannotExpress(f"header route {header_route.name!r} is not listed in managedRoutes")
        headers = gateway_headers(header_route.matches)
        canary = next(copied(b) for b in weighted[0]["backendRefs"] if _is(b, config.canary_service))
        canary.pop("weight", None)
        matches = [
            {**m, "headers": [*(m.get("headers") or []), *headers]}
            for m in weighted[0].get("matches") or [{}]
        ]
        added.append({"name": header_route.name, "matches": matches, "backendRefs": [canary]})
    out.setdefault("spec", {})["rules"] = added + rules
    return Write((out,))
