"""The stand-in API server, driven by the real ``kubernetes`` client over HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from typing import Any

import pytest
import urllib3
from kubernetes import client, dynamic, watch
from kubernetes.client.exceptions import ApiException

from .conftest import eventually
from .standin import WRITES, Behaviour, StandIn

NS = "default"


def replica_set(name: str, replicas: int, image: str = "app:v1") -> dict[str, Any]:
    labels = {"app": "web", "rev": name}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
    }


CRD = {
    "metadata": {"name": "widgets.example.dev"},
    "spec": {
        "group": "example.dev",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


def widgets(api: StandIn) -> client.CustomObjectsApi:
    client.ApiextensionsV1Api(api.client).create_custom_resource_definition(CRD)
    return client.CustomObjectsApi(api.client)


def counts(apps: client.AppsV1Api, name: str) -> tuple[int, int]:
    """(replicas, readyReplicas) of a ReplicaSet, 0 where its status does not say yet."""
    status = apps.read_namespaced_replica_set(name, NS).status
    if status is None:
        return 0, 0
    return status.replicas or 0, status.ready_replicas or 0


def status_of(exc: pytest.ExceptionInfo[ApiException]) -> int:
    return int(exc.value.status)


# -- CRUD ------------------------------------------------------------------------------------------
def test_create_get_list_replace_patch_delete(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    made = core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}, "data": {"k": "1"}})
    assert made.metadata.uid and made.metadata.resource_version and made.metadata.namespace == NS
    assert core.read_namespaced_config_map("a", NS).data == {"k": "1"}
    made.data = {"k": "2"}
    replaced = core.replace_namespaced_config_map("a", NS, made)
    assert replaced.data == {"k": "2"}
    assert int(replaced.metadata.resource_version) > int(made.metadata.resource_version)
    patched = core.patch_namespaced_config_map("a", NS, {"data": {"j": "3"}})
    assert patched.data == {"k": "2", "j": "3"}
    assert [c.metadata.name for c in core.list_namespaced_config_map(NS).items] == ["a"]
    core.delete_namespaced_config_map("a", NS)
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("a", NS)
    assert status_of(gone) == 404


def test_create_twice_is_already_exists(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}})
    with pytest.raises(ApiException) as twice:
        core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}})
    assert status_of(twice) == 409 and "AlreadyExists" in twice.value.body


def test_namespaces_keep_objects_apart(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    core.create_namespaced_config_map("one", {"metadata": {"name": "a"}, "data": {"ns": "one"}})
    core.create_namespaced_config_map("two", {"metadata": {"name": "a"}, "data": {"ns": "two"}})
    assert core.read_namespaced_config_map("a", "two").data == {"ns": "two"}
    assert len(core.list_config_map_for_all_namespaces().items) == 2


def test_deleting_an_owner_deletes_what_it_owns(api: StandIn) -> None:
    apps, core = client.AppsV1Api(api.client), client.CoreV1Api(api.client)
    apps.create_namespaced_replica_set(NS, replica_set("web-1", 2))
    eventually(lambda: len(core.list_namespaced_pod(NS).items) == 2)
    apps.delete_namespaced_replica_set("web-1", NS)
    assert core.list_namespaced_pod(NS).items == []


def test_discovery_serves_the_dynamic_client(api: StandIn) -> None:
    dyn = dynamic.DynamicClient(api.client)
    replica_sets = dyn.resources.get(api_version="apps/v1", kind="ReplicaSet")
    replica_sets.create(body=replica_set("web-1", 1), namespace=NS)
    assert [o.metadata.name for o in replica_sets.get(namespace=NS).items] == ["web-1"]
    assert dyn.resources.get(api_version="coordination.k8s.io/v1", kind="Lease").namespaced


# -- optimistic concurrency ------------------------------------------------------------------------
def test_a_stale_replace_is_a_conflict_and_a_fresh_one_succeeds(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    first = core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}, "data": {"k": "1"}})
    core.patch_namespaced_config_map("a", NS, {"data": {"k": "by someone else"}})
    first.data = {"k": "mine"}
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("a", NS, first)
    assert status_of(stale) == 409 and "Conflict" in stale.value.body
    assert core.read_namespaced_config_map("a", NS).data == {"k": "by someone else"}
    fresh = core.read_namespaced_config_map("a", NS)
    fresh.data = {"k": "mine"}
    assert core.replace_namespaced_config_map("a", NS, fresh).data == {"k": "mine"}


def test_a_patch_naming_a_stale_resource_version_is_a_conflict(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    made = core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}})
    core.patch_namespaced_config_map("a", NS, {"data": {"k": "1"}})
    stale = {"metadata": {"resourceVersion": made.metadata.resource_version}, "data": {"k": "2"}}
    with pytest.raises(ApiException) as conflict:
        core.patch_namespaced_config_map("a", NS, stale)
    assert status_of(conflict) == 409


def test_a_write_that_changes_nothing_keeps_the_resource_version(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    made = core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}, "data": {"k": "1"}})
    again = core.patch_namespaced_config_map("a", NS, {"data": {"k": "1"}})
    assert again.metadata.resource_version == made.metadata.resource_version


# -- patch kinds -----------------------------------------------------------------------------------
def test_json_patch_merge_patch_and_strategic_merge(api: StandIn) -> None:
    apps = client.AppsV1Api(api.client)
    rs = replica_set("web-1", 1)
    rs["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "proxy:1"})
    apps.create_namespaced_replica_set(NS, rs)
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 4}]
    assert apps.patch_namespaced_replica_set("web-1", NS, ops).spec.replicas == 4
    # strategic merge (the client's default for a dict on a built-in kind): containers merge by name
    bump = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "app:v2"}]}}}}
    merged = apps.patch_namespaced_replica_set("web-1", NS, bump).spec.template.spec.containers
    assert [(c.name, c.image) for c in merged] == [("c", "app:v2"), ("sidecar", "proxy:1")]
    # merge patch: the list is replaced whole
    replaced = apps.patch_namespaced_replica_set(
        "web-1", NS, bump, _content_type="application/merge-patch+json"
    ).spec.template.spec.containers
    assert [(c.name, c.image) for c in replaced] == [("c", "app:v2")]
    kinds = [ctype for method, _, ctype in api.server.requests if method == "PATCH"]
    assert kinds == [
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
        "application/merge-patch+json",
    ]


def test_a_failed_json_patch_test_changes_nothing(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}, "data": {"k": "1"}})
    ops = [
        {"op": "test", "path": "/data/k", "value": "2"},
        {"op": "replace", "path": "/data/k", "value": "3"},
    ]
    with pytest.raises(ApiException) as refused:
        core.patch_namespaced_config_map("a", NS, ops)
    assert status_of(refused) == 422
    assert core.read_namespaced_config_map("a", NS).data == {"k": "1"}


def test_custom_resources_refuse_strategic_merge(api: StandIn) -> None:
    objects = widgets(api)
    objects.create_namespaced_custom_object("example.dev", "v1", NS, "widgets", {"metadata": {"name": "w"}})
    with pytest.raises(ApiException) as refused:
        objects.patch_namespaced_custom_object(
            "example.dev",
            "v1",
            NS,
            "widgets",
            "w",
            {"spec": {"a": 1}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert status_of(refused) == 415


# -- status subresource ----------------------------------------------------------------------------
def test_status_and_spec_are_written_apart_and_generation_follows_the_spec(api: StandIn) -> None:
    objects = widgets(api)
    args = ("example.dev", "v1", NS, "widgets")
    made = objects.create_namespaced_custom_object(
        *args, {"metadata": {"name": "w"}, "spec": {"size": 1}, "status": {"phase": "made up"}}
    )
    assert "status" not in made and made["metadata"]["generation"] == 1
    status = objects.patch_namespaced_custom_object_status(
        *args, "w", {"spec": {"size": 99}, "status": {"phase": "live"}}
    )
    assert status["spec"] == {"size": 1} and status["status"] == {"phase": "live"}
    assert status["metadata"]["generation"] == 1
    spec = objects.patch_namespaced_custom_object(
        *args, "w", {"spec": {"size": 2}, "status": {"phase": "lost"}}
    )
    assert spec["spec"] == {"size": 2} and spec["status"] == {"phase": "live"}
    assert spec["metadata"]["generation"] == 2
    label = objects.patch_namespaced_custom_object(*args, "w", {"metadata": {"labels": {"a": "b"}}})
    assert label["metadata"]["generation"] == 2
    spec["status"] = {"phase": "from a stale read"}
    with pytest.raises(ApiException) as stale:
        objects.replace_namespaced_custom_object_status(*args, "w", spec)
    assert status_of(stale) == 409


def test_replica_set_status_is_a_subresource(api: StandIn) -> None:
    apps = client.AppsV1Api(api.client)
    api.workloads.default = Behaviour(ready_after=3600)
    apps.create_namespaced_replica_set(NS, replica_set("web-1", 2))
    apps.patch_namespaced_replica_set("web-1", NS, {"status": {"readyReplicas": 2}})
    eventually(lambda: counts(apps, "web-1")[0] == 2)
    assert counts(apps, "web-1") == (2, 0)


# -- label selectors -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("", ["a", "b", "c"]),
        ("tier=web", ["a", "b"]),
        ("tier==web,track=canary", ["b"]),
        ("tier!=web", ["c"]),
        ("track in (canary, stable)", ["a", "b"]),
        ("track notin (canary)", ["a", "c"]),
        ("track", ["a", "b"]),
        ("!track", ["c"]),
    ],
)
def test_label_selectors(api: StandIn, selector: str, names: list[str]) -> None:
    core = client.CoreV1Api(api.client)
    for name, labels in [
        ("a", {"tier": "web", "track": "stable"}),
        ("b", {"tier": "web", "track": "canary"}),
        ("c", {"tier": "db"}),
    ]:
        core.create_namespaced_config_map(NS, {"metadata": {"name": name, "labels": labels}})
    found = core.list_namespaced_config_map(NS, label_selector=selector).items
    assert [c.metadata.name for c in found] == names


def test_a_bad_selector_is_a_bad_request(api: StandIn) -> None:
    with pytest.raises(ApiException) as bad:
        client.CoreV1Api(api.client).list_namespaced_config_map(NS, label_selector="a in b")
    assert status_of(bad) == 400


# -- watch -----------------------------------------------------------------------------------------
def collect(stream: Any, count: int) -> list[dict[str, Any]]:
    events = []
    for event in stream:
        events.append(event)
        if len(events) == count:
            break
    return events


def test_watch_from_a_resource_version_streams_what_happened_after_it(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "before"}})
    since = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}})
    core.patch_namespaced_config_map("a", NS, {"data": {"k": "1"}})
    core.delete_namespaced_config_map("a", NS)
    events = collect(
        watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=since, timeout_seconds=5),
        3,
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("DELETED", "a"),
    ]


def test_watch_without_a_resource_version_starts_with_the_current_objects(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "a", "labels": {"x": "1"}}})
    core.create_namespaced_config_map(NS, {"metadata": {"name": "b"}})
    events = collect(
        watch.Watch().stream(core.list_namespaced_config_map, NS, label_selector="x", timeout_seconds=5), 1
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "a")]


def test_watch_bookmarks_carry_the_current_resource_version(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    since = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_pod(NS, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}})
    stream = watch.Watch().stream(
        core.list_namespaced_config_map,
        NS,
        resource_version=since,
        allow_watch_bookmarks=True,
        timeout_seconds=5,
    )
    (bookmark,) = collect(stream, 1)
    assert bookmark["type"] == "BOOKMARK"
    assert int(bookmark["raw_object"]["metadata"]["resourceVersion"]) == api.store.resource_version


def test_no_bookmarks_unless_asked(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    since = core.list_namespaced_config_map(NS).metadata.resource_version
    events = list(
        watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=since, timeout_seconds=1)
    )
    assert events == []


def test_a_too_old_resource_version_is_gone_and_a_relist_recovers(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}})
    old = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, {"metadata": {"name": "b"}})
    api.store.compact()
    with pytest.raises(ApiException) as gone:
        collect(watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=old), 1)
    assert status_of(gone) == 410
    relist = core.list_namespaced_config_map(NS)
    assert [c.metadata.name for c in relist.items] == ["a", "b"]
    core.create_namespaced_config_map(NS, {"metadata": {"name": "c"}})
    events = collect(
        watch.Watch().stream(
            core.list_namespaced_config_map,
            NS,
            resource_version=relist.metadata.resource_version,
            timeout_seconds=5,
        ),
        1,
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "c")]


def test_a_bounded_history_forgets_old_versions() -> None:
    small = StandIn(history=2).start()
    try:
        core = client.CoreV1Api(small.client)
        core.create_namespaced_config_map(NS, {"metadata": {"name": "first"}})
        old = core.list_namespaced_config_map(NS).metadata.resource_version
        for name in "abc":
            core.create_namespaced_config_map(NS, {"metadata": {"name": name}})
        with pytest.raises(ApiException) as gone:
            collect(watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=old), 1)
        assert status_of(gone) == 410
    finally:
        small.stop()


# -- the ReplicaSet and pod stand-in ---------------------------------------------------------------
def test_replica_sets_become_ready_after_the_delay_and_follow_scaling(api: StandIn) -> None:
    apps, core = client.AppsV1Api(api.client), client.CoreV1Api(api.client)
    api.workloads.default = Behaviour(ready_after=0.4)
    started = time.monotonic()
    apps.create_namespaced_replica_set(NS, replica_set("web-1", 3))
    eventually(lambda: counts(apps, "web-1") == (3, 0))
    eventually(lambda: counts(apps, "web-1") == (3, 3))
    assert time.monotonic() - started >= 0.4
    status = apps.read_namespaced_replica_set("web-1", NS).status
    assert status.available_replicas == 3 and status.observed_generation == 1
    apps.patch_namespaced_replica_set("web-1", NS, {"spec": {"replicas": 1}})
    eventually(lambda: counts(apps, "web-1") == (1, 1))
    pods = core.list_namespaced_pod(NS, label_selector="rev=web-1").items
    assert [p.metadata.owner_references[0].name for p in pods] == ["web-1"]
    assert apps.read_namespaced_replica_set("web-1", NS).status.observed_generation == 2


@pytest.mark.parametrize(
    ("behaviour", "reason", "phase"),
    [
        (Behaviour.crash_loop(), "CrashLoopBackOff", "Running"),
        (Behaviour.image_pull_error(), "ImagePullBackOff", "Pending"),
    ],
)
def test_a_broken_revision_never_becomes_ready(
    api: StandIn, behaviour: Behaviour, reason: str, phase: str
) -> None:
    apps, core = client.AppsV1Api(api.client), client.CoreV1Api(api.client)
    api.workloads.by_image["app:bad"] = behaviour
    apps.create_namespaced_replica_set(NS, replica_set("web-1", 2, image="app:good"))
    apps.create_namespaced_replica_set(NS, replica_set("web-2", 2, image="app:bad"))
    eventually(lambda: counts(apps, "web-1") == (2, 2))
    time.sleep(0.1)
    assert counts(apps, "web-2") == (2, 0)
    for pod in core.list_namespaced_pod(NS, label_selector="rev=web-2").items:
        assert pod.status.phase == phase
        (container,) = pod.status.container_statuses
        assert container.state.waiting.reason == reason and not container.ready


# -- faults ----------------------------------------------------------------------------------------
def test_a_409_storm_refuses_every_nth_write_only(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    api.faults.conflict_every(2)
    outcomes = []
    for index in range(6):
        try:
            core.create_namespaced_config_map(NS, {"metadata": {"name": f"c{index}"}})
            outcomes.append(201)
        except ApiException as exc:
            outcomes.append(exc.status)
    assert outcomes == [201, 409, 201, 409, 201, 409]
    assert [c.metadata.name for c in core.list_namespaced_config_map(NS).items] == ["c0", "c2", "c4"]


def test_injected_500s_hit_the_verbs_named(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}})
    api.faults.fail_next(2, status=500, verbs=frozenset({"get"}))
    for _ in range(2):
        with pytest.raises(ApiException) as failed:
            core.read_namespaced_config_map("a", NS)
        assert status_of(failed) == 500
    assert core.read_namespaced_config_map("a", NS).metadata.name == "a"
    assert len(core.list_namespaced_config_map(NS).items) == 1


def test_a_write_fault_changes_nothing(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}, "data": {"k": "1"}})
    api.faults.error_every(1, status=500, verbs=WRITES)
    with pytest.raises(ApiException):
        core.patch_namespaced_config_map("a", NS, {"data": {"k": "2"}})
    api.faults.clear()
    assert core.read_namespaced_config_map("a", NS).data == {"k": "1"}


def test_slow_responses_and_client_timeouts(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    api.faults.slow(0.3, verbs=frozenset({"list"}))
    started = time.monotonic()
    core.list_namespaced_config_map(NS)
    assert time.monotonic() - started >= 0.3
    # the answer comes 3.3s late: far past the client's 0.1s, so that a client thread descheduled on a
    # loaded machine cannot find the answer already there (with a 0.3s delay it sometimes did)
    api.faults.slow(3.0, verbs=frozenset({"list"}))
    with pytest.raises((urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.MaxRetryError)):
        core.list_namespaced_config_map(NS, _request_timeout=0.1)


def test_dropped_watches_break_the_stream(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    since = core.list_namespaced_config_map(NS).metadata.resource_version
    stream = watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=since)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}})
    assert next(stream)["object"].metadata.name == "a"
    api.faults.drop_watches()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        next(stream)


def test_a_watch_event_limit_cuts_each_stream(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    for name in "abc":
        core.create_namespaced_config_map(NS, {"metadata": {"name": name}})
    api.faults.watch_event_limit = 2
    stream = watch.Watch().stream(core.list_namespaced_config_map, NS)
    assert [next(stream)["object"].metadata.name for _ in range(2)] == ["a", "b"]
    with pytest.raises(urllib3.exceptions.ProtocolError):
        next(stream)


def test_a_subresource_the_stand_in_does_not_serve_is_not_found(api: StandIn) -> None:
    objects = widgets(api)
    objects.create_namespaced_custom_object("example.dev", "v1", NS, "widgets", {"metadata": {"name": "w"}})
    with pytest.raises(ApiException) as absent:
        objects.get_namespaced_custom_object_scale("example.dev", "v1", NS, "widgets", "w")
    assert status_of(absent) == 404


def test_a_definition_is_established_when_created(api: StandIn) -> None:
    extensions = client.ApiextensionsV1Api(api.client)
    made = extensions.create_custom_resource_definition(CRD)
    assert [(c.type, c.status) for c in made.status.conditions] == [("Established", "True")]


def deployment(replicas: int, image: str) -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
    }


def test_a_deployment_runs_one_replicaset_per_template_and_counts_its_pods(api: StandIn) -> None:
    apps, core = client.AppsV1Api(api.client), client.CoreV1Api(api.client)
    apps.create_namespaced_deployment(NS, deployment(2, "app:v1"))

    def ready() -> int:
        status = apps.read_namespaced_deployment("web", NS).status
        return (status.ready_replicas or 0) if status else 0

    eventually(lambda: ready() == 2)
    (first,) = apps.list_namespaced_replica_set(NS).items
    assert first.metadata.owner_references[0].kind == "Deployment" and first.spec.replicas == 2
    pods = core.list_namespaced_pod(NS).items
    assert {p.metadata.labels["pod-template-hash"] for p in pods} == {first.metadata.name.rsplit("-", 1)[1]}
    # a new template: a new ReplicaSet at the replicas, the old one at 0 (no surge)
    apps.patch_namespaced_deployment(
        "web", NS, {"spec": {"template": deployment(2, "app:v2")["spec"]["template"]}}
    )
    eventually(
        lambda: (
            {
                (rs.metadata.name == first.metadata.name, rs.spec.replicas)
                for rs in apps.list_namespaced_replica_set(NS).items
            }
            == {(True, 0), (False, 2)}
        )
    )
    apps.patch_namespaced_deployment("web", NS, {"spec": {"replicas": 0}})
    eventually(lambda: not core.list_namespaced_pod(NS).items)
    eventually(lambda: ready() == 0 and not apps.read_namespaced_deployment("web", NS).status.replicas)


def test_the_history_is_every_write_in_order_and_refused_once_compacted() -> None:
    with StandIn(history=3) as api:
        api.workloads.stop()
        core = client.CoreV1Api(api.client)
        for name in ("a", "b"):
            core.create_namespaced_config_map(NS, {"metadata": {"name": name}})
        core.delete_namespaced_config_map("a", NS)
        assert [(e.type, e.object["metadata"]["name"]) for e in api.store.history()] == [
            ("ADDED", "a"),
            ("ADDED", "b"),
            ("DELETED", "a"),
        ]
        core.create_namespaced_config_map(NS, {"metadata": {"name": "c"}})
        with pytest.raises(AssertionError, match="compacted"):
            api.store.history()
