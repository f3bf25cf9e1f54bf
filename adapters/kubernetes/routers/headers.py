"""Header matches in the dialects of the routers: Istio's StringMatch, Gateway API's HTTPHeaderMatch, and
one regular expression (NGINX's canary-by-header-pattern). A prefix becomes an anchored regular
expression where the dialect has no prefix match."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .base import HeaderMatchLike, Obj, match_kind


def as_regex(match: HeaderMatchLike) -> tuple[str, bool]:
    """(value, is_regex): exact stays exact; prefix and regex become a regular expression."""
    kind, value = match_kind(match)
    if kind == "exact":
        return value, False
    if kind == "prefix":
        return f"^{re.escape(value)}.*", True
    return value, True


def istio_headers(matches: Sequence[HeaderMatchLike]) -> Obj | None:
    """Istio's ``match[].headers`` (all must hold), or None when two matches name the same header."""
    headers: Obj = {}
    for m in matches:
        if m.header_name in headers:
            return None
        kind, value = match_kind(m)
        headers[m.header_name] = {kind: value}
    return headers


def gateway_headers(matches: Sequence[HeaderMatchLike]) -> list[Obj]:
    out = []
    for m in matches:
        value, regex = as_regex(m)
        out.append({"name": m.header_name, "type": "RegularExpression" if regex else "Exact", "value": value})
    return out
