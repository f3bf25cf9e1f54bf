"""Notification channels and the :class:`Notifier` that fans each ``Notify`` effect out to them.

A channel (:class:`Channel`, validated with pydantic) is a webhook or a Slack incoming webhook with an
events filter and a retry budget. :meth:`Notifier.notify` is what the driver or the controller calls for each
``Notify`` effect: it builds one request per channel that wants the event, queues it on a small pool of
background threads (each delivery retries on its own thread, so a failing receiver never delays the engine
nor, beyond its own thread, the other channels) and returns at once. Nothing raises into the caller: a full
queue, a closed notifier or an unbuildable payload is a :class:`Delivery` record with status ``dropped``.

Hooks: ``Driver(adapter, state, on_decision=notifier.on_decision)`` delivers the Notify effects of every
decision; a controller calls ``notifier.notify_all(outcome.notifications)`` after a reconcile persisted its
status (``ebbtide.adapters.kubernetes.reconcile``). The same (channel, idempotency key) is sent once per
notifier; after a restart it may be sent again, with the same key, for the receiver to drop.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic.alias_generators import to_camel

from ebbtide.core.effects import Notify, NotifyEvent
from ebbtide.core.events import Event
from ebbtide.core.spec import loc_path
from ebbtide.core.state import Decision

from .slack import slack_request
from .webhook import Delivery, NotifyContext, Request, RetryPolicy, idempotency_key, send, webhook_request

#: how many recent (channel, idempotency key) pairs a notifier remembers to send each once
SEEN_KEYS = 10_000
#: how many delivery records a notifier keeps (the oldest go first)
RECORDS_KEPT = 10_000


class Channel(BaseModel):
    """One receiver of notifications."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)

    name: str = Field(min_length=1)
    kind: Literal["webhook", "slack"] = "webhook"
    url: AnyHttpUrl
    #: the HMAC-SHA256 key of the signature header (webhook only; Slack does not check signatures)
    secret: SecretStr | None = None
    #: the engine events this channel receives (None: all of them)
    events: tuple[NotifyEvent, ...] | None = None
    #: seconds one attempt may take
    timeout: float = Field(10.0, gt=0)
    max_attempts: int = Field(5, ge=1, le=50)
    #: seconds before the first retry (doubling after each, plus up to as much random jitter)
    backoff: float = Field(1.0, ge=0)
    max_backoff: float = Field(60.0, ge=0)

    def wants(self, event: str) -> bool:
        return self.events is None or event in self.events

    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.backoff, self.max_backoff, self.timeout)

    def request(self, effect: Notify, context: NotifyContext | None) -> Request:
        if self.kind == "slack":
            return slack_request(effect, str(self.url), context)
        secret = self.secret.get_secret_value() if self.secret is not None else None
        return webhook_request(effect, str(self.url), secret, context)


class NotifierConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: tuple[Channel, ...] = ()


class NotifyConfigError(ValueError):
    """A notifier configuration that cannot be used: the message names the file, the field and the reason."""


def load_config(path: str | Path) -> NotifierConfig:
    """Read ``{channels: [...]}`` from a YAML file; every problem is a :class:`NotifyConfigError`."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise NotifyConfigError(f"{path}: cannot read: {exc}") from None
    try:
        return NotifierConfig.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = [f"{path}: {loc_path(e['loc']) or '(top)'}: {_reason(e)}" for e in exc.errors()]
        raise NotifyConfigError("; ".join(problems)) from None


def _reason(error: Any) -> str:
    """Pydantic's message, and the value it refused when that is a plain value."""
    given = error.get("input")
    if isinstance(given, str | int | float) and error.get("type") != "missing":
        return f"{error['msg']} (got {given!r})"
    return str(error["msg"])


class Notifier:
    """Delivers ``Notify`` effects to channels on background threads; keeps a record of every delivery."""

    def __init__(
        self,
        channels: Iterable[Channel],
        *,
        context: NotifyContext | None = None,
        workers: int = 4,
        max_pending: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.channels = tuple(channels)
        self.context = context
        self.max_pending = max_pending
        self._sleep = sleep
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ebbtide-notify")
        self._client = httpx.Client()
        self._cond = threading.Condition()
        #: (channel, key) sent by this notifier, oldest first, the last ``SEEN_KEYS`` of them
        self._seen: dict[tuple[str, str], None] = {}
        self._pending = 0
        self._closed = False
        #: the deliveries, in the order the notifications came, the last ``RECORDS_KEPT`` (tests and metrics)
        self.records: list[Delivery] = []

    # ----- the entry points ------------------------------------------------------------------------------
    def notify(self, effect: Notify, context: NotifyContext | None = None) -> list[Delivery]:
        """Queue ``effect`` for every channel that wants it; returns the new records at once."""
        out: list[Delivery] = []
        for channel in self.channels:
            if channel.wants(effect.event):
                record = self._queue(channel, effect, context or self.context)
                if record is not None:
                    out.append(record)
        return out

    def notify_all(self, notifications: Iterable[tuple[float, Notify]]) -> list[Delivery]:
        """Every ``(time, Notify)`` of an adapter's ``notifications`` or a reconcile ``Outcome``."""
        return [r for _, effect in notifications for r in self.notify(effect)]

    def on_decision(self, now: float, event: Event, decision: Decision) -> None:
        """A :class:`~ebbtide.adapters.driver.Driver` ``on_decision`` hook: the decision's Notify effects."""
        for effect in decision.effects:
            if isinstance(effect, Notify):
                self.notify(effect)

    # ----- waiting and closing ---------------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> bool:
        """Block until no delivery is pending (tests, shutdown); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop taking notifications; wait up to ``timeout`` for those under way."""
        with self._cond:
            self._closed = True
        self.wait(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> Counter[str]:
        """The kept records per status (``delivered``, ``failed``, ``rejected``, ``dropped``, ``pending``)."""
        with self._cond:
            return Counter(r.status for r in self.records)

    # ----- inside ----------------------------------------------------------------------------------------
    def _queue(self, channel: Channel, effect: Notify, context: NotifyContext | None) -> Delivery | None:
        try:
            key = idempotency_key(effect)
            request = channel.request(effect, context)
        except Exception as exc:  # an effect the payload cannot be built from: reported, never raised
            record = Delivery(channel.name, effect.event, "", status="dropped", error=f"cannot build: {exc}")
            with self._cond:
                self._keep(record)
            return record
        record = Delivery(channel.name, effect.event, key)
        with self._cond:
            if (channel.name, key) in self._seen:
                return None  # the same transition again (a re-applied decision): sent once
            self._keep(record)
            if self._closed or self._pending >= self.max_pending:
                record.status = "dropped"
                record.error = "notifier closed" if self._closed else f"{self._pending} deliveries pending"
                return record
            self._seen[(channel.name, key)] = None
            if len(self._seen) > SEEN_KEYS:
                del self._seen[next(iter(self._seen))]
            self._pending += 1
        try:
            self._pool.submit(self._deliver, request, record, channel.policy())
        except RuntimeError:  # closed in the meantime
            with self._cond:
                record.status, record.error = "dropped", "notifier closed"
                self._pending -= 1
                self._cond.notify_all()
        return record

    def _keep(self, record: Delivery) -> None:
        self.records.append(record)
        if len(self.records) > RECORDS_KEPT:
            del self.records[: len(self.records) - RECORDS_KEPT]

    def _deliver(self, request: Request, record: Delivery, policy: RetryPolicy) -> None:
        try:
            send(request, record, policy, self._client, sleep=self._sleep)
        finally:
            with self._cond:
                self._pending -= 1
                self._cond.notify_all()
