"""``ebbtide controller --notify-config FILE``: each persisted reconcile's notifications reach the channels.

Against the stand-in API server, a web metric endpoint on 127.0.0.1 answering a failing value and a local
webhook receiver (real HTTP, signatures checked): an immediate rollback is announced as rollout-started,
rollout-failed and rollout-rolled-back, each once, for the workload it concerns.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ebbtide.adapters.kubernetes.controller import Controller
from ebbtide.cli.controller import _channels, measure_with_providers, notify_with
from ebbtide.cli.main import app

from ..adapters.kubernetes.test_controller import (
    NS,
    V1,
    V2,
    config,
    set_image,
    settled,
    standin_cluster,
    wait_for,
)
from ..adapters.notify.receiver import Receiver, serve
from .test_controller_measure import metric_endpoint, use_web_metric

ANNOUNCED = ["rollout-started", "rollout-failed", "rollout-rolled-back"]


def channels_file(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "notify.yaml"
    channel = {"name": "ops", "url": url, "secret": "hmac-key", "backoff": 0.05}
    path.write_text(yaml.safe_dump({"channels": [channel]}))
    return path


def test_an_immediate_rollback_is_announced_once_per_event(tmp_path: Path) -> None:
    receiver = Receiver(secret="hmac-key")
    with serve(receiver), standin_cluster() as api, metric_endpoint(0.5) as (url, _):
        use_web_metric(api, url)
        ctl = Controller(api.configuration, config())
        dispatcher = measure_with_providers(ctl, workers=2, timeout=5.0)
        notifier = notify_with(ctl, _channels(channels_file(tmp_path, receiver.url)))
        try:
            with ctl:
                wait_for(api, settled(V1))
                set_image(api, "orders:2")
                wait_for(api, lambda s: s.desired == V2 and s.degraded and settled(V1)(s), timeout=30.0)
        finally:
            dispatcher.close()
            notifier.close()
        assert notifier.wait(5)
    delivered = sorted(receiver.accepted.values(), key=lambda h: h.at)
    assert [h.event for h in delivered if h.event in ANNOUNCED] == ANNOUNCED
    assert all(h.signature_ok for h in receiver.hits)
    assert sorted(receiver.processed_keys()) == sorted(receiver.accepted)  # no duplicate was sent
    failed = next(h.json for h in delivered if h.event == "rollout-failed")
    assert failed["rolloutDetails"]["namespace"] == NS
    assert failed["kubernetesDetails"]["deployment"]["name"] == "orders"


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("channels: [{name: ops}]", "channels[0].url: Field required"),
        ("channels: [{name: ops, url: 'http://x', events: [rollout-exploded]}]", "channels[0].events[0]"),
        ("channels: [{name: ops, url: 'http://x', colour: red}]", "channels[0].colour"),
    ],
)
def test_a_bad_notify_config_is_exit_2_naming_the_field(tmp_path: Path, content: str, field: str) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text(content)
    result = CliRunner().invoke(app, ["controller", "--notify-config", str(path)])
    assert result.exit_code == 2, result.output
    assert f"--notify-config {path}: {field}" in " ".join(result.output.split())
    assert "Traceback" not in result.output
