from __future__ import annotations

import pytest

from ebbtide.adapters.driver import MAX_EVENTS_PER_INSTANT, Driver, DriverError, replay
from ebbtide.adapters.memory import ClusterConfig, MemoryCluster
from ebbtide.core.effects import Effect, Notify
from ebbtide.core.engine import initial_state
from ebbtide.core.events import Command, Deploy, Event
from ebbtide.core.plan import MetricPlan, Plan, StepPlan, TemplatePlan
from ebbtide.core.state import Decision, RolloutState

METRIC = MetricPlan(name="error-rate", interval=30, count=3, success_condition="result < 0.05")
PLAN = Plan(
    steps=(
        StepPlan(kind="setWeight", weight=20),
        StepPlan(kind="verification", templates=("t",)),
        StepPlan(kind="setWeight", weight=50),
        StepPlan(kind="pause", duration=120),
        StepPlan(kind="setWeight", weight=80),
        StepPlan(kind="verification", templates=("t",)),
    ),
    templates={"t": TemplatePlan(name="t", metrics=(METRIC,))},
    replicas=4,
)
CONFIG = ClusterConfig.model_validate(
    {
        "revisions": {
            "v1": {"readiness": {"delay": "5s"}, "signals": {"e": {"value": 0.01, "noise": 0.01}}},
            "v2": {
                "readiness": {"delay": "10s", "jitter": "5s"},
                "signals": {"e": {"value": 0.01, "noise": 0.01}},
            },
        },
        "metrics": [{"metric": "error-rate", "signal": "e"}],
        "rps": 10,
    }
)


def run(driver: Driver, now: float, until: float) -> float:
    while (t := driver.next_time(now)) is not None and t <= until:
        now = t
        driver.pump(now)
    return now


def start(seed: int = 3) -> tuple[Driver, MemoryCluster, list[Decision]]:
    cluster = MemoryCluster(CONFIG, seed=seed)
    decisions: list[Decision] = []
    driver = Driver(cluster, initial_state(PLAN), on_decision=lambda t, e, d: decisions.append(d))
    driver.send(Deploy(revision="v1"), 0.0)
    run(driver, 0.0, 30.0)
    driver.send(Deploy(revision="v2"), 30.0)
    return driver, cluster, decisions


def test_drives_a_rollout_to_live() -> None:
    driver, _, _ = start()
    run(driver, 30.0, 7200.0)
    assert driver.state.phase == "live" and driver.state.stable == "v2"
    assert driver.next_wake is None


def test_replaying_the_log_reproduces_every_decision() -> None:
    driver, _, decisions = start()
    driver.send(Command(action="pause"), 31.0)  # a command mid-way, accepted or rejected, is in the log too
    driver.send(Command(action="resume"), 40.0)
    run(driver, 40.0, 7200.0)
    replayed = list(replay(driver.initial, driver.log))
    assert len(replayed) == len(decisions) > 10
    assert replayed == decisions


def test_restore_continues_with_the_same_future() -> None:
    whole, whole_cluster, _ = start()
    run(whole, 30.0, 7200.0)

    first, cluster, _ = start()
    t = run(first, 30.0, 100.0)
    saved = first.state_json()
    resumed = Driver.restore(cluster, saved, t)
    resumed.pump(t)
    run(resumed, t, 7200.0)
    assert resumed.state.phase == whole.state.phase == "live"
    assert resumed.state.stable == whole.state.stable == "v2"
    assert resumed.state.weights == whole.state.weights
    assert cluster.served.keys() == whole_cluster.served.keys()


def test_an_engine_that_never_settles_is_stopped_loudly() -> None:
    """A step that always wants another Tick at the same instant (or a world that always has news) stops the
    pump after MAX_EVENTS_PER_INSTANT events with a DriverError, never a hang."""
    told: list[Event] = []

    def restless(state: RolloutState, event: Event, now: float) -> Decision:
        told.append(event)
        return Decision(state=state, effects=(), wake_at=now)

    driver = Driver(MemoryCluster(CONFIG), initial_state(PLAN), step=restless)
    driver.wake_at = 5.0
    with pytest.raises(DriverError, match="does not settle"):
        driver.pump(5.0)
    assert MAX_EVENTS_PER_INSTANT < len(told) <= MAX_EVENTS_PER_INSTANT + 2


def _recording(own: bool) -> tuple[MemoryCluster, list[str]]:
    """A memory cluster whose ``apply`` records the kinds it gets (and, unless ``own``, without handlers)."""
    cluster = MemoryCluster(CONFIG, seed=3)
    via_apply: list[str] = []
    real = cluster.apply

    def apply(effect: Effect, now: float) -> None:
        via_apply.append(effect.kind)
        real(effect, now)

    cluster.apply = apply  # type: ignore[method-assign]
    if not own:
        cluster.appliers = dict  # type: ignore[method-assign,assignment]
    return cluster, via_apply


def test_effects_go_to_the_adapters_own_handlers_else_to_apply() -> None:
    """An adapter naming a handler per effect type gets each effect there (the driver calls it directly);
    a type it names none for goes to ``apply``; either way the rollout is the same."""
    outcomes = []
    for own in (True, False):
        cluster, via_apply = _recording(own)
        driver = Driver(cluster, initial_state(PLAN))
        driver.send(Deploy(revision="v1"), 0.0)
        run(driver, 0.0, 30.0)
        driver.send(Deploy(revision="v2"), 30.0)
        run(driver, 30.0, 7200.0)
        outcomes.append((driver.state.phase, driver.state.stable, cluster.measurements_taken))
        if own:
            assert via_apply == []
        else:
            assert {"scale", "traffic", "measure", "notify"} <= set(via_apply)
    assert outcomes[0] == outcomes[1] and outcomes[0][:2] == ("live", "v2")


def test_a_subclass_overriding_apply_gets_every_effect_there() -> None:
    """A memory cluster whose subclass overrides ``apply`` (as ProvidedCluster does) names no handlers."""

    class Own(MemoryCluster):
        def apply(self, effect: Effect, now: float) -> None:
            super().apply(effect, now)

    assert Own().appliers() == {} and len(MemoryCluster().appliers()) == 5


def test_an_effect_of_a_type_the_handlers_do_not_name_goes_to_apply() -> None:
    """The handler table covers the effect types the engine emits; anything else (a subclass a wrapping step
    returns, say) still reaches the adapter's ``apply`` rather than failing in the driver."""

    class Marked(Notify):
        pass

    seen: list[Effect] = []

    class Recording(MemoryCluster):
        def apply(self, effect: Effect, now: float) -> None:
            seen.append(effect)

    marked = Marked(event="rollout-completed", payload={})

    def stepping(state: RolloutState, event: Event, now: float) -> Decision:
        return Decision(state=state, effects=(marked,), wake_at=None, rejected=None)

    cluster = Recording()
    cluster.appliers = MemoryCluster().appliers  # type: ignore[method-assign]  # the table, as a memory cluster's
    driver = Driver(cluster, initial_state(PLAN), step=stepping)
    driver.handle(Deploy(revision="v1"), 0.0)
    assert seen == [marked]


def test_events_handled_counts_every_event_once() -> None:
    """``handle`` counts its event, ``pump`` the events it handles (its return value); a failing step counts
    nothing."""
    driver, _, decisions = start()
    assert driver.events_handled == len(decisions)
    before = driver.events_handled
    handled = driver.pump(30.0) + driver.pump(45.0)
    assert driver.events_handled == before + handled == len(decisions)

    def failing(state: RolloutState, event: Event, now: float) -> Decision:
        raise RuntimeError("engine down")

    driver._step = failing
    with pytest.raises(RuntimeError):
        driver.pump(7200.0)
    assert driver.events_handled == len(decisions)
