"""docs/notifications.md: its payload example prints what the page shows, its Slack message is what the Slack
channel posts for the same effect, and its receiver verifies real deliveries."""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from ebbtide.adapters.notify import Channel, Notifier, NotifierConfig
from ebbtide.adapters.notify.slack import message

DOC = Path(__file__).resolve().parents[3] / "docs" / "notifications.md"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), re.S)


def run_block(code: str, name: str) -> tuple[dict[str, Any], str]:
    namespace: dict[str, Any] = {"__name__": name}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), namespace)
    return namespace, out.getvalue()


def test_the_payload_example_prints_what_the_page_shows() -> None:
    preview, _receiver = blocks("python")
    payload_json, slack_json = blocks("json")
    namespace, printed = run_block(preview, "docs_notifications_preview")
    assert printed == payload_json
    assert json.loads(slack_json) == message(namespace["effect"], namespace["context"])


def test_the_configuration_example_is_valid() -> None:
    [config] = blocks("yaml")
    channels = NotifierConfig.model_validate(yaml.safe_load(config)).channels
    assert [c.name for c in channels] == ["ops-webhook", "team-slack"]


def test_the_receiver_example_verifies_real_deliveries_and_drops_duplicates() -> None:
    preview, receiver = blocks("python")
    effect = run_block(preview, "docs_notifications_preview")[0]["effect"]
    namespace, _ = run_block(receiver, "docs_notifications_receiver")  # not __main__: it does not serve
    handled: list[dict[str, Any]] = []
    namespace["handle"] = handled.append
    server = ThreadingHTTPServer(("127.0.0.1", 0), namespace["Hook"])
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        records = []
        for secret in ("s3cret", "s3cret", "wrong"):  # the second is another process sending it again
            with Notifier([Channel.model_validate({"name": secret, "url": url, "secret": secret})]) as n:
                n.notify(effect)
                assert n.wait(10)
            records += n.records
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert [(r.status, r.http_status) for r in records] == [
        ("delivered", 204),
        ("delivered", 204),
        ("rejected", 401),
    ]
    assert [e["type"] for e in handled] == ["rollout-failed"]
    assert namespace["seen"] == {records[0].key}
