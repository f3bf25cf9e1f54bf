"""A stand-in Kubernetes API server for the tests: real HTTP on 127.0.0.1, the real ``kubernetes`` client.

Why not kmock: kmock's emulator is a merge-only dictionary behind an aiohttp DSL. It has no resourceVersion
at all (lists answer ``"..."``), treats PUT as a merge, serves no label selectors, replays the whole store
at the start of every watch whatever resourceVersion is asked for, and has no status subresource, no 409
on a stale write and no 410 Gone. Adding those would replace every method of its emulator (create, update,
delete, list, watch, fetch), leaving only its reaction DSL, and the faults the tests need (every nth write
fails, slow calls, cut watches) are a few counters. A small store with those semantics is easier to read
whole and to trust, and a thread per connection lets synchronous tests drive it without an event loop.

    with StandIn() as api:            # api.client: a kubernetes.client.ApiClient for it
        apps = kubernetes.client.AppsV1Api(api.client)
        api.faults.conflict_every(2)  # a 409 storm
        api.workloads.by_image["app:v2"] = Behaviour.crash_loop()
        # a batch/v1 Job with the image "check:fail" ends Failed after api.jobs.delay seconds (see .jobs)
"""

from __future__ import annotations

import threading
from types import TracebackType

import kubernetes

from .faults import ALL, READS, WRITES, FaultInjector
from .jobs import Jobs
from .resources import ResourceType
from .server import StandInServer
from .store import ApiError, Store
from .workloads import Behaviour, Workloads

__all__ = [
    "ALL",
    "READS",
    "WRITES",
    "ApiError",
    "Behaviour",
    "FaultInjector",
    "Jobs",
    "ResourceType",
    "StandIn",
    "Store",
    "Workloads",
]


class StandIn:
    def __init__(self, history: int = 10_000, bookmark_every: float = 0.1, tick: float = 0.02) -> None:
        self.store = Store(history=history)
        self.faults = FaultInjector()
        self.workloads = Workloads(self.store, tick=tick)
        self.jobs = Jobs(self.store, tick=tick)
        self.server = StandInServer(self.store, self.faults, bookmark_every)
        self.reviews = self.server.reviews
        host, port = self.server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        config = kubernetes.client.Configuration()
        config.host = self.url
        self.configuration = config
        self.client = kubernetes.client.ApiClient(config)
        self._thread = threading.Thread(
            target=self.server.serve_forever, args=(0.02,), name="standin-http", daemon=True
        )

    def start(self) -> StandIn:
        self._thread.start()
        self.workloads.start()
        self.jobs.start()
        return self

    def stop(self) -> None:
        self.workloads.stop()
        self.jobs.stop()
        self.store.close()
        self.server.shutdown()
        self.server.server_close()
        self.client.close()

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
