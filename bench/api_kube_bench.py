"""The operator API on a KubeBackend over the stand-in cluster, on 127.0.0.1: 1,000 EbbtideDeployments
listed, 50 concurrent watchers.

    python bench/api_kube_bench.py            # 1,000 EbbtideDeployments, 50 watchers
    python bench/api_kube_bench.py --quick    # 100, 10 (a smoke run)

The server runs in a child process: the stand-in API server (tests/adapters/kubernetes/standin), the API's
KubeBackend (an informer cache of the EbbtideDeployments), TokenReview/SubjectAccessReview auth against the
stand-in's token table, uvicorn (one worker). One controller runs ``orders`` of the test specs to live
(v1), then stops; its EbbtideDeployment is copied N times (``orders-0000`` ...), each with that status
written directly through the ``/status`` subresource, so no controller runs while measuring. The clients
(httpx, with a bearer token) are in the bench's process. Prints one JSON line per figure:

- api_kube.list: latency of ``GET /api/v1/rollouts`` (all N), alone and with the watchers connected;
- api_kube.get: latency of ``GET .../rollouts/{name}`` with the watchers connected;
- api_kube.watch_first: time from opening a watch to its first event, for the watchers opened at once;
- api_kube.watch_change: time from a status write to the stand-in (a new ``lastAction``) to the changed view
  at the watcher of that rollout (through the informer's watch and the stream's poll).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from apiload import Watcher, emit, timed  # bench/ is the script's folder: on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "t-admin"


def copies(api: Any, n: int) -> None:
    """``n`` copies of the live ``orders`` EbbtideDeployment, each with its status written through
    ``/status``."""
    from kubernetes import client

    from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, VERSION
    from tests.adapters.kubernetes.test_controller import NS, get

    objects = client.CustomObjectsApi(api.client)
    source = get(api)
    for i in range(n):
        name = f"orders-{i:04d}"
        meta = {"name": name, "namespace": NS, "labels": source["metadata"].get("labels") or {}}
        body = {"apiVersion": source["apiVersion"], "kind": source["kind"], "metadata": meta}
        created = objects.create_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, body | {"spec": source["spec"]}
        )
        created["status"] = source["status"]
        objects.replace_namespaced_custom_object_status(GROUP, VERSION, NS, PLURAL, name, created)


def serve(rollouts: int, out: multiprocessing.Queue[Any], stop: Any) -> None:
    import kubernetes

    from ebbtide.adapters.api.app import create_app
    from ebbtide.adapters.api.auth import TokenReviewAuthorizer
    from ebbtide.adapters.api.kube import KubeBackend
    from ebbtide.adapters.api.server import ApiServer
    from tests.adapters.api.kubehelp import grant_tokens
    from tests.adapters.kubernetes import test_controller as tc

    with tc.standin_cluster() as api:
        grant_tokens(api)
        with tc.controller(api, tc.Table({tc.V1: 0.01})):
            tc.wait_for(api, tc.settled(tc.V1))
        t0 = time.perf_counter()
        copies(api, rollouts)
        written = time.perf_counter() - t0
        client = kubernetes.client.ApiClient(api.configuration)
        backend = KubeBackend(client, (tc.NS,)).start()
        assert backend.wait_synced(120)
        server = ApiServer(create_app(backend, TokenReviewAuthorizer(client))).start()
        out.put((server.url, api.configuration.host, round(written, 1)))
        try:
            stop.wait()
        finally:
            server.stop()
            backend.stop()
            client.close()


def write_last_action(host: str, name: str, marker: str) -> None:
    """A new ``status.lastAction`` on one EbbtideDeployment, written straight to the stand-in."""
    import kubernetes

    from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, VERSION
    from tests.adapters.kubernetes.test_controller import NS

    config = kubernetes.client.Configuration()
    config.host = host
    with kubernetes.client.ApiClient(config) as api_client:
        objects = kubernetes.client.CustomObjectsApi(api_client)
        obj = objects.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)
        obj["status"]["lastAction"] = {"id": marker, "action": "pause", "result": "applied"}
        objects.replace_namespaced_custom_object_status(GROUP, VERSION, NS, PLURAL, name, obj)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="100 EbbtideDeployments, 10 watchers")
    args = parser.parse_args()
    rollouts, watchers = (100, 10) if args.quick else (args.rollouts, args.watchers)
    from tests.adapters.kubernetes.test_controller import NS

    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[Any] = ctx.Queue()
    stop = ctx.Event()
    t0 = time.perf_counter()
    server = ctx.Process(target=serve, args=(rollouts, out, stop), daemon=True)
    server.start()
    try:
        url, standin, written = out.get(timeout=900)
        setup = time.perf_counter() - t0
        base = f"{url}/api/v1"
        with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            body = client.get(f"{base}/rollouts")
            assert len(body.json()["items"]) == rollouts + 1  # the copies and orders itself
            emit("api_kube.list", timed(client, f"{base}/rollouts", 30), rollouts=rollouts + 1, watchers=0,
                 bytes=len(body.content), setup_s=round(setup, 1), written_s=written)  # fmt: skip

            names = [f"orders-{i:04d}" for i in range(watchers)]
            crowd = [
                Watcher(f"{base}/namespaces/{NS}/rollouts/{n}/watch", {"Authorization": f"Bearer {TOKEN}"})
                for n in names
            ]
            for w in crowd:
                w.start()
            deadline = time.perf_counter() + 60
            while any(w.first is None for w in crowd) and time.perf_counter() < deadline:
                time.sleep(0.01)
            firsts = [((w.first or deadline) - w.opened) * 1000 for w in crowd]
            emit(
                "api_kube.watch_first", firsts, watchers=watchers, missing=sum(w.first is None for w in crowd)
            )
            emit(
                "api_kube.list",
                timed(client, f"{base}/rollouts", 30),
                rollouts=rollouts + 1,
                watchers=watchers,
            )
            get = f"{base}/namespaces/{NS}/rollouts/{names[0]}"
            emit("api_kube.get", timed(client, get, 30), watchers=watchers)

            changes = []
            for i, (name, w) in enumerate(zip(names, crowd, strict=True)):
                w.changed.clear()
                t_write = time.perf_counter()
                write_last_action(standin, name, f"bench-{i}")
                if not w.changed.wait(timeout=30):
                    changes.append(30_000.0)
                    continue
                at, view = w.events[-1]
                assert view["lastAction"]["id"] == f"bench-{i}"
                changes.append((at - t_write) * 1000)
            emit("api_kube.watch_change", changes, watchers=watchers)
            for w in crowd:
                w.stop = True
    finally:
        stop.set()
        server.join(timeout=30)
        if server.is_alive():
            server.terminate()
            server.join(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
