"""``ebbtide demo``: the demo's rollouts (what a user sees in its first minutes) and the command itself."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ebbtide.adapters.api.memory import ManualClock, MemoryBackend
from ebbtide.cli.demo import Demo

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
REGENERATE = os.environ.get("EBBTIDE_REGENERATE_DOCS") == "1"


def pinned(command: str, got: str) -> None:
    """The output docs/operations.md shows under ``$ command`` is ``got`` (rewritten under
    EBBTIDE_REGENERATE_DOCS=1)."""
    text = OPERATIONS.read_text()
    block = re.compile(r"(```console\n\$ " + re.escape(command) + r"\n)(.*?)(```)", re.S)
    m = block.search(text)
    assert m is not None, f"docs/operations.md has no `$ {command}` block"
    if REGENERATE:
        OPERATIONS.write_text(text[: m.start(2)] + got + text[m.end(2) :])
        return
    assert m.group(2) == got, "docs/operations.md: regenerate with EBBTIDE_REGENERATE_DOCS=1"


#: the default --speed: rollout seconds per wall-clock second
SPEED = 10.0


def run_demo(seconds: float) -> tuple[MemoryBackend, list[tuple[float, str, str, dict]]]:
    """The demo for ``seconds`` of rollout time; every view seen, second by second."""
    clock = ManualClock()
    backend = MemoryBackend(clock)
    demo = Demo(backend)
    seen = []
    while clock.now < seconds:
        clock.advance(1.0)
        demo.tick()
        for line in backend.list_rollouts(None):
            seen.append(
                (clock.now, line["namespace"], line["name"], backend.view(line["namespace"], line["name"]))
            )
    return backend, seen


def test_the_demo_shows_a_rollback_in_its_first_wall_clock_minute_a_healthy_and_a_paused_rollout() -> None:
    backend, seen = run_demo(20 * 60)
    rollbacks = [(t, v) for t, ns, name, v in seen if name == "orders" and v["phase"] == "rolling-back"]
    assert rollbacks, "orders never rolls back"
    first = rollbacks[0][0]
    assert first / SPEED < 60, f"the rollback starts {first / SPEED:.0f} s into the demo"
    assert 180 < first < 240, "docs/operations.md says: less than 4 minutes, some 22 s at the default speed"
    view = rollbacks[0][1]
    assert view["rollback"]["mode"] == "immediate" and view["rollback"]["target"] == "v1"
    percents = {v["rollback"]["percentComplete"] for _t, v in rollbacks}
    assert any(0 < p < 100 for p in percents), f"no rollback in progress is ever shown: {percents}"
    assert any(
        name == "checkout" and v["phase"] == "live" and v["stable"] == "v2" for _t, _ns, name, v in seen
    )
    paused = [v for _t, _ns, name, v in seen if name == "search" and v["phase"] == "paused"]
    assert paused and paused[0]["pauseReason"] == "pause-step"
    # new revisions keep coming: each settled rollout gets its next one
    revisions = {
        name: {r["revision"] for _t, _ns, n, v in seen if n == name for r in v["revisions"]}
        for name in ("orders", "checkout")
    }
    assert "v3" in revisions["orders"] and "v3" in revisions["checkout"], revisions
    # the paused one waits for a person
    assert backend.view("web", "search")["phase"] == "paused"


def test_ebbtide_demo_serves_the_api_and_the_dashboard_and_stops_after_duration() -> None:
    pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")
    cmd = [
        sys.executable,
        "-m",
        "ebbtide.cli.main",
        "demo",
        "--port",
        "0",
        "--duration",
        "4",
        "--speed",
        "50",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert match, line
        url = match.group(1)
        port = url.rsplit(":", 1)[1].rstrip("/")
        shown = line.replace(f"127.0.0.1:{port}/", "127.0.0.1:8080/").replace("x50 speed", "x10 speed")
        pinned("ebbtide demo", shown)
        items = httpx.get(url + "api/v1/rollouts", timeout=10).json()["items"]
        assert [(i["namespace"], i["name"]) for i in items] == [
            ("shop", "checkout"),
            ("shop", "orders"),
            ("web", "search"),
        ]
        page = httpx.get(url, timeout=10, follow_redirects=True)
        assert page.status_code == 200 and "app.js" in page.text
        time.sleep(0.5)
        later = httpx.get(url + "api/v1/namespaces/shop/rollouts/orders", timeout=10).json()
        assert later["canary"] == "v2"  # time runs: v2 was deployed and is rolling out
        code = proc.wait(timeout=30)
        assert code == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_port_in_use_is_a_clear_error() -> None:
    pytest.importorskip("uvicorn")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cmd = [sys.executable, "-m", "ebbtide.cli.main", "demo", "--port", str(port), "--duration", "1"]
        got = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert got.returncode == 2
    assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in got.stderr
    assert "Traceback" not in got.stderr


CURL_RETRY = (
    "curl -s -X POST http://127.0.0.1:8080/api/v1/namespaces/shop/rollouts/checkout/actions "
    "-H 'Content-Type: application/json' -d '{\"action\": \"retry\"}'"
)


def test_the_rejected_retry_in_docs_operations_is_a_real_answer() -> None:
    pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")
    from tests.adapters.api.demoserver import app_for, serving

    clock = ManualClock()
    backend = MemoryBackend(clock)
    Demo(backend)
    with serving(app_for(backend)) as url:
        got = httpx.post(
            url + "/api/v1/namespaces/shop/rollouts/checkout/actions",
            content=b'{"action": "retry"}',
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
    assert got.status_code == 409
    pinned(CURL_RETRY, got.text + "\n")


def test_an_examples_folder_without_scenarios_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    cmd = [sys.executable, "-m", "ebbtide.cli.main", "demo", "--examples", str(tmp_path), "--duration", "1"]
    got = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert got.returncode == 2
    assert f"--examples {tmp_path}: no scenarios/ folder" in got.stderr.replace("\n", "")
    assert "Traceback" not in got.stderr
