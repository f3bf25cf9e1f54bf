"""Who is calling and what they may do: the :class:`Authorizer` protocol the routes check.

On a cluster, a bearer token is checked with a TokenReview and each verb with a SubjectAccessReview on the
ebbtide resource (so ``kubectl`` RBAC governs the API as it governs ``kubectl``); ``ebbtide demo`` allows a
local user everything. Anonymous callers never write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Caller:
    user: str
    groups: tuple[str, ...] = ()


class Authorizer(Protocol):
    def authenticate(self, token: str | None) -> Caller | None:
        """The caller a bearer token (``None``: no Authorization header) belongs to, or ``None``: 401."""
        ...

    def allowed(self, caller: Caller, verb: str, namespace: str, resource: str, name: str | None) -> bool:
        """Whether ``caller`` may ``verb`` (get, list, watch, create, update, patch, delete) the resource."""
        ...


@dataclass(frozen=True)
class AllowLocal:
    """Everyone is ``user`` and may do everything: for ``ebbtide demo`` on 127.0.0.1 only."""

    user: str = "demo"

    def authenticate(self, token: str | None) -> Caller | None:
        return Caller(self.user)

    def allowed(self, caller: Caller, verb: str, namespace: str, resource: str, name: str | None) -> bool:
        return True
