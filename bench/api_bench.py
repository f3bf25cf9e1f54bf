"""The operator API under load, on 127.0.0.1: 1,000 rollouts listed, 50 concurrent watchers.

    python bench/api_bench.py                 # 1,000 rollouts, 50 watchers
    python bench/api_bench.py --quick         # 100 rollouts, 10 watchers (a smoke run)

The server (the API on a MemoryBackend, uvicorn, one worker) runs in a child process, so the clients measured
here do not share its interpreter. Each rollout is examples/specs/basic-canary.yaml's ``orders`` in its own
namespace, mid-rollout (v2 over v1). Prints one JSON line per figure ({"name", "value", "unit", ...}):

- api.list: latency of ``GET /api/v1/rollouts`` (all rollouts), alone and with the watchers connected;
- api.get: latency of ``GET .../rollouts/{name}`` with the watchers connected;
- api.watch_first: time from opening a watch to its first event, for each of the watchers opened at once;
- api.watch_change: time from an accepted action (``pause``) to the changed view reaching every watcher.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import sys
import time
from pathlib import Path

import httpx
from apiload import Watcher, emit, timed  # bench/ is the script's folder: on sys.path

ROOT = Path(__file__).resolve().parent.parent


def serve(rollouts: int, port: multiprocessing.Queue[int]) -> None:
    import uvicorn

    from ebbtide.adapters.api.app import create_app
    from ebbtide.adapters.api.auth import AllowLocal
    from ebbtide.adapters.api.memory import ManualClock, MemoryBackend
    from ebbtide.adapters.memory import ClusterConfig, RevisionBehaviour
    from ebbtide.adapters.specfiles import read_documents

    docs = [d.body for d in read_documents([ROOT / "examples" / "specs" / "basic-canary.yaml"])]
    backend = MemoryBackend(ManualClock())
    cluster = ClusterConfig(revisions={"v1": RevisionBehaviour(), "v2": RevisionBehaviour()})
    for i in range(rollouts):
        backend.add(f"ns-{i:04d}", docs, cluster, rollout="orders", stable="v1", seed=i)
        backend.deploy(f"ns-{i:04d}", "orders", "v2")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port.put(sock.getsockname()[1])
    config = uvicorn.Config(
        create_app(backend, AllowLocal()), log_level="critical", timeout_graceful_shutdown=1, backlog=1024
    )
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="100 rollouts, 10 watchers")
    args = parser.parse_args()
    rollouts, watchers = (100, 10) if args.quick else (args.rollouts, args.watchers)

    ctx = multiprocessing.get_context("spawn")
    ports: multiprocessing.Queue[int] = ctx.Queue()
    t0 = time.perf_counter()
    server = ctx.Process(target=serve, args=(rollouts, ports), daemon=True)
    server.start()
    try:
        port = ports.get(timeout=600)
        base = f"http://127.0.0.1:{port}/api/v1"
        with httpx.Client(timeout=60) as client:
            for _ in range(100):
                try:
                    client.get(f"{base}/rollouts?probe=1").raise_for_status()
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            setup = time.perf_counter() - t0
            body = client.get(f"{base}/rollouts")
            assert len(body.json()["items"]) == rollouts
            emit("api.list", timed(client, f"{base}/rollouts", 30), rollouts=rollouts, watchers=0,
                 bytes=len(body.content), setup_s=round(setup, 1))  # fmt: skip

            crowd = [Watcher(f"{base}/namespaces/ns-{i:04d}/rollouts/orders/watch") for i in range(watchers)]
            for w in crowd:
                w.start()
            deadline = time.perf_counter() + 60
            while any(w.first is None for w in crowd) and time.perf_counter() < deadline:
                time.sleep(0.01)
            firsts = [((w.first or deadline) - w.opened) * 1000 for w in crowd]
            emit("api.watch_first", firsts, watchers=watchers, missing=sum(w.first is None for w in crowd))
            emit("api.list", timed(client, f"{base}/rollouts", 30), rollouts=rollouts, watchers=watchers)
            emit(
                "api.get", timed(client, f"{base}/namespaces/ns-0000/rollouts/orders", 30), watchers=watchers
            )

            changes = []
            for w in crowd:
                w.changed.clear()
                ns = w.url.split("/namespaces/")[1].split("/")[0]
                t_act = time.perf_counter()
                r = client.post(f"{base}/namespaces/{ns}/rollouts/orders/actions", json={"action": "pause"})
                r.raise_for_status()
                if not w.changed.wait(timeout=30):
                    changes.append(30_000.0)
                    continue
                at, view = w.events[-1]
                assert view["phase"] == "paused"
                changes.append((at - t_act) * 1000)
            emit("api.watch_change", changes, watchers=watchers)
            for w in crowd:
                w.stop = True
    finally:
        server.terminate()
        server.join(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
