"""``ebbtide controller``: bad flags are clear errors with exit code 2; the manifest's arguments run the
real command (a subprocess, against the stand-in through a kubeconfig) which acts, serves its probes, and on
SIGTERM finishes, releases the Lease and exits 0; the docs' example outputs are real."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from typer.testing import CliRunner

from ebbtide.cli.main import app

from .standin import StandIn
from .test_controller import V1, Table, config, controller, lease_holder, settled, standin_cluster, wait_for

ROOT = Path(__file__).resolve().parents[3]


def kubeconfig(api: StandIn, path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "standin", "cluster": {"server": api.url}}],
                "users": [{"name": "test", "user": {"token": "t"}}],
                "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "test"}}],
                "current-context": "standin",
            }
        )
    )
    return path


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["controller", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "--workers"),
        (["--metrics-port", "70000"], "--metrics-port"),
        (["--resync", "0.5"], "--resync"),
        (["--namespace", " "], "--namespace: empty namespace name"),
        (["--lease-name", ""], "--lease-name: empty"),
        (["--kubeconfig", "/nonexistent/kubeconfig"], "--kubeconfig /nonexistent/kubeconfig: no such file"),
    ],
)
def test_bad_flags_are_clear_errors_with_exit_code_2(args: list[str], message: str) -> None:
    code, output = invoke(*args)
    assert code == 2 and message in output and "Traceback" not in output


def test_a_selector_the_api_server_refuses_and_missing_crds_are_clear_errors(tmp_path: Path) -> None:
    with StandIn() as api:  # no CRDs installed
        path = kubeconfig(api, tmp_path / "kubeconfig")
        code, output = invoke("--kubeconfig", str(path))
        assert code == 2 and "install the CRDs" in output
    with standin_cluster() as api:
        path = kubeconfig(api, tmp_path / "kubeconfig")
        code, output = invoke("--kubeconfig", str(path), "--label-selector", "tier in (web")
        assert code == 2 and "--label-selector 'tier in (web':" in output and "Traceback" not in output


def manifest_args() -> list[str]:
    docs = yaml.safe_load_all((ROOT / "deploy" / "controller.yaml").read_text())
    (deployment,) = [d for d in docs if d and d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["ebbtide"]
    values = {"POD_NAMESPACE": "ebbtide-system", "POD_NAME": "pod-0"}
    return [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], a) for a in container["args"]]


#: how long a controller subprocess may take to start, act or stop: generous, as a loaded CI machine (load
#: average 15-30 on 2 cores) gives it a fraction of a core; a wait ends as soon as its condition holds
SUBPROCESS_WAIT = 120.0


def probe_port(lines: list[str], process: subprocess.Popen[str]) -> int:
    """The probe port the controller printed on stderr, once the reader thread has passed the line on (it
    may lag behind the controller's first acts on a loaded machine)."""
    deadline = time.monotonic() + SUBPROCESS_WAIT
    while True:
        probes = [line for line in list(lines) if "/readyz" in line]  # (the API port is printed too)
        found = [int(m.group(1)) for line in probes if (m := re.search(r"127\.0\.0\.1:(\d+)", line))]
        if found:
            return found[0]
        assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
        time.sleep(0.05)


def test_the_manifests_command_runs_acts_and_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    with standin_cluster() as api:
        path = kubeconfig(api, tmp_path / "kubeconfig")
        # the manifest's arguments as the pod runs them; free ports on loopback instead of 0.0.0.0:8080/8081
        loopback = [
            "--metrics-address=127.0.0.1",
            "--metrics-port=0",
            "--api-address=127.0.0.1",
            "--api-port=0",
        ]
        args = [*manifest_args(), f"--kubeconfig={path}", *loopback]
        env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
        process = subprocess.Popen(
            [sys.executable, "-c", "from ebbtide.cli.main import main; main()", *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(process.stderr or []), daemon=True)
        reader.start()
        try:
            # the first revision goes live: the command acts (a subprocess: slow to start under load)
            wait_for(api, settled(V1), timeout=SUBPROCESS_WAIT)
            assert lease_holder(api) == "pod-0"
            port = probe_port(lines, process)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=30) as response:
                assert response.status == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=SUBPROCESS_WAIT) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        reader.join(SUBPROCESS_WAIT)  # returns as soon as it has read the pipe to its end
        assert lease_holder(api) is None  # released: a standby takes over without waiting for expiry
        text = "".join(lines)
        assert "stopping: finishing the running reconciles, releasing the Lease" in text and "stopped" in text


# ----- the outputs docs/kubernetes.md shows ----------------------------------------------------------
DOC = ROOT / "docs" / "kubernetes.md"


def doc_block(first_line: str) -> str:
    text = DOC.read_text()
    start = text.index(f"```console\n{first_line}\n") + len(f"```console\n{first_line}\n")
    return text[start : text.index("```", start)]


def test_the_docs_bad_flag_output_is_real() -> None:
    code, output = invoke("--workers", "0")
    assert f"{output}[exit {code}]\n" == doc_block("$ ebbtide controller --workers 0")


def test_the_docs_metric_families_are_the_controllers() -> None:
    with standin_cluster() as api, controller(api, Table({V1: 0.01}), config()) as ctl:
        wait_for(api, settled(V1))
        with urllib.request.urlopen(f"http://127.0.0.1:{ctl.http.port}/metrics", timeout=5) as response:
            text = response.read().decode()
    lines = text.splitlines()
    families = "".join(f"{t}\n" for t in lines if t.startswith("# TYPE ebbtide_") and "_created" not in t)
    assert families == doc_block(
        "$ curl -s localhost:8080/metrics | grep '^# TYPE ebbtide_' | grep -v _created"
    )


def test_a_controller_without_leader_election_needs_no_lease() -> None:
    with standin_cluster() as api, controller(api, Table({V1: 0.01}), config(leader_elect=False)):
        wait_for(api, settled(V1))
        leases = client.CoordinationV1Api(api.client).list_namespaced_lease("ebbtide-system").items
        assert leases == []
