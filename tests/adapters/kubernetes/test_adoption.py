"""``workloadRef``: an EbbtideDeployment adopting a running Deployment, reconciled by hand against the
stand-in (its Deployment and ReplicaSet controllers stepped between reconciles).

The oracle is the stand-in's own history: every write the API server took, replayed in order, gives the pods
and Services after each one; at no point may fewer pods be ready, or fewer ready pods be selected by the
stable Service, than the Deployment had ready before the adoption began."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client

from ebbtide.adapters.kubernetes.adapter import HASH_LABEL, WORKLOAD_LABEL, revision_of
from ebbtide.adapters.kubernetes.adoption import EVENT_REASON, REPLICAS_ANNOTATION
from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, VERSION, reconcile
from ebbtide.core.state import RolloutState

from .fixtures import (
    NAME,
    NS,
    Table,
    get,
    install,
    replicas,
    rollout_spec,
    run,
    selectors,
    standin,
    state,
    strategy,
    template,
    workload,
)
from .standin import Behaviour, StandIn

WEB = "web"  # the adopted Deployment
SPECS = [
    strategy("steps", {"setWeight": 40}, {"pause": {"duration": "10s"}}),
    rollout_spec("steps", scaleDownDelaySeconds=0),
]
V1, V2 = revision_of(template("orders:1")), revision_of(template("orders:2"))


def deployment(image: str, replicas: int = 3, **selector: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": WEB},
        "spec": {
            "replicas": replicas,
            "selector": selector or {"matchLabels": {"app": "orders"}},
            "template": template(image),
        },
    }


def adopting(**ref: Any) -> dict[str, Any]:
    return workload(None, replicas=None, workloadRef={"name": WEB, **ref})


def start(api: StandIn, ref: dict[str, Any] | None = None, with_deployment: bool = True) -> None:
    """The Deployment ``web`` at ``orders:1`` with 3 ready pods, then the workload adopting it."""
    install(api.client, NS, SPECS)
    if with_deployment:
        client.AppsV1Api(api.client).create_namespaced_deployment(NS, deployment("orders:1"))
        until_ready(api)
    client.CustomObjectsApi(api.client).create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, adopting(**(ref or {}))
    )


def until_ready(api: StandIn, n: int = 3) -> None:
    """Until the Deployment has ``n`` ready pods (the stand-in stepped by hand, or on its own thread)."""
    deadline = time.monotonic() + 10
    while deployment_ready(api) < n:
        assert time.monotonic() < deadline, "the Deployment's pods did not become ready"
        if api.workloads.stopped:
            api.workloads.sync()
        else:
            time.sleep(0.01)


def read_deployment(api: StandIn) -> Any:
    return client.AppsV1Api(api.client).read_namespaced_deployment(WEB, NS)


def deployment_ready(api: StandIn) -> int:
    status = read_deployment(api).status
    return (status.ready_replicas or 0) if status else 0


def live(rev: str, n: int = 3) -> Any:
    return lambda s: s.phase == "live" and s.stable == rev and s.ready.get(rev) == n


def handed_over(rev: str, n: int = 3) -> Any:
    def check(s: RolloutState, api: StandIn) -> bool:
        return (
            live(rev, n)(s)
            and read_deployment(api).spec.replicas == 0
            and selectors(api.client)["orders-stable"] == rev
        )

    return check


def lowest_ready(api: StandIn, since_ready: int = 3, until: int | None = None) -> tuple[int, int]:
    """(ready pods of the app, ready pods the stable Service selects): the lowest after any write, from
    the first moment ``since_ready`` pods were ready on, up to resourceVersion ``until`` (the oracle: the
    stand-in's history, replayed)."""
    pods: dict[str, dict[str, Any]] = {}
    services: dict[str, dict[str, str]] = {}
    lowest: tuple[int, int] | None = None
    for event in api.store.history():
        if until is not None and event.rv > until:
            break
        kind, meta = event.resource[2], event.object["metadata"]
        if kind == "pods":
            if event.type == "DELETED":
                pods.pop(meta["name"], None)
            else:
                pods[meta["name"]] = event.object
        elif kind == "services" and event.type != "DELETED":
            services[meta["name"]] = dict(event.object["spec"].get("selector") or {})
        else:
            continue
        ready = [p for p in pods.values() if _ready(p) and p["metadata"]["labels"].get("app") == "orders"]
        stable = services.get("orders-stable", {})
        served = [p for p in ready if all(p["metadata"]["labels"].get(k) == v for k, v in stable.items())]
        if lowest is None and len(ready) < since_ready:
            continue
        now = (len(ready), len(served))
        lowest = now if lowest is None else (min(lowest[0], now[0]), min(lowest[1], now[1]))
    assert lowest is not None, "never ready"
    return lowest


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def until_handed_over(api: StandIn, now: float = 0.0) -> float:
    check = handed_over(V1)
    return run(api, now, lambda s: check(s, api), limit=60)


@pytest.fixture
def api() -> Any:
    with standin(background=False, history=100_000) as api:
        api.workloads.by_name[f"{NAME}-{V1}"] = Behaviour(ready_per_sync=1)  # adopted pods: one a sync
        yield api


def test_adoption_hands_over_without_a_dip_in_ready_pods(api: StandIn) -> None:
    start(api)
    until_handed_over(api)
    # the oracle: every state the cluster went through
    assert lowest_ready(api) == (3, 3)
    # the adopted revision: the Deployment's template and replicas (3), owned by the workload
    rs = client.AppsV1Api(api.client).read_namespaced_replica_set(f"{NAME}-{V1}", NS)
    assert rs.spec.replicas == 3 and rs.metadata.owner_references[0].kind == "EbbtideDeployment"
    assert rs.spec.template.spec.containers[0].image == "orders:1"
    assert rs.spec.template.metadata.labels == {"app": "orders", HASH_LABEL: V1}
    # the Deployment stays, at 0, its replicas before the adoption recorded
    dep = read_deployment(api)
    assert dep.spec.replicas == 0 and dep.metadata.annotations == {REPLICAS_ANNOTATION: "3"}
    assert get(api.client)["status"]["phase"] == "live"


def test_the_services_are_pinned_and_the_deployment_scaled_only_once_the_adopted_pods_are_ready(
    api: StandIn,
) -> None:
    start(api)
    steps: list[tuple[int, int, str | None]] = []
    now = 0.0
    for _ in range(12):
        reconcile(api.client, NS, NAME, now)
        rs = client.AppsV1Api(api.client).list_namespaced_replica_set(NS, label_selector=WORKLOAD_LABEL).items
        ready = sum((r.status.ready_replicas or 0) for r in rs if r.status)
        steps.append((ready, read_deployment(api).spec.replicas, selectors(api.client)["orders-stable"]))
        api.workloads.sync()
        now += 5
    # while fewer than 3 adopted pods are ready: the Deployment keeps 3, the stable Service is not pinned
    assert all(dep == 3 and pinned is None for ready, dep, pinned in steps if ready < 3)
    assert [ready for ready, _, _ in steps][:4] == [0, 1, 2, 3]
    assert steps[-1] == (3, 0, V1)


def test_a_template_change_on_the_deployment_starts_a_rollout(api: StandIn) -> None:
    table = Table({V1: 0.01, V2: 0.01})
    start(api)
    now = until_handed_over(api)
    client.AppsV1Api(api.client).patch_namespaced_deployment(
        WEB, NS, {"spec": {"template": template("orders:2")}}
    )
    weights: list[dict[str, int]] = []
    now = run(api, now + 5, live(V2), table, each=lambda _: weights.append(state(api.client).weights))  # type: ignore[union-attr]
    assert any(0 < w.get(V2, 0) < 100 for w in weights)  # through the canary step, not at once
    assert replicas(api.client) == {V1: 0, V2: 3}
    assert selectors(api.client) == {"orders-stable": V2, "orders-canary": V2}
    assert read_deployment(api).spec.replicas == 0  # it stays the template source, with no pods
    # the stable Service moved to V2 before V1 was asked to scale to 0 (it never selects only leaving pods)
    moved = first_write(
        api, "services", "orders-stable", lambda o: o["spec"]["selector"].get(HASH_LABEL) == V2
    )
    scaled_down = first_write(api, "replicasets", f"{NAME}-{V1}", lambda o: o["spec"]["replicas"] == 0)
    assert moved < scaled_down


def first_write(api: StandIn, kind: str, name: str, holds: Any) -> int:
    """The resourceVersion of the first write that left ``kind``/``name`` with ``holds(object)`` true."""
    for event in api.store.history():
        meta = event.object["metadata"]
        if (
            event.resource[2] == kind
            and meta["name"] == name
            and event.type != "DELETED"
            and holds(event.object)
        ):
            return event.rv
    raise AssertionError(f"no write left {kind}/{name} so")


def test_a_missing_deployment_is_a_condition_and_an_event_and_is_adopted_once_created(api: StandIn) -> None:
    start(api, with_deployment=False)
    for now in (0.0, 5.0):
        outcome = reconcile(api.client, NS, NAME, now)
        assert outcome.retry == "workload-ref" and outcome.state is None  # the controller backs off
    status = get(api.client)["status"]
    (cond,) = [c for c in status["conditions"] if c["type"] == "InvalidSpec"]
    assert cond["message"] == f"spec.workloadRef.name: Deployment {WEB} not found in namespace {NS}"
    events = client.CoreV1Api(api.client).list_namespaced_event(NS).items
    assert [(e.reason, e.type, e.message) for e in events] == [(EVENT_REASON, "Warning", cond["message"])]
    assert replicas(api.client) == {}  # nothing scaled
    client.AppsV1Api(api.client).create_namespaced_deployment(NS, deployment("orders:1"))
    until_ready(api)
    until_handed_over(api, 10.0)
    assert not [c for c in get(api.client)["status"]["conditions"] if c["type"] == "InvalidSpec"]


def test_a_deployment_selecting_by_expressions_is_refused_naming_the_field(api: StandIn) -> None:
    install(api.client, NS, SPECS)
    body = deployment("orders:1", matchLabels={"app": "orders"})
    body["spec"]["selector"]["matchExpressions"] = [{"key": "tier", "operator": "Exists"}]
    client.AppsV1Api(api.client).create_namespaced_deployment(NS, body)
    client.CustomObjectsApi(api.client).create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, adopting()
    )
    outcome = reconcile(api.client, NS, NAME, 0.0)
    assert outcome.retry == "workload-ref"
    assert get(api.client)["status"]["message"] == (
        f"spec.workloadRef.name: Deployment {WEB}: spec.selector must be matchLabels only "
        "(they label each revision's pods)"
    )
    assert replicas(api.client) == {}


def test_a_selector_differing_from_the_deployments_is_refused(api: StandIn) -> None:
    start(api)
    client.CustomObjectsApi(api.client).patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, NAME, {"spec": {"selector": {"matchLabels": {"app": "other"}}}}
    )
    reconcile(api.client, NS, NAME, 0.0)
    assert (
        get(api.client)["status"]["message"]
        == f"spec.selector: differs from Deployment {WEB}'s spec.selector"
    )
    assert replicas(api.client) == {}


def test_scale_down_never_leaves_the_deployment_running(api: StandIn) -> None:
    start(api, {"scaleDown": "never"})
    run(api, 0.0, lambda s: live(V1)(s) and selectors(api.client)["orders-stable"] == V1, limit=60)
    assert read_deployment(api).spec.replicas == 3 and deployment_ready(api) == 3
    assert lowest_ready(api) == (3, 3)


def test_scale_down_progressively_follows_the_adopted_pods(api: StandIn) -> None:
    start(api, {"scaleDown": "progressively"})
    counts: list[int] = []
    until = handed_over(V1)
    run(api, 0.0, lambda s: until(s, api), each=lambda _: counts.append(read_deployment(api).spec.replicas))
    assert counts[:4] == [3, 2, 1, 0]  # one Deployment pod less for each adopted pod ready
    assert lowest_ready(api) == (3, 3)


def test_the_workloads_replicas_win_over_the_deployments(api: StandIn) -> None:
    install(api.client, NS, SPECS)
    client.AppsV1Api(api.client).create_namespaced_deployment(NS, deployment("orders:1"))
    body = adopting()
    body["spec"]["replicas"] = 4
    client.CustomObjectsApi(api.client).create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
    check = handed_over(V1, 4)
    run(api, 0.0, lambda s: check(s, api), limit=60)
    assert replicas(api.client) == {V1: 4}


def test_deleting_the_workload_leaves_the_deployment_where_it_is(api: StandIn) -> None:
    start(api)
    until_handed_over(api)
    client.CustomObjectsApi(api.client).delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, NAME)
    assert replicas(api.client) == {}  # the workload's ReplicaSets are garbage-collected with it
    dep = read_deployment(api)
    assert dep.spec.replicas == 0 and dep.metadata.annotations[REPLICAS_ANNOTATION] == "3"
