"""Webhook notifications against a local receiver speaking real HTTP on 127.0.0.1.

The receiver (receiver.py) checks each signature with its own HMAC and records what it processed; the
oracle is the engine's own Notify effects and the receiver's records, never the notifier's.
"""

from __future__ import annotations

import json
import time
from typing import get_args

import pytest

from ebbtide.adapters.driver import Driver
from ebbtide.adapters.memory import ClusterConfig, MemoryCluster
from ebbtide.adapters.notify import EVENTS, Channel, Notifier, NotifyContext, idempotency_key, payload
from ebbtide.core.effects import Notify, NotifyEvent
from ebbtide.core.engine import initial_state
from ebbtide.core.events import Deploy
from ebbtide.core.plan import MetricPlan, Plan, StepPlan, TemplatePlan

from .receiver import Receiver, free_port, serve

SECRET = "s3cret"
FAILED = Notify(
    event="rollout-failed",
    payload={
        "rolloutId": "r-2",
        "revision": "v2",
        "stable": "v1",
        "timestamp": 1_767_225_600.5,
        "reason": "metric error-rate failed",
    },
)


def channel(url: str, **extra: object) -> Channel:
    settings: dict[str, object] = {"backoff": 0.02, "max_backoff": 0.1, "timeout": 0.3}
    return Channel.model_validate({"name": "hook", "url": url, "secret": SECRET, **settings, **extra})


def deliver(receiver: Receiver, effect: Notify = FAILED, **extra: object) -> Notifier:
    notifier = Notifier([channel(receiver.url, **extra)])
    notifier.notify(effect)
    assert notifier.wait(20)
    notifier.close()
    return notifier


def test_every_engine_event_has_a_webhook_type() -> None:
    assert set(EVENTS) == set(get_args(NotifyEvent))
    ocean = {e for e, info in EVENTS.items() if info.ocean_cd}
    assert ocean == {  # Ocean CD's rollout webhook events (shared/reference)
        "rollout-started",
        "rollout-failed",
        "rollout-failed-to-roll-back",
        "rollout-rolled-back",
        "rollout-finished",
        "start-external-verification",
    }


def test_a_delivery_is_signed_keyed_and_shaped_as_ocean_cd_sends_it() -> None:
    with serve(Receiver(secret=SECRET)) as rx:
        notifier = deliver(rx)
    [record] = notifier.records
    assert (record.status, record.attempts, record.http_status) == ("delivered", 1, 200)
    [hit] = rx.hits
    assert hit.signature_ok is True and hit.event == "rollout-failed"
    assert hit.key == idempotency_key(FAILED) and len(hit.key) == 32
    body = hit.json
    assert body["type"] == "rollout-failed"
    assert body["timestamp"] == "2026-01-01T00:00:00.500000Z"
    assert body["rolloutDetails"]["id"] == "r-2"
    assert body["kubernetesDetails"]["deployment"]["version"]["oldVersion"] == "v1"
    assert body["kubernetesDetails"]["deployment"]["version"]["newVersion"] == "v2"
    assert body["failure"] == {"reason": "metric error-rate failed"}
    assert body["ebbtide"]["phase"] == "failed"


def test_the_context_fills_what_the_engine_does_not_know() -> None:
    ctx = NotifyContext(
        rollout_spec="orders-rollout",
        microservice="orders",
        environment="prod",
        namespace="shop",
        deployment="orders",
        labels={"app": "orders"},
        images={"v1": "orders:1.0", "v2": "orders:2.0"},
    )
    body = payload(FAILED, ctx)
    assert body["rolloutDetails"] | {"id": None} == {
        "id": None,
        "startTime": None,
        "rolloutSpec": "orders-rollout",
        "microservice": "orders",
        "environment": "prod",
        "namespace": "shop",
    }
    deployment = body["kubernetesDetails"]["deployment"]
    assert deployment["name"] == "orders" and deployment["labels"] == {"app": "orders"}
    assert deployment["version"]["oldImage"] == "orders:1.0"
    assert deployment["version"]["newImage"] == "orders:2.0"
    assert "failure" not in payload(Notify(event="rollout-started", payload={}), ctx)


def test_a_wrong_secret_is_refused_by_the_receiver_and_not_retried() -> None:
    with serve(Receiver(secret="another")) as rx:
        notifier = deliver(rx)
    [record] = notifier.records
    assert (record.status, record.attempts, record.http_status) == ("rejected", 1, 401)
    assert [h.signature_ok for h in rx.hits] == [False] and rx.accepted == {}


@pytest.mark.parametrize(
    "script",
    [["500", "502", "503"], ["slow", "slow"], ["429", "500"]],
    ids=["server-errors", "timeouts", "rate-limited"],
)
def test_a_receiver_that_fails_then_recovers_gets_it_exactly_once(script: list[str]) -> None:
    with serve(Receiver(secret=SECRET, script=script, slow_for=0.6)) as rx:
        notifier = deliver(rx)
    [record] = notifier.records
    assert record.status == "delivered" and record.attempts == len(script) + 1
    assert len(rx.hits) == len(script) + 1
    assert {h.key for h in rx.hits} == {idempotency_key(FAILED)}  # every attempt carries the same key
    assert {h.body for h in rx.hits} == {rx.hits[0].body}  # and the same signed bytes
    assert all(h.signature_ok for h in rx.hits)
    assert rx.processed_keys() == [idempotency_key(FAILED)]  # processed once


def test_retry_after_is_honoured_up_to_the_longest_backoff() -> None:
    with serve(Receiver(secret=SECRET, script=["429-wait"])) as rx:
        notifier = deliver(rx, max_backoff=5.0)  # backoff alone would wait about 0.02 s
        capped = Receiver(secret=SECRET, script=["429-wait"])
        with serve(capped):
            deliver(capped, max_backoff=0.1)
    assert notifier.records[0].status == "delivered" and len(rx.hits) == 2
    assert rx.hits[1].at - rx.hits[0].at >= 0.95
    assert capped.hits[1].at - capped.hits[0].at < 0.9


def test_a_receiver_that_is_down_then_comes_up_gets_it() -> None:
    rx = Receiver(secret=SECRET, port=free_port())
    notifier = Notifier([channel(rx.url, max_attempts=12, backoff=0.05, max_backoff=0.2)])
    notifier.notify(FAILED)
    with serve(rx, delay=0.3):
        assert notifier.wait(20)
    notifier.close()
    [record] = notifier.records
    assert record.status == "delivered" and record.attempts > 1
    assert rx.processed_keys() == [idempotency_key(FAILED)]


def test_an_answer_lost_after_processing_is_redelivered_with_the_same_key() -> None:
    """The receiver processed it but answered too late: the sender retries, the key lets it drop the copy."""
    with serve(Receiver(secret=SECRET, script=["slow-ok"], slow_for=0.6)) as rx:
        notifier = deliver(rx)
    assert notifier.records[0].status == "delivered" and notifier.records[0].attempts == 2
    assert rx.processed_keys() == [idempotency_key(FAILED)] * 2
    assert list(rx.accepted) == [idempotency_key(FAILED)]


def test_a_receiver_that_never_recovers_exhausts_the_budget_and_is_reported() -> None:
    with serve(Receiver(secret=SECRET, script=["500"] * 10)) as rx:
        notifier = Notifier([channel(rx.url, max_attempts=3)])
        t0 = time.monotonic()
        records = notifier.notify(FAILED)  # never raises, never waits for the receiver
        assert time.monotonic() - t0 < 0.25
        assert notifier.wait(20)
        notifier.close()
    assert records == notifier.records
    [record] = records
    assert (record.status, record.attempts, record.http_status) == ("failed", 3, 500)
    assert record.error is not None and record.error.startswith("HTTP 500")
    assert len(rx.hits) == 3 and rx.accepted == {}
    assert notifier.stats() == {"failed": 1}


def test_an_unreachable_receiver_is_reported_not_raised() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    notifier = Notifier([channel(url, max_attempts=2)])
    notifier.notify(FAILED)
    assert notifier.wait(20)
    notifier.close()
    [record] = notifier.records
    assert record.status == "failed" and record.attempts == 2 and record.http_status is None
    assert record.error is not None and "ConnectError" in record.error


def test_notify_returns_before_a_slow_receiver_answers() -> None:
    with serve(Receiver(secret=SECRET, script=["slow-ok"], slow_for=1.0)) as rx:
        notifier = Notifier([channel(rx.url, timeout=5)])
        t0 = time.monotonic()
        notifier.notify(FAILED)
        assert time.monotonic() - t0 < 0.25  # the receiver takes 1 s
        assert notifier.records[0].status == "pending"
        assert notifier.wait(20)
        notifier.close()
    assert notifier.records[0].status == "delivered"


def test_the_key_is_stable_for_a_transition_and_differs_between_transitions() -> None:
    again = Notify(event=FAILED.event, payload=dict(FAILED.payload))
    assert idempotency_key(again) == idempotency_key(FAILED)
    for change in ({"timestamp": 1_767_225_601.0}, {"revision": "v3"}, {"rolloutId": "r-3"}):
        assert idempotency_key(Notify(event="rollout-failed", payload={**FAILED.payload, **change})) != (
            idempotency_key(FAILED)
        )
    assert idempotency_key(Notify(event="rollout-rolled-back", payload=FAILED.payload)) != idempotency_key(
        FAILED
    )


def test_a_restarted_notifier_redelivers_with_the_same_key() -> None:
    with serve(Receiver(secret=SECRET)) as rx:
        deliver(rx)
        deliver(rx)  # a new process sending the same decision after a crash
        one = Notifier([channel(rx.url)])
        one.notify(FAILED)
        one.notify(FAILED)  # the same notifier: sent once
        assert one.wait(20)
        one.close()
    assert len(one.records) == 1
    assert [h.key for h in rx.hits] == [idempotency_key(FAILED)] * 3
    assert len(rx.accepted) == 1


def test_the_events_filter_and_the_pending_bound() -> None:
    with serve(Receiver(secret=SECRET)) as rx:
        only = Notifier([channel(rx.url, events=["rollout-finished"])])
        assert only.notify(FAILED) == []
        only.close()
        busy = Notifier([channel(rx.url)], max_pending=0)
        [record] = busy.notify(FAILED)
        busy.close()
    assert record.status == "dropped" and record.error == "0 deliveries pending"
    assert rx.hits == []


def test_a_closed_notifier_drops_and_reports() -> None:
    notifier = Notifier([channel("http://127.0.0.1:9/hook")])
    notifier.close()
    [record] = notifier.notify(FAILED)
    assert record.status == "dropped" and record.error == "notifier closed"


# ----- wired to the driver ---------------------------------------------------------------------------
PLAN = Plan(
    steps=(StepPlan(kind="setWeight", weight=50), StepPlan(kind="verification", templates=("t",))),
    templates={
        "t": TemplatePlan(name="t", metrics=(MetricPlan(name="errors", success_condition="result < 0.05"),))
    },
    replicas=2,
)
CLUSTER = ClusterConfig.model_validate(
    {
        "revisions": {"v1": {"signals": {"e": {"value": 0.01}}}, "v2": {"signals": {"e": {"value": 0.5}}}},
        "metrics": [{"metric": "errors", "signal": "e"}],
    }
)


def test_a_driven_rollout_that_rolls_back_notifies_every_transition_once() -> None:
    with serve(Receiver(secret=SECRET)) as rx:
        notifier = Notifier([channel(rx.url)])
        cluster = MemoryCluster(CLUSTER, seed=1)
        driver = Driver(cluster, initial_state(PLAN), on_decision=notifier.on_decision)
        for revision, now in (("v1", 0.0), ("v2", 100.0)):
            driver.send(Deploy(revision=revision), now)
            while (t := driver.next_time(now)) is not None and t < now + 600:
                now = t
                driver.pump(now)
        assert driver.state.stable == "v1" and driver.state.phase == "live"
        assert notifier.wait(20)
        notifier.close()
    sent = [effect for _, effect in cluster.notifications]  # what the engine emitted
    assert [e.event for e in sent].count("rollout-failed") == 1
    assert sorted(h.key for h in rx.hits) == sorted(idempotency_key(e) for e in sent)
    by_key = {h.key: h.json for h in rx.hits}
    for effect in sent:
        body = by_key[idempotency_key(effect)]
        assert body["type"] == effect.event and body["rolloutDetails"]["id"] == effect.payload["rolloutId"]
    failed = by_key[idempotency_key(next(e for e in sent if e.event == "rollout-failed"))]
    assert "errors" in failed["failure"]["reason"]
    assert all(h.signature_ok for h in rx.hits)
    assert json.loads(rx.hits[0].body)  # JSON on the wire


def test_the_memory_of_sent_keys_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from ebbtide.adapters.notify import channels

    monkeypatch.setattr(channels, "SEEN_KEYS", 2)
    effects = [Notify(event="rollout-failed", payload={**FAILED.payload, "timestamp": t}) for t in (1, 2, 3)]
    with serve(Receiver(secret=SECRET)) as rx:
        notifier = Notifier([channel(rx.url)])
        for effect in [*effects, effects[2], effects[0]]:  # the third again: remembered; the first: forgotten
            notifier.notify(effect)
            assert notifier.wait(10)
        notifier.close()
    keys = [idempotency_key(e) for e in effects]
    assert [h.key for h in rx.hits] == [*keys, keys[0]]
    assert len(rx.accepted) == 3  # the receiver drops the repeat by its key


def test_the_records_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from ebbtide.adapters.notify import channels

    monkeypatch.setattr(channels, "RECORDS_KEPT", 2)
    notifier = Notifier([channel("http://127.0.0.1:9/hook")], max_pending=0)  # every delivery dropped
    for t in (1, 2, 3):
        notifier.notify(Notify(event="rollout-failed", payload={**FAILED.payload, "timestamp": t}))
    notifier.close()
    assert [r.key for r in notifier.records] == [
        idempotency_key(Notify(event="rollout-failed", payload={**FAILED.payload, "timestamp": t}))
        for t in (2, 3)
    ]
