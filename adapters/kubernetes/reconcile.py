"""One reconcile of one ``EbbtideDeployment``: read, decide with the engine, act, persist.

``reconcile(client, namespace, name, now)``:

1. reads the workload and validates it with :class:`~ebbtide.adapters.kubernetes.workload.Workload`; a
   ``workloadRef`` workload reads its template and selector from the Deployment it adopts, which is scaled
   down once the adopted revision serves (:mod:`.adoption`);
2. reads the spec kinds of its namespace (RolloutSpec, Strategy, VerificationTemplate, VerificationProvider),
   strips what the API server adds (uid, resourceVersion, status, ...), validates them with core's models and
   compiles the RolloutSpec naming the workload; any problem is an ``InvalidSpec`` condition naming the
   field and the reason, and nothing is scaled;
3. loads the engine state from ``status.engineState`` (a status edited into something that is not a state is
   an ``InvalidState`` condition, and nothing is done);
4. restores a :class:`~ebbtide.adapters.driver.Driver` from it (re-applying the whole desired world, level
   based), sends a ``Deploy`` when the pod template's hash is not the state's desired revision (else a
   ``SpecChanged`` when the compiled plan differs from the state's), and pumps the observations;
5. writes the new state, a summary and the conditions to the status subresource with the resourceVersion
   read in 1, when it says something new (:mod:`.statuswrite`: not when only ready counts climbed while
   pods start; ``Outcome.written`` tells). A 409 (on the status or on any write the effects make)
   re-reads and recomputes from the fresh object, bounded by ``attempts`` (then
   :class:`ReconcileConflict`: requeue). Any other API error propagates, nothing is persisted, and the
   next reconcile starts again from the persisted state.

When the router cannot express the traffic a decision wants, the decision is not persisted: the previous
state stays, a ``TrafficNotApplied`` condition says why, and the next reconcile tries again (the step waits).
Returns the :class:`Outcome`, whose ``wake_at`` is when to reconcile again at the latest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import kubernetes
from pydantic import ValidationError

from ebbtide.adapters.base import MeasurementProvider
from ebbtide.adapters.driver import Driver
from ebbtide.core.effects import Notify, ScaleRevision, SetTraffic
from ebbtide.core.engine import desired_effects, initial_state
from ebbtide.core.events import Deploy, SpecChanged
from ebbtide.core.plan import Plan
from ebbtide.core.spec import Document, Problem, SpecError, SpecSet, compile_plan, loc_path
from ebbtide.core.state import RolloutState

from . import actions, adoption
from .adapter import KubernetesAdapter, Router
from .cache import ApiReads, Reads, versions_of
from .external import consume, skip_external
from .history import keep
from .measuring import Where, in_workload, unpersisted
from .names import GROUP as GROUP  # re-exported: callers import the names from here too
from .names import PLURAL as PLURAL
from .names import SPEC_PLURALS as SPEC_PLURALS
from .names import VERSION as VERSION
from .routers.base import Obj
from .routers.services import replica_ratio
from .secrets import SecretMissing, secret_args
from .statuswrite import worth_writing
from .summary import conditions_of, live_history, summary_of
from .workload import Workload

#: metadata the API server adds; core's models describe what a user writes
SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")


class ReconcileConflict(RuntimeError):
    """Every attempt to write the status met a newer resourceVersion."""


@dataclass
class Outcome:
    wake_at: float | None
    state: RolloutState | None
    conditions: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 1
    #: the Notify effects of the persisted decisions (sent as Events after the status write)
    notifications: list[tuple[float, Notify]] = field(default_factory=list)
    #: refused for a reason the workload's own events will not clear, retried with backoff and counted under
    #: this name: ``secret`` (a Secret the spec names is missing), ``workload-ref`` (the Deployment a
    #: workloadRef names is missing or unusable); None: not refused for such a reason
    retry: str | None = None
    #: whether the status was written (False: nothing worth a write, see :mod:`.statuswrite`)
    written: bool = True
    #: whether the status holds this reconcile's decision (False: refused, e.g. traffic a router cannot
    #: express: the persisted state stays as it was, and the results the decision took wait for the next)
    decided: bool = True


def reconcile(
    client: kubernetes.client.ApiClient,
    namespace: str,
    name: str,
    now: float,
    *,
    measurements: MeasurementProvider | None = None,
    router: Router = replica_ratio,
    attempts: int = 8,
    reads: Reads | None = None,
) -> Outcome:
    """``reads``: where the cluster is read from (:mod:`.cache`; the API server when not given). After a
    conflict the workload is read afresh from the API server."""
    api = kubernetes.client.CustomObjectsApi(client)
    reads = reads if reads is not None else ApiReads(client)
    held = unpersisted(measurements)  # polled results count once a written status records them
    try:
        for attempt in range(1, attempts + 1):
            obj = reads.workload(namespace, name) if attempt == 1 else reads.fresh(PLURAL, namespace, name)
            if held is not None:
                held.again()
            written = _attempt(api, reads, obj, now, held, router)
            if written is not None:
                outcome, adapter = written
                outcome.attempts = attempt
                if held is not None and outcome.decided:  # written, or nothing new to write
                    held.persisted()
                return _announce(outcome, adapter)
    finally:
        if held is not None:
            held.give_back()  # a reconcile that gave up: the next one records them
    raise ReconcileConflict(f"{namespace}/{name}: status write conflicted {attempts} times")


def _attempt(
    api: kubernetes.client.CustomObjectsApi,
    reads: Reads,
    obj: Obj,
    now: float,
    measurements: MeasurementProvider | None,
    router: Router,
) -> tuple[Outcome, KubernetesAdapter | None] | None:
    """Decide over ``obj`` and write the status when worth it; None: the write conflicted (409)."""
    meta = obj["metadata"]
    try:
        outcome, status, adapter = _decide(api.api_client, reads, obj, now, measurements, router)
        outcome.written = _worth_writing(obj, status, adapter)
        if outcome.written:
            body = {**obj, "status": status}  # carries the resourceVersion read: a newer one: 409
            reads.wrote(PLURAL, _write_status(api, meta["namespace"], meta["name"], body))
    except kubernetes.client.ApiException as exc:
        if exc.status == 409:
            return None
        raise
    return outcome, adapter


def _announce(outcome: Outcome, adapter: KubernetesAdapter | None) -> Outcome:
    """After the status write: the Events of the persisted decisions, and the history trimmed."""
    if adapter is not None:
        outcome.notifications = list(adapter.notifications)
        adapter.emit()
        if outcome.state is not None:  # once persisted: the history beyond revisionHistoryLimit
            adapter.trim(keep(outcome.state))
    return outcome


def _worth_writing(obj: Obj, status: Obj, adapter: KubernetesAdapter | None) -> bool:
    """A decision that announces something is always persisted first; else only a status that says
    something new (ready counts climbing while pods start are not news: :mod:`.statuswrite`)."""
    if adapter is not None and adapter.notifications:
        return True
    return worth_writing(obj.get("status") or {}, status)


def _write_status(api: kubernetes.client.CustomObjectsApi, namespace: str, name: str, body: Obj) -> Obj:
    """A 409 after which the object still has the resourceVersion sent changed nothing (a conflict that
    is not one: an injected storm, a proxy): the same write is sent again, rather than deciding afresh
    over a world the unpersisted decision has already changed. A real conflict (a newer version) raises."""
    for attempt in range(3):
        try:
            written: Obj = api.replace_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, body
            )  # type: ignore[assignment]
            return written
        except kubernetes.client.ApiException as exc:
            if exc.status != 409 or attempt == 2:
                raise
            fresh: Obj = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)  # type: ignore[assignment]
            if fresh["metadata"].get("resourceVersion") != body["metadata"].get("resourceVersion"):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _decide(
    client: kubernetes.client.ApiClient,
    reads: Reads,
    obj: Obj,
    now: float,
    measurements: MeasurementProvider | None,
    router: Router,
) -> tuple[Outcome, Obj, KubernetesAdapter | None]:
    status: Obj = dict(obj.get("status") or {})
    generation = obj["metadata"].get("generation")
    try:
        workload = Workload.model_validate(_strip(obj))
    except ValidationError as exc:
        err = exc.errors()[0]
        reason = f"EbbtideDeployment {obj['metadata']['name']}: {loc_path(err['loc'])}: {err['msg']}"
        return _refused(status, "InvalidSpec", reason, generation)
    adopted = None
    if workload.spec.workload_ref is not None:  # the template and selector come from the Deployment
        try:
            adopted = adoption.resolve(client, obj, workload)
        except adoption.RefProblem as exc:
            adoption.announce(client, obj, exc)
            refused = _refused(status, "InvalidSpec", str(exc), generation)
            refused[0].retry = "workload-ref"  # a Deployment created later wakes nothing: back off
            return refused
        router = adoption.holding(client, adopted, router)
    shaped = obj if adopted is None else adopted.workload
    replicas = workload.spec.replicas if adopted is None else adopted.replicas
    try:
        specs = _specs(reads, obj["metadata"]["namespace"])
        rollout = _rollout_for(specs, workload.metadata.name)
        plan = _with_workload_limits(compile_plan(specs, rollout, replicas=replicas), workload)
        secrets = secret_args(client, obj["metadata"]["namespace"], specs, rollout, plan)
    except SpecError as exc:
        refused = _refused(status, "InvalidSpec", "; ".join(str(p) for p in exc.problems), generation)
        if isinstance(exc, SecretMissing):  # a Secret created later wakes nothing: back off
            refused[0].retry = "secret"
        return refused
    raw = status.get("engineState")
    try:
        state = initial_state(plan) if raw is None else RolloutState.from_json(json.dumps(raw))
    except (ValidationError, TypeError, ValueError) as exc:
        return _refused(
            status, "InvalidState", f"status.engineState is not an engine state: {exc}", generation
        )
    traffic = specs.rollout_specs[rollout].spec.traffic
    engine: list[Driver] = []  # its state numbers each measurement (the Job provider's names)
    measuring = in_workload(measurements, _where(obj), secrets, lambda: engine[0].state if engine else state)
    adapter = KubernetesAdapter(
        client,
        shaped,
        stable_service=traffic.stable_service if traffic else None,
        canary_service=traffic.canary_service if traffic else None,
        measurements=skip_external(measuring),  # external metrics wait for their outside answer
        router=router,
        reads=reads,
    )
    adapter.stable_hint = state.stable
    adapter.deferred = True
    driver = Driver.restore(adapter, state.to_json(), now, record=False)
    engine.append(driver)
    acted = actions.consume(obj, driver, now, adapter.revision)  # the operator actions recorded on the object
    if actions.deploys(obj, acted, adapter.revision) and driver.state.desired != adapter.revision:
        driver.send(Deploy(revision=adapter.revision, plan=plan), now)
    elif plan != state.plan and plan != state.next_plan:
        driver.send(SpecChanged(plan=plan), now)  # the engine applies it when the running rollout ends
    answered = consume(obj, driver, now, generation)  # an external verification's recorded answer
    driver.pump(now)
    new = driver.state
    conditions: list[Obj] = [] if answered is None else [answered]
    unexpressed = adapter.cannot_express
    if unexpressed is not None:
        # the decision that wanted this traffic is not persisted: the step waits, the old world stays
        new, acted = state, {}  # not persisted: the actions stay pending for the next reconcile
        conditions.append(_condition("TrafficNotApplied", "CannotExpress", unexpressed, generation))
        adapter = _replay(client, shaped, state, now, adapter)
    adapter.stable_hint = new.stable
    adapter.flush()
    if adopted is not None:  # once the adopted revision serves (the Services pinned to it)
        adoption.scale_down(client, adopted, new.stable or adapter.revision)
    status = {
        **status,
        "engineState": json.loads(new.to_json()),
        "observedGeneration": generation,
        **acted,
        **summary_of(new),
        "liveHistory": live_history(status, new, now),
        "conditions": conditions_of(new, conditions, generation),
    }
    outcome = Outcome(
        wake_at=driver.wake_at, state=new, conditions=status["conditions"], decided=unexpressed is None
    )
    return outcome, status, adapter


def _replay(
    client: kubernetes.client.ApiClient, obj: Obj, state: RolloutState, now: float, was: KubernetesAdapter
) -> KubernetesAdapter:
    """A deferred adapter holding only the persisted state's world (what a refused decision leaves)."""
    adapter = KubernetesAdapter(
        client,
        obj,
        stable_service=was.stable_service,
        canary_service=was.canary_service,
        measurements=was.measurements,
        router=was.router,
        reads=was.reads,
    )
    adapter.deferred = True
    for effect in desired_effects(state):
        if isinstance(effect, ScaleRevision | SetTraffic):
            adapter.apply(effect, now)
    return adapter


def _where(obj: Obj) -> Where:
    meta = obj["metadata"]
    return Where(meta["namespace"], meta["name"], meta.get("uid"))


def _strip(obj: Obj) -> Obj:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_FIELDS}
    return {k: v for k, v in obj.items() if k != "status"} | {"metadata": meta}


def _specs(reads: Reads, namespace: str) -> SpecSet:
    listed = {plural: reads.specs(namespace, plural) for plural in SPEC_PLURALS.values()}
    versions = tuple(versions_of(items) for items in listed.values())
    return reads.derived(("specs", namespace), versions, lambda: _spec_set(listed))


def _spec_set(listed: dict[str, list[Obj]]) -> SpecSet:
    docs: list[Document] = []
    for plural, items in listed.items():
        for item in sorted(items, key=lambda i: i["metadata"]["name"]):
            body = _strip(item)
            body["metadata"] = {
                k: v
                for k, v in body["metadata"].items()
                if k in ("name", "namespace", "labels", "annotations")
            }
            docs.append(Document(f"{plural}/{item['metadata']['name']}", 1, body))
    return SpecSet.from_documents(docs)


def _rollout_for(specs: SpecSet, workload: str) -> str:
    for name, r in sorted(specs.rollout_specs.items()):
        refs = [r.spec.spot_deployment, r.spec.workload, *(r.spec.spot_deployments or ())]
        if any(ref is not None and ref.name == workload for ref in refs):
            return name
    raise SpecError([Problem("<cluster>", 0, "EbbtideDeployment", workload, "", "no RolloutSpec names it")])


def _condition(kind: str, reason: str, message: str, generation: int | None) -> Obj:
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def _refused(
    status: Obj, kind: str, message: str, generation: int | None
) -> tuple[Outcome, Obj, KubernetesAdapter | None]:
    """Nothing is done: the status keeps its state and carries a condition saying why."""
    cond = _condition(kind, kind, message, generation)
    kept = [c for c in status.get("conditions") or [] if c.get("type") not in ("InvalidSpec", "InvalidState")]
    out = {**status, "conditions": [*kept, cond], "message": message, "observedGeneration": generation}
    return Outcome(wake_at=None, state=None, conditions=out["conditions"]), out, None


def _with_workload_limits(plan: Plan, workload: Workload) -> Plan:
    """The workload's own ``progressDeadlineSeconds`` and ``revisionHistoryLimit``, when it sets them, win
    over the RolloutSpec's (they mean on it what they mean on a Deployment, as on an Argo Rollout)."""
    given = workload.spec.model_fields_set
    update: dict[str, float | int] = {}
    if "progress_deadline_seconds" in given:
        update["progress_deadline"] = float(workload.spec.progress_deadline_seconds)
    if "revision_history_limit" in given:
        update["revision_history_limit"] = workload.spec.revision_history_limit
    return plan.model_copy(update=update) if update else plan
