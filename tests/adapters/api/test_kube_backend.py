"""KubeBackend's reads come from its informer cache: many callers polling cost the API server nothing, and
``generation()`` moves when a rollout object changes (so event streams re-read only then)."""

from __future__ import annotations

import time

from ebbtide.adapters.api.backend import NotFound

from ..kubernetes import test_controller as tc
from .kubehelp import cluster


def test_reads_are_served_from_the_cache_and_generation_moves_with_the_objects() -> None:
    with cluster() as c:
        pending = c.backend.view(tc.NS, tc.NAME)
        assert pending["phase"] == "pending"  # no controller yet: not reconciled
        before = c.backend.generation()
        with c.controller():
            end = tc.wait_for(c.api, tc.settled(tc.V1))
            deadline = time.monotonic() + 5
            while c.backend.view(tc.NS, tc.NAME).get("rolloutId") != end.rollout_id or not c.backend.history(
                tc.NS, tc.NAME
            ):
                assert time.monotonic() < deadline
                time.sleep(0.02)
        assert c.backend.generation() > before
        requests = len(c.api.server.requests)
        quiet = c.backend.generation()
        for _ in range(200):  # 50 watchers polling four times
            c.backend.list_rollouts(None)
            c.backend.view(tc.NS, tc.NAME)
        assert len(c.api.server.requests) == requests  # not one call to the API server
        assert c.backend.generation() == quiet
        (line,) = c.backend.list_rollouts(tc.NS)
        assert (line["name"], line["phase"], line["stable"], line["ready"]) == ("orders", "live", tc.V1, 4)
        assert c.backend.list_rollouts("elsewhere") == []
        (entry,) = c.backend.history(tc.NS, tc.NAME)
        assert entry["revision"] == tc.V1 and entry["initiator"] == "deploy"
        try:
            c.backend.view("elsewhere", tc.NAME)
        except NotFound as exc:
            assert "no rollout elsewhere/orders" in str(exc)
        else:
            raise AssertionError("a namespace not served is not found")
