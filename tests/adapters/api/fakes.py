"""A Backend and an Authorizer from tables, for the tests of the HTTP layer alone (middleware, Ocean CD
routes, spec route shapes): every call is recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ebbtide.adapters.api.auth import Caller
from ebbtide.adapters.api.backend import NotFound, Obj, Rejected
from ebbtide.adapters.external import RolloutStore


@dataclass
class Tokens:
    """token -> user; every user may everything except what ``denied`` lists as (user, verb)."""

    users: dict[str, str]
    denied: set[tuple[str, str]] = field(default_factory=set)

    def authenticate(self, token: str | None) -> Caller | None:
        user = self.users.get(token or "")
        return None if user is None else Caller(user)

    def allowed(self, caller: Caller, verb: str, namespace: str, resource: str, name: str | None) -> bool:
        return (caller.user, verb) not in self.denied


@dataclass
class FakeBackend:
    rollouts: dict[tuple[str, str], Obj] = field(default_factory=dict)
    specs: dict[tuple[str, str, str], Obj] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    reject: str | None = None
    pending: bool = False  # act answers as a controller that did not consume the action in time

    def list_rollouts(self, namespace: str | None) -> list[Obj]:
        return []

    def view(self, namespace: str, name: str) -> Obj:
        if (namespace, name) not in self.rollouts:
            raise NotFound(f"no rollout {namespace}/{name}")
        return self.rollouts[(namespace, name)]

    def history(self, namespace: str, name: str) -> list[Obj]:
        return []

    def act(
        self, namespace: str, name: str, action: str, to: str | None, by: str, key: str | None = None
    ) -> Obj:
        self.calls.append(("act", (namespace, name, action, to, by, key)))
        if self.reject is not None:
            raise Rejected(self.reject)
        result = "pending" if self.pending else "accepted"
        return {"id": key or "a1", "action": action, "result": result, "reason": None}

    def get_spec(self, namespace: str, kind: str, name: str) -> Obj:
        if (namespace, kind, name) not in self.specs:
            raise NotFound(f"no {kind} {namespace}/{name}")
        return self.specs[(namespace, kind, name)]

    def apply_specs(self, namespace: str, documents: list[Obj], by: str) -> list[Obj]:
        self.calls.append(("apply", (namespace, documents, by)))
        for doc in documents:
            self.specs[(namespace, doc["kind"], doc["metadata"]["name"])] = doc
        return documents

    def delete_spec(self, namespace: str, kind: str, name: str, by: str) -> None:
        self.calls.append(("delete", (namespace, kind, name, by)))
        self.specs.pop((namespace, kind, name))

    def external(self) -> RolloutStore:
        raise NotImplementedError

    def generation(self) -> int:
        return 0
