"""External verification answers on a Kubernetes workload: recorded on the object, consumed by reconcile.

``ebbtide verify ROLLOUT --passed`` (and the HTTP endpoint through :class:`KubernetesStore`) writes the
answer as the annotation ``ebbtide.dev/external-verification`` of the ``EbbtideDeployment``:
``{"id": ..., "status": "passed" | "failed", "verifications": [run ids]}``, naming the verification runs that
waited when it was written, so Kubernetes RBAC (patch on the workload) decides who may answer.

Each reconcile (:func:`consume`) answers every named run that still waits; the engine counts an answer once
(a run answered is no longer in flight), so the annotation needs no removal and a reconcile repeated after a
crash answers nothing twice. The workload's ``ExternalVerification`` condition says what became of the
answer, decided by the first reconcile that read it and kept after: ``Accepted`` (the engine took it) or
``Ignored`` (no named run waited any more, e.g. its fallback fired first: a late answer changes nothing).

The measurement provider of the controller never answers an external metric itself (:func:`skip_external`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import kubernetes
from pydantic import ValidationError

from ebbtide.adapters.base import MeasurementProvider, PolledProvider
from ebbtide.adapters.driver import Driver
from ebbtide.adapters.external import NotWaiting, Status, answers, is_external, parse_answer, why_not_waiting
from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import Measurement
from ebbtide.core.state import RolloutState

from .routers.base import Obj

ANNOTATION = "ebbtide.dev/external-verification"
CONDITION = "ExternalVerification"
GROUP, VERSION, PLURAL = "ebbtide.dev", "v1alpha1", "ebbtidedeployments"


class NoRollout(LookupError):
    """The workload does not exist, or has no engine state yet."""


def state_of(obj: Obj) -> RolloutState | None:
    raw = (obj.get("status") or {}).get("engineState")
    if raw is None:
        return None
    try:
        return RolloutState.from_json(json.dumps(raw))
    except (ValidationError, TypeError, ValueError):
        return None


def read(client: kubernetes.client.ApiClient, namespace: str, name: str) -> Obj:
    api = kubernetes.client.CustomObjectsApi(client)
    try:
        obj: Obj = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)  # type: ignore[assignment]
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            raise NoRollout(f"no EbbtideDeployment {namespace}/{name}") from None
        raise
    return obj


def record_answer(
    client: kubernetes.client.ApiClient, namespace: str, name: str, events: list[Measurement], status: Status
) -> str:
    """Write the answer for the runs of ``events`` on the workload; returns the answer's id."""
    answer_id = uuid.uuid4().hex
    value = {"id": answer_id, "status": status, "verifications": sorted({e.verification for e in events})}
    patch = {"metadata": {"annotations": {ANNOTATION: json.dumps(value, sort_keys=True)}}}
    api = kubernetes.client.CustomObjectsApi(client)
    api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, patch)
    return answer_id


def answer(
    client: kubernetes.client.ApiClient, namespace: str, name: str, status: Status
) -> list[Measurement]:
    """Answer the external verifications waiting on a workload now: the events the reconciler will send.
    :class:`NoRollout` or :class:`NotWaiting` (nothing written) when there is nothing to answer."""
    state = state_of(read(client, namespace, name))
    if state is None:
        raise NoRollout(f"EbbtideDeployment {namespace}/{name} has no engine state yet (not reconciled)")
    events = answers(state, status)
    record_answer(client, namespace, name, events, status)
    return events


def consume(obj: Obj, driver: Driver, now: float, generation: int | None) -> Obj | None:
    """Send the recorded answer to the runs it names that still wait; the ``ExternalVerification``
    condition reporting what became of it (None: no answer recorded)."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        status = parse_answer({"status": data.get("status")})
        named = [str(v) for v in data.get("verifications") or []]
        answer_id = str(data.get("id", ""))
    except (ValueError, AttributeError) as exc:
        return _condition("Invalid", f"annotation {ANNOTATION}: {exc}", generation)
    if not named:
        return _condition("Invalid", f"annotation {ANNOTATION}: names no verification", generation)
    about = f"answer {answer_id} ({status})"
    driver.pump(now)  # a deadline due now acts first: an answer read after it is late, as in the simulator
    try:
        events = answers(driver.state, status, only=named)
    except NotWaiting:
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond.get("type") == CONDITION and str(cond.get("message", "")).startswith(about):
                return {**cond, "observedGeneration": generation}  # decided by an earlier reconcile
        why = why_not_waiting(driver.state, set(named))
        return _condition("Ignored", f"{about} came too late: {why}", generation)
    for event in events:
        driver.handle(event, now)
    return _condition("Accepted", f"{about} was taken", generation)


def _condition(reason: str, message: str, generation: int | None) -> Obj:
    return {
        "type": CONDITION,
        "status": "True" if reason == "Accepted" else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


@dataclass
class _SkipExternal:
    inner: MeasurementProvider | None

    def measure(self, start: StartMeasurement, now: float) -> Measurement | None:
        if is_external(start.metric.provider):
            return None  # answered from outside (consume), or by the fallback
        if self.inner is None:
            return Measurement(
                verification=start.verification, metric=start.metric.name, error="no measurement provider"
            )
        return self.inner.measure(start, now)

    def poll(self) -> list[Measurement]:
        """The inner provider's asynchronous answers (a dispatcher scope's): the adapter drains them."""
        return self.inner.poll() if isinstance(self.inner, PolledProvider) else []


def skip_external(inner: MeasurementProvider | None) -> MeasurementProvider:
    """``inner`` for every metric but the external ones, which wait for their outside answer."""
    return _SkipExternal(inner)


@dataclass
class KubernetesStore:
    """The HTTP endpoint's :class:`~ebbtide.adapters.external.RolloutStore` on a cluster."""

    client: Any

    def state(self, namespace: str, name: str) -> RolloutState | None:
        try:
            return state_of(read(self.client, namespace, name))
        except NoRollout:
            return None

    def answer(self, namespace: str, name: str, events: list[Measurement]) -> None:
        status = str(events[0].value)
        record_answer(self.client, namespace, name, events, "passed" if status == "passed" else "failed")
