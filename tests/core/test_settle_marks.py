"""What a settle takes from the settle that sent a step's weight decides as the reference settle.

A settle that sends a completed setWeight step's weight (:func:`ebbtide.core.engine._send_step_weight`)
marks what its weights and replicas read besides the world (:func:`ebbtide.core.engine._weights_inputs`,
:func:`ebbtide.core.engine._replicas_inputs`); the decision's final settle takes the world as it is when
the marks still hold. Each example below moves one input of the replicas between those two settles in a
single decision (a ``ReplicasObserved`` that completes a step and reaches the next one), so dropping that
input from the mark changes the decision; the oracle is the engine with the reference settle of
tests/core/test_settle.py (both sides evaluated on every pass)."""

from __future__ import annotations

import pytest

from ebbtide.core import engine, initial_state, step
from ebbtide.core.effects import ScaleRevision
from ebbtide.core.engine import full_step
from ebbtide.core.events import Deploy, ReplicasObserved
from ebbtide.core.plan import Plan, StepPlan
from ebbtide.core.state import Decision, RollbackStatus, RolloutState

from .test_hotpath import assert_same
from .test_settle import reference_settle, reference_step

N = 5  # replicas: a 10% canary runs 1 pod, a 50% one 3


def _canary_deployed(plan: Plan) -> RolloutState:
    """v0 live with every pod ready, then v1 deployed."""
    state = step(initial_state(plan), Deploy(revision="v0"), 0.0).state
    state = step(state, ReplicasObserved(revision="v0", desired=N, ready=N, available=N), 0.0).state
    return step(state, Deploy(revision="v1"), 1.0).state


def _canary_ready(plan: Plan, ready: int) -> Decision:
    """The decision when ``ready`` pods of the canary v1 are seen ready, checked against the reference."""
    state = _canary_deployed(plan)
    event = ReplicasObserved(revision="v1", desired=ready, ready=ready, available=ready)
    decision = full_step(state, event, 2.0)
    assert_same(decision, reference_step(state, event, 2.0))
    return decision


def test_the_next_steps_weight_sizes_the_canary_at_the_final_settle() -> None:
    """10% completes with one pod; the next step's 50% needs three: the final settle scales the canary up,
    though nothing but the step index moved since the step's own settle (the mark's target weight)."""
    plan = Plan(
        steps=(StepPlan(kind="setWeight", weight=10), StepPlan(kind="setWeight", weight=50)), replicas=N
    )
    decision = _canary_ready(plan, 1)
    assert decision.state.step_index == 1
    assert ScaleRevision(revision="v1", replicas=3) in decision.effects


@pytest.mark.parametrize(
    ("scale", "field", "value"),
    [({"replicas": 3}, "canary_scale_replicas", 3), ({"weight": 60}, "canary_scale_weight", 60)],
    ids=["replicas", "percent"],
)
def test_a_canary_scale_sizes_the_canary_at_the_final_settle(
    scale: dict[str, int], field: str, value: int
) -> None:
    """A setCanaryScale of three pods (or of 60%: three pods of five) right after the 10% step: the canary
    weight and the target weight stay at 10, only the scale moved (the mark's ``canary_scale_replicas`` or
    ``canary_scale_weight``)."""
    steps = (
        StepPlan(kind="setWeight", weight=10),
        StepPlan(kind="setCanaryScale", **scale),  # type: ignore[arg-type]
        StepPlan(kind="pause"),
    )
    decision = _canary_ready(Plan(steps=steps, replicas=N), 1)
    assert getattr(decision.state, field) == value
    assert ScaleRevision(revision="v1", replicas=3) in decision.effects


def test_the_final_settle_clips_what_the_steps_settle_left_unclipped() -> None:
    """With dynamicStableScale the 50% step scales the stable down to three pods, but its settle (the
    intermediate world of a step) does not clip the five seen ready; the final settle, with both marks
    holding, still clips them to three (a settle whose marks hold checks the kept observations)."""
    steps = (StepPlan(kind="setWeight", weight=50), StepPlan(kind="pause"))
    plan = Plan(steps=steps, replicas=N, dynamic_stable_scale=True)
    decision = _canary_ready(plan, 3)
    assert decision.state.phase == "paused"
    assert decision.state.replicas == {"v0": 3, "v1": 3}
    assert decision.state.ready == {"v0": 3, "v1": 3}


# ----- the weights as the decision found them (:func:`ebbtide.core.engine._weights_as_found`) -----------


def _fixpoint(**fields: object) -> RolloutState:
    """A state whose world the reference settle left at its fixpoint: v0 stable with five ready pods, v1
    the canary with one, then ``fields`` set before settling (the state a decision may start from)."""
    plan = Plan(steps=(StepPlan(kind="setWeight", weight=50), StepPlan(kind="pause")), replicas=N)
    state = _canary_deployed(plan)
    w = engine._W(state, 2.0)
    w.weights, w.replicas, w.ready = {"v0": 90, "v1": 10}, {"v0": N, "v1": 1}, {"v0": N, "v1": 1}
    w.canary_weight = 10
    for name, value in fields.items():
        setattr(w, name, value)
    reference_settle(w)
    return w.freeze(state)


def _rollback(target: str) -> RollbackStatus:
    return RollbackStatus(target=target, source="v1", reason="aborted", started_at=2.0, manual=True)


#: a state a decision starts from, and one input of the weights moved since (by the event or the advance
#: loop), such that the weights must move: each case fails when its comparison is dropped from the check
MOVED: dict[str, tuple[RolloutState, dict[str, object]]] = {
    "the canary's weight": (_fixpoint(), {"canary_weight": 20}),
    "the observations": (_fixpoint(), {"ready": {"v0": N, "v1": 0}}),
    "the weights": (_fixpoint(), {"weights": {"v0": 100}}),
    # v0 never observed: it carries traffic while it runs, and none once it runs no pod
    "the replicas": (_fixpoint(ready={"v1": 1}), {"replicas": {"v1": 1}}),
    "the phase": (_fixpoint(), {"phase": "live"}),
    # (a canary never observed would move the replicas' facts, and the weights with them, in any case)
    "the canary": (_fixpoint(), {"canary": "v0"}),
    "the stable": (_fixpoint(), {"stable": "v1"}),
    # v0 has one ready pod of five: its share caps what it takes back, until the plan asks for one pod
    "the plan": (
        _fixpoint(ready={"v0": 1, "v1": 1}, weights={"v0": 50, "v1": 50}),
        {"plan": Plan(steps=(StepPlan(kind="setWeight", weight=50), StepPlan(kind="pause")), replicas=1)},
    ),
    # a newRollout rollback's target takes no more than its ready pods carry while another revision serves
    "the initiator": (
        _fixpoint(initiator="failure-policy", canary_weight=50, weights={"v0": 80, "v1": 20}),
        {"initiator": "supersede"},
    ),
    "the rollback": (
        _fixpoint(phase="rolling-back", rollback=_rollback("v0")),
        {"rollback": _rollback("v1")},
    ),
}


@pytest.mark.parametrize("moved", list(MOVED))
def test_weights_whose_inputs_moved_since_the_decision_began_are_evaluated(moved: str) -> None:
    state, fields = MOVED[moved]
    worlds = []
    for settle in (engine._settle_world, reference_settle):
        w = engine._W(state, 3.0)
        for name, value in fields.items():
            setattr(w, name, value)
        kept = w.weights
        settle(w)
        worlds.append((w.weights, w.replicas, w.ready))
    assert worlds[0] == worlds[1]
    assert worlds[1][0] != kept  # the input moved the weights: those the settle found are not the answer


def test_weights_as_the_decision_found_them_are_taken_as_they_are() -> None:
    """Nothing moved since the decision began: the weights are the state's, not evaluated again."""
    for state, _ in MOVED.values():
        w = engine._W(state, 3.0)
        assert engine._weights_as_found(w)
        w.weights = dict(w.weights)  # (another dict, the same weights)
        engine._settle_world(w)
        assert w.weights == state.weights
