"""Golden decisions: the engine decides exactly as it did when this file was last regenerated.

Issue 8 makes the engine faster (other state types, compiled conditions, short paths); none of that may
change a single decision. These streams were recorded from the engine before that work: for every step of
every stream, a digest of the whole decision (the persisted state JSON, the effects, ``wake_at`` and the
rejection). A mismatch names the stream, the step and the event, so the change that moved it can be found.

The streams are the bench log (a healthy 8-step canary with verification, ``bench/run.py``) and event
streams drawn by a seeded ``random.Random`` (stable across Python versions, unlike Hypothesis's choices)
against every plan in ``examples/specs``: deploys, replica observations (full, partial, none), answers to the
measurements asked for (passing, failing, errors, no value), ticks to the next wake-up or past it, commands
and spec changes.

After an intended change of behaviour (never for a speed-up), regenerate with
``EBBTIDE_REGENERATE_GOLDEN=1 pytest tests/core/test_golden_decisions.py`` and say why in the commit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from ebbtide.adapters.specfiles import load_spec_files
from ebbtide.core import initial_state, step
from ebbtide.core.effects import ScaleRevision, StartMeasurement
from ebbtide.core.engine import Decision
from ebbtide.core.events import Command, Deploy, Event, Measurement, ReplicasObserved, SpecChanged, Tick
from ebbtide.core.plan import Plan
from ebbtide.core.spec import compile_plan
from ebbtide.core.testing import value_for

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "decisions.json"
SPECS = sorted((ROOT / "examples" / "specs").glob("*.yaml"))
SEEDS = range(6)
STEPS = 80
REVISIONS = ("v1", "v2", "v3", "v4")
ACTIONS = ("pause", "resume", "promote", "promoteFull", "abort", "retry", "rollback")


def canon(obj: Any) -> Any:
    """A plain JSON-able form of a value, whatever its type is built with (pydantic model or dataclass)."""
    if hasattr(obj, "model_dump"):
        return {"__type__": type(obj).__name__, **{k: canon(v) for k, v in obj.model_dump().items()}}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: canon(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return {"__type__": type(obj).__name__, **fields}
    if isinstance(obj, dict):
        return {str(k): canon(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [canon(v) for v in obj]
    return obj


def digest(d: Decision) -> str:
    effects = json.dumps(canon(list(d.effects)), sort_keys=True, default=str)
    text = "\n".join((d.state.to_json(), effects, repr(d.wake_at), repr(d.rejected)))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def plan_of(path: Path) -> Plan:
    return compile_plan(load_spec_files([path]))


class Stream:
    """A seeded stream of plausible events against one plan; records a digest per decision."""

    def __init__(self, plan: Plan, seed: int) -> None:
        self.rng = random.Random(seed)
        self.plan = plan
        self.state = initial_state(plan)
        self.now = 0.0
        self.asked: dict[str, int] = {}
        self.in_flight: list[StartMeasurement] = []
        self.wake: float | None = None
        self.steps: list[tuple[str, str]] = []

    def apply(self, ev: Event) -> None:
        d = step(self.state, ev, self.now)
        self.steps.append((f"t={self.now:g} {type(ev).__name__}", digest(d)))
        self.state = d.state
        self.wake = d.wake_at
        for e in d.effects:
            if isinstance(e, ScaleRevision):
                self.asked[e.revision] = e.replicas
            elif isinstance(e, StartMeasurement):
                self.in_flight.append(e)

    def run(self, n: int) -> list[tuple[str, str]]:
        self.apply(Deploy(revision="v1"))
        for _ in range(n):
            self.apply(self.draw())
        return self.steps

    def draw(self) -> Event:
        r = self.rng
        kinds = ("observe", "measure", "tick", "deploy", "command", "spec")
        kind = r.choices(kinds, (30, 30, 20, 8, 10, 2))[0]
        if kind == "observe" and self.asked:
            rev = r.choice(sorted(self.asked))
            n = self.asked[rev]
            ready = r.choice((n, n, 0, r.randint(0, n)))
            return ReplicasObserved(revision=rev, desired=n, ready=ready, available=ready)
        if kind == "measure" and self.in_flight:
            e = self.in_flight.pop(r.randrange(len(self.in_flight)))
            outcome = r.choices(("pass", "fail", "error", "none"), (60, 25, 10, 5))[0]
            if outcome == "error":
                return Measurement(verification=e.verification, metric=e.metric.name, error="timeout")
            if outcome == "none":
                return Measurement(verification=e.verification, metric=e.metric.name, value=None)
            value = value_for(e.metric, outcome == "pass")
            return Measurement(verification=e.verification, metric=e.metric.name, value=value)
        if kind == "deploy":
            self.now += r.choice((0.0, 30.0))
            return Deploy(revision=r.choice(REVISIONS))
        if kind == "command":
            self.now += r.choice((0.0, 0.0, 60.0))
            action = r.choice(ACTIONS)
            revision = r.choice((None, None, *REVISIONS)) if action == "rollback" else None
            return Command(action=action, revision=revision)  # type: ignore[arg-type]
        if kind == "spec":
            return SpecChanged(plan=self.plan)
        if self.wake is not None and r.random() < 0.7:
            self.now = max(self.now, self.wake)
        else:
            self.now += r.choice((1.0, 10.0, 60.0, 700.0))
        return Tick()


def bench_stream() -> list[tuple[str, str]]:
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from run import canary_plan, rollout_events  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    plan = canary_plan()
    base = step(initial_state(plan), Deploy(revision="v0"), 0.0).state
    n = plan.replicas
    base = step(base, ReplicasObserved(revision="v0", desired=n, ready=n, available=n), 0.0).state
    out = []
    state = base
    for now, ev in rollout_events(plan, "v1", base, 1.0):
        d = step(state, ev, now)
        out.append((f"t={now:g} {type(ev).__name__}", digest(d)))
        state = d.state
    return out


def all_streams() -> dict[str, list[tuple[str, str]]]:
    streams = {"bench": bench_stream()}
    for path in SPECS:
        plan = plan_of(path)
        for seed in SEEDS:
            streams[f"{path.name}#{seed}"] = Stream(plan, seed).run(STEPS)
    return streams


def test_decisions_are_the_golden_ones() -> None:
    streams = all_streams()
    if os.environ.get("EBBTIDE_REGENERATE_GOLDEN"):
        GOLDEN.write_text(json.dumps({k: [d for _, d in v] for k, v in streams.items()}, indent=0) + "\n")
        pytest.skip("golden decisions regenerated")
    golden = json.loads(GOLDEN.read_text())
    assert sorted(golden) == sorted(streams), "the set of streams changed: regenerate (see the docstring)"
    for name, steps in streams.items():
        for i, ((label, got), want) in enumerate(zip(steps, golden[name], strict=True)):
            assert got == want, f"{name}: decision {i} ({label}) differs from the golden one"


def test_the_streams_reach_the_interesting_phases() -> None:
    """The golden streams are worth holding the engine to: they fail, pause, roll back and go live."""
    phases: set[str] = set()
    for path in SPECS:
        for seed in SEEDS:
            s = Stream(plan_of(path), seed)
            s.apply(Deploy(revision="v1"))
            for _ in range(STEPS):
                s.apply(s.draw())
                phases.add(s.state.phase)
    assert {"in-progress", "verifying", "paused", "rolling-back", "live"} <= phases, phases
