"""The informer against the stand-in: its cache converges to the server's objects through dropped watches,
410 Gone, errors and restarts, and its handler sees every change it missed."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from kubernetes import client

from ebbtide.adapters.kubernetes.informer import Informer

from .conftest import eventually
from .standin import StandIn

NS = "default"


class Running:
    def __init__(self, api: StandIn, **kwargs: Any) -> None:
        self.api = api
        self.core = client.CoreV1Api(api.client)
        self.events: list[tuple[str, str]] = []
        self.informer = Informer(
            partial(self.core.list_namespaced_config_map, NS),
            on_event=lambda kind, obj: self.events.append((kind, obj["metadata"]["name"])),
            backoff=0.02,
            max_backoff=0.1,
            **kwargs,
        )
        self.thread = threading.Thread(target=self.informer.run, daemon=True)

    def cached(self) -> dict[str, Any]:
        return {name: obj.get("data") for (_, name), obj in self.informer.snapshot().items()}

    def served(self) -> dict[str, Any]:
        """What the server holds, read from its store (not over HTTP, where the faults are)."""
        configmaps = self.api.store.resource("", "v1", "configmaps")
        assert configmaps is not None
        return {c["metadata"]["name"]: c.get("data") for c in self.api.store.list(configmaps, NS)[0]}


@pytest.fixture
def running(api: StandIn) -> Iterator[Running]:
    run = Running(api)
    run.thread.start()
    assert run.informer.synced.wait(5)
    yield run
    run.informer.stop()
    run.thread.join(5)
    assert not run.thread.is_alive()


def test_it_lists_then_follows_changes(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "before"}})
    run = Running(api)
    run.thread.start()
    try:
        assert run.informer.synced.wait(5)
        assert run.events == [("ADDED", "before")]
        core.create_namespaced_config_map(NS, {"metadata": {"name": "after"}, "data": {"k": "1"}})
        core.patch_namespaced_config_map("after", NS, {"data": {"k": "2"}})
        core.delete_namespaced_config_map("before", NS)
        eventually(lambda: run.cached() == {"after": {"k": "2"}})
        assert run.events == [
            ("ADDED", "before"),
            ("ADDED", "after"),
            ("MODIFIED", "after"),
            ("DELETED", "before"),
        ]
        assert run.informer.lists == 1
    finally:
        run.informer.stop()
        run.thread.join(5)


def test_a_label_selector_narrows_what_it_sees(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "mine", "labels": {"app": "web"}}})
    core.create_namespaced_config_map(NS, {"metadata": {"name": "other"}})
    run = Running(api, label_selector="app=web")
    run.thread.start()
    try:
        assert run.informer.synced.wait(5)
        core.create_namespaced_config_map(NS, {"metadata": {"name": "late", "labels": {"app": "web"}}})
        eventually(lambda: set(run.cached()) == {"mine", "late"})
    finally:
        run.informer.stop()
        run.thread.join(5)


def test_a_dropped_watch_resumes_without_listing_again(api: StandIn, running: Running) -> None:
    api.faults.drop_watches()
    running.core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}})
    eventually(lambda: "a" in running.cached())
    assert running.informer.lists == 1


def test_after_410_gone_it_lists_again_and_reports_what_it_missed(api: StandIn, running: Running) -> None:
    core = running.core
    core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}})
    core.create_namespaced_config_map(NS, {"metadata": {"name": "b"}, "data": {"k": "1"}})
    eventually(lambda: set(running.cached()) == {"a", "b"})
    api.faults.fail_next(1000, status=503, verbs=frozenset({"watch"}))  # it cannot watch meanwhile
    api.faults.drop_watches()
    core.delete_namespaced_config_map("a", NS)
    core.patch_namespaced_config_map("b", NS, {"data": {"k": "2"}})
    core.create_namespaced_config_map(NS, {"metadata": {"name": "c"}})
    api.store.compact()
    api.faults.clear()
    eventually(lambda: running.cached() == running.served())
    assert running.informer.lists == 2
    assert running.events[-3:] == [("MODIFIED", "b"), ("ADDED", "c"), ("DELETED", "a")]


def test_bookmarks_keep_a_quiet_kind_from_falling_behind(api: StandIn, running: Running) -> None:
    pods = client.CoreV1Api(api.client)
    for n in range(3):  # other kinds move the resourceVersion on
        pods.create_namespaced_pod(
            NS, {"metadata": {"name": f"p{n}"}, "spec": {"containers": [{"name": "c"}]}}
        )
    eventually(lambda: running.informer.resource_version == str(api.store.resource_version))
    api.store.compact()
    api.faults.drop_watches()
    running.core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}})
    eventually(lambda: "a" in running.cached())
    assert running.informer.lists == 1


def test_errors_on_list_are_retried(api: StandIn) -> None:
    api.faults.fail_next(3, status=500, verbs=frozenset({"list"}))
    client.CoreV1Api(api.client).create_namespaced_config_map(NS, {"metadata": {"name": "a"}})
    run = Running(api)
    run.thread.start()
    try:
        assert run.informer.synced.wait(5)
        assert set(run.cached()) == {"a"}
        assert len([c for c, status in api.faults.injected if c.verb == "list"]) == 3
    finally:
        run.informer.stop()
        run.thread.join(5)


@pytest.mark.parametrize("seed", range(3))
def test_the_cache_converges_whatever_the_faults(api: StandIn, running: Running, seed: int) -> None:
    rng = random.Random(seed)
    core = running.core
    for step in range(40):
        names = set(running.served())
        action = rng.choice(["create", "patch", "delete", "drop", "gone", "error"])
        if action == "create" or not names:
            core.create_namespaced_config_map(NS, {"metadata": {"name": f"c{step}"}})
        elif action == "patch":
            core.patch_namespaced_config_map(rng.choice(sorted(names)), NS, {"data": {"step": str(step)}})
        elif action == "delete":
            core.delete_namespaced_config_map(rng.choice(sorted(names)), NS)
        elif action == "drop":
            api.faults.drop_watches()
        elif action == "gone":
            api.store.compact()
            api.faults.drop_watches()
        else:
            api.faults.fail_next(2, status=500, verbs=frozenset({"watch", "list"}))
            api.faults.drop_watches()
    eventually(lambda: running.cached() == running.served())


def test_a_410_answered_as_the_http_status_of_the_watch_request_lists_again(
    api: StandIn, running: Running
) -> None:
    """The API server's watch cache answers a too old resourceVersion with HTTP 410 (not an ERROR event);
    kubernetes client 37 raises it before the informer sees the response."""
    api.server.gone_as_status = True
    core = running.core
    core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}})
    eventually(lambda: "a" in running.cached())
    api.faults.fail_next(1000, status=503, verbs=frozenset({"watch"}))
    api.faults.drop_watches()
    core.create_namespaced_config_map(NS, {"metadata": {"name": "b"}})
    api.store.compact()
    api.faults.clear()
    eventually(lambda: running.cached() == running.served())
    assert running.informer.lists == 2


def _cm(name: str, rv: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS, "resourceVersion": rv, "labels": labels or {}}}


def test_a_recorded_write_is_read_at_once_and_an_older_version_never_replaces_it() -> None:
    informer = Informer(lambda **_: None, indexes={"app": lambda o: [o["metadata"]["labels"].get("app", "")]})
    informer.record(_cm("a", "7", {"app": "x"}))
    assert informer.get(NS, "a") == _cm("a", "7", {"app": "x"})
    informer.record(_cm("a", "5", {"app": "y"}))  # a watch event from before our write
    assert informer.get(NS, "a") == _cm("a", "7", {"app": "x"})
    assert [o["metadata"]["name"] for o in informer.by_index("app", "x")] == ["a"]
    informer.record(_cm("a", "9", {"app": "y"}))
    assert informer.by_index("app", "x") == [] and informer.by_index("app", "y") == [
        _cm("a", "9", {"app": "y"})
    ]


def test_indexes_follow_changes_deletes_and_relists(api: StandIn) -> None:
    core = client.CoreV1Api(api.client)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "a", "labels": {"app": "x"}}})
    run = Running(api, indexes={"app": lambda o: [(o["metadata"].get("labels") or {}).get("app", "")]})
    names = lambda app: [o["metadata"]["name"] for o in run.informer.by_index("app", app)]  # noqa: E731
    run.thread.start()
    try:
        assert run.informer.synced.wait(5)
        core.create_namespaced_config_map(NS, {"metadata": {"name": "b", "labels": {"app": "x"}}})
        eventually(lambda: names("x") == ["a", "b"])
        core.patch_namespaced_config_map("a", NS, {"metadata": {"labels": {"app": "y"}}})
        eventually(lambda: names("x") == ["b"] and names("y") == ["a"])
        api.faults.fail_next(1000, status=503, verbs=frozenset({"watch"}))
        api.faults.drop_watches()
        core.delete_namespaced_config_map("b", NS)
        api.store.compact()
        api.faults.clear()
        eventually(lambda: run.informer.lists == 2)
        eventually(lambda: names("x") == [] and names("y") == ["a"])
    finally:
        run.informer.stop()
        run.thread.join(5)


def test_the_answer_to_a_write_that_comes_after_the_delete_does_not_bring_the_object_back(
    running: Running,
) -> None:
    written = running.core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}})
    answer = running.core.api_client.sanitize_for_serialization(written)
    eventually(lambda: "a" in running.cached())
    running.core.delete_namespaced_config_map("a", NS)
    eventually(lambda: "a" not in running.cached())
    running.informer.record(answer)  # our write's answer, read after the watch reported the delete
    assert running.informer.get(NS, "a") is None
    running.core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}, "data": {"k": "new"}})
    eventually(lambda: running.cached() == {"a": {"k": "new"}})  # made again: cached again
