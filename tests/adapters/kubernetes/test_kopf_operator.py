"""examples/kopf/operator.py, the kopf operator of docs/embedding.md, run for real: ``kopf.run`` in a thread
(stop flag, standalone: no peering), logged in through a kubeconfig that points at the stand-in API server
over HTTP, its ReplicaSet controller making pods ready in the background. A healthy canary reaches live;
a canary whose verification fails is rolled back."""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from kubernetes import client

from ebbtide.adapters.kubernetes.adapter import revision_of
from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, VERSION

from .conftest import eventually
from .fixtures import (
    NAME,
    NS,
    ROOT,
    Table,
    errors_template,
    install,
    rollout_spec,
    selectors,
    set_image,
    standin,
    state,
    strategy,
    template,
    workload,
    write_kubeconfig,
)
from .standin import StandIn

kopf = pytest.importorskip("kopf")

EXAMPLE = ROOT / "examples" / "kopf" / "operator.py"
SPECS = [
    errors_template("1s", 1),
    strategy("canary", {"setWeight": 40}, {"verification": {"templateNames": ["errors"]}}),
    rollout_spec("canary", replicas=5),
]


V1, V2, V3 = (revision_of(template(f"orders:{i}")) for i in (1, 2, 3))
TABLE = {V1: 0.01, V2: 0.01, V3: 0.5}  # orders:3's error rate fails the verification


def operator_module() -> ModuleType:
    """The example, imported once per process (importing registers its handlers with kopf)."""
    if "ebbtide_kopf_example" not in sys.modules:
        spec = importlib.util.spec_from_file_location("ebbtide_kopf_example", EXAMPLE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["ebbtide_kopf_example"]


@contextlib.contextmanager
def running_operator(api: StandIn, table: Table) -> Iterator[None]:
    operator_module()
    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def main() -> None:
        try:
            kopf.run(
                standalone=True,
                clusterwide=True,
                stop_flag=stop,
                ready_flag=ready,
                memo=kopf.Memo(measurements=table),
            )
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=main, name="kopf-operator", daemon=True)
    thread.start()
    try:
        assert ready.wait(20), f"kopf did not start: {errors}"
        yield
    finally:
        stop.set()
        thread.join(20)
        assert not thread.is_alive(), "kopf did not stop"
        assert not errors, errors


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    with standin() as api:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url, token="standin")
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        install(api.client, NS, SPECS)
        yield api


def settled_live(api: StandIn, rev: str) -> bool:
    s = state(api)
    return (
        s is not None
        and s.phase == "live"
        and s.desired == rev
        and s.ready.get(s.stable or "") == 5
        and not s.scale_downs
    )


def row(api: StandIn, image: str) -> str:
    """What ``kubectl get ebd`` shows of the status the operator wrote (the revisions named by image)."""
    obj = client.CustomObjectsApi(api.client).get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, NAME)
    status = obj["status"]
    names = {V1: "orders:1", V2: "orders:2", V3: "orders:3"}
    weights = " ".join(f"{names[r]}={w}" for r, w in sorted(state(api).weights.items()))  # type: ignore[union-attr]
    healthy = next(c for c in status["conditions"] if c["type"] == "Healthy")
    return (
        f"template {image}: phase={status['phase']} stable={names[status['stableRevision']]} "
        f"weights={weights} healthy={healthy['status']} ({healthy['reason']})"
    )


def test_the_kopf_operator_rolls_a_canary_out_and_a_failed_one_back(cluster: StandIn) -> None:
    table = Table(TABLE)
    rows = []
    with running_operator(cluster, table):
        client.CustomObjectsApi(cluster.client).create_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, workload(template("orders:1"))
        )
        eventually(lambda: settled_live(cluster, V1), timeout=30)
        rows.append(row(cluster, "orders:1"))
        set_image(cluster, "orders:2")
        eventually(lambda: settled_live(cluster, V2), timeout=30)
        rows.append(row(cluster, "orders:2"))
        s = state(cluster)
        assert s is not None and s.stable == V2 and not s.degraded
        assert selectors(cluster) == {"orders-stable": V2, "orders-canary": V2}
        set_image(cluster, "orders:3")
        eventually(lambda: settled_live(cluster, V3), timeout=30)
        rows.append(row(cluster, "orders:3"))
        s = state(cluster)
        assert s is not None and s.stable == V2 and s.degraded and s.weights == {V2: 100}
    assert selectors(cluster) == {"orders-stable": V2, "orders-canary": V2}
    # each canary measured (a reconcile retried after a 409 from kopf's own annotation writes asks again)
    assert [rev for rev, _ in itertools.groupby(a.revision for a in table.asked)] == [V2, V3]
    events = client.CoreV1Api(cluster.client).list_namespaced_event(NS).items
    ours = [e for e in events if e.source and e.source.component == "ebbtide-controller"]
    reasons = [e.reason for e in sorted(ours, key=lambda e: int(e.metadata.resource_version))]
    assert reasons == [
        "rollout-started",
        "rollout-finished",
        "rollout-started",
        "rollout-failed",
        "rollout-rolled-back",
    ]
    transcript = "\n".join([*rows, "events: " + ", ".join(reasons)])
    print(transcript)
    assert f"```\n{transcript}\n```" in DOC, "docs/embedding.md shows another run"


DOC = (ROOT / "docs" / "embedding.md").read_text()


def test_the_docs_include_the_example_as_it_is() -> None:
    code = EXAMPLE.read_text()
    assert f"```py\n# examples/kopf/operator.py\n{code}```" in DOC
