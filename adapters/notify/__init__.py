"""Notifications: the engine's ``Notify`` effects delivered to webhooks (Ocean CD payloads, signed, retried,
with an idempotency key) and Slack incoming webhooks, on background threads. See docs/notifications.md."""

from ebbtide.adapters.notify.channels import (
    Channel,
    Notifier,
    NotifierConfig,
    NotifyConfigError,
    load_config,
)
from ebbtide.adapters.notify.webhook import (
    EVENTS,
    Delivery,
    NotifyContext,
    idempotency_key,
    payload,
    sign,
)

__all__ = [
    "EVENTS",
    "Channel",
    "Delivery",
    "Notifier",
    "NotifierConfig",
    "NotifyConfigError",
    "NotifyContext",
    "idempotency_key",
    "load_config",
    "payload",
    "sign",
]
