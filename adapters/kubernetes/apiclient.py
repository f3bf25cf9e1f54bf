"""The controller's API client: every write counted (verb and resource) and, under leader election, gated.

:class:`ControllerApiClient` is the ``kubernetes`` client's ``ApiClient`` with one hook on ``call_api``: a
write (POST, PUT, PATCH, DELETE) first asks ``may_write(verb, resource)`` and raises :class:`NotLeader`
when it answers False, so a replica that lost its Lease stops writing at the very next call, in the middle
of a reconcile if need be; then ``on_write(verb, resource)`` counts it. Reads pass untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import kubernetes

WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class NotLeader(RuntimeError):
    """A write was refused: this replica does not hold the Lease (any more)."""


def resource_of(url: str) -> str:
    """The resource a request path names: ``replicasets``, ``ebbtidedeployments/status``, ``leases``..."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]  # /api/v1/... or /apis/{group}/{version}/...
    if len(rest) >= 2 and rest[0] == "namespaces":
        rest = rest[2:]
    if not rest:
        return "namespaces"
    return f"{rest[0]}/{rest[2]}" if len(rest) >= 3 else rest[0]


class ControllerApiClient(kubernetes.client.ApiClient):
    def __init__(
        self,
        configuration: kubernetes.client.Configuration,
        *,
        may_write: Callable[[str, str], bool] | None = None,
        on_write: Callable[[str, str], None] | None = None,
    ) -> None:
        super().__init__(configuration)
        self.may_write = may_write
        self.on_write = on_write

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        verb = WRITE_VERBS.get(method.upper())
        if verb is not None:
            resource = resource_of(url)
            if self.may_write is not None and not self.may_write(verb, resource):
                raise NotLeader(f"{method} {urlsplit(url).path}: this replica does not hold the Lease")
            if self.on_write is not None:
                self.on_write(verb, resource)
        return super().call_api(method, url, *args, **kwargs)
