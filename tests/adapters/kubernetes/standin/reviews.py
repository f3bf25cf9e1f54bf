"""TokenReview and SubjectAccessReview for the stand-in, answered from tables a test sets.

    api.reviews.tokens["t-alice"] = ("alice", ("devs",))           # a bearer token and who it is
    api.reviews.grant("alice", "update", "ebbtidedeployments", "shop")  # "*" matches any verb/resource/ns

``POST /apis/authentication.k8s.io/v1/tokenreviews`` answers ``authenticated`` for a known token;
``POST /apis/authorization.k8s.io/v1/subjectaccessreviews`` answers ``allowed`` when a grant matches the
user or one of its groups. Every review received is kept in ``calls`` (kind, spec) in order.
"""

from __future__ import annotations

import threading
from typing import Any

Obj = dict[str, Any]
TOKENS = ["apis", "authentication.k8s.io", "v1", "tokenreviews"]
ACCESS = ["apis", "authorization.k8s.io", "v1", "subjectaccessreviews"]


class Reviews:
    def __init__(self) -> None:
        self.tokens: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.grants: set[tuple[str, str, str, str]] = set()
        self.calls: list[tuple[str, Obj]] = []
        self._lock = threading.Lock()

    def grant(self, subject: str, verb: str, resource: str, namespace: str = "*") -> None:
        self.grants.add((subject, verb, resource, namespace))

    @staticmethod
    def serves(parts: list[str]) -> bool:
        return parts in (TOKENS, ACCESS)

    def answer(self, parts: list[str], body: Obj) -> tuple[int, Obj]:
        """The answer to a review posted to ``parts`` (one of :meth:`serves`)."""
        spec = body.get("spec") or {}
        with self._lock:
            self.calls.append((str(body.get("kind")), spec))
        if parts == TOKENS:
            who = self.tokens.get(str(spec.get("token")))
            status: Obj = {"authenticated": False, "error": "invalid bearer token"}
            if who is not None:
                status = {"authenticated": True, "user": {"username": who[0], "groups": list(who[1])}}
        else:
            status = {"allowed": self._allowed(spec)}
        return 201, {**body, "status": status}

    def _allowed(self, spec: Obj) -> bool:
        attrs = spec.get("resourceAttributes") or {}
        subjects = {spec.get("user"), *(spec.get("groups") or [])}
        wanted = (attrs.get("verb"), attrs.get("resource"), attrs.get("namespace"))
        for subject, *grant in self.grants:
            if subject in subjects and all(g in ("*", w) for g, w in zip(grant, wanted, strict=True)):
                return attrs.get("group") == "ebbtide.dev"
        return False
