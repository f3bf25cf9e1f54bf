"""Freezing the working copy (``engine._W.freeze``): the decision's new state from the state it started from.

The generated ``frozen`` compares the fields in one chain that stops at the first difference, then copies
every field; the oracle here is the rule written per field: the old state itself when no field changed (the
dict fields compared by value, every other field by identity), else a new state holding the working copy's
fields, the old state's dict where the working copy's is equal to it, and the decision's time in
``updated_at``. Each field is changed alone, so a field the chain forgets fails the test."""

from __future__ import annotations

from dataclasses import fields

import pytest

from ebbtide.core import engine, initial_state, step
from ebbtide.core.events import Deploy, ReplicasObserved
from ebbtide.core.plan import Plan, StepPlan
from ebbtide.core.state import RolloutState

DICTS = ("weights", "replicas", "ready", "scale_downs")
NAMES = [f.name for f in fields(RolloutState) if f.name != "updated_at"]


def _state() -> RolloutState:
    """A rollout in progress: every dict field holds something."""
    plan = Plan(steps=(StepPlan(kind="setWeight", weight=20),), replicas=4, traffic_router=True)
    s = step(initial_state(plan), Deploy(revision="v1"), 0.0).state
    s = step(s, ReplicasObserved(revision="v1", desired=4, ready=4, available=4), 1.0).state
    s = step(s, Deploy(revision="v2"), 2.0).state
    return step(s, ReplicasObserved(revision="v2", desired=1, ready=1, available=1), 3.0).state


def test_an_unchanged_working_copy_freezes_to_the_very_state() -> None:
    s = _state()
    w = engine._W(s, 50.0)
    assert all(w.__getattribute__(k) is not s.__getattribute__(k) for k in DICTS)  # copies, equal by value
    assert w.freeze(s) is s


@pytest.mark.parametrize("name", NAMES)
def test_a_field_changed_alone_gives_a_new_state_stamped_with_the_decision_time(name: str) -> None:
    s = _state()
    w = engine._W(s, 50.0)
    value: object = {"other": 1} if name in DICTS else object()
    setattr(w, name, value)
    new = w.freeze(s)
    assert new is not s and type(new) is RolloutState
    assert new.updated_at == 50.0
    for k in NAMES:
        if k == name:
            assert getattr(new, k) is value
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
