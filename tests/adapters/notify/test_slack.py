"""Slack incoming-webhook messages, checked against the shape Slack documents for incoming webhooks and Block
Kit (a ``text`` fallback; ``header`` with plain_text up to 150 characters; ``section`` with mrkdwn text up to
3,000 or up to 10 ``fields`` of up to 2,000; ``context`` with up to 10 elements; ``&``, ``<``, ``>`` escaped),
and delivered to a local receiver that answers as Slack does (``ok``, ``invalid_payload``, HTTP 500)."""

from __future__ import annotations

from typing import Any

import pytest

from ebbtide.adapters.notify import Channel, Notifier, NotifyContext
from ebbtide.adapters.notify.slack import message
from ebbtide.core.effects import Notify

from .receiver import Receiver, serve

EFFECT = Notify(
    event="rollout-rolled-back",
    payload={
        "rolloutId": "r-7",
        "revision": "v1",
        "stable": "v1",
        "timestamp": 1_767_225_600.0,
        "reason": "metric p99 failed: result[0] > 0.5 & <rising>",
    },
)
CONTEXT = NotifyContext(namespace="shop", deployment="orders")


def check_slack_shape(body: dict[str, Any]) -> None:
    """What Slack's incoming webhooks accept (independent of ebbtide's builder)."""
    assert set(body) <= {"text", "blocks", "username", "icon_emoji", "channel"}
    assert isinstance(body["text"], str) and body["text"]
    assert 0 < len(body["blocks"]) <= 50
    for block in body["blocks"]:
        kind = block["type"]
        assert kind in {"header", "section", "context", "divider"}
        if kind == "header":
            assert block["text"]["type"] == "plain_text" and 0 < len(block["text"]["text"]) <= 150
        if kind == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert block["text"]["type"] == "mrkdwn" and 0 < len(block["text"]["text"]) <= 3000
            for f in block.get("fields", []):
                assert f["type"] == "mrkdwn" and 0 < len(f["text"]) <= 2000
            assert len(block.get("fields", [])) <= 10
        if kind == "context":
            assert 0 < len(block["elements"]) <= 10
            assert all(e["type"] in {"mrkdwn", "plain_text", "image"} for e in block["elements"])


def field_texts(body: dict[str, Any]) -> list[str]:
    return [f["text"] for b in body["blocks"] if b["type"] == "section" for f in b.get("fields", [])]


def test_a_rollback_message_names_rollout_revision_phase_and_reason() -> None:
    body = message(EFFECT, CONTEXT)
    check_slack_shape(body)
    assert body["blocks"][0]["text"]["text"] == "Rollout rolled back"
    assert field_texts(body) == ["*Rollout*\nr-7", "*Revision*\nv1", "*Stable*\nv1", "*Phase*\nlive"]
    reason = body["blocks"][2]["text"]["text"]
    assert reason == "*Reason*\nmetric p99 failed: result[0] &gt; 0.5 &amp; &lt;rising&gt;"
    assert body["blocks"][-1]["elements"][0]["text"] == (
        "shop/orders · rollout-rolled-back · 2026-01-01T00:00:00Z"
    )
    assert "&lt;rising&gt;" in body["text"] and "<" not in body["text"]


def test_a_long_reason_is_clipped_to_slacks_limits() -> None:
    long = Notify(event="rollout-failed", payload={**EFFECT.payload, "reason": "x" * 10_000})
    body = message(long)
    check_slack_shape(body)
    assert body["blocks"][2]["text"]["text"].endswith("…")


def test_an_event_without_a_reason_has_no_reason_block() -> None:
    body = message(Notify(event="rollout-started", payload={"rolloutId": "r-1", "revision": "v2"}))
    check_slack_shape(body)
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context"]


def slack(url: str, **extra: object) -> Channel:
    settings = {"kind": "slack", "backoff": 0.02, "max_backoff": 0.1, "timeout": 1.0}
    return Channel.model_validate({"name": "team", "url": url, **settings, **extra})


@pytest.mark.parametrize(
    ("script", "status", "attempts"),
    [([], "delivered", 1), (["500"], "delivered", 2), (["400"], "rejected", 1)],
    ids=["ok", "server-error-retried", "invalid-payload-final"],
)
def test_delivery_to_a_slack_like_receiver(script: list[str], status: str, attempts: int) -> None:
    with serve(Receiver(script=script, ok_body=b"ok")) as rx:
        notifier = Notifier([slack(rx.url)], context=CONTEXT)
        notifier.notify(EFFECT)
        assert notifier.wait(20)
        notifier.close()
    [record] = notifier.records
    assert (record.status, record.attempts) == (status, attempts)
    for hit in rx.hits:
        check_slack_shape(hit.json)
        assert hit.json == message(EFFECT, CONTEXT)
        assert hit.signature_ok is None  # Slack checks no signature: none is sent
