"""``ebbtide verify`` end to end against the stand-in API server: the controller's reconcile sends
``start-external-verification`` and waits; an answer in time promotes; no answer within the timeout rolls back
at once (traffic back to the stable revision); an answer after that changes nothing and is reported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from typer.testing import CliRunner

from ebbtide.adapters.external import waiting
from ebbtide.adapters.kubernetes.adapter import revision_of
from ebbtide.adapters.kubernetes.external import ANNOTATION
from ebbtide.adapters.kubernetes.reconcile import GROUP, PLURAL, VERSION, reconcile
from ebbtide.cli.main import app

from ..adapters.kubernetes.fixtures import (
    NAME,
    NS,
    get,
    install,
    run,
    standin,
    state_of,
    template,
    workload,
    write_kubeconfig,
)
from ..adapters.kubernetes.standin import StandIn

TIMEOUT = 120.0
SPECS = f"""
apiVersion: ebbtide.dev/v1alpha1
kind: VerificationTemplate
metadata: {{name: qa}}
spec:
  metrics:
    - name: qa-suite
      provider:
        external: {{timeout: {TIMEOUT:g}s, fallback: fail}}
---
apiVersion: ebbtide.dev/v1alpha1
kind: Strategy
metadata: {{name: steps}}
spec:
  canary:
    steps:
      - setWeight: 20
      - verification: {{templateNames: [qa]}}
      - setWeight: 60
---
apiVersion: ebbtide.dev/v1alpha1
kind: RolloutSpec
metadata: {{name: orders}}
spec:
  spotDeployment: {{name: orders}}
  replicas: 5
  strategy: {{name: steps}}
  traffic: {{canaryService: orders-canary, stableService: orders-stable}}
  failurePolicy: {{action: rollback}}
"""
V1, V2 = revision_of(template("orders:1")), revision_of(template("orders:2"))


@pytest.fixture
def cluster() -> Iterator[StandIn]:
    with standin(background=False) as api:  # pods become ready when the test syncs, between reconciles
        install(api.client, NS, SPECS, workload=workload(template("orders:1")))
        yield api


@pytest.fixture
def kubeconfig(cluster: StandIn, tmp_path: Path) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", cluster.url, namespace=NS)


def deploy_v2(api: StandIn) -> float:
    now = run(api, 0.0, lambda s: s.phase == "live" and s.ready.get(V1) == 5)
    client.CustomObjectsApi(api.client).patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, NAME, {"spec": {"template": template("orders:2")}}
    )
    return run(api, now + 5, lambda s: bool(waiting(s)))


def verify(kubeconfig: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["verify", NAME, "--kubeconfig", str(kubeconfig), *args])


def condition(api: StandIn) -> dict[str, Any]:
    found = [c for c in get(api)["status"]["conditions"] if c["type"] == "ExternalVerification"]
    assert len(found) == 1
    return found[0]


def test_an_answer_in_time_promotes(cluster: StandIn, kubeconfig: Path) -> None:
    now = deploy_v2(cluster)
    state = state_of(cluster)
    assert state.phase == "verifying" and state.weights == {V1: 80, V2: 20}
    events = client.CoreV1Api(cluster.client).list_namespaced_event(NS).items
    assert "start-external-verification" in [e.reason for e in events]
    result = verify(kubeconfig, "--passed")
    assert result.exit_code == 0, result.output
    assert f"{NS}/{NAME}: answered passed" in result.output
    recorded = json.loads(get(cluster)["metadata"]["annotations"][ANNOTATION])
    assert recorded["status"] == "passed" and recorded["verifications"] == [
        w.verification for w in waiting(state)
    ]
    run(cluster, now + 5, lambda s: s.phase == "live" and s.stable == V2 and s.ready.get(V2) == 5)
    assert condition(cluster)["reason"] == "Accepted"
    again = verify(kubeconfig, "--failed")  # nothing waits any more: refused, nothing written
    assert again.exit_code == 1 and "no external verification waits" in again.output
    assert json.loads(get(cluster)["metadata"]["annotations"][ANNOTATION])["status"] == "passed"


def test_a_failed_answer_rolls_back_at_once(cluster: StandIn, kubeconfig: Path) -> None:
    now = deploy_v2(cluster)
    assert verify(kubeconfig, "--failed", "-n", NS).exit_code == 0
    reconcile(cluster.client, NS, NAME, now + 5)
    state = state_of(cluster)
    assert state.weights == {V1: 100} and state.stable == V1
    assert "'failed'" in (state.failure_reason or "")


def test_no_answer_in_time_rolls_back_at_once_and_a_late_one_changes_nothing(
    cluster: StandIn, kubeconfig: Path
) -> None:
    start = deploy_v2(cluster)
    deadline = waiting(state_of(cluster))[0].deadline
    assert deadline is not None and deadline == pytest.approx(start + TIMEOUT, abs=10)
    seen: list[dict[str, int]] = []
    now = start
    while now < deadline:
        now += 5
        reconcile(cluster.client, NS, NAME, now)
        cluster.workloads.sync()
        seen.append(state_of(cluster).weights)
    # the reconcile at the deadline fails the rollout and gives v1 all the traffic in that decision
    assert all(w == {V1: 80, V2: 20} for w in seen[:-1]) and seen[-1] == {V1: 100}
    state = state_of(cluster)
    assert state.stable == V1 and "no answer in time (fallback: fail)" in (state.failure_reason or "")
    late = verify(kubeconfig, "--passed")
    assert late.exit_code == 1
    assert "not answered" in late.output and "a late answer changes nothing" in late.output
    assert ANNOTATION not in (get(cluster)["metadata"].get("annotations") or {})


def test_an_answer_read_after_the_deadline_is_ignored_and_reported(
    cluster: StandIn, kubeconfig: Path
) -> None:
    start = deploy_v2(cluster)
    assert verify(kubeconfig, "--passed").exit_code == 0  # recorded while the verification waits ...
    reconcile(cluster.client, NS, NAME, start + TIMEOUT + 30)  # ... but the controller reads it too late
    state = state_of(cluster)
    assert state.stable == V1 and "no answer in time (fallback: fail)" in (state.failure_reason or "")
    run(cluster, start + TIMEOUT + 35, lambda s: s.weights == {V1: 100})
    cond = condition(cluster)
    assert cond["reason"] == "Ignored" and cond["status"] == "False" and "came too late" in cond["message"]


def test_bad_input_exits_2(cluster: StandIn, kubeconfig: Path, tmp_path: Path) -> None:
    both = verify(kubeconfig, "--passed", "--failed")
    assert both.exit_code == 2 and "exactly one of --passed or --failed" in both.output
    assert verify(kubeconfig).exit_code == 2
    missing = CliRunner().invoke(app, ["verify", "nope", "--passed", "--kubeconfig", str(kubeconfig)])
    assert missing.exit_code == 2 and f"no EbbtideDeployment {NS}/nope" in missing.output
    garbage = tmp_path / "garbage"
    garbage.write_text("not: [a kubeconfig")
    bad = CliRunner().invoke(app, ["verify", NAME, "--passed", "--kubeconfig", str(garbage)])
    assert bad.exit_code == 2 and "kubeconfig" in bad.output and "Traceback" not in bad.output
    nowhere = CliRunner().invoke(app, ["verify", NAME, "--passed", "--kubeconfig", str(tmp_path / "none")])
    assert nowhere.exit_code == 2 and "no such file" in nowhere.output
