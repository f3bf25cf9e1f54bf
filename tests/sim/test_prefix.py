"""Runs of one scenario share the engine decisions they have in common (ebbtide.sim.prefix).

The oracle is the run without a prefix: every engine call made, the result compared whole (timeline with
every measurement and verdict, notifications, rejections, event count).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ebbtide.core import engine
from ebbtide.core.events import Measurement, ReplicasObserved, Tick
from ebbtide.sim.loop import Prepared, run_once
from ebbtide.sim.prefix import Prefix, same
from ebbtide.sim.runner import derive_seed, load_scenario
from ebbtide.sim.scenario import Scenario
from tests.sim.examples import EXAMPLES, bench_scenario


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every call that reaches ``core.step`` (the prefix and the driver look it up when they are built)."""
    made: list[Any] = []
    real = engine.step

    def counting(state: Any, event: Any, now: float) -> Any:
        made.append(event)
        return real(state, event, now)

    monkeypatch.setattr(engine, "step", counting)
    yield made


def runs(prepared: Prepared, n: int, prefix: Prefix | None) -> list[dict[str, Any]]:
    return [run_once(prepared, i, derive_seed(3, i), True, True, prefix).to_dict() for i in range(n)]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_runs_with_a_prefix_are_the_runs_without(path: Path) -> None:
    prepared = load_scenario(path).prepare()
    assert runs(prepared, 8, Prefix()) == runs(prepared, 8, None)


def test_later_runs_skip_the_calls_every_run_makes(calls: list[Any]) -> None:
    """The benchmark's runs all start alike: v1 comes up at t=0, v2 is deployed at 1m and its first pod
    is reported not ready; only then do the seeded readiness delays tell the runs apart."""
    prepared = bench_scenario().prepare()
    runs(prepared, 6, None)
    without = len(calls)
    calls.clear()
    prefix = Prefix()
    runs(prepared, 6, prefix)
    assert len(prefix) == without // 6  # the first run's calls, all kept
    assert without - len(calls) == 5 * 4  # each later run: deploy v1, v1 ready, deploy v2, v2 not ready


def test_a_run_with_no_chance_in_it_makes_no_call_after_the_first(calls: list[Any]) -> None:
    """Without readiness jitter and noise every run is the first one: measurements match by value too."""
    sc = bench_scenario()
    doc = sc.model_dump(by_alias=True, exclude={"plan", "spec_plans"})
    steady = {"readiness": {"delay": "15s"}, "signals": {"sr": {"value": 0.99}}}
    doc["spec"]["revisions"] = {"v1": steady, "v2": steady}
    prepared = Scenario.model_validate(doc).bind(sc.plan, file="<test>").prepare()
    prefix = Prefix()
    first = runs(prepared, 1, prefix)
    made = len(calls)
    assert any(isinstance(e, Measurement) for e in calls)
    later = runs(prepared, 4, prefix)
    assert len(calls) == made  # runs 0-3 again: every call answered from the path
    assert later[0] == first[0]


def test_same_tells_apart_what_equality_does_not() -> None:
    assert same(60.0, 60.0) and not same(60.0, 60) and not same(0.0, -0.0) and not same(60.0, 60.5)
    nan = float("nan")
    assert not same(nan, float("nan")) and same(nan, nan)  # the same object only

    def measured(value: Any) -> Measurement:
        return Measurement(verification="r", metric="m", value=value)

    assert same(measured([0.99]), measured([0.99])) and not same(measured([0.99]), measured([0.98]))
    for other in (1.0, True):
        assert measured(1) == measured(other) and not same(measured(1), measured(other))
    assert not same(Tick(), ReplicasObserved(revision="v", desired=0, ready=0, available=0))


def test_a_run_follows_the_path_only_from_the_same_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same event, same time, another state: the engine decides (and the run never returns to the path)."""
    answered: list[tuple[Any, Any, float]] = []

    def fake(state: Any, event: Any, now: float) -> Any:
        answered.append((state, event, now))
        return ("decision", len(answered))

    monkeypatch.setattr(engine, "step", fake)
    prefix = Prefix()
    first = prefix.step_fn()
    a, b, tick = object(), object(), Tick()
    d1 = first(a, tick, 1.0)  # type: ignore[arg-type]
    first(d1, tick, 2.0)  # type: ignore[arg-type]
    follow = prefix.step_fn()
    assert follow(a, tick, 1.0) is d1 and len(answered) == 2  # type: ignore[arg-type]
    assert follow(b, tick, 2.0) == ("decision", 3)  # type: ignore[arg-type]
    other = prefix.step_fn()
    other(a, tick, 1.0)  # type: ignore[arg-type]
    assert other(d1, tick, 2.5) == ("decision", 4)  # type: ignore[arg-type]
    assert other(d1, tick, 2.0) == ("decision", 5)  # type: ignore[arg-type]  # left the path for good


def test_answers_say_none_once_the_run_leaves_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A later run's answers: the path's decisions while its calls match, then None for good (the caller
    asks the engine itself); the first run's answers are the engine's, recorded, until LIMIT calls."""
    made: list[float] = []

    def fake(state: Any, event: Any, now: float) -> Any:
        made.append(now)
        return ("decision", now)

    monkeypatch.setattr(engine, "step", fake)
    monkeypatch.setattr("ebbtide.sim.prefix.LIMIT", 2)
    prefix = Prefix()
    record = prefix.answers()
    a, tick = object(), Tick()
    d1 = record(a, tick, 1.0)  # type: ignore[arg-type]
    d2 = record(d1, tick, 2.0)  # type: ignore[arg-type]
    assert record(d2, tick, 3.0) is None and made == [1.0, 2.0] and len(prefix) == 2  # type: ignore[arg-type]
    follow = prefix.answers()
    assert follow(a, tick, 1.0) is d1  # type: ignore[arg-type]
    assert follow(d1, tick, 2.5) is None  # type: ignore[arg-type]
    assert follow(d1, tick, 2.0) is None and made == [1.0, 2.0]  # type: ignore[arg-type]  # left for good
