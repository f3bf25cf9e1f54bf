"""Slack notifications: the engine's ``Notify`` effects as Slack incoming-webhook messages.

An incoming webhook takes a JSON body with ``text`` (the notification's fallback, shown in push
notifications) and ``blocks`` (Block Kit layout): a ``header`` block with the event's title, a ``section``
whose ``fields`` give rollout, revision, stable revision and phase, a ``section`` with the reason when there
is one, and a ``context`` block with the workload and the decision time. Text follows Slack's limits (header
150 characters, a field 2,000, a section 3,000) and its escaping of ``&``, ``<`` and ``>`` in ``mrkdwn``.
Slack does not check signatures, so no secret is used; Slack answers ``ok`` with HTTP 200, and errors such as
``invalid_payload`` (400) or ``no_service`` (404) are final, 429 and 5xx are retried (:func:`webhook.send`).
"""

from __future__ import annotations

from typing import Any

from ebbtide.core.effects import Notify

from .webhook import EVENTS, NotifyContext, Request, encode, idempotency_key, iso_time

HEADER_MAX = 150
FIELD_MAX = 2000
SECTION_MAX = 3000


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: the three control characters as HTML entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _field(label: str, value: Any) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _clip(f"*{label}*\n{escape(str(value))}", FIELD_MAX)}


def message(effect: Notify, context: NotifyContext | None = None) -> dict[str, Any]:
    """The incoming-webhook body of ``effect``."""
    ctx = context or NotifyContext()
    info = EVENTS[effect.event]
    p = effect.payload
    rollout, revision, stable = p.get("rolloutId"), p.get("revision"), p.get("stable")
    reason = p.get("reason")
    workload = "/".join(x for x in (ctx.namespace, ctx.deployment) if x) or "rollout"
    text = f"{info.title}: {workload} rollout {rollout}, revision {revision}"
    if reason:
        text += f": {reason}"
    fields = [
        _field("Rollout", rollout),
        _field("Revision", revision),
        _field("Stable", stable),
        _field("Phase", info.phase),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(info.title, HEADER_MAX)}},
        {"type": "section", "fields": fields},
    ]
    if reason:
        reason_text = _clip(f"*Reason*\n{escape(str(reason))}", SECTION_MAX)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": reason_text}})
    when = iso_time(p.get("timestamp")) or "?"
    context_text = _clip(f"{escape(workload)} · {effect.event} · {when}", SECTION_MAX)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context_text}]})
    return {"text": _clip(escape(text), SECTION_MAX), "blocks": blocks}


def slack_request(effect: Notify, url: str, context: NotifyContext | None) -> Request:
    headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key(effect)}
    return Request(url, encode(message(effect, context)), headers)
