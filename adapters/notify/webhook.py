"""Webhook notifications: the engine's ``Notify`` effects as Ocean CD webhook requests, signed and retried.

- **Events.** :data:`EVENTS` maps each engine event onto the webhook ``type`` (Ocean CD's names; the engine
  already uses them) and the phase it announces. Three events are ebbtide's own (Ocean CD sends no webhook
  for them): ``rollout-paused``, ``rollout-promoted``, ``rollout-canceled``.
- **Payload.** Ocean CD's shape: ``{type, timestamp, rolloutDetails{id, startTime, rolloutSpec, microservice,
  environment, namespace}, kubernetesDetails{deployment{name, labels, version{oldImage, newImage,
  oldVersion, newVersion}}}, failure{reason}}``; what the engine knows fills it, the rest comes from a
  :class:`NotifyContext` (the workload's names, labels and images). ``ebbtide`` carries the engine's event,
  the phase and the engine's whole payload (step, initiator, ...).
- **Headers.** ``X-Ebbtide-Signature: sha256=<hex HMAC-SHA256 of the body>`` when the channel has a secret;
  ``Idempotency-Key``: a digest of rollout id, revision, event and decision time, so a redelivery (a retry,
  or the same decision sent again after a controller restart) carries the same key and the receiver can
  drop duplicates; ``X-Ebbtide-Event``: the event.
- **Sending.** :func:`send` posts a request and retries (tenacity: exponential backoff with jitter) on a
  connection failure, a timeout, HTTP 429 or 5xx (waiting at least what a ``Retry-After`` asks, up to the
  longest backoff), up to ``max_attempts``; any other 4xx is the receiver's
  final word and is not retried. It never raises: the outcome is written into a :class:`Delivery` record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import tenacity

from ebbtide.core.effects import Notify, NotifyEvent

SIGNATURE_HEADER = "X-Ebbtide-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Ebbtide-Event"


@dataclass(frozen=True, slots=True)
class EventInfo:
    #: the webhook ``type`` (Ocean CD's event name)
    type: str
    #: the rollout phase the event announces
    phase: str
    #: a sentence for people (Slack)
    title: str
    #: Ocean CD sends this event too (False: ebbtide's own)
    ocean_cd: bool = True
    #: a failure: the payload carries ``failure.reason``
    failure: bool = False


#: every event the engine emits, as the webhook and Slack channels present it
EVENTS: dict[NotifyEvent, EventInfo] = {
    "rollout-started": EventInfo("rollout-started", "in-progress", "Rollout started"),
    "rollout-paused": EventInfo("rollout-paused", "paused", "Rollout paused", ocean_cd=False),
    "rollout-promoted": EventInfo("rollout-promoted", "in-progress", "Rollout promoted", ocean_cd=False),
    "start-external-verification": EventInfo(
        "start-external-verification", "verifying", "External verification requested"
    ),
    "rollout-failed": EventInfo("rollout-failed", "failed", "Rollout failed", failure=True),
    "rollout-rolled-back": EventInfo("rollout-rolled-back", "live", "Rollout rolled back", failure=True),
    "rollout-failed-to-roll-back": EventInfo(
        "rollout-failed-to-roll-back", "failed", "Rollback failed", failure=True
    ),
    "rollout-finished": EventInfo("rollout-finished", "live", "Rollout finished"),
    "rollout-canceled": EventInfo("rollout-canceled", "canceled", "Rollout canceled", ocean_cd=False),
}


@dataclass(frozen=True)
class NotifyContext:
    """What the engine does not know about the workload, for the payload (all optional)."""

    rollout_spec: str | None = None
    microservice: str | None = None
    environment: str | None = None
    namespace: str | None = None
    deployment: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    #: the container image of each revision
    images: Mapping[str, str] = field(default_factory=dict)


def iso_time(seconds: Any) -> str | None:
    """A decision time (unix seconds) as RFC 3339 UTC; None when it is not a number."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def payload(effect: Notify, context: NotifyContext | None = None) -> dict[str, Any]:
    """The Ocean CD webhook body of ``effect``."""
    ctx = context or NotifyContext()
    info = EVENTS[effect.event]
    p = effect.payload
    revision, stable = p.get("revision"), p.get("stable")
    body: dict[str, Any] = {
        "type": info.type,
        "timestamp": iso_time(p.get("timestamp")),
        "rolloutDetails": {
            "id": p.get("rolloutId"),
            "startTime": iso_time(p.get("startTime")),
            "rolloutSpec": ctx.rollout_spec,
            "microservice": ctx.microservice,
            "environment": ctx.environment,
            "namespace": ctx.namespace,
        },
        "kubernetesDetails": {
            "deployment": {
                "name": ctx.deployment,
                "labels": dict(ctx.labels),
                "version": {
                    "oldImage": ctx.images.get(stable) if isinstance(stable, str) else None,
                    "newImage": ctx.images.get(revision) if isinstance(revision, str) else None,
                    "oldVersion": stable,
                    "newVersion": revision,
                },
            }
        },
        "ebbtide": {"event": effect.event, "phase": info.phase, "details": dict(p)},
    }
    if info.failure:
        body["failure"] = {"reason": p.get("reason")}
    return body


def idempotency_key(effect: Notify) -> str:
    """Stable for the same transition: rollout id, revision, event and decision time (not the channel)."""
    p = effect.payload
    text = json.dumps([p.get("rolloutId"), p.get("revision"), effect.event, p.get("timestamp")], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of the body under ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode(body: Mapping[str, Any]) -> bytes:
    """The request body: compact JSON (anything not JSON, such as a tuple, as JSON would read it)."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str).encode()


@dataclass(frozen=True)
class Request:
    """One notification ready to send: the same bytes on every attempt."""

    url: str
    body: bytes
    headers: dict[str, str]


def webhook_request(effect: Notify, url: str, secret: str | None, context: NotifyContext | None) -> Request:
    body = encode(payload(effect, context))
    headers = {
        "Content-Type": "application/json",
        IDEMPOTENCY_HEADER: idempotency_key(effect),
        EVENT_HEADER: effect.event,
        "User-Agent": "ebbtide-notifier",
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    return Request(url, body, headers)


# ----- sending ------------------------------------------------------------------------------------------
Status = Literal["pending", "delivered", "failed", "rejected", "dropped"]


@dataclass
class Delivery:
    """What happened to one notification on one channel (read by tests and metrics)."""

    channel: str
    event: str
    key: str
    status: Status = "pending"
    attempts: int = 0
    #: the last HTTP status received (None: none, e.g. connection refused)
    http_status: int | None = None
    #: why the last attempt failed
    error: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` in all; waits grow from ``backoff`` seconds, doubling up to ``max_backoff``, each
    plus a random jitter of up to ``backoff`` seconds."""

    max_attempts: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    timeout: float = 10.0


class _Retry(Exception):
    """An attempt that may succeed if tried again (after ``after`` seconds, when the receiver said so)."""

    def __init__(self, after: float = 0.0) -> None:
        super().__init__(after)
        self.after = after


def retry_after(response: httpx.Response) -> float:
    """The seconds a 429 or 503 asks the sender to wait (``Retry-After: <seconds>``); 0 when it does not."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", 0)))
    except ValueError:
        return 0.0  # an HTTP date: the exponential backoff decides


def send(
    request: Request,
    record: Delivery,
    policy: RetryPolicy,
    client: httpx.Client,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """Post ``request`` until it is accepted, refused for good, or the attempt budget is spent."""

    def attempt() -> None:
        record.attempts += 1
        try:
            response = client.post(
                request.url, content=request.body, headers=request.headers, timeout=policy.timeout
            )
        except httpx.TimeoutException:
            record.http_status, record.error = None, f"timeout after {policy.timeout:g}s"
            raise _Retry from None
        except httpx.HTTPError as exc:
            record.http_status, record.error = None, f"{type(exc).__name__}: {exc}"
            raise _Retry from None
        record.http_status = response.status_code
        if response.is_success:
            record.status, record.error = "delivered", None
            return
        record.error = f"HTTP {response.status_code}: {response.text[:200].strip()}"
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retry(retry_after(response))
        record.status = "rejected"  # the receiver's final word (bad signature, unknown hook, ...)

    backoff = tenacity.wait_exponential_jitter(
        multiplier=policy.backoff, max=policy.max_backoff, jitter=policy.backoff
    )

    def wait(state: tenacity.RetryCallState) -> float:
        """The backoff, or longer when the receiver's Retry-After asks (capped at ``max_backoff``)."""
        exc = state.outcome.exception() if state.outcome is not None else None
        asked = exc.after if isinstance(exc, _Retry) else 0.0
        return max(backoff(state), min(asked, policy.max_backoff))

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.max_attempts),
        wait=wait,
        retry=tenacity.retry_if_exception_type(_Retry),
        sleep=sleep,
        reraise=True,
    )
    try:
        retrying(attempt)
    except _Retry:
        record.status = "failed"
    except Exception as exc:  # never into the caller: a bug here is a failed delivery, with its reason
        record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"
    return record
