"""NGINX Ingress: a canary Ingress beside the user's stable Ingress, as ingress-nginx's canary annotations
want it. The canary Ingress copies the stable one's class and the host/path rules that go to the stable
Service, sends them to the canary Service, and carries ``canary: "true"`` and ``canary-weight``. One header
route can be expressed (``canary-by-header`` with ``canary-by-header-value`` for an exact value, or
``canary-by-header-pattern`` for a regular expression or a prefix); ingress-nginx reads one header, so
two header routes, or one that matches two headers, cannot be. The stable Ingress is never written.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import CannotExpress, Obj, Result, Traffic, Write, copied, two_way
from .headers import as_regex

HEADER_KEYS = ("canary-by-header", "canary-by-header-value", "canary-by-header-pattern", "canary-by-cookie")


@dataclass(frozen=True)
class NginxCanary:
    stable_service: str
    canary_service: str
    annotation_prefix: str = "nginx.ingress.kubernetes.io"

    def key(self, name: str) -> str:
        return f"{self.annotation_prefix}/{name}"


def canary_name(stable_ingress: Obj) -> str:
    return f"{stable_ingress['metadata']['name']}-canary"


def _canary_rules(stable: Obj, config: NginxCanary) -> list[Obj]:
    rules = []
    for rule in stable.get("spec", {}).get("rules") or []:
        paths = []
        for path in (rule.get("http") or {}).get("paths") or []:
            service = (path.get("backend") or {}).get("service") or {}
            if service.get("name") == config.stable_service:
                moved = copied(path)
                moved["backend"]["service"]["name"] = config.canary_service
                paths.append(moved)
        if paths:
            rules.append({**copied(rule), "http": {"paths": paths}})
    return rules


def _header_annotations(traffic: Traffic, config: NginxCanary) -> dict[str, str] | CannotExpress:
    if not traffic.header_routes:
        return {}
    if len(traffic.header_routes) > 1 or len(traffic.header_routes[0].matches) != 1:
        return CannotExpress("NGINX canary routes by one header: give one header route with one match")
    (match,) = traffic.header_routes[0].matches
    value, regex = as_regex(match)
    by = "canary-by-header-pattern" if regex else "canary-by-header-value"
    return {config.key("canary-by-header"): match.header_name, config.key(by): value}


def canary_ingress(
    stable_ingress: Obj, existing: Obj | None, traffic: Traffic, config: NginxCanary
) -> Result:
    split = two_way(traffic)
    if isinstance(split, CannotExpress):
        return split
    headers = _header_annotations(traffic, config)
    if isinstance(headers, CannotExpress):
        return headers
    rules = _canary_rules(stable_ingress, config)
    if not rules:
        name = stable_ingress["metadata"]["name"]
        return CannotExpress(f"Ingress {name!r} routes nothing to {config.stable_service!r}")
    out = copied(existing) or {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress"}
    meta = out.setdefault("metadata", {})
    meta["name"] = canary_name(stable_ingress)
    meta["namespace"] = stable_ingress["metadata"].get("namespace")
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in map(config.key, HEADER_KEYS)
    }
    annotations.update(
        {config.key("canary"): "true", config.key("canary-weight"): str(split.canary), **headers}
    )
    meta["annotations"] = annotations
    spec = out.setdefault("spec", {})
    if "ingressClassName" in stable_ingress.get("spec", {}):
        spec["ingressClassName"] = stable_ingress["spec"]["ingressClassName"]
    spec["rules"] = rules
    return Write((out,))
