"""Freezing the working copy (``engine._W.freeze``): the decision's new state from the state it started from.

The generated ``frozen`` compares the fields in one chain that stops at the first difference, then copies
every field; the oracle here is the rule written per field: the old state itself when no field changed (the
dict and number fields compared by value, every other field by identity), else a new state holding the
working copy's fields, the old state's dict where the working copy's is equal to it, and the decision's
time in ``updated_at``. Each field is changed alone (to another value of its type, so that a compiled
working copy takes it), so a field the chain forgets fails the test."""

from __future__ import annotations

from dataclasses import fields

import pytest

from ebbtide.core import engine, initial_state, step
from ebbtide.core.events import Deploy, ReplicasObserved
from ebbtide.core.plan import Plan, StepPlan
from ebbtide.core.state import RollbackStatus, RolloutState

DICTS = ("weights", "replicas", "ready", "scale_downs")
NAMES = [f.name for f in fields(RolloutState) if f.name != "updated_at"]
#: compared by value (a compiled working copy keeps them unboxed: a copy of the same number)
NUMBERS = {f.name for f in fields(RolloutState) if f.type in ("int", "float", int, float)}


def _state() -> RolloutState:
    """A rollout in progress: every dict field holds something."""
    plan = Plan(steps=(StepPlan(kind="setWeight", weight=20),), replicas=4, traffic_router=True)
    s = step(initial_state(plan), Deploy(revision="v1"), 0.0).state
    s = step(s, ReplicasObserved(revision="v1", desired=4, ready=4, available=4), 1.0).state
    s = step(s, Deploy(revision="v2"), 2.0).state
    return step(s, ReplicasObserved(revision="v2", desired=1, ready=1, available=1), 3.0).state


TYPES = {f.name: str(f.type) for f in fields(RolloutState)}


def _other(s: RolloutState, name: str) -> object:
    """A value of the field's type that is not the state's (by value, and by identity)."""
    value, kind = getattr(s, name), TYPES[name]
    if name in DICTS:
        return {"other": 1}
    if kind == "bool":
        return not value
    if kind.startswith(("int", "float")):
        one = 1.0 if kind.startswith("float") else 1
        return one if value is None else value + one
    if kind.startswith("tuple"):
        return (*value, *value) if value else tuple(["x"])
    if "Plan" in kind:
        return Plan(replicas=7)
    if "RollbackStatus" in kind:
        return RollbackStatus(target="v9", reason="a test")
    others = {
        "phase": ("paused", "live"),
        "initiator": ("retry", "deploy"),
        "pause_reason": ("manual", "inconclusive"),
    }
    if name in others:
        a, b = others[name]
        return a if value != a else b
    return f"{value}-other"  # the optional strings


def test_an_unchanged_working_copy_freezes_to_the_very_state() -> None:
    s = _state()
    w = engine._W(s, 50.0)
    assert all(getattr(w, k) is not getattr(s, k) for k in DICTS)  # copies, equal by value
    assert w.freeze(s) is s


@pytest.mark.parametrize("name", NAMES)
def test_a_field_changed_alone_gives_a_new_state_stamped_with_the_decision_time(name: str) -> None:
    s = _state()
    w = engine._W(s, 50.0)
    value = _other(s, name)
    setattr(w, name, value)
    new = w.freeze(s)
    assert new is not s and type(new) is RolloutState
    assert new.updated_at == 50.0
    for k in NAMES:
        if k == name:
            assert getattr(new, k) == value and getattr(new, k) != getattr(s, k)
        elif k in NUMBERS:
            assert getattr(new, k) == getattr(s, k), k
        else:
            assert getattr(new, k) is getattr(s, k), k  # unchanged fields (dicts too) are shared


@pytest.mark.parametrize("name", DICTS)
def test_a_dict_field_equal_by_value_is_unchanged(name: str) -> None:
    s = _state()
    w = engine._W(s, 50.0)
    setattr(w, name, dict(getattr(s, name)))
    assert w.freeze(s) is s
    w.step_index += 1
    new = w.freeze(s)
    assert new.step_index == s.step_index + 1 and getattr(new, name) is getattr(s, name)
