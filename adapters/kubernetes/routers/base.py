"""What every traffic router takes and gives back.

A router is a pure function: (the object as it is in the cluster, the traffic wanted, the router's
settings) -> the object to write, or :class:`CannotExpress` with the reason. The controller writes the
result only if it differs from what is there (so applying the same traffic twice writes nothing), and on
:class:`CannotExpress` it reports a condition and leaves the step waiting: the engine never advances on a
weight that was not applied.

Routers with two backends (a stable and a canary Service, host or subset) can carry two revisions: the
stable one and the canary. A split that gives weight to a third revision cannot be expressed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Obj = dict[str, Any]


class HeaderMatchLike(Protocol):
    """A header condition (ebbtide.core.plan.HeaderMatch fits): exactly one of exact, prefix, regex."""

    @property
    def header_name(self) -> str: ...
    @property
    def exact(self) -> str | None: ...
    @property
    def prefix(self) -> str | None: ...
    @property
    def regex(self) -> str | None: ...


class HeaderRouteLike(Protocol):
    """A named header route to the canary (ebbtide.core.plan.HeaderRoutePlan fits); all matches must hold."""

    @property
    def name(self) -> str: ...
    @property
    def matches(self) -> Sequence[HeaderMatchLike]: ...


@dataclass(frozen=True)
class HeaderMatch:
    header_name: str
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None


@dataclass(frozen=True)
class HeaderRoute:
    name: str
    matches: tuple[HeaderMatch, ...] = ()


@dataclass(frozen=True)
class Traffic:
    """The traffic wanted: integer weights per revision (summing to 100) and header routes to the canary."""

    weights: Mapping[str, int]
    stable: str
    canary: str | None = None
    header_routes: Sequence[HeaderRouteLike] = ()


@dataclass(frozen=True)
class Split:
    stable: int
    canary: int


@dataclass(frozen=True)
class CannotExpress:
    reason: str


@dataclass(frozen=True)
class Write:
    """The objects to write, whole (the controller replaces each with the read resourceVersion)."""

    objects: tuple[Obj, ...]


Result = Write | CannotExpress


def two_way(traffic: Traffic) -> Split | CannotExpress:
    """The stable/canary split of ``traffic``, if two backends can carry it."""
    if any(w < 0 or w > 100 for w in traffic.weights.values()):
        return CannotExpress(f"weights must be 0..100: {dict(traffic.weights)}")
    if sum(traffic.weights.values()) != 100:
        return CannotExpress(f"weights must sum to 100: {dict(traffic.weights)}")
    carried = {traffic.stable, traffic.canary} - {None}
    others = {r: w for r, w in traffic.weights.items() if w and r not in carried}
    if others:
        return CannotExpress(
            f"two backends (stable {traffic.stable}, canary {traffic.canary}) cannot carry {others}"
        )
    if traffic.header_routes and traffic.canary is None:
        return CannotExpress("header routes go to the canary, and there is no canary revision")
    canary = traffic.weights.get(traffic.canary, 0) if traffic.canary else 0
    if traffic.canary == traffic.stable:
        canary = 0
    return Split(stable=100 - canary, canary=canary)


def match_kind(match: HeaderMatchLike) -> tuple[str, str]:
    """("exact" | "prefix" | "regex", value) of a header match."""
    for kind in ("exact", "prefix", "regex"):
        value = getattr(match, kind)
        if value is not None:
            return kind, value
    raise ValueError(f"header match on {match.header_name!r} names no exact, prefix or regex value")


def copied(obj: Obj | None) -> Obj:
    return copy.deepcopy(obj) if obj is not None else {}
