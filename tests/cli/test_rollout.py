"""``ebbtide rollout ...`` against the stand-in API server over HTTP: list, get (the detailed view, its
output pinned in docs/operations.md), history, the actions with --wait (applied, or rejected with the
engine's reason and exit 1), set-failure-policy, and bad input (exit 2, nothing written)."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from rich.console import Console
from typer.testing import CliRunner

from ebbtide.adapters.kubernetes import actions
from ebbtide.adapters.kubernetes.reconcile import GROUP, VERSION, reconcile
from ebbtide.cli.rolloutview import render, view_data
from ebbtide.core.state import MetricStatus, RolloutState, VerificationRun

from ..adapters.kubernetes.fixtures import (
    NAME,
    NS,
    get,
    install,
    run,
    set_image,
    standin,
    state_of,
    template,
    workload,
    write_kubeconfig,
)
from ..adapters.kubernetes.standin import StandIn
from ..adapters.kubernetes.test_actions import SPECS, V1, V2, v2_live

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
REGENERATE = os.environ.get("EBBTIDE_REGENERATE_DOCS") == "1"


@pytest.fixture
def cluster() -> Iterator[StandIn]:
    with standin(background=False) as api:  # pods become ready when the test syncs, between reconciles
        install(api.client, NS, SPECS, workload=workload(template("orders:1")))
        yield api


@pytest.fixture
def kubeconfig(cluster: StandIn, tmp_path: Path) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", cluster.url, namespace=NS)


def cli(kubeconfig: Path, *args: str) -> Any:
    from ebbtide.cli.main import app

    return CliRunner().invoke(
        app, ["rollout", *args, "--kubeconfig", str(kubeconfig)], env={"COLUMNS": "120"}
    )


class Controller:
    """A controller stand-in: reconciles every few milliseconds at advancing virtual time, pods synced."""

    def __init__(self, api: StandIn, now: float) -> None:
        self.api, self.now = api, now
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            reconcile(self.api.client, NS, NAME, self.now)
            self.api.workloads.sync()
            self.now += 5

    def __enter__(self) -> Controller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def test_rollback_of_a_live_version_with_wait(cluster: StandIn, kubeconfig: Path) -> None:
    now = v2_live(cluster)
    with Controller(cluster, now + 5):
        result = cli(kubeconfig, "rollback", NAME, "--wait", "--timeout", "20")
    assert result.exit_code == 0, result.output
    assert f"{NS}/{NAME}: rollback applied (id " in result.output
    assert get(cluster)["status"]["lastAction"]["by"] == "tester"  # the kubeconfig context's user
    state = state_of(cluster)
    assert state.initiator == "rollback" and state.desired == V1 and state.original_rollout_id is not None
    assert get(cluster)["spec"]["template"]["spec"]["containers"][0]["image"] == "orders:2"  # not rewritten


def test_a_command_at_the_wrong_moment_is_rejected_with_the_reason(
    cluster: StandIn, kubeconfig: Path
) -> None:
    run(cluster, 0.0, lambda s: s.phase == "live" and s.ready.get(V1) == 5)
    result = cli(kubeconfig, "retry", NAME)
    assert result.exit_code == 1
    assert "retry is only possible after a rollback completed, for the latest revision" in result.output
    assert actions.ANNOTATION not in (get(cluster)["metadata"].get("annotations") or {})  # nothing written
    promote = cli(kubeconfig, "promote", NAME, "--full")
    assert promote.exit_code == 1 and "cannot promote fully: the rollout is live" in promote.output


def test_wait_reports_the_controllers_rejection(cluster: StandIn, kubeconfig: Path) -> None:
    """A request queued behind another is judged by the controller: resume after the promote that leaves
    the pause is rejected there, and --wait exits 1 with the engine's reason; the state is the promote's."""
    now = run(cluster, 0.0, lambda s: s.phase == "live" and s.ready.get(V1) == 5)
    set_image(cluster, "orders:2")
    now = run(cluster, now + 5, lambda s: s.phase == "paused")
    actions.request(
        cluster.client, NS, NAME, "promote"
    )  # pending: the CLI leaves the judgement to the controller
    with Controller(cluster, now):
        result = cli(kubeconfig, "resume", NAME, "--wait", "--timeout", "20")
    assert result.exit_code == 1, result.output
    assert "resume rejected: cannot resume: the rollout is" in result.output
    assert [r["result"] for r in get(cluster)["status"]["actions"]] == ["applied", "rejected"]


def test_wait_without_a_controller_times_out_with_exit_1(cluster: StandIn, kubeconfig: Path) -> None:
    now = run(cluster, 0.0, lambda s: s.phase == "live" and s.ready.get(V1) == 5)
    set_image(cluster, "orders:2")
    run(cluster, now + 5, lambda s: s.phase == "paused")
    result = cli(kubeconfig, "abort", NAME, "--wait", "--timeout", "0.3")
    assert result.exit_code == 1 and "no result within 0.3s (is the controller running?)" in result.output
    assert [a["action"] for a in actions.pending(get(cluster))] == ["abort"]


def test_list_and_history(cluster: StandIn, kubeconfig: Path) -> None:
    v2_live(cluster)
    listed = cli(kubeconfig, "list")
    assert listed.exit_code == 0, listed.output
    header, row = listed.output.splitlines()[1], listed.output.splitlines()[3]
    for col in ("name", "namespace", "phase", "step", "stable", "canary", "weights", "ready/desired", "age"):
        assert col in header
    assert row.split()[:6] == ["│", NAME, "│", NS, "│", "live"] and f"{V2}=100" in row and "5/5" in row
    history = cli(kubeconfig, "history", NAME)
    assert history.exit_code == 0, history.output
    lines = [line for line in history.output.splitlines() if V1 in line or V2 in line]
    assert len(lines) == 2 and "deploy" in lines[0] and "yes" in lines[0] and "live now" in lines[1]


def _policy(cluster: StandIn) -> Any:
    got: Any = client.CustomObjectsApi(cluster.client).get_namespaced_custom_object(
        GROUP, VERSION, NS, "rolloutspecs", "orders"
    )
    return got["spec"]["failurePolicy"]


def test_set_failure_policy_switches_immediate_and_new_rollout(cluster: StandIn, kubeconfig: Path) -> None:
    now = run(cluster, 0.0, lambda s: s.phase == "live" and s.ready.get(V1) == 5)
    result = cli(kubeconfig, "set-failure-policy", NAME, "rollback-new-rollout")
    assert result.exit_code == 0, result.output
    assert _policy(cluster) == {"action": "rollback", "rollback": {"mode": "newRollout"}}
    reconcile(cluster.client, NS, NAME, now + 5)
    assert state_of(cluster).plan.rollback_mode == "newRollout"
    assert cli(kubeconfig, "set-failure-policy", NAME, "rollback-immediate").exit_code == 0
    reconcile(cluster.client, NS, NAME, now + 10)
    assert state_of(cluster).plan.rollback_mode == "immediate"
    assert cli(kubeconfig, "set-failure-policy", NAME, "pause").exit_code == 0
    reconcile(cluster.client, NS, NAME, now + 15)
    assert state_of(cluster).plan.failure_action == "pause"


def test_set_failure_policy_bad_input_exits_2_and_writes_nothing(cluster: StandIn, kubeconfig: Path) -> None:
    bad = cli(kubeconfig, "set-failure-policy", NAME, "explode")
    assert bad.exit_code == 2 and "spec.failurePolicy: 'explode' is not one of" in bad.output
    assert "Traceback" not in bad.output
    # a spec set that is invalid elsewhere: nothing is applied
    broken = {
        "apiVersion": "ebbtide.dev/v1alpha1",
        "kind": "VerificationTemplate",
        "metadata": {"name": "broken"},
        "spec": {"metrics": [{"name": "m", "provider": {"nosuch": {}}}]},
    }
    client.CustomObjectsApi(cluster.client).create_namespaced_custom_object(
        GROUP, VERSION, NS, "verificationtemplates", broken
    )
    refused = cli(kubeconfig, "set-failure-policy", NAME, "pause")
    assert refused.exit_code == 2 and "verificationtemplates/broken" in refused.output, refused.output
    assert _policy(cluster) == {"action": "rollback"}


def test_bad_input_exits_2(cluster: StandIn, kubeconfig: Path, tmp_path: Path) -> None:
    missing = cli(kubeconfig, "pause", "nope")
    assert missing.exit_code == 2 and f"no EbbtideDeployment {NS}/nope" in missing.output
    assert cli(kubeconfig, "get", "nope").exit_code == 2
    assert cli(kubeconfig, "history", "nope").exit_code == 2
    empty = cli(kubeconfig, "rollback", NAME, "--to", " ")
    assert empty.exit_code == 2 and "to: empty revision" in empty.output
    nowhere = CliRunner().invoke(
        __import__("ebbtide.cli.main", fromlist=["app"]).app,
        ["rollout", "list", "--kubeconfig", str(tmp_path / "none")],
    )
    assert nowhere.exit_code == 2 and "no such file" in nowhere.output


# ---------------------------------------------------------------------------------------------------
# the doc output: an immediate rollback (abort) in progress, from a real run
# ---------------------------------------------------------------------------------------------------


def _abort_in_progress(cluster: StandIn) -> None:
    """v1 live; v2 at 20%, paused (a basic canary moves traffic with pods: v1 has 4 of the 5); abort: v1 is
    scaled back to 5 and takes the traffic as its pods become ready: 4 of 5 ready, 80% complete."""
    now = run(cluster, 0.0, lambda s: s.phase == "live" and s.ready.get(V1) == 5)
    set_image(cluster, "orders:2")
    now = run(cluster, now + 5, lambda s: s.phase == "paused")
    actions.request(cluster.client, NS, NAME, "abort")
    reconcile(cluster.client, NS, NAME, now + 5)  # no pod sync: v1's new pods are not ready yet
    assert state_of(cluster).phase == "rolling-back"


def _doc_block() -> tuple[str, str]:
    text = OPERATIONS.read_text()
    m = re.search(r"```console\n(\$ ebbtide rollout get orders)\n(.*?)```", text, re.S)
    assert m is not None, "docs/operations.md has no `ebbtide rollout get orders` block"
    return m.group(1), m.group(2)


def test_the_get_output_in_docs_operations_is_a_real_run(cluster: StandIn, kubeconfig: Path) -> None:
    _abort_in_progress(cluster)
    result = cli(kubeconfig, "get", NAME)
    assert result.exit_code == 0, result.output
    assert "Rollback status: 80% complete (4/5 replicas of" in result.output
    got = "\n".join(line.rstrip() for line in result.output.splitlines()) + "\n"
    if REGENERATE:
        command, old = _doc_block()
        OPERATIONS.write_text(OPERATIONS.read_text().replace(f"{command}\n{old}", f"{command}\n{got}"))
    assert _doc_block()[1] == got


def test_get_watch_updates_the_view(cluster: StandIn, kubeconfig: Path) -> None:
    _abort_in_progress(cluster)
    result = cli(kubeconfig, "get", NAME, "--watch", "--interval", "0.05", "--updates", "2")
    assert result.exit_code == 0, result.output
    assert "Rollback status: 80% complete" in result.output


def test_get_shows_the_linked_rollout_after_a_rollback_and_rollback_to_an_unknown_revision_is_rejected(
    cluster: StandIn, kubeconfig: Path
) -> None:
    now = v2_live(cluster)
    unknown = cli(kubeconfig, "rollback", NAME, "--to", "0000000000")
    assert unknown.exit_code == 1 and "revision 0000000000 is not in the revision history" in unknown.output
    actions.request(cluster.client, NS, NAME, "rollback")
    run(cluster, now + 5, lambda s: s.phase == "paused" and s.canary == V1)
    view = cli(kubeconfig, "get", NAME)
    assert view.exit_code == 0, view.output
    assert "initiator rollback, linked to rollout #1" in view.output
    assert re.search(r"▶\s+1\s+pause \(until promoted\)", view.output)
    assert "Last action: rollback applied" in view.output


def test_the_view_shows_verification_runs_with_their_measurements() -> None:
    state = RolloutState(
        phase="verifying",
        stable="v1",
        canary="v2",
        desired="v2",
        weights={"v1": 80, "v2": 20},
        replicas={"v1": 4, "v2": 1},
        ready={"v1": 4, "v2": 1},
        verifications=(
            VerificationRun(
                id="run-1",
                template="success-rate",
                metrics=(MetricStatus(name="errors", count=3, successful=2, failed=1, last="0.07"),),
            ),
        ),
    )
    data = view_data("orders", "shop", state, {})
    assert data["verifications"][0]["metrics"][0] | {"phase": ""} == {
        "name": "errors",
        "phase": "",
        "count": 3,
        "successful": 2,
        "failed": 1,
        "inconclusive": 0,
        "error": 0,
        "last": "0.07",
    }
    assert [(r["revision"], r["traffic"], r["ready"], r["desired"]) for r in data["revisions"]] == [
        ("v1", 80, 4, 4),
        ("v2", 20, 1, 1),
    ]
    console = Console(width=120, record=True)
    console.print(render(data))
    text = console.export_text()
    assert "run-1" in text and "3 taken: 2 ok, 1 failed" in text and "0.07" in text


def test_get_shows_the_run_that_failed_the_rollout_after_its_immediate_rollback(tmp_path: Path) -> None:
    """Why did it roll back? The view keeps the verification run that failed (its counts and last value)
    through the rollback and after it, until the next rollout starts."""
    from ..adapters.kubernetes.fixtures import Table
    from ..adapters.kubernetes.test_reconcile import V1 as R1
    from ..adapters.kubernetes.test_reconcile import V2 as R2
    from ..adapters.kubernetes.test_reconcile import live, standin_cluster

    table = Table({R1: 0.01, R2: 0.5})  # the error rate of orders:2 fails `result < 0.05`
    with standin_cluster() as api:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url, namespace=NS)
        now = run(api, 0.0, live(R1), table)
        set_image(api, "orders:2")
        run(api, now + 5, lambda s: s.degraded and s.phase == "live", table)
        view = cli(kubeconfig, "get", NAME)
        assert view.exit_code == 0, view.output
        failed = [a for a in table.asked if a.revision == R2]
        assert len(failed) == 1  # failureLimit 0: the first bad answer fails the run
        assert failed[0].verification in view.output and "Failed" in view.output
        assert "1 taken: 0 ok, 1 failed" in view.output and "0.5" in view.output
