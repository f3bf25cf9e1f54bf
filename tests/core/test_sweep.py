"""Every (phase, event kind) pair: step never raises, the state round-trips through JSON, a rejected
command changes nothing, and the phase change is one the transition table lists (or none)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ebbtide.core import engine, machine, step
from ebbtide.core.events import Command, Deploy, Event, Measurement, ReplicasObserved, SpecChanged, Tick
from ebbtide.core.machine import TABLE
from ebbtide.core.state import PHASES, RolloutState
from tests.core.helpers import BAD, Harness, canary_plan, pause, verify, weight

PLAN = canary_plan(
    weight(25),
    verify(),
    weight(75),
    pause(None),
    weight(100),
    dynamic_stable_scale=True,
    progress_deadline=100,
)


def _live() -> Harness:
    return Harness(PLAN, gradual=True).live("v1")


def _in_progress() -> Harness:
    h = _live()
    h.deploy("v2")  # waits for the canary's first replica
    return h


def _verifying() -> Harness:
    h = _in_progress()
    h.run_for(5)
    return h


def _paused() -> Harness:
    h = _verifying()
    h.run_for(100)  # verification passes, 75%, indefinite pause
    return h


def _rolling_back() -> Harness:
    h = _paused()
    h.command("abort")  # v1 was scaled down to 1 replica: the rollback waits for it
    return h


def _failed() -> Harness:
    h = _paused()
    h.crashing.add("v1")
    h.command("abort")
    h.run_for(200)  # the rollback target never becomes ready: failed to roll back
    return h


BUILDERS: dict[str, Callable[[], Harness]] = {
    "live": _live,
    "in-progress": _in_progress,
    "verifying": _verifying,
    "paused": _paused,
    "rolling-back": _rolling_back,
    "failed": _failed,
}

ACTIONS = ("promote", "promoteFull", "pause", "resume", "abort", "retry", "rollback")


def _events(state: RolloutState) -> dict[str, Event]:
    running = next((r for r in state.verifications if any(m.in_flight for m in r.metrics)), None)
    measurement: Event = (
        Measurement(verification=running.id, metric=running.metrics[0].name, value=BAD)
        if running is not None
        else Measurement(verification="none", metric="error-rate", value=BAD)
    )
    rev = state.canary or state.stable or "v1"
    events: dict[str, Event] = {
        "deploy": Deploy(revision="v3"),
        "tick": Tick(),
        "replicas": ReplicasObserved(revision=rev, desired=4, ready=4, available=4),
        "measurement": measurement,
        "spec-changed": SpecChanged(plan=PLAN.model_copy(update={"replicas": 6})),
    }
    for a in ACTIONS:
        events[f"command-{a}"] = Command(action=a)  # type: ignore[arg-type]
    return events


EVENT_KINDS = tuple(_events(Harness(PLAN).state))
_STATES: dict[str, Harness] = {}


def _state_in(phase: str) -> Harness:
    if phase not in _STATES:
        _STATES[phase] = BUILDERS[phase]()
    return _STATES[phase]


ROWS = {(trigger, src, dst) for trigger, sources, dst, _ in TABLE for src in sources}


def test_builders_reach_every_phase() -> None:
    assert set(BUILDERS) == set(PHASES)
    for phase in PHASES:
        assert _state_in(phase).state.phase == phase


@pytest.mark.parametrize("kind", EVENT_KINDS)
@pytest.mark.parametrize("phase", PHASES)
def test_every_event_in_every_phase(phase: str, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fired: list[tuple[str, str, str]] = []

    def recording_fire(w: Any, trigger: str) -> None:
        src = w.phase
        machine.fire(w, trigger)
        fired.append((src, trigger, w.phase))

    monkeypatch.setattr(engine, "fire", recording_fire)
    h = _state_in(phase)
    before = h.state
    assert before.phase == phase
    event = _events(before)[kind]
    for dt in (0.0, 1000.0):  # now, and long after (every timer due)
        now = h.now + dt
        fired.clear()
        d = step(before, event, now)
        after = d.state
        assert RolloutState.from_json(after.to_json()) == after
        if d.rejected is not None:
            assert isinstance(event, Command)
            assert after == before and d.effects == (), "a rejected command changes nothing"
            assert d.rejected.strip()
            continue
        # several transitions can fire in one decision (retry from failed: start, then verify at once);
        # each one is a row of the table, and together they lead from the old phase to the new one
        for src, trigger, dst in fired:
            assert (trigger, src, dst) in ROWS, f"{src} -{trigger}-> {dst} not in TABLE"
        path = [before.phase] + [dst for _, _, dst in fired]
        assert [src for src, _, _ in fired] == path[:-1] and path[-1] == after.phase, fired
        if d.wake_at is not None:
            assert d.wake_at > now
