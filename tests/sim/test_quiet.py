"""Observations that repeat a known ready count are answered without the engine (ebbtide.sim.quiet).

The oracle is the engine itself: every answer the wrapper gives on its own is compared with
``core.step``'s decision for the same call, and whole runs with the wrapper are compared with runs without it.
"""

from __future__ import annotations

from typing import Any

import pytest

from ebbtide.core import engine
from ebbtide.core.events import Event, ReplicasObserved, Tick
from ebbtide.core.state import Decision, RolloutState
from ebbtide.sim import loop
from ebbtide.sim.loop import Prepared, run_once
from ebbtide.sim.prefix import Prefix
from ebbtide.sim.quiet import Answers, StepFn, quiet
from ebbtide.sim.runner import derive_seed
from tests.sim.examples import bench_scenario, scenarios


def runs(prepared: Prepared, n: int, prefix: bool = True) -> list[dict[str, Any]]:
    shared = Prefix() if prefix else None
    return [run_once(prepared, i, derive_seed(5, i), True, True, shared).to_dict() for i in range(n)]


class Checked:
    """``quiet`` whose every own answer is checked against the engine's decision."""

    def __init__(self) -> None:
        self.answered: list[Event] = []

    def __call__(self, step: StepFn, first: Answers | None = None) -> StepFn:
        asked: list[int] = []

        def inner(state: RolloutState, event: Event, now: float) -> Decision:
            asked.append(1)
            return step(state, event, now)

        def shared(state: RolloutState, event: Event, now: float) -> Decision | None:
            assert first is not None
            answer = first(state, event, now)
            if answer is not None:
                asked.append(1)  # the prefix's answer: a decision the engine made
            return answer

        wrapped = quiet(inner, shared if first is not None else None)

        def checking(state: RolloutState, event: Event, now: float) -> Decision:
            before = len(asked)
            got = wrapped(state, event, now)
            if len(asked) == before:
                self.answered.append(event)
                want = engine.step(state, event, now)
                assert got.state is state and want.state == state, f"t={now}: {event!r} changes the state"
                assert got.effects == want.effects == (), f"t={now}: {event!r} has effects"
                assert got.wake_at == want.wake_at and got.rejected is want.rejected is None
            return got

        return checking


def test_every_answer_is_the_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    checked = Checked()
    monkeypatch.setattr(loop, "quiet", checked)
    for _, prepared in scenarios():
        runs(prepared, 6)
    assert all(type(e) is ReplicasObserved for e in checked.answered)
    assert len(checked.answered) > 100


@pytest.mark.parametrize(("name", "prepared"), scenarios(), ids=[n for n, _ in scenarios()])
def test_runs_are_the_runs_without_it(name: str, prepared: Prepared, monkeypatch: pytest.MonkeyPatch) -> None:
    with_it = runs(prepared, 6, prefix=False)
    monkeypatch.setattr(loop, "quiet", lambda step: step)
    assert with_it == runs(prepared, 6, prefix=False), name


def test_a_bench_run_asks_the_engine_less(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each of the 4 scale-ups of v2 is reported at once with the ready count the engine already holds, and
    v1, let go of when v2 is promoted, is reported at zero pods in the same instant."""
    made: list[Event] = []
    real = engine.step

    def counting(state: RolloutState, event: Event, now: float) -> Decision:
        made.append(event)
        return real(state, event, now)

    monkeypatch.setattr(engine, "step", counting)
    prepared = bench_scenario().prepare()
    result = run_once(prepared, 0, derive_seed(5, 0))
    assert result.events == len(made) + 5


def test_only_the_same_state_at_the_same_time() -> None:
    """Another state object, another time or another ready count: the wrapped step decides."""
    told: list[tuple[Any, Event, float]] = []

    def fake(state: Any, event: Event, now: float) -> Any:
        told.append((state, event, now))
        return Decision(state=state, effects=(), wake_at=99.0)

    class State:
        ready = {"v2": 1}
        replicas = {"v2": 2, "v3": 1}
        weights = {"v1": 100}

    step = quiet(fake)
    s = State()
    seen = ReplicasObserved(revision="v2", desired=2, ready=1, available=1)
    step(s, Tick(), 10.0)  # type: ignore[arg-type]
    answer = step(s, seen, 10.0)  # type: ignore[arg-type]
    assert len(told) == 1 and answer.state is s and answer.wake_at == 99.0 and answer.effects == ()
    step(s, seen, 11.0)  # type: ignore[arg-type]  # time moved: timers may be due
    step(s, seen, 11.0)  # type: ignore[arg-type]  # answered: the state of the decision at 11.0
    assert len(told) == 2
    step(s, ReplicasObserved(revision="v2", desired=2, ready=2, available=2), 11.0)  # type: ignore[arg-type]
    step(s, ReplicasObserved(revision="v3", desired=1, ready=0, available=0), 11.0)  # type: ignore[arg-type]
    step(State(), seen, 11.0)  # type: ignore[arg-type]
    assert len(told) == 5


def test_a_revision_the_state_lets_go_of() -> None:
    """An observation of a revision in none of replicas, weights and ready is answered; one the state still
    scales or routes without a ready count is the engine's (it records the count)."""
    told: list[Event] = []

    def fake(state: Any, event: Event, now: float) -> Any:
        told.append(event)
        return Decision(state=state, effects=(), wake_at=None)

    class State:
        ready = {"v2": 1}
        replicas = {"v2": 2, "v3": 1}
        weights = {"v1": 100}

    step = quiet(fake)
    s = State()
    step(s, Tick(), 10.0)  # type: ignore[arg-type]
    gone = step(s, ReplicasObserved(revision="v0", desired=0, ready=0, available=0), 10.0)  # type: ignore[arg-type]
    assert len(told) == 1 and gone.state is s and gone.effects == () and gone.wake_at is None
    for revision in ("v1", "v3"):  # routed, scaled: their first ready count is news to the engine
        step(s, ReplicasObserved(revision=revision, desired=1, ready=0, available=0), 10.0)  # type: ignore[arg-type]
    assert [e.revision for e in told[1:]] == ["v1", "v3"]  # type: ignore[union-attr]


def test_the_old_stable_revision_is_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a bench run, the observation of v1 at zero pods after v2's promotion is answered without the engine
    (the engine's own decision for it is checked by test_every_answer_is_the_engines)."""
    checked = Checked()
    monkeypatch.setattr(loop, "quiet", checked)
    run_once(bench_scenario().prepare(), 0, derive_seed(5, 0))
    gone = [e for e in checked.answered if isinstance(e, ReplicasObserved) and e.revision == "v1"]
    assert [(e.desired, e.ready) for e in gone] == [(0, 0)]


def test_the_shared_answers_are_dropped_at_their_first_none() -> None:
    """``first`` answers until it cannot; from then on the wrapped step gets every call (``first`` is not
    asked again), and the observations that tell nothing are still answered by the wrapper itself."""
    asked_first: list[float] = []
    told: list[float] = []

    def step(state: Any, event: Event, now: float) -> Any:
        told.append(now)
        return Decision(state=state, effects=(), wake_at=None)

    def first(state: Any, event: Event, now: float) -> Any:
        asked_first.append(now)
        return Decision(state=state, effects=(), wake_at=5.0) if now < 2.0 else None

    class State:
        ready = {"v2": 1}
        replicas = {"v2": 2}
        weights = {"v2": 100}

    s = State()
    wrapped = quiet(step, first)
    assert wrapped(s, Tick(), 1.0).wake_at == 5.0  # type: ignore[arg-type]
    assert wrapped(s, Tick(), 2.0).wake_at is None  # type: ignore[arg-type]  # first: None, step decides
    wrapped(s, Tick(), 3.0)  # type: ignore[arg-type]
    seen = ReplicasObserved(revision="v2", desired=2, ready=1, available=1)
    assert wrapped(s, seen, 3.0).state is s  # type: ignore[arg-type]  # answered by the wrapper
    assert asked_first == [1.0, 2.0] and told == [2.0, 3.0]
