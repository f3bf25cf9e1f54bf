"""``ebbtide rollout get|rollback|... --server URL``: the commands through the operator HTTP API, against
``ebbtide demo``'s rollouts served over real HTTP on 127.0.0.1. The oracle is the backend the test holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from ebbtide.cli.main import app
from ebbtide.core.engine import step
from ebbtide.core.events import Command

from ..adapters.api.demoserver import app_for, new_demo, run_until, serving


@pytest.fixture
def demo() -> Iterator[tuple[Any, Any, Any, str]]:
    backend, demo, clock = new_demo()
    with serving(app_for(backend)) as url:
        yield backend, demo, clock, url


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["rollout", *args], env={"COLUMNS": "120"})


def test_get_shows_an_immediate_rollback_with_its_percent_complete(demo: Any) -> None:
    backend, demo_, clock, url = demo
    run_until(
        backend,
        demo_,
        clock,
        lambda: (backend.view("shop", "orders")["rollback"] or {}).get("percentComplete") is not None,
    )
    expected = backend.view("shop", "orders")["rollback"]
    got = cli("get", "orders", "-n", "shop", "--server", url)
    assert got.exit_code == 0, got.output
    assert f"Rollback status: {expected['percentComplete']:g}% complete" in got.output
    assert f"immediate to {expected['target']}" in got.output
    watched = cli(
        "get", "orders", "-n", "shop", "--server", url, "--watch", "--interval", "0.05", "--updates", "2"
    )
    assert watched.exit_code == 0 and "Rollback status" in watched.output


def test_rollback_of_a_live_version_with_one_command(demo: Any) -> None:
    backend, demo_, clock, url = demo
    run_until(backend, demo_, clock, lambda: backend.view("shop", "checkout")["phase"] == "live")
    before = backend.view("shop", "checkout")
    got = cli("rollback", "checkout", "-n", "shop", "--server", url)
    assert got.exit_code == 0, got.output
    assert "shop/checkout: rollback accepted (id " in got.output
    after = backend.view("shop", "checkout")
    assert after["initiator"] == "rollback" and after["rolloutId"] == before["rolloutId"] + 1


def test_a_rejected_action_exits_1_with_the_engines_reason_and_bad_input_exits_2(demo: Any) -> None:
    backend, _demo, _clock, url = demo
    entry = backend._rollouts[("shop", "checkout")]
    expected = step(entry.driver.state, Command(action="retry"), entry.now).rejected
    got = cli("retry", "checkout", "-n", "shop", "--server", url)
    assert got.exit_code == 1
    assert f"rejected: shop/checkout: retry: {expected}" in " ".join(got.output.split())
    assert cli("get", "nothing", "-n", "shop", "--server", url).exit_code == 2
    assert cli("get", "orders", "-n", "shop", "--server", "ftp://x").exit_code == 2
