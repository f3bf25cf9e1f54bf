"""A kopf operator that runs ebbtide rollouts: ebbtide's engine and Kubernetes adapter inside your operator.

kopf watches the ``EbbtideDeployment`` objects and calls ebbtide's ``reconcile(...)`` (one pass: read the
workload and its specs, step the engine, scale the ReplicaSets, switch the Services, persist the engine
state in the status with resourceVersion concurrency). Three things make kopf call it:

- the workload is created, changed (a new pod template is a new revision to roll out) or seen at start-up;
- one of its ReplicaSets changes (pods became ready, or crash-loop);
- its timer finds the engine's ``wake_at`` reached (a pause ended, a measurement is due): the requeue.

Run it with ``kopf run examples/kopf/operator.py --all-namespaces --standalone`` (the ``kopf`` extra:
``pip install 'ebbtide[kubernetes,kopf]'``), or embed ``kopf.run(...)``. Measurements come from the
``measurements`` object of the operator's memo (any ``MeasurementProvider``: the Prometheus provider of
``ebbtide.adapters.providers``, or your own); with none, every measurement is an error and a verification
fails, which the failure policy rolls back.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import kopf
import kubernetes

from ebbtide.adapters.kubernetes.adapter import WORKLOAD_LABEL
from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, VERSION, reconcile

#: how often each workload's timer looks at its wake_at (the finest requeue delay)
TICK = 0.5
_locks: dict[tuple[str, str], threading.Lock] = {}  # one reconcile of a workload at a time


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod its ServiceAccount, else the kubeconfig named by $KUBECONFIG."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage()  # the status is ebbtide's
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage()
    settings.scanning.disabled = True  # the CRDs are installed beforehand
    try:
        kubernetes.config.load_incluster_config()
        memo.api = kubernetes.client.ApiClient()
    except kubernetes.config.ConfigException:
        memo.api = kubernetes.config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"))
    memo.wake = {}  # (namespace, name) -> when the engine wants the next reconcile


def _reconcile(memo: kopf.Memo, namespace: str, name: str, logger: Any) -> None:
    with _locks.setdefault((namespace, name), threading.Lock()):
        outcome = reconcile(
            memo.api, namespace, name, time.time(), measurements=getattr(memo, "measurements", None)
        )
    memo.wake[(namespace, name)] = outcome.wake_at
    for _, note in outcome.notifications:
        logger.info(f"{note.event} {note.payload.get('revision', '')}")
    for condition in outcome.conditions:
        if condition["type"] in ("InvalidSpec", "InvalidState", "TrafficNotApplied"):
            logger.warning(f"{condition['type']}: {condition['message']}")


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def changed(namespace: str, name: str, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    _reconcile(memo, namespace, name, logger)


@kopf.on.event("apps", "v1", "replicasets", labels={WORKLOAD_LABEL: kopf.PRESENT})
def replicaset(namespace: str, labels: dict[str, str], memo: kopf.Memo, logger: Any, **_: Any) -> None:
    _reconcile(memo, namespace, labels[WORKLOAD_LABEL], logger)


@kopf.timer(GROUP, VERSION, PLURAL, interval=TICK)
def wake(namespace: str, name: str, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    due = memo.wake.get((namespace, name))
    if due is not None and due <= time.time():
        _reconcile(memo, namespace, name, logger)
