"""Who is calling and what they may do: the :class:`Authorizer` protocol the routes check.

On a cluster, a bearer token is checked with a TokenReview and each verb with a SubjectAccessReview on the
ebbtide resource (so ``kubectl`` RBAC governs the API as it governs ``kubectl``); ``ebbtide demo`` allows a
local user everything. Anonymous callers never write.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar


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


#: the Kubernetes resource (group ebbtide.dev) each API resource is authorized as: acting on a rollout is an
#: update of its EbbtideDeployment (the action is recorded on it), as with ``kubectl``
RESOURCES = {"rollouts": "ebbtidedeployments"}
ANONYMOUS = Caller("system:anonymous", ("system:unauthenticated",))
READS = frozenset({"get", "list", "watch"})


class AuthUnavailable(RuntimeError):
    """The API server could not answer a review: HTTP 503 (nothing done; the answer is not cached)."""


class TokenReviewAuthorizer:
    """Bearer tokens checked with a TokenReview (authentication.k8s.io/v1), verbs with a SubjectAccessReview
    (authorization.k8s.io/v1) on group ``ebbtide.dev``; both answers cached for ``ttl`` seconds. Without a
    token the caller is anonymous: allowed to read only when ``anonymous_reads``, never to write."""

    def __init__(
        self,
        client: Any,
        *,
        anonymous_reads: bool = False,
        ttl: float = 10.0,
        audiences: tuple[str, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import kubernetes

        self._authn = kubernetes.client.AuthenticationV1Api(client)
        self._authz = kubernetes.client.AuthorizationV1Api(client)
        self.anonymous_reads = anonymous_reads
        self.audiences = audiences
        self._tokens: TtlCache[str, Caller | None] = TtlCache(ttl, clock)
        self._verdicts: TtlCache[tuple[Any, ...], bool] = TtlCache(ttl, clock)

    def authenticate(self, token: str | None) -> Caller | None:
        if not token:
            return ANONYMOUS if self.anonymous_reads else None
        key = hashlib.sha256(token.encode()).hexdigest()  # the token itself is never kept
        return self._tokens.get_or(key, lambda: self._review(token))

    def _review(self, token: str) -> Caller | None:
        spec: dict[str, Any] = {"token": token}
        if self.audiences:
            spec["audiences"] = list(self.audiences)
        review: Any = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
        got = self._ask(self._authn.create_token_review, review)
        status = got.status
        if status is None or not status.authenticated or status.user is None:
            return None
        return Caller(status.user.username or "", tuple(status.user.groups or ()))

    def allowed(self, caller: Caller, verb: str, namespace: str, resource: str, name: str | None) -> bool:
        if caller == ANONYMOUS:
            return self.anonymous_reads and verb in READS
        key = (caller, verb, namespace, resource, name)
        return self._verdicts.get_or(key, lambda: self._access(caller, verb, namespace, resource, name))

    def _access(self, caller: Caller, verb: str, namespace: str, resource: str, name: str | None) -> bool:
        attributes: dict[str, str] = {
            "group": "ebbtide.dev",
            "resource": RESOURCES.get(resource, resource),
            "verb": verb,
            "namespace": namespace,
        }
        if name is not None:
            attributes["name"] = name
        body: Any = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": caller.user, "groups": list(caller.groups), "resourceAttributes": attributes},
        }
        got = self._ask(self._authz.create_subject_access_review, body)
        return bool(got.status is not None and got.status.allowed)

    @staticmethod
    def _ask(create: Callable[[Any], Any], body: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return create(body)
        except (ApiException, HTTPError, OSError) as exc:
            raise AuthUnavailable(
                f"the API server could not review the request ({body['kind']}): {exc}"
            ) from exc


K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Answers kept ``ttl`` seconds (thread-safe; bounded: the oldest half goes when ``size`` is reached)."""

    def __init__(self, ttl: float, clock: Callable[[], float], size: int = 4096) -> None:
        self.ttl, self.clock, self.size = ttl, clock, size
        self._items: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get_or(self, key: K, compute: Callable[[], V]) -> V:
        now = self.clock()
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = compute()
        with self._lock:
            if len(self._items) >= self.size:
                for old in list(self._items)[: self.size // 2]:
                    del self._items[old]
            self._items[key] = (now + self.ttl, value)
        return value
