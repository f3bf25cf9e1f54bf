"""Replica ratio: no traffic router, plain Services. Traffic follows ready pods; the stable and canary
Services are pinned to revisions by their selectors.

The stable Service selects the stable revision's pods; the canary Service selects the canary revision's
pods while there is a canary, and the stable revision's again once there is none (after an abort or a
completed rollout), so a client of the canary Service is never left with no endpoints. Both switches
are level-based: the selector is computed from the wanted traffic, never toggled. Header routes need a
router that reads headers, so they cannot be expressed here. The same Services back the host-based
Istio, Gateway API, SMI and NGINX routers, which route *to* them.
"""

from __future__ import annotations

from collections.abc import Mapping

from .base import CannotExpress, Obj, Result, Traffic, Write, copied, two_way


def _pinned(service: Obj, labels: Mapping[str, str]) -> Obj:
    out = copied(service)
    spec = out.setdefault("spec", {})
    spec["selector"] = {**(spec.get("selector") or {}), **labels}
    return out


def replica_ratio(
    stable_service: Obj,
    canary_service: Obj | None,
    traffic: Traffic,
    pod_labels: Mapping[str, Mapping[str, str]],
) -> Result:
    """``pod_labels``: per revision, the labels that select its pods (and no other revision's)."""
    if traffic.header_routes:
        return CannotExpress("plain Services route by pod counts: header routes need a traffic router")
    split = two_way(traffic)
    if isinstance(split, CannotExpress):
        return split
    canary = traffic.canary if traffic.canary is not None else traffic.stable
    for revision in (traffic.stable, canary):
        if revision not in pod_labels:
            return CannotExpress(f"no pod labels known for revision {revision!r}")
    objects = [_pinned(stable_service, pod_labels[traffic.stable])]
    if canary_service is not None:
        objects.append(_pinned(canary_service, pod_labels[canary]))
    return Write(tuple(objects))
