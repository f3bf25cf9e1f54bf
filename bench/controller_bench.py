"""API writes per transition of the Kubernetes controller, against the stand-in API server (issue 9: <= 3).

Runs the real controller (threads, informers, work queue, timers) against the stand-in over HTTP on
127.0.0.1 through the four scenarios of tests/adapters/kubernetes/test_controller.py: a healthy canary to
live, an immediate rollback, a newRollout rollback and a manual rollback of a live version. It counts

- ``writes``: every write the controller sent from the template change to the end (the stand-in's request
  log, by the controller's User-Agent; Lease renewals excluded): ReplicaSets, Services, status, Events;
- ``transitions``: the changes of what a person reads in the status (phase, step, weights, stable and
  canary revisions), seen by a watch on the workload;
- ``status_writes``: the status writes among them; those beyond one per transition record ready counts
  as pods start (``writes_per_transition_without_ready_count_updates`` leaves them out);
- the writes by kind, per transition: ``status`` (the engine state), ``cluster`` (ReplicaSets created,
  scaled or deleted, Services pointed: what the transition does) and ``events`` (one Kubernetes Event per
  engine transition announced, never aggregated: ``kubectl get events --field-selector reason=...`` finds
  each); ``writes_per_transition_without_events`` leaves the Events out.

and, in one more scenario (``latency``), how long the controller holding ``--rollouts`` EbbtideDeployments
(1,000 by default) takes from a failed verification (the moment the provider answers) to the write that
takes traffic off the failed revision (its ReplicaSet scaled to 0 under the replica-ratio router, or a
Service selector), and how many reconcile passes of that workload it took. That figure starts when the
provider answers, inside the reconcile pass that asked; ``change_to_failed_ms`` is what came before it:
from the template change to that answer (the watch event, the wait in the queue behind the other
workloads' keys, the pass up to the measurement). The other workloads are
clones of a live one, made in the stand-in's store directly (setting up 1,000 through the controller would
take minutes); the controller's informers pick them up and reconcile each, and its resync queues all of
them again every 5 s, so the failing one waits in the queue behind them.

Prints one JSON line per scenario and never fails on a number (or on time):

    {"name": "controller.writes_per_transition", "scenario": "healthy", "writes": .., "transitions": ..,
     "writes_per_transition": .., "status_writes": .., "by_resource": {...}, "seconds": ..}

Run: PYTHONPATH=. .venv/bin/python bench/controller_bench.py [--rollouts 1000] [--only latency]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
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

from ebbtide.adapters.kubernetes import controller as controller_module  # noqa: E402
from ebbtide.adapters.kubernetes.adapter import WORKLOAD_LABEL  # noqa: E402
from ebbtide.adapters.kubernetes.apiclient import resource_of  # noqa: E402
from ebbtide.adapters.kubernetes.controller import Controller  # noqa: E402
from ebbtide.adapters.kubernetes.informer import Informer  # noqa: E402
from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, VERSION  # noqa: E402
from ebbtide.core.effects import StartMeasurement  # noqa: E402
from ebbtide.core.events import Measurement  # noqa: E402
from ebbtide.core.state import RolloutState  # noqa: E402
from tests.adapters.kubernetes.standin import Behaviour, StandIn  # noqa: E402
from tests.adapters.kubernetes.standin.store import ApiError  # noqa: E402
from tests.adapters.kubernetes.test_controller import (  # noqa: E402
    NAME,
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
    events = writes.get("POST events", 0)
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
        "per_transition": {
            "status": round(status / transitions, 2) if transitions else None,
            "cluster": round((total - status - events) / transitions, 2) if transitions else None,
            "events": round(events / transitions, 2) if transitions else None,
        },
        "writes_per_transition_without_events": (
            round((total - events) / transitions, 2) if transitions else None
        ),
        "by_resource": dict(sorted(writes.items())),
        "seconds": round(seconds, 2),
    }


RESYNC = 30.0  # seconds: every workload queued again (the test suite's 5 s is shorter than one pass here)


class Answers(Table):
    """The table provider, remembering when it answered a failing value (monotonic seconds)."""

    failed_at: float | None = None

    def measure(self, start: StartMeasurement, now: float) -> Measurement:
        answer = super().measure(start, now)
        if answer.value is not None and answer.value >= 0.05 and self.failed_at is None:
            self.failed_at = time.monotonic()
        return answer


def _clone(api: StandIn, n: int) -> None:
    """``n - 1`` copies of the live workload (status included) and of its ReplicaSet, in the store."""
    workloads = api.store.resource(GROUP, VERSION, PLURAL)
    replicasets = api.store.resource("apps", "v1", "replicasets")
    assert workloads is not None and replicasets is not None
    original = api.store.get(workloads, NS, NAME)
    rs = api.store.list(replicasets, NS)[0][0]
    api.workloads.default = Behaviour()  # the copies' pods are ready as soon as they exist
    for i in range(1, n):
        name = f"{NAME}-{i:04d}"
        body = copy.deepcopy(original)
        body["metadata"] = {"name": name, "namespace": NS}
        made = api.store.create(workloads, NS, body)
        api.store.replace(workloads, NS, name, {**made, "status": original["status"]}, "status")
        copy_rs = copy.deepcopy(rs)
        suffix = rs["metadata"]["name"].removeprefix(NAME)
        owner = {**rs["metadata"]["ownerReferences"][0], "name": name, "uid": made["metadata"]["uid"]}
        labels = {**rs["metadata"]["labels"], WORKLOAD_LABEL: name}
        copy_rs["metadata"] = {"name": name + suffix, "labels": labels, "ownerReferences": [owner]}
        copy_rs.pop("status", None)
        try:
            api.store.create(replicasets, NS, copy_rs)
        except ApiError as exc:  # the controller was quicker: it created the copy's ReplicaSet itself
            if exc.code != 409:
                raise


def latency(n: int) -> dict[str, Any]:
    """A failed verification of one workload among ``n`` in one controller: answer -> stable restored."""
    names = [{"name": NAME}] + [{"name": f"{NAME}-{i:04d}"} for i in range(1, n)]
    passes: list[tuple[float, float]] = []  # (start, end) of each reconcile of the failing workload
    reconciled: set[str] = set()
    writes: list[tuple[float, str, str]] = []
    real = controller_module.reconcile

    def timed(client_: Any, namespace: str, name: str, now: float, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return real(client_, namespace, name, now, **kwargs)
        finally:
            reconciled.add(name)
            if name == NAME:
                passes.append((started, time.monotonic()))

    with standin_cluster() as api:
        client.CustomObjectsApi(api.client).patch_namespaced_custom_object(
            GROUP,
            VERSION,
            NS,
            "rolloutspecs",
            "orders",
            {"spec": {"spotDeployment": None, "spotDeployments": names}},
        )
        table = Answers({V1: 0.01, V2: 0.5})
        controller_module.reconcile = timed  # type: ignore[assignment]
        try:
            ctl = Controller(
                api.configuration, config("bench", resync=RESYNC), measurements_for=lambda ns, n_: table
            )
            sent = ctl.client.call_api

            def call_api(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
                if method in WRITES:
                    writes.append((time.monotonic(), method, url.split("?")[0]))
                return sent(method, url, *args, **kwargs)

            ctl.client.call_api = call_api  # type: ignore[method-assign]
            with ctl:
                wait_for(api, settled(V1))
                started = time.monotonic()
                _clone(api, n)
                while len(reconciled) < n:  # every copy seen and reconciled once
                    time.sleep(0.05)
                first_sync = time.monotonic() - started
                depth_at_change = len(ctl.queue)
                changed_at = time.monotonic()
                set_image(api, "orders:2")
                done: Callable[[RolloutState], bool] = lambda s: s.rollback is not None or s.degraded  # noqa: E731
                wait_for(api, done, timeout=120)
                depth = len(ctl.queue)
        finally:
            controller_module.reconcile = real  # type: ignore[assignment]
    failed_at = table.failed_at
    assert failed_at is not None
    canary = f"/replicasets/{NAME}-{V2}"
    restore = next(
        (t, m, u) for t, m, u in writes if t >= failed_at and (u.endswith(canary) or "/services/" in u)
    )
    took = [(a, b) for a, b in passes if b >= failed_at and a <= restore[0]]
    return {
        "name": "controller.rollback_latency",
        "rollouts": n,
        "failed_verification_to_stable_ms": round((restore[0] - failed_at) * 1000, 1),
        "change_to_failed_ms": round((failed_at - changed_at) * 1000, 1),
        "write": f"{restore[1]} {resource_of(restore[2])}",
        "reconcile_passes": len(took),
        "queue_depth_after": depth,
        "queue_depth_at_change": depth_at_change,
        "first_sync_seconds": round(first_sync, 2),
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--only", choices=[*SCENARIOS, "latency"])
    args = parser.parse_args()
    for name, scenario in SCENARIOS.items():
        if args.only in (None, name):
            print(json.dumps(run(name, scenario["values"], scenario["policy"])), flush=True)
    if args.only in (None, "latency"):
        print(json.dumps(latency(args.rollouts)), flush=True)


if __name__ == "__main__":
    main()
