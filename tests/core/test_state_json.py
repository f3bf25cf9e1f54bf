"""The persisted state: JSON written by the engine before issue 8 (pydantic models) loads, and writes back
byte for byte the same; loading validates.

The files in ``golden/states`` were written by the pre-issue-8 code
(``model_dump_json(exclude_defaults=True)``)
from states of the golden decision streams (a rollback, a resting failure, a spec change waiting, two
verification runs, a failure-policy pause, delayed scale-downs) and one built by hand with header routes and
recorded failures. Never regenerate them: they are what controllers have persisted in resource statuses.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from ebbtide.core.state import RolloutState

STATES = sorted((Path(__file__).parent / "golden" / "states").glob("*.json"))


@pytest.mark.parametrize("path", STATES, ids=[p.stem for p in STATES])
def test_persisted_state_round_trips_byte_for_byte(path: Path) -> None:
    text = path.read_text()
    state = RolloutState.from_json(text)
    assert state.to_json() == text
    assert RolloutState.from_json(state.to_json()) == state


def test_the_golden_states_cover_every_persisted_field() -> None:
    seen: set[str] = set()
    for path in STATES:
        seen |= set(json.loads(RolloutState.from_json(path.read_text()).to_json()))
    assert seen >= {
        "rollback",
        "next_plan",
        "header_routes",
        "recorded_failures",
        "scale_downs",
        "verifications",
    }


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        (('"phase":"rolling-back"', '"phase":"sideways"'), "phase"),
        (('"rollout_id":2', '"rollout_id":"two"'), "rollout_id"),
        (('"target":"v1"', '"target":7'), "target"),
    ],
)
def test_loading_validates(patch: tuple[str, str], field: str) -> None:
    text = (Path(__file__).parent / "golden" / "states" / "rollback.json").read_text()
    assert patch[0] in text
    with pytest.raises(ValidationError, match=field):
        RolloutState.from_json(text.replace(*patch, 1))


def test_state_records_events_and_effects_are_slotted_dataclasses() -> None:
    """Inside the step nothing is validated or carries a per-instance ``__dict__`` (issue 8)."""
    from ebbtide.core import effects, events, state

    records = (
        state.RolloutState,
        state.MetricStatus,
        state.VerificationRun,
        state.RevisionRecord,
        state.RollbackStatus,
        state.Decision,
        effects.ScaleRevision,
        effects.SetTraffic,
        effects.StartMeasurement,
        effects.StopVerification,
        effects.Notify,
        events.Deploy,
        events.Tick,
        events.ReplicasObserved,
        events.Measurement,
        events.Command,
        events.SpecChanged,
    )
    for cls in records:
        assert dataclasses.is_dataclass(cls) and "__slots__" in vars(cls), cls
        # frozen by contract (mypy sees them frozen), hashable by value like a frozen dataclass
        assert cls.__hash__ is not None and cls.__dataclass_params__.eq, cls  # type: ignore[attr-defined]
    s = RolloutState.from_json(STATES[0].read_text())
    assert not hasattr(s, "__dict__")
    copy = state.evolve(s, phase="paused")
    assert copy.phase == "paused" and s.phase != "paused" and dataclasses.replace(s) == s


def test_generated_copiers_take_only_field_names() -> None:
    """The engine's generated copy functions are built from its records' own field names; anything else is
    refused before a line of source is made (no outside text ever reaches that code)."""
    import pytest

    from ebbtide.core.state import generated_function

    copy = generated_function("copy(old)", ["return old.x"], ["x"])
    assert copy(type("R", (), {"x": 3})()) == 3
    for bad in ("x; import os", "__import__('os')", "class", "a.b"):
        with pytest.raises(ValueError, match="not a field name"):
            generated_function("copy(old)", ["return old"], [bad])
