"""Where the API finds rollouts: the :class:`Backend` protocol and the errors its methods raise.

Each route turns one HTTP request into one backend call; the backend knows the cluster (or the in-process
demo), the routes know HTTP. Rollouts are shown in the shape of :func:`ebbtide.adapters.view.view_data`
(one rollout) and :func:`ebbtide.adapters.view.summary_data` (a list line): the CLI, API and dashboard agree.
"""

from __future__ import annotations

from typing import Any, Protocol

from ebbtide.adapters.external import RolloutStore

Obj = dict[str, Any]

#: the actions a caller may request (Ocean CD's Rollout Actions API, plus ``promoteFull``)
ACTIONS = ("promote", "promoteFull", "pause", "resume", "abort", "retry", "rollback")


class NotFound(LookupError):
    """No such rollout (or spec document) — HTTP 404."""


class Rejected(Exception):
    """The engine refused the action now, with its reason — HTTP 409, nothing changed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidSpec(ValueError):
    """A spec set that does not validate — HTTP 422, nothing applied. ``problems`` are located messages:
    ``{"document": ..., "field": ..., "reason": ...}``, the same as ``ebbtide validate`` prints."""

    def __init__(self, problems: list[Obj]) -> None:
        super().__init__(
            "; ".join(f"{p.get('document')}: {p.get('field')}: {p.get('reason')}" for p in problems)
        )
        self.problems = problems


class Backend(Protocol):
    """Rollouts as the API sees them. Methods are synchronous (routes run them in a thread pool) and
    raise :class:`NotFound`, :class:`Rejected` or :class:`InvalidSpec`; anything else is a 500."""

    def list_rollouts(self, namespace: str | None) -> list[Obj]:
        """:func:`~ebbtide.adapters.view.summary_data` of every rollout (of ``namespace``, or of all)."""
        ...

    def view(self, namespace: str, name: str) -> Obj:
        """:func:`~ebbtide.adapters.view.view_data` of one rollout."""
        ...

    def history(self, namespace: str, name: str) -> list[Obj]:
        """The revisions that reached live, oldest first: ``{"revision", "rolloutId", "initiator", "at"}``."""
        ...

    def act(
        self, namespace: str, name: str, action: str, to: str | None, by: str, key: str | None = None
    ) -> Obj:
        """Perform one of :data:`ACTIONS` (``to``: a revision, for ``rollback`` only) on behalf of ``by``;
        returns ``{"id", "action", "result": "accepted", "reason"}`` once consumed, or ``"result":
        "pending"`` (HTTP 202) when the controller did not consume it in time; raises :class:`Rejected`.
        ``key`` (the caller's ``Idempotency-Key``) becomes the action's id: the same key again acts once."""
        ...

    def get_spec(self, namespace: str, kind: str, name: str) -> Obj:
        """One spec document (RolloutSpec, Strategy, VerificationTemplate, VerificationProvider)."""
        ...

    def apply_specs(self, namespace: str, documents: list[Obj], by: str) -> list[Obj]:
        """Create or update spec documents; the whole set (with what is already there) validates first, and
        nothing is applied if it does not (:class:`InvalidSpec`). Returns the documents as stored."""
        ...

    def delete_spec(self, namespace: str, kind: str, name: str, by: str) -> None:
        """Delete one spec document (refused with :class:`Rejected` if a rollout still uses it)."""
        ...

    def external(self) -> RolloutStore:
        """The store :func:`ebbtide.adapters.external.handle` answers external verifications with."""
        ...

    def generation(self) -> int:
        """A number that changes whenever anything a view or a list line shows may have changed: event
        streams poll it cheaply and read views only when it moved."""
        ...
