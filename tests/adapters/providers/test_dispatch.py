"""The measurement dispatcher: providers on a bounded thread pool, never blocking the caller.

The scripted providers below know what they were asked and how they answer; the oracle of each test is that
script (what the test asked for), not the dispatcher's own bookkeeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebbtide.adapters.base import MeasurementProvider, PolledProvider
from ebbtide.adapters.driver import Driver
from ebbtide.adapters.memory import ClusterConfig
from ebbtide.adapters.provided import ProvidedCluster
from ebbtide.adapters.providers import PrometheusProvider
from ebbtide.adapters.providers.dispatch import Dispatcher
from ebbtide.core.effects import StartMeasurement, StopVerification
from ebbtide.core.engine import initial_state
from ebbtide.core.events import Deploy, Measurement
from ebbtide.core.plan import MetricPlan, Plan, StepPlan, TemplatePlan

from .conftest import PromServer


def start(metric: str = "m", verification: str = "v1") -> StartMeasurement:
    return StartMeasurement(
        verification=verification, template="t", metric=MetricPlan(name=metric), revision="r2"
    )


@dataclass
class Script:
    """How the scripted provider answers one metric: after ``delay`` seconds, ``value`` or ``raises``."""

    value: Any = 1.0
    delay: float = 0.0
    raises: str | None = None
    #: when set, the answer waits for this gate too (a provider that hangs until the test releases it)
    gate: threading.Event | None = None


@dataclass
class Scripted:
    """A synchronous provider answering from a script per metric name; records every call it gets."""

    scripts: dict[str, Script] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def measure(self, start: StartMeasurement, now: float) -> Measurement | None:
        with self.lock:
            self.calls.append((start.verification, start.metric.name))
        script = self.scripts.get(start.metric.name, Script())
        if script.gate is not None:
            script.gate.wait(10)
        time.sleep(script.delay)
        if script.raises is not None:
            raise ValueError(script.raises)
        return Measurement(verification=start.verification, metric=start.metric.name, value=script.value)


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """A gate released at teardown, so no worker thread outlives its test."""
    event = threading.Event()
    yield event
    event.set()


def drain(d: Dispatcher, scope: str, timeout: float = 5.0) -> list[Measurement]:
    assert d.wait(timeout), "the dispatcher did not answer in time"
    return d.poll(scope)


def test_a_scope_is_a_polled_provider() -> None:
    with Dispatcher(Scripted()) as d:
        scope = d.for_scope("ns/orders")
        assert isinstance(scope, MeasurementProvider) and isinstance(scope, PolledProvider)


def test_measure_returns_at_once_and_the_result_comes_from_poll() -> None:
    provider = Scripted({"m": Script(value=[0.5], delay=1.0)})
    with Dispatcher(provider) as d:
        scope = d.for_scope("a")
        t0 = time.monotonic()
        assert scope.measure(start(), now=12.0) is None
        assert time.monotonic() - t0 < 0.25  # well under the provider's 1 s
        assert scope.poll() == []
        assert drain(d, "a") == [Measurement(verification="v1", metric="m", value=[0.5])]
        assert scope.poll() == []  # each result is handed out once


def test_many_slow_requests_never_block_the_caller() -> None:
    provider = Scripted({f"m{i}": Script(delay=0.5) for i in range(8)})
    with Dispatcher(provider, workers=4, queue=8) as d:
        t0 = time.monotonic()
        for i in range(8):
            assert d.submit("a", start(f"m{i}"), 0.0) is None
        assert time.monotonic() - t0 < 0.25  # eight requests of 0.5 s each
        assert sorted(m.metric for m in drain(d, "a", timeout=10)) == sorted(f"m{i}" for i in range(8))


def test_a_provider_slower_than_the_timeout_gives_an_error_and_its_late_answer_is_dropped(
    gate: threading.Event,
) -> None:
    provider = Scripted({"slow": Script(gate=gate)})
    seen: list[str] = []
    with Dispatcher(provider, timeout=0.2, on_result=seen.append) as d:
        t0 = time.monotonic()
        assert d.submit("a", start("slow"), 0.0) is None
        [m] = drain(d, "a")
        assert 0.15 < time.monotonic() - t0 < 2.0
        assert m.error is not None and m.error.startswith("timeout:") and "0.2s" in m.error
        assert seen == ["a"]
        gate.set()  # the provider answers after all: too late
        deadline = time.monotonic() + 5
        while d.late == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert d.late == 1 and d.poll("a") == [] and seen == ["a"]


def test_a_provider_that_raises_gives_an_error_measurement() -> None:
    with Dispatcher(Scripted({"m": Script(raises="boom")})) as d:
        d.submit("a", start(), 0.0)
        [m] = drain(d, "a")
        assert m.error == "provider raised ValueError: boom" and m.value is None


def test_a_provider_that_answers_nothing_gives_an_error_measurement() -> None:
    class Silent:
        def measure(self, start: StartMeasurement, now: float) -> Measurement | None:
            return None

    with Dispatcher(Silent()) as d:
        d.submit("a", start(), 0.0)
        [m] = drain(d, "a")
        assert m.error is not None and "answered nothing" in m.error


def test_a_saturated_pool_answers_at_once_with_an_error(gate: threading.Event) -> None:
    provider = Scripted({f"m{i}": Script(gate=gate) for i in range(4)})
    with Dispatcher(provider, workers=1, queue=1, timeout=5) as d:
        assert d.submit("a", start("m0"), 0.0) is None  # running
        assert d.submit("a", start("m1"), 0.0) is None  # waiting for the thread
        refused = d.submit("a", start("m2"), 0.0)
        assert refused is not None and refused.metric == "m2"
        assert refused.error is not None and refused.error.startswith("provider pool saturated")
        assert d.saturated == 1
        gate.set()
        assert sorted(m.metric for m in drain(d, "a")) == ["m0", "m1"]
        assert d.submit("a", start("m3"), 0.0) is None  # room again
        assert [m.metric for m in drain(d, "a")] == ["m3"]


def test_a_timed_out_call_still_holds_its_thread_and_counts_towards_the_bound(gate: threading.Event) -> None:
    provider = Scripted({"hang": Script(gate=gate), "next": Script()})
    with Dispatcher(provider, workers=1, queue=0, timeout=0.1) as d:
        d.submit("a", start("hang"), 0.0)
        [m] = drain(d, "a")
        assert m.error is not None and m.error.startswith("timeout")
        refused = d.submit("a", start("next"), 0.0)  # the hung call still occupies the only thread
        assert refused is not None and refused.error is not None and "saturated" in refused.error


def test_a_request_in_flight_is_not_sent_twice(gate: threading.Event) -> None:
    provider = Scripted({"m": Script(gate=gate)})
    with Dispatcher(provider) as d:
        assert d.submit("a", start(), 0.0) is None
        assert d.submit("a", start(), 1.0) is None  # the same (scope, verification, metric): deduplicated
        assert d.submit("b", start(), 1.0) is None  # another rollout: its own request
        assert d.in_flight("a") == 1 and d.in_flight() == 2
        gate.set()
        assert len(drain(d, "a")) == 1 and len(d.poll("b")) == 1
        assert d.submit("a", start(), 2.0) is None  # answered: asked again, measured again
        assert len(drain(d, "a")) == 1
        assert provider.calls.count(("v1", "m")) == 3


def test_a_request_whose_answer_waits_to_be_polled_is_not_sent_again() -> None:
    """A controller restoring its persisted state re-sends the measurements in flight; when the answer is
    already waiting, asking again would query twice (and the second answer would later be taken for the
    metric's next measurement)."""
    provider = Scripted({"m": Script(value=0.1)})
    with Dispatcher(provider) as d:
        assert d.submit("a", start(), 0.0) is None
        assert d.wait(5)
        assert d.submit("a", start(), 1.0) is None  # the answer waits: not asked again
        assert d.submit("a", start("other"), 1.0) is None  # another metric: asked
        assert [m.metric for m in drain(d, "a")] == ["m", "other"]
        assert provider.calls == [("v1", "m"), ("v1", "other")]


def test_results_given_back_come_first_in_the_next_poll() -> None:
    provider = Scripted({"m": Script(value=0.1), "n": Script(value=0.2)})
    with Dispatcher(provider) as d:
        scope = d.for_scope("a")
        scope.measure(start("m"), 0.0)
        taken = drain(d, "a")
        scope.measure(start("n"), 1.0)
        assert d.wait(5)
        scope.give_back(taken)  # the decision that took them was not persisted
        assert [m.metric for m in scope.poll()] == ["m", "n"]
        assert scope.poll() == []
        assert len(provider.calls) == 2


def test_results_come_in_completion_order_per_scope() -> None:
    provider = Scripted({"slow": Script(delay=0.6), "fast": Script(delay=0.0), "mid": Script(delay=0.3)})
    with Dispatcher(provider, workers=3) as d:
        for metric in ("slow", "fast", "mid"):
            d.submit("a", start(metric), 0.0)
        d.submit("b", start("fast"), 0.0)
        assert [m.metric for m in drain(d, "a")] == ["fast", "mid", "slow"]
        assert [m.metric for m in d.poll("b")] == ["fast"]


def test_a_closed_dispatcher_answers_with_an_error() -> None:
    d = Dispatcher(Scripted())
    d.close()
    m = d.submit("a", start(), 0.0)
    assert m is not None and m.error == "measurement dispatcher is closed"


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Dispatcher(Scripted(), timeout=0)
    with pytest.raises(ValueError, match="workers"):
        Dispatcher(Scripted(), workers=0)


# ----- every request is answered exactly once --------------------------------------------------------
OUTCOMES = st.sampled_from(["value", "raise", "hang"])


@settings(max_examples=25, deadline=None)
@given(
    requests=st.lists(
        st.tuples(st.sampled_from("abc"), OUTCOMES, st.floats(0.0, 0.02)), min_size=1, max_size=12
    ),
    workers=st.integers(1, 3),
    queue=st.integers(0, 6),
)
def test_every_request_is_answered_exactly_once(
    requests: list[tuple[str, str, float]], workers: int, queue: int
) -> None:
    scripts: dict[str, Script] = {}
    asked: dict[tuple[str, str], str] = {}  # (scope, metric) -> what its provider does
    for i, (scope, outcome, delay) in enumerate(requests):
        metric = f"m{i}"
        scripts[metric] = Script(
            value=float(i),
            delay=0.5 if outcome == "hang" else delay,
            raises="bad" if outcome == "raise" else None,
        )
        asked[(scope, metric)] = outcome
    answers: dict[tuple[str, str], list[Measurement]] = {key: [] for key in asked}
    with Dispatcher(Scripted(scripts), workers=workers, queue=queue, timeout=0.08) as d:
        for (scope, metric), _ in asked.items():
            now = d.submit(scope, start(metric), 0.0)
            if now is not None:
                answers[(scope, metric)].append(now)
        assert d.wait(10)
        for scope in "abc":
            for m in d.poll(scope):
                answers[(scope, m.metric)].append(m)
        assert all(d.poll(scope) == [] for scope in "abc")
    for key, outcome in asked.items():
        [m] = answers[key]  # exactly one answer each
        if m.error is not None and ("saturated" in m.error or m.error.startswith("timeout")):
            continue  # refused or too slow: an honest error whatever the provider would have said
        if outcome == "value":
            assert m.value == float(key[1][1:]) and m.error is None
        elif outcome == "raise":
            assert m.error == "provider raised ValueError: bad"
        else:
            raise AssertionError(f"a hanging provider answered {m}")


# ----- end to end: the same verdict as a synchronous provider -----------------------------------------
ERROR_RATIO = 'sum(rate(http_requests_total{code="500"}[5m])) / sum(rate(http_requests_total[5m]))'
SIGNALS = ClusterConfig.model_validate(
    {"revisions": {"v1": {"readiness": {"delay": "5s"}}, "v2": {"readiness": {"delay": "5s"}}}}
)


def canary(condition: str) -> Plan:
    metric = MetricPlan(
        name="error-ratio",
        interval=30,
        count=3,
        success_condition=condition,
        provider={"prometheus": {"query": ERROR_RATIO}},
    )
    return Plan(
        steps=(
            StepPlan(kind="setWeight", weight=20),
            StepPlan(kind="verification", templates=("errors",)),
            StepPlan(kind="setWeight", weight=60),
            StepPlan(kind="verification", templates=("errors",)),
        ),
        templates={"errors": TemplatePlan(name="errors", metrics=(metric,))},
        replicas=4,
    )


def drive(plan: Plan, provider: MeasurementProvider, dispatcher: Dispatcher | None) -> Driver:
    """Deploy v1 then v2 and run in virtual time; with a dispatcher, each instant waits for its answers."""
    driver = Driver(ProvidedCluster(provider, SIGNALS, seed=1), initial_state(plan))
    driver.send(Deploy(revision="v1"), 0.0)
    now = 0.0
    for _ in range(1000):
        if now == 60.0 and driver.state.desired != "v2":
            driver.send(Deploy(revision="v2"), now)
        while dispatcher is not None and dispatcher.in_flight():
            assert dispatcher.wait(30)
            driver.pump(now)
        t = driver.next_time(now)
        if t is None or t > 3600:
            if now < 60.0:
                t = 60.0
            else:
                return driver
        now = t
        driver.pump(now)
    raise AssertionError("the rollout did not settle")


@pytest.mark.parametrize(
    ("condition", "phase", "stable"),
    [("result[0] < 0.01", "live", "v2"), ("result[0] < 0.001", "live", "v1")],
    ids=["passes", "fails-and-rolls-back"],
)
def test_a_rollout_through_the_dispatcher_reaches_the_synchronous_verdict(
    prometheus: PromServer, condition: str, phase: str, stable: str
) -> None:
    plan = canary(condition)
    real = PrometheusProvider(prometheus.address, origin=prometheus.at)
    sync = drive(plan, real, None)
    with Dispatcher(real, workers=2, timeout=20) as d:
        asynchronous = drive(plan, d.for_scope("default/orders"), d)
    for driver in (sync, asynchronous):
        assert (driver.state.phase, driver.state.stable) == (phase, stable)
    measured = [[e for _, e in drv.log if isinstance(e, Measurement)] for drv in (sync, asynchronous)]
    assert measured[0] == measured[1] and len(measured[0]) == (6 if stable == "v2" else 1)
    assert all(m.value == pytest.approx([0.004]) for m in measured[0])
    notified = [[n.event for _, n in drv.adapter.notifications] for drv in (sync, asynchronous)]
    assert notified[0] == notified[1]
    if stable == "v1":
        assert "rollout-rolled-back" in notified[0]


def test_a_provider_that_never_answers_cannot_stall_a_rollout(gate: threading.Event) -> None:
    """Every measurement times out in the dispatcher: Error measurements, past consecutiveErrorLimit the
    verification fails and the rollout rolls back, in virtual time, while the provider is still hanging."""
    metric = MetricPlan(
        name="error-ratio",
        interval=10,
        count=10,
        consecutive_error_limit=2,
        success_condition="result[0] < 0.01",
        provider={"prometheus": {"query": ERROR_RATIO}},
    )
    plan = Plan(
        steps=(StepPlan(kind="setWeight", weight=20), StepPlan(kind="verification", templates=("errors",))),
        templates={"errors": TemplatePlan(name="errors", metrics=(metric,))},
        replicas=4,
    )
    hanging = Scripted({"error-ratio": Script(gate=gate)})
    with Dispatcher(hanging, workers=1, queue=8, timeout=0.05) as d:
        driver = drive(plan, d.for_scope("default/orders"), d)
    assert (driver.state.phase, driver.state.stable) == ("live", "v1")
    errors = [e.error for _, e in driver.log if isinstance(e, Measurement)]
    assert len(errors) == 3 and all(e is not None for e in errors)
    assert errors[0] == "timeout: the provider did not answer within 0.05s"
    events = [n.event for _, n in driver.adapter.notifications]
    assert "rollout-failed" in events and "rollout-rolled-back" in events


def test_a_forgotten_scope_keeps_no_results(gate: threading.Event) -> None:
    provider = Scripted({"done": Script(), "hang": Script(gate=gate)})
    seen: list[str] = []
    with Dispatcher(provider, on_result=seen.append) as d:
        d.submit("gone", start("done"), 0.0)
        assert d.wait(5) and seen == ["gone"]
        d.submit("gone", start("hang"), 0.0)
        d.forget("gone")  # the rollout was deleted
        assert d.in_flight() == 0 and d.poll("gone") == []
        gate.set()
        deadline = time.monotonic() + 5
        while d.late == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert d.late == 1 and d.poll("gone") == [] and seen == ["gone"]


def test_the_provided_cluster_drops_the_answers_of_a_stopped_verification() -> None:
    cluster = ProvidedCluster(Scripted({"m": Script(value=0.5)}))
    cluster.apply(start("m", verification="run-1"), 0.0)
    cluster.apply(start("m", verification="run-2"), 0.0)
    cluster.apply(StopVerification(verification="run-1"), 0.0)
    assert cluster.observe(0.0) == [Measurement(verification="run-2", metric="m", value=0.5)]
    assert cluster.observe(0.0) == []


def test_a_metric_with_its_own_longer_timeout_is_waited_for() -> None:
    """A Jenkins metric carries its own in-flight timeout; the dispatcher waits that long for it."""
    provider = Scripted({"build": Script(value="SUCCESS", delay=0.6), "quick": Script(value=1.0, delay=0.6)})
    own = StartMeasurement(
        verification="v1", template="t", metric=MetricPlan(name="build", timeout=90.0), revision="r2"
    )
    with Dispatcher(provider, timeout=0.2) as dispatcher:
        scope = dispatcher.for_scope("ns/a")
        assert scope.measure(own, 0.0) is None
        assert scope.measure(start("quick"), 0.0) is None
        assert dispatcher.wait(10)
        answers = {m.metric: m for m in scope.poll()}
    assert answers["build"].value == "SUCCESS" and answers["build"].error is None
    assert answers["quick"].error is not None and "timeout" in answers["quick"].error
