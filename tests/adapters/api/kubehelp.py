"""The API on the stand-in cluster, for the test_kube_* files: the stand-in API server (CRDs, the specs,
the workload at orders:1), a running controller, a :class:`KubeBackend`, the app with the
TokenReview/SubjectAccessReview authorizer served by uvicorn on 127.0.0.1, and tokens:

- ``admin``: every verb on every ebbtide resource; ``viewer``: get, list, watch only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import kubernetes

from ebbtide.adapters.api.app import create_app
from ebbtide.adapters.api.auth import TokenReviewAuthorizer
from ebbtide.adapters.api.kube import KubeBackend
from ebbtide.adapters.api.server import ApiServer
from ebbtide.adapters.kubernetes.controller import Controller

from ..kubernetes import test_controller as tc
from ..kubernetes.standin import StandIn

ADMIN, VIEWER = "t-admin", "t-viewer"


@dataclass
class Cluster:
    api: StandIn
    backend: KubeBackend
    server: ApiServer
    table: tc.Table

    def http(self, token: str | None = ADMIN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=30)

    def controller(self, identity: str = "a") -> contextlib.AbstractContextManager[Controller]:
        return tc.controller(self.api, self.table, tc.config(identity))


def grant_tokens(api: StandIn) -> None:
    api.reviews.tokens[ADMIN] = ("alice", ("ops",))
    api.reviews.tokens[VIEWER] = ("bob", ("viewers",))
    api.reviews.grant("ops", "*", "*")
    for verb in ("get", "list", "watch"):
        api.reviews.grant("viewers", verb, "*")


@contextlib.contextmanager
def cluster(act_timeout: float = 10.0, **app_options: Any) -> Iterator[Cluster]:
    """The stand-in cluster and the API (no controller: start one with ``Cluster.controller()``)."""
    with tc.standin_cluster() as api:
        grant_tokens(api)
        client = kubernetes.client.ApiClient(api.configuration)
        backend = KubeBackend(client, (tc.NS,), act_timeout=act_timeout, informer_backoff=0.05).start()
        authorizer = TokenReviewAuthorizer(client, ttl=1.0)
        server = ApiServer(create_app(backend, authorizer, **app_options)).start()
        try:
            assert backend.wait_synced(10)
            yield Cluster(api, backend, server, tc.Table({tc.V1: 0.01, tc.V2: 0.01}))
        finally:
            server.stop()
            backend.stop()
            client.close()
