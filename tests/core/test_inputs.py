"""Embedders: step() refuses meaningless inputs with a clear TypeError / ValueError, and a Plan built in code
is held to the rules of a loaded spec (a misspelled template can never skip a verification)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ebbtide.core import initial_state, step
from ebbtide.core.events import (
    Command,
    Deploy,
    Measurement,
    ReplicasObserved,
    SpecChanged,
    Tick,
    parse_event,
)
from ebbtide.core.plan import MAX_REPLICAS, MetricPlan, Plan, StepPlan, TemplatePlan
from ebbtide.core.testing import plans

TEMPLATE = TemplatePlan(name="t", metrics=(MetricPlan(name="m", success_condition="result > 0"),))


def canary(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "steps": (
            StepPlan(kind="setWeight", weight=20),
            StepPlan(kind="verification", templates=("t",)),
            StepPlan(kind="setWeight", weight=100),
        ),
        "templates": {"t": TEMPLATE},
        "replicas": 4,
    }
    fields.update(changes)
    return fields


def deployed() -> Any:
    state = step(initial_state(Plan(**canary())), Deploy(revision="v1"), 0.0).state
    return step(state, ReplicasObserved(revision="v1", desired=4, ready=4, available=4), 1.0).state


# ----- step() ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        ("tick", TypeError, "event must be one of Tick, ReplicasObserved, Measurement"),
        ({"kind": "tick"}, TypeError, "not dict"),
        (None, TypeError, "not NoneType"),
        (
            ReplicasObserved(revision="v1", desired=4, ready=-1, available=0, failed=0),
            ValueError,
            "pod counts must not be negative (desired=4, ready=-1",
        ),
        (
            ReplicasObserved(revision="v1", desired=4, ready=4, available=4, failed=-2),
            ValueError,
            "failed=-2",
        ),
        (ReplicasObserved(revision="", desired=1, ready=1, available=1), ValueError, "must not be empty"),
        (Deploy(revision=""), ValueError, "Deploy: the revision must not be empty"),
        (Command(action="rollback", revision=""), ValueError, "Command: the revision must not be empty"),
        (
            Measurement(verification="x", metric="m", value=0.5, error="timeout"),
            ValueError,
            "either a value or an error, not both",
        ),
        (Command(action="undo"), ValueError, "Command: unknown action 'undo' (one of abort, pause"),  # type: ignore[arg-type]
        (ReplicasObserved(revision="v1", desired=4, ready="4", available=4), TypeError, "must be integers"),  # type: ignore[arg-type]
        (Measurement(verification="x", metric=3, value=1), TypeError, "must be strings"),  # type: ignore[arg-type]
        (SpecChanged(plan={"steps": []}), TypeError, "SpecChanged: the plan must be a Plan"),
        (
            Deploy(revision="v2", plan="p"),
            TypeError,
            "Deploy: the plan must be a Plan, not str",
        ),
    ],
)
def test_step_refuses_a_meaningless_event(event: object, error: type[Exception], message: str) -> None:
    state = deployed()
    with pytest.raises(error) as info:
        step(state, event, 5.0)  # type: ignore[arg-type]
    assert message in str(info.value)


@pytest.mark.parametrize("now", [math.nan, math.inf, -math.inf, 10**400, -(10**400)])
def test_step_refuses_a_time_that_is_not_finite(now: float) -> None:
    with pytest.raises(ValueError, match="now must be a finite number of seconds"):
        step(deployed(), Tick(), now)


@pytest.mark.parametrize("now", ["5", None, True, [1.0]])
def test_step_refuses_a_time_that_is_not_a_number(now: object) -> None:
    with pytest.raises(TypeError, match="now must be a number of seconds"):
        step(deployed(), Tick(), now)  # type: ignore[arg-type]


def test_step_refuses_a_state_that_is_not_a_rollout_state() -> None:
    with pytest.raises(TypeError, match="state must be a RolloutState, not dict"):
        step({}, Tick(), 1.0)  # type: ignore[arg-type]


def test_legal_events_still_step() -> None:
    state = deployed()
    for event in (
        Tick(),
        ReplicasObserved(revision="v1", desired=4, ready=0, available=0),
        Measurement(verification="x", metric="m", value=None, error="timeout"),
        Measurement(verification="x", metric="m", value=0),
        Command(action="rollback"),
        SpecChanged(plan=Plan(**canary())),
        Deploy(revision="v2"),
    ):
        assert step(state, event, 7).state is not None  # an int time is fine too


# ----- plans built in code --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"steps": (StepPlan(kind="verification", templates=("t-typo",)),)},
            "steps[0]: no template 't-typo' in templates",
        ),
        ({"background_templates": ("nope",)}, "background_templates: no template 'nope'"),
        (
            {
                "steps": (
                    StepPlan(kind="setWeight", weight=50),
                    StepPlan(kind="setWeight", weight=50),
                )
            },
            "steps[1].weight: weights must strictly increase: 50 after 50",
        ),
        ({"steps": (StepPlan(kind="setWeight", weight=120),)}, "weight 0..100, not 120"),
        ({"steps": (StepPlan(kind="setWeight"),)}, "setWeight needs a weight 0..100, not None"),
        ({"replicas": MAX_REPLICAS + 1}, f"replicas must be 0..{MAX_REPLICAS}, not {MAX_REPLICAS + 1}"),
        ({"replicas": -1}, "replicas must be 0..10000, not -1"),
        ({"steps": (StepPlan(kind="pause", duration=math.inf),)}, "duration must be 0..31536000 seconds"),
        ({"progress_deadline": math.nan}, "progress_deadline must be 0..31536000 seconds, not nan"),
        ({"progress_deadline": 0.0}, "progress_deadline must be positive"),
        (
            {"steps": (StepPlan(kind="setCanaryScale"),)},
            "exactly one of weight, replicas, match_traffic_weight",
        ),
        ({"steps": (StepPlan(kind="verification"),)}, "names at least one template"),
        ({"steps": (StepPlan(kind="setHeaderRoute"),)}, "setHeaderRoute needs a header_route"),
        ({"templates": {"t": TEMPLATE, "u": TEMPLATE}}, "templates['u']: the template is named 't'"),
        (
            {"templates": {"t": TemplatePlan(name="t", metrics=(MetricPlan(name="m", interval=0),))}},
            "templates['t'].metrics[0].interval must be positive",
        ),
        (
            {"templates": {"t": TemplatePlan(name="t", metrics=(MetricPlan(name="m", failure_limit=-1),))}},
            "failure_limit must not be negative",
        ),
        ({"max_surge": -1}, "max_surge must not be negative"),
    ],
)
def test_a_plan_built_in_code_is_validated(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        Plan(**canary(**changes))
    assert message in str(info.value)


def test_a_valid_plan_built_in_code_is_accepted() -> None:
    plan = Plan(**canary())
    assert Plan.model_validate_json(plan.model_dump_json()) == plan


@given(plans(), st.data())
def test_a_misspelled_template_in_any_generated_plan_is_refused(plan: Plan, data: st.DataObject) -> None:
    uses = [i for i, s in enumerate(plan.steps) if s.kind == "verification"]
    if plan.background_templates:
        uses.append(-1)
    if not uses:
        return
    at = data.draw(st.sampled_from(uses))
    typo = data.draw(st.text(min_size=1, max_size=8).filter(lambda name: name not in plan.templates))
    if at == -1:
        fields = {"background_templates": (*plan.background_templates, typo)}
    else:
        steps = list(plan.steps)
        steps[at] = StepPlan(kind="verification", templates=(*steps[at].templates, typo))
        fields = {"steps": tuple(steps)}
    with pytest.raises(ValidationError, match="no template"):
        Plan(**{**dict(plan), **fields})


# ----- events from outside input ----------------------------------------------------------------------------
def test_parse_event_validates_outside_input() -> None:
    assert parse_event({"kind": "command", "action": "rollback", "revision": "v1"}) == Command(
        action="rollback", revision="v1"
    )
    assert parse_event({"kind": "replicas", "revision": "v1", "desired": 2, "ready": 1, "available": 1}) == (
        ReplicasObserved(revision="v1", desired=2, ready=1, available=1)
    )
    with pytest.raises(ValidationError, match="action"):
        parse_event({"kind": "command", "action": "undo"})
    with pytest.raises(ValidationError, match="ready"):
        parse_event({"kind": "replicas", "revision": "v1", "desired": 2, "ready": "many", "available": 1})
    with pytest.raises(ValidationError, match="kind"):
        parse_event({"kind": "reboot"})
