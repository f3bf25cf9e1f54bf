"""``ebbtide controller --api-port``: the real command (a subprocess, against the stand-in through a
kubeconfig) serves the operator API beside the controller, with TokenReview/SubjectAccessReview auth, and
stops with it on SIGTERM; bad API flags are exit 2."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from ebbtide.cli.main import app

from ..kubernetes import test_controller as tc
from ..kubernetes.test_controller_cli import SUBPROCESS_WAIT, kubeconfig
from .kubehelp import ADMIN, grant_tokens


def test_bad_api_flags_are_exit_2() -> None:
    result = CliRunner().invoke(app, ["controller", "--api-port", "0", "--api-write-limit", "lots"])
    assert result.exit_code == 2 and "--api-write-limit 'lots'" in result.output


def test_the_controller_serves_the_api_and_stops_it_on_sigterm(tmp_path: Path) -> None:
    with tc.standin_cluster() as api:
        grant_tokens(api)
        args = [
            f"--kubeconfig={kubeconfig(api, tmp_path / 'kubeconfig')}",
            f"--namespace={tc.NS}",
            "--no-leader-elect",
            "--metrics-address=127.0.0.1",
            "--metrics-port=0",
            "--api-address=127.0.0.1",
            "--api-port=0",
        ]
        env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
        process = subprocess.Popen(
            [sys.executable, "-c", "from ebbtide.cli.main import main; main()", "controller", *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(process.stderr or []), daemon=True)
        reader.start()
        try:
            end = tc.wait_for(
                api, tc.settled(tc.V1), timeout=SUBPROCESS_WAIT
            )  # a subprocess: slow under load
            url = ""
            deadline = time.monotonic() + SUBPROCESS_WAIT
            while not url:
                assert time.monotonic() < deadline, "".join(lines)
                found = [m.group(0) for line in lines if (m := re.search(r"http://127\.0\.0\.1:\d+", line))]
                url = found[0] if found else ""
                time.sleep(0.05)
            path = f"/ocean/cd/rollout/{tc.NS}.{tc.NAME}.{end.rollout_id}"
            with httpx.Client(base_url=url, timeout=30) as http:
                assert http.get(path).status_code == 401
                deadline = time.monotonic() + SUBPROCESS_WAIT
                while (got := http.get(path, headers={"Authorization": f"Bearer {ADMIN}"})).json()[
                    "response"
                ]["items"][0]["phase"] != "live":
                    assert time.monotonic() < deadline, got.text
                    time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=SUBPROCESS_WAIT) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        reader.join(SUBPROCESS_WAIT)  # returns as soon as it has read the pipe to its end
        assert "stopped" in "".join(lines)
