"""The Kubernetes Job provider (Argo Rollouts' and Ocean CD's ``job`` metric): run a Job, report how it ended.

``provider.job`` is ``{metadata, spec}`` of a ``batch/v1`` Job (``{{args.x}}`` substituted). Each measurement
creates one Job in the workload's namespace and waits for it:

- the Job's condition ``Complete`` → the value ``{"phase": "Complete", "job": <name>}``;
- its condition ``Failed`` → ``{"phase": "Failed", "job": <name>, "reason": ..., "message": ...}`` (the
  condition's reason and message, e.g. ``BackoffLimitExceeded``);
- neither within the wait → an Error measurement ``Job <name> did not finish within ...``, and the Job is
  deleted (with its pods) so it stops using the cluster.

A job metric without conditions is judged as Argo judges it: successful when the Job completed, failed
when it failed (``core/spec.py`` compiles it with ``result.phase == "Complete"`` and its negation).

**The name is deterministic**: ``<verification run>-<metric>-<measurement number>`` (lower-cased, cut to a
valid name with a digest of the whole), so the same measurement asked again, by a retry or by a
controller restarted mid-wait, finds the Job already created (409 AlreadyExists) and waits for that one:
one measurement never creates two Jobs. The labels ``ebbtide.dev/workload``, ``ebbtide.dev/verification``
and ``ebbtide.dev/metric`` link the Job to its workload; when the workload's uid is known the Job is owned
by it (deleting the workload deletes its Jobs).

**Where the workload is.** A :class:`~ebbtide.core.effects.StartMeasurement` does not know the cluster: the
controller's per-workload wrapper (:mod:`ebbtide.adapters.kubernetes.measuring`) adds the reserved block
``provider.job.ebbtide: {namespace, workload, uid, measurement}`` just before the provider sees it (the
persisted plan never holds it; a user cannot write it: the spec's JobQuery takes only metadata and spec).
Without it (the provider used on its own) the Job goes to the provider's ``namespace`` and is numbered by
the measurement's time.

**Finished Jobs are cleaned up.** The provider keeps the Jobs of the last :data:`KEEP` (5) measurements of
each verification run's metric: when measurement ``n`` has its answer, the Job of measurement ``n - 5`` is
deleted if it has finished (its pods with it), so a long background verification leaves five Jobs, not one
per interval. (Argo keeps the Jobs of its last five successful and five unsuccessful AnalysisRuns.) The Jobs
of earlier runs are bounded in time instead: a Job whose spec sets no ``ttlSecondsAfterFinished`` gets
:data:`TTL_AFTER_FINISHED` (one day), after which Kubernetes' TTL controller deletes it; and every Job is
owned by its workload, so deleting the workload deletes them all.

**Blocking, with its own deadline** (as the Jenkins provider): ``measure`` returns when the Job has finished
or its wait has passed. The wait is the metric's in-flight timeout less :data:`GRACE` (``core/spec.py``
gives a job metric ``spec.activeDeadlineSeconds`` + 30 s, at least 60 s), else the provider's ``timeout``
(the controller sets it just under its dispatcher's). It runs in the bounded worker pool of
:mod:`ebbtide.adapters.providers.dispatch`, which never lets it stall the engine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

import kubernetes

from ebbtide.adapters.providers.common import ProviderError, answer, block, resolved
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import MeasuredValue, Measurement

#: the reserved key of ``provider.job`` the controller fills with where the workload is
CONTEXT = "ebbtide"
#: seconds the provider answers before the metric's in-flight timeout, so its own answer wins
GRACE = 5.0
DEFAULT_TIMEOUT = 25.0
DEFAULT_INTERVAL = 1.0
#: finished Jobs kept per verification run and metric (the newest measurements')
KEEP = 5
#: ``spec.ttlSecondsAfterFinished`` of a Job whose spec does not set one: a day to read its logs
TTL_AFTER_FINISHED = 86400
LABELS = ("ebbtide.dev/workload", "ebbtide.dev/verification", "ebbtide.dev/metric")
_MAX_NAME = 63


class JobProvider:
    """Answers ``StartMeasurement`` effects whose metric has a ``job`` provider block (blocking)."""

    def __init__(
        self,
        client: kubernetes.client.ApiClient,
        *,
        namespace: str = "default",
        timeout: float = DEFAULT_TIMEOUT,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        keep: int = KEEP,
    ) -> None:
        self.batch = kubernetes.client.BatchV1Api(client)
        self.namespace = namespace
        self.timeout = timeout
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self.keep = keep

    def measure(self, start: StartMeasurement, now: float) -> Measurement:
        return answer(start, lambda: self._measure(start, now))

    def wait_for(self, start: StartMeasurement) -> float:
        """Seconds this measurement waits for its Job."""
        own = start.metric.timeout
        return self.timeout if own is None else max(own - GRACE, 1.0)

    def _measure(self, start: StartMeasurement, now: float) -> MeasuredValue:
        config = block(start, "job")
        context = config.get(CONTEXT) or {}
        namespace = str(context.get("namespace") or self.namespace)
        body = job_body(start, config, context, now)
        name = body["metadata"]["name"]
        deadline = self.clock() + self.wait_for(start)
        self._create(namespace, body)
        while True:
            job = self._call(f"reading Job {name}", self.batch.read_namespaced_job, name, namespace)
            value = outcome(name, job.to_dict().get("status") or {})
            if value is not None:
                self._trim(namespace, start, context.get("measurement"))
                return value
            if self.clock() + self.interval >= deadline:
                self._delete(namespace, name)
                raise ProviderError(
                    f"Job {namespace}/{name} did not finish within {self.wait_for(start):g}s (deleted)"
                )
            self.sleep(self.interval)

    def _create(self, namespace: str, body: dict[str, Any]) -> None:
        try:
            self.batch.create_namespaced_job(namespace, body)  # type: ignore[arg-type]
        except kubernetes.client.ApiException as exc:
            if exc.status != 409:  # 409: this measurement's Job exists already (a retry): wait for it
                raise ProviderError(
                    f"cannot create Job {body['metadata']['name']}: {_api_error(exc)}"
                ) from None
        except Exception as exc:
            raise ProviderError(f"cannot reach the API server: {exc}") from None

    def _trim(self, namespace: str, start: StartMeasurement, number: Any) -> None:
        """Delete the finished Job of measurement ``number - keep`` (best effort: a failure leaves it to its
        TTL). Without a measurement number (the provider used on its own) nothing is trimmed."""
        if not isinstance(number, int) or number - self.keep < 1:
            return
        old = job_name(start.verification, start.metric.name, number - self.keep)
        with contextlib.suppress(Exception):
            job = self.batch.read_namespaced_job(old, namespace)
            if outcome(old, job.to_dict().get("status") or {}) is not None:
                self._delete(namespace, old)

    def _delete(self, namespace: str, name: str) -> None:
        with contextlib.suppress(Exception):  # best effort: the workload owns the Job, which goes with it
            self.batch.delete_namespaced_job(name, namespace, propagation_policy="Background")

    @staticmethod
    def _call(what: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except kubernetes.client.ApiException as exc:
            raise ProviderError(f"{what}: {_api_error(exc)}") from None
        except Exception as exc:
            raise ProviderError(f"{what}: cannot reach the API server: {exc}") from None


def job_body(
    start: StartMeasurement, config: dict[str, Any], context: dict[str, Any], now: float
) -> dict[str, Any]:
    """The Job to create: the metric's metadata and spec, the deterministic name, the labels, the owner."""
    spec = config.get("spec")
    if not isinstance(spec, dict) or not spec.get("template"):
        raise ProviderError("provider.job.spec must be a Job spec with a pod template")
    metadata = dict(config.get("metadata") or {})
    resolved("provider.job", {"metadata": metadata, "spec": spec})
    number = context.get("measurement")
    number = int(number) if isinstance(number, int) else int(now * 1000)
    workload = str(context.get("workload") or "")
    labels = {**(metadata.get("labels") or {})}
    labels.update(zip(LABELS, (workload, start.verification, start.metric.name), strict=True))
    metadata.update(
        name=job_name(start.verification, start.metric.name, number),
        labels={k: _label_value(v) for k, v in labels.items() if v},
    )
    metadata.pop("namespace", None)  # the Job runs beside its workload
    metadata.pop("generateName", None)
    if workload and context.get("uid"):
        metadata["ownerReferences"] = [
            {
                "apiVersion": "ebbtide.dev/v1alpha1",
                "kind": "EbbtideDeployment",
                "name": workload,
                "uid": str(context["uid"]),
                "blockOwnerDeletion": False,
            }
        ]
    spec = {"ttlSecondsAfterFinished": TTL_AFTER_FINISHED, **spec}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}


def job_name(verification: str, metric: str, number: int) -> str:
    """``<verification>-<metric>-<number>`` as a DNS label; a long one is cut, keeping a digest of all."""
    whole = f"{verification}-{metric}-{number}"
    name = re.sub(r"[^a-z0-9-]+", "-", whole.lower()).strip("-")
    if len(name) <= _MAX_NAME and name == whole:
        return name
    digest = hashlib.sha256(whole.encode()).hexdigest()[:8]
    return f"{name[: _MAX_NAME - 9].rstrip('-')}-{digest}"


def outcome(name: str, status: dict[str, Any]) -> MeasuredValue:
    """The measured value of a finished Job; None while it runs."""
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return {"phase": "Complete", "job": name}
        if cond.get("type") == "Failed":
            return {
                "phase": "Failed",
                "job": name,
                "reason": str(cond.get("reason") or ""),
                "message": str(cond.get("message") or ""),
            }
    return None


def _label_value(value: Any) -> str:
    text = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(value))[:63]
    return text.strip("-_.")


def _api_error(exc: kubernetes.client.ApiException) -> str:
    try:
        message = json.loads(exc.body or "{}").get("message")
    except (TypeError, ValueError, AttributeError):
        message = None
    return f"{exc.status} {message or exc.reason}"
