"""MemoryBackend: rollouts driven in-process on a caller's clock, with the Backend protocol's promises."""

from __future__ import annotations

import copy
import json

import pytest

from ebbtide.adapters.api.backend import InvalidSpec, NotFound, Rejected
from ebbtide.adapters.api.memory import AcceleratedClock, ManualClock, MemoryBackend
from ebbtide.adapters.external import handle
from ebbtide.cli.demo import Demo
from ebbtide.core.engine import step
from ebbtide.core.events import Command


def demo_at(t: float = 0.0) -> tuple[MemoryBackend, Demo, ManualClock]:
    clock = ManualClock()
    backend = MemoryBackend(clock)
    demo = Demo(backend)
    while clock.now < t:
        clock.advance(1.0)
        demo.tick()
    return backend, demo, clock


def until(backend: MemoryBackend, demo: Demo, clock: ManualClock, ns: str, name: str, phase: str) -> None:
    while backend.view(ns, name)["phase"] != phase:
        assert clock.now < 3600, f"{ns}/{name} never {phase}"
        clock.advance(1.0)
        demo.tick()


def test_a_rejected_action_changes_nothing_and_carries_the_engines_reason() -> None:
    backend, _demo, _clock = demo_at(30)
    entry = backend._rollouts[("shop", "checkout")]
    state, now = entry.driver.state, entry.now
    oracle = step(state, Command(action="retry"), now).rejected
    generation = backend.generation()
    with pytest.raises(Rejected) as err:
        backend.act("shop", "checkout", "retry", None, "alice")
    assert err.value.reason == oracle
    assert entry.driver.state == state
    last = backend.view("shop", "checkout")["lastAction"]
    assert last["result"] == "rejected" and last["reason"] == oracle and last["by"] == "alice"
    assert backend.generation() != generation  # the view's lastAction changed: watchers hear of it


def test_actions_outside_the_protocol_are_rejected_before_the_engine() -> None:
    backend, _demo, _clock = demo_at()
    with pytest.raises(Rejected, match="unknown action"):
        backend.act("shop", "orders", "jump", None, "alice")
    with pytest.raises(Rejected, match="only for rollback"):
        backend.act("shop", "orders", "promote", "v1", "alice")
    with pytest.raises(NotFound):
        backend.act("shop", "nothing", "promote", None, "alice")
    assert backend.view("shop", "orders")["lastAction"] is None


def test_time_moves_only_with_the_clock_and_in_any_steps_the_same() -> None:
    """Syncing every second or once gives the same rollout: events happen at their own times."""
    one, _d1, c1 = demo_at()
    two, _d2, c2 = demo_at()
    for _ in range(400):
        c1.advance(1.0)
        one.sync()
    c2.now = 400.0
    two.sync()
    for key in one._rollouts:
        assert one._rollouts[key].driver.state == two._rollouts[key].driver.state
    # and nothing happens while the clock stands still
    generation = one.generation()
    one.sync()
    assert one.generation() == generation


def test_history_accumulates_arrivals_at_live() -> None:
    backend, demo, clock = demo_at()
    assert [h["revision"] for h in backend.history("shop", "checkout")] == ["v1"]
    until(backend, demo, clock, "shop", "checkout", "live")
    backend.act("shop", "checkout", "rollback", "v1", "alice")
    until(backend, demo, clock, "shop", "checkout", "live")
    got = [(h["revision"], h["initiator"]) for h in backend.history("shop", "checkout")]
    assert got == [("v1", "deploy"), ("v2", "deploy"), ("v1", "rollback")]
    with pytest.raises(NotFound):
        backend.history("shop", "nothing")


def _rollout_spec(backend: MemoryBackend, ns: str, name: str) -> dict:
    return copy.deepcopy(backend.get_spec(ns, "RolloutSpec", name))


def test_switching_the_rollback_mode_takes_effect_as_the_controllers_does() -> None:
    backend, demo, clock = demo_at()
    # mid-rollout: the new plan waits for the running rollout to end
    doc = _rollout_spec(backend, "shop", "orders")
    doc["spec"]["failurePolicy"] = {"action": "rollback", "rollback": {"mode": "newRollout"}}
    stored = backend.apply_specs("shop", [doc], "alice")
    assert stored == [doc]
    assert backend.get_spec("shop", "RolloutSpec", "orders") == doc
    state = backend._rollouts[("shop", "orders")].driver.state
    assert state.plan.rollback_mode == "immediate"
    assert state.next_plan is not None and state.next_plan.rollback_mode == "newRollout"
    # live: at once, and back again
    until(backend, demo, clock, "shop", "checkout", "live")
    doc = _rollout_spec(backend, "shop", "checkout")
    doc["spec"]["failurePolicy"]["rollback"] = {"mode": "newRollout"}
    backend.apply_specs("shop", [doc], "alice")
    assert backend._rollouts[("shop", "checkout")].driver.state.plan.rollback_mode == "newRollout"
    doc["spec"]["failurePolicy"]["rollback"] = {"mode": "immediate"}
    backend.apply_specs("shop", [doc], "alice")
    assert backend._rollouts[("shop", "checkout")].driver.state.plan.rollback_mode == "immediate"


def test_an_invalid_spec_set_applies_nothing_and_locates_each_problem() -> None:
    backend, _demo, _clock = demo_at()
    before = _rollout_spec(backend, "shop", "orders")
    state = backend._rollouts[("shop", "orders")].driver.state
    good = copy.deepcopy(before)
    good["spec"]["failurePolicy"] = {"action": "pause"}
    bad = copy.deepcopy(backend.get_spec("shop", "Strategy", "pod-steps"))
    bad["spec"]["canary"]["steps"][0] = {"setWeight": 140}
    with pytest.raises(InvalidSpec) as err:
        backend.apply_specs("shop", [good, bad], "alice")
    problems = err.value.problems
    assert problems and all(p["document"] == "Strategy/pod-steps" for p in problems)
    assert any(p["field"].startswith("spec.canary.steps[0]") for p in problems), problems
    assert backend.get_spec("shop", "RolloutSpec", "orders") == before  # the good one was not applied
    assert backend._rollouts[("shop", "orders")].driver.state == state


def test_documents_of_another_kind_or_namespace_are_refused() -> None:
    backend, _demo, _clock = demo_at()
    doc = _rollout_spec(backend, "shop", "orders")
    doc["metadata"]["namespace"] = "shop"
    with pytest.raises(InvalidSpec) as err:
        backend.apply_specs("web", [doc, {"kind": "Secret", "metadata": {"name": "x"}}], "alice")
    assert {(p["document"], p["field"]) for p in err.value.problems} == {
        ("RolloutSpec/orders", "metadata.namespace"),
        ("Secret/x", "kind"),
    }
    with pytest.raises(NotFound):
        backend.get_spec("web", "RolloutSpec", "orders")


def test_a_reference_to_a_missing_document_is_refused() -> None:
    backend, _demo, _clock = demo_at()
    doc = _rollout_spec(backend, "shop", "orders")
    doc["spec"]["strategy"]["name"] = "no-such-strategy"
    with pytest.raises(InvalidSpec) as err:
        backend.apply_specs("shop", [doc], "alice")
    assert any("no-such-strategy" in p["reason"] for p in err.value.problems), err.value.problems


def test_delete_refuses_what_a_rollout_uses() -> None:
    backend, _demo, _clock = demo_at()
    with pytest.raises(Rejected, match="still used"):
        backend.delete_spec("shop", "Strategy", "pod-steps", "alice")
    assert backend.get_spec("shop", "Strategy", "pod-steps")
    extra = copy.deepcopy(backend.get_spec("shop", "VerificationTemplate", "orders-errors"))
    extra["metadata"]["name"] = "spare"
    backend.apply_specs("shop", [extra], "alice")
    backend.delete_spec("shop", "VerificationTemplate", "spare", "alice")
    with pytest.raises(NotFound):
        backend.get_spec("shop", "VerificationTemplate", "spare")
    with pytest.raises(NotFound):
        backend.delete_spec("shop", "VerificationTemplate", "spare", "alice")


def test_external_verification_answers_go_through_the_store() -> None:
    backend, _demo, _clock = demo_at()
    path = "/api/v1/namespaces/shop/rollouts/orders/externalVerification"
    got = handle("PUT", path, json.dumps({"status": "passed"}).encode(), backend.external())
    assert got.status == 409 and "no external verification waits" in got.body["error"]
    missing = handle("PUT", path.replace("orders", "nothing"), b'{"status": "passed"}', backend.external())
    assert missing.status == 404


def test_accelerated_clock_runs_faster_than_the_wall() -> None:
    clock = AcceleratedClock(speed=1000.0, start=5.0)
    first = clock()
    assert first >= 5.0
    import time

    time.sleep(0.01)
    assert clock() - first >= 9.0
    with pytest.raises(ValueError):
        AcceleratedClock(speed=0)
