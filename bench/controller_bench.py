"""API writes per transition of the Kubernetes controller, against the stand-in API server (issue 9: <= 3).

Runs the real controller (threads, informers, work queue, timers) against the stand-in over HTTP on
127.0.0.1 through the four scenarios of tests/adapters/kubernetes/test_controller.py: a healthy canary to
live, an immediate rollback, a newRollout rollback and a manual rollback of a live version. It counts

- ``writes``: every write the controller sent from the template change to the end (the stand-in's request
  log, by the controller's User-Agent; Lease renewals excluded): ReplicaSets, Services, status, Events;
- ``transitions``: the changes of what a person reads in the status (phase, step, weights, stable and
  canary revisions), seen by a watch on the workload;
- ``status_writes``: the status writes among them; those beyond one per transition record ready counts
  as pods start (``writes_per_transition_without_ready_count_updates`` leaves them out).

Prints one JSON line per scenario and never fails on a number (or on time):

    {"name": "controller.writes_per_transition", "scenario": "healthy", "writes": .., "transitions": ..,
     "writes_per_transition": .., "status_writes": .., "by_resource": {...}, "seconds": ..}

Run: PYTHONPATH=. .venv/bin/python bench/controller_bench.py
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import client  # noqa: E402

from ebbtide.adapters.kubernetes.apiclient import resource_of  # noqa: E402
from ebbtide.adapters.kubernetes.controller import Controller  # noqa: E402
from ebbtide.adapters.kubernetes.informer import Informer  # noqa: E402
from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, VERSION  # noqa: E402
from ebbtide.core.state import RolloutState  # noqa: E402
from tests.adapters.kubernetes.standin import StandIn  # noqa: E402
from tests.adapters.kubernetes.test_controller import (  # noqa: E402
    NS,
    V1,
    V2,
    Table,
    config,
    set_image,
    settled,
    standin_cluster,
    wait_for,
)

WRITES = ("POST", "PUT", "PATCH", "DELETE")
SCENARIOS: dict[str, dict[str, Any]] = {
    "healthy": {"values": {V1: 0.01, V2: 0.01}, "policy": None},
    "immediate-rollback": {"values": {V1: 0.01, V2: 0.5}, "policy": None},
    "newRollout-rollback": {
        "values": {V1: 0.01, V2: 0.5},
        "policy": {"failurePolicy": {"action": "rollback", "rollback": {"mode": "newRollout"}}},
    },
    "manual-rollback": {"values": {V1: 0.01, V2: 0.01}, "policy": None},
}


def shown(obj: dict[str, Any]) -> tuple[Any, ...]:
    status = obj.get("status") or {}
    return tuple(status.get(k) for k in ("phase", "step", "weights", "stableRevision", "canaryRevision"))


def writes_since(api: StandIn, start: int) -> Counter[str]:
    out: Counter[str] = Counter()
    requests = list(zip(api.server.requests, api.server.agents, strict=True))[start:]
    for (method, path, _), agent in requests:
        resource = resource_of(path)
        if method in WRITES and agent.startswith("ebbtide-controller/") and resource != "leases":
            out[f"{method} {resource}"] += 1
    return out


def run(name: str, values: dict[str, float], policy: dict[str, Any] | None) -> dict[str, Any]:
    with standin_cluster(policy) as api:
        table = Table(values)
        with Controller(api.configuration, config("bench"), measurements_for=lambda ns, n: table):
            wait_for(api, settled(V1))
            if name == "manual-rollback":
                set_image(api, "orders:2")
                wait_for(api, settled(V2))
            seen: list[tuple[Any, ...]] = []
            custom = client.CustomObjectsApi(api.client)
            watch = Informer(
                partial(custom.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL),
                on_event=lambda kind, obj: seen.append(shown(obj)),
                backoff=0.05,
            )
            thread = threading.Thread(target=watch.run, daemon=True)
            thread.start()
            watch.synced.wait(5)
            start, started = len(api.server.requests), time.monotonic()
            image, wanted, end = {
                "healthy": ("orders:2", V2, V2),
                "manual-rollback": ("orders:1", V1, V1),
            }.get(name, ("orders:2", V2, V1))
            set_image(api, image)
            done: Callable[[RolloutState], bool] = lambda s: s.desired == wanted and settled(end)(s)  # noqa: E731
            wait_for(api, done, timeout=30)
            seconds = time.monotonic() - started
            time.sleep(0.2)  # the last events reach the watch
            watch.stop()
            thread.join(5)
            writes = writes_since(api, start)
    transitions = sum(1 for a, b in itertools.pairwise(seen) if a != b)
    total = sum(writes.values())
    status = writes.get(f"PUT {PLURAL}/status", 0)
    # the status writes that change nothing a person reads record ready counts as pods start
    observed = max(0, status - transitions)
    return {
        "name": "controller.writes_per_transition",
        "scenario": name,
        "writes": total,
        "transitions": transitions,
        "writes_per_transition": round(total / transitions, 2) if transitions else None,
        "status_writes": status,
        "writes_per_transition_without_ready_count_updates": (
            round((total - observed) / transitions, 2) if transitions else None
        ),
        "by_resource": dict(sorted(writes.items())),
        "seconds": round(seconds, 2),
    }


def main() -> None:
    for name, scenario in SCENARIOS.items():
        print(json.dumps(run(name, scenario["values"], scenario["policy"])), flush=True)


if __name__ == "__main__":
    main()
