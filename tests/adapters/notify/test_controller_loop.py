"""The controller's wiring against the stand-in API server: reconcile with a dispatcher's scope as the
measurement provider (results reach the engine through the adapter's observe on a later reconcile), and the
notifications of each persisted reconcile handed to a Notifier that posts them to a local receiver."""

from __future__ import annotations

from ebbtide.adapters.kubernetes.reconcile import reconcile
from ebbtide.adapters.notify import Channel, Notifier, idempotency_key
from ebbtide.adapters.providers.dispatch import Dispatcher
from ebbtide.core.effects import Notify

from ..kubernetes.test_reconcile import NAME, NS, V1, V2, Table, set_image, standin_cluster, state_of
from .receiver import Receiver, serve

SECRET = "s3cret"


def test_a_rollback_driven_by_reconcile_with_asynchronous_measurements_and_webhooks() -> None:
    woken: list[str] = []
    table = Table({V1: 0.01, V2: 0.5})  # v2 fails its error-rate verification (result < 0.05)
    sent: list[Notify] = []
    with standin_cluster() as api, serve(Receiver(secret=SECRET)) as rx:
        channel = Channel.model_validate({"name": "ops", "url": rx.url, "secret": SECRET, "backoff": 0.02})
        with Dispatcher(table, on_result=woken.append) as dispatcher, Notifier([channel]) as notifier:
            scope = dispatcher.for_scope(f"{NS}/{NAME}")
            now = 0.0

            def reconcile_until(done: bool | None = None) -> None:
                nonlocal now
                for _ in range(200):
                    outcome = reconcile(api.client, NS, NAME, now, measurements=scope)
                    sent.extend(effect for _, effect in outcome.notifications)
                    notifier.notify_all(outcome.notifications)  # after the status write, as a controller does
                    api.workloads.sync()
                    assert dispatcher.wait(10)  # lock-step: the answers are in before the next reconcile
                    state = state_of(api)
                    if state.phase == "live" and state.stable == V1 and state.ready.get(V1) == 5:
                        if state.desired == (V2 if done else V1):
                            return
                    now += 5.0
                raise AssertionError(f"not reached: {state_of(api)}")

            reconcile_until()
            set_image(api, "orders:2")
            reconcile_until(done=True)
            assert notifier.wait(20)
        state = state_of(api)
    assert state.degraded and state.desired == V2
    assert table.asked and {s.revision for s in table.asked} == {V2}
    assert woken and set(woken) == {f"{NS}/{NAME}"}
    events = [e.event for e in sent]
    assert "rollout-failed" in events and "rollout-rolled-back" in events
    [failed] = [e for e in sent if e.event == "rollout-failed"]
    assert failed.payload["reason"].endswith("failed measurement(s) > failureLimit 0 (last: 0.5)")
    assert (
        failed.payload["timestamp"] < 60
    )  # answered at the next reconcile, not by the engine's 60 s timeout
    assert sorted(h.key for h in rx.hits) == sorted(idempotency_key(e) for e in sent)  # each once
    assert all(h.signature_ok for h in rx.hits)
    assert {h.json["type"] for h in rx.hits} == set(events)
