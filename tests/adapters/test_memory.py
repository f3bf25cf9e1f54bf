from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ebbtide.adapters.memory import ClusterConfig, MemoryCluster, Signal, _sampler, to_seconds
from ebbtide.core.effects import Notify, ScaleRevision, SetTraffic, StartMeasurement
from ebbtide.core.events import Measurement, ReplicasObserved
from ebbtide.core.plan import HeaderRoutePlan, MetricPlan


def cluster(revisions: dict, metrics: list | None = None, rps: float = 0.0, seed: int = 0) -> MemoryCluster:
    cfg = ClusterConfig.model_validate({"revisions": revisions, "metrics": metrics or [], "rps": rps})
    return MemoryCluster(cfg, seed=seed)


def measure(c: MemoryCluster, metric: MetricPlan, now: float, revision: str = "v2") -> Measurement:
    return c.measure(StartMeasurement(verification="r", template="t", metric=metric, revision=revision), now)


def test_durations() -> None:
    assert to_seconds("1h30m") == 5400 and to_seconds(5) == 5.0
    with pytest.raises(ValueError):
        to_seconds("-5s")


def test_readiness_delay_jitter_deterministic() -> None:
    revs = {"v2": {"readiness": {"delay": "10s", "jitter": "5s"}}}
    times = []
    for _ in range(2):
        c = cluster(revs, seed=42)
        c.scale("v2", 3, 0.0)
        times.append(sorted(p[0] for p in c._sets["v2"].pods))
    assert times[0] == times[1]
    assert all(10.0 <= t <= 15.0 for t in times[0])


def test_crash_loop_never_ready_and_failed_grows() -> None:
    c = cluster({"v2": {"readiness": {"delay": "5s", "jitter": "2s"}, "crashLoop": True}})
    c.scale("v2", 2, 0.0)
    assert c.replica_counts("v2", 4.0) == (2, 0, 0, 0)
    assert c.replica_counts("v2", 100.0) == (2, 0, 0, 2)
    t = 0.0
    failed = []
    while (nxt := c.next_change(t)) is not None:
        t = nxt
        failed += [e.failed for e in c.observe(t) if isinstance(e, ReplicasObserved)]
    assert failed[-1] == 2 and failed == sorted(failed)


def test_scale_down_removes_unready_first() -> None:
    c = cluster({"v1": {"readiness": {"delay": "5s"}}})
    c.scale("v1", 2, 0.0)
    c.scale("v1", 4, 10.0)  # two more, not ready until 15
    c.scale("v1", 2, 11.0)
    assert c.replica_counts("v1", 11.0) == (2, 2, 2, 0)


def test_signal_models() -> None:
    import random

    rng = random.Random(0)
    assert Signal.model_validate(0.5).evaluate(10, None, rng) == 0.5
    step = Signal.model_validate({"value": 1, "step": {"at": "1m", "value": 2}})
    assert (step.evaluate(59, None, rng), step.evaluate(60, None, rng)) == (1, 2)
    ramp = Signal.model_validate({"value": 0, "ramp": {"start": 0, "end": 100, "to": 10}})
    assert ramp.evaluate(50, None, rng) == pytest.approx(5) and ramp.evaluate(500, None, rng) == 10
    series = Signal.model_validate({"series": [{"at": 0, "value": 1}, {"at": 10, "value": None}]})
    assert series.evaluate(5, None, rng) == 1 and series.evaluate(10, None, rng) is None
    bad = Signal.model_validate({"value": 0.01, "misbehaving": 0.5, "lag": "30s"})
    assert bad.evaluate(100, 80, rng) == 0.01 and bad.evaluate(110, 80, rng) == 0.5
    noisy = Signal.model_validate({"value": 0.5, "noise": 0.1, "min": 0, "max": 1})
    values = [noisy.evaluate(0, None, random.Random(1)) for _ in range(2)]
    assert values[0] == values[1] and 0 <= values[0] <= 1
    with pytest.raises(ValidationError):
        Signal.model_validate({"ramp": {"start": 10, "end": 5, "to": 1}})


def test_measurement_mapping_by_name_query_vector_and_errors() -> None:
    revs = {
        "v1": {"signals": {"sr": 0.99}},
        "v2": {"signals": {"sr": 0.9, "err": {"value": 1, "errors": {"probability": 1, "start": "1m"}}}},
    }
    metrics = [{"query": "http_requests", "signal": "sr"}, {"metric": "errors", "signal": "err"}]
    c = cluster(revs, metrics)
    by_query = MetricPlan(
        name="sr", success_condition="result[0] > 0.95", provider={"p": {"query": "http_requests"}}
    )
    assert measure(c, by_query, 0).value == [0.9]
    scalar = MetricPlan(
        name="sr", success_condition="result > 0.95", provider={"p": {"query": "x http_requests"}}
    )
    c2 = cluster(revs, metrics)
    assert measure(c2, scalar, 0).value == 0.9
    errors = MetricPlan(name="errors", failure_condition="result > 0")
    assert measure(c, errors, 0).value == 1 and measure(c, errors, 60).error is not None
    unmapped = MetricPlan(name="nope")
    assert measure(c, unmapped, 0).error is not None


def test_router_counts_requests_and_bad_requests() -> None:
    revs = {
        "v1": {"readiness": {"delay": 0}},
        "v2": {"readiness": {"delay": 0}, "misbehaveAt": {"weight": 40}},
    }
    c = cluster(revs, rps=10)
    c.apply(ScaleRevision(revision="v1", replicas=1), 0.0)
    c.apply(ScaleRevision(revision="v2", replicas=1), 0.0)
    c.apply(SetTraffic(weights={"v1": 80, "v2": 20}), 0.0)
    c.apply(SetTraffic(weights={"v1": 60, "v2": 40}), 100.0)
    c.apply(SetTraffic(weights={"v1": 100}), 200.0)
    c.advance(300.0)
    assert c.served["v2"] == pytest.approx(10 * 100 * 0.2 + 10 * 100 * 0.4)
    assert c.bad_requests == pytest.approx(10 * 100 * 0.4)
    assert c.served["v1"] == pytest.approx(3000 - c.served["v2"])


def test_header_routes_send_a_share_to_the_canary() -> None:
    cfg = ClusterConfig.model_validate({"rps": 10, "headerShare": 0.5})
    c = MemoryCluster(cfg)
    c.scale("v1", 1, 0)
    c.scale("v2", 1, 0)
    route = HeaderRoutePlan(name="beta")
    c.apply(SetTraffic(weights={"v1": 100}, header_routes=(route,), header_route_revision="v2"), 10.0)
    c.advance(20.0)
    assert c.served["v2"] == pytest.approx(50.0)


# ----- per-pod readiness, attempts, finite inputs ----------------------------------------------------
def ready_times(c: MemoryCluster, revision: str) -> list[float]:
    return [p[0] for p in c._sets[revision].pods]


def test_per_pod_readiness_delays_then_delay_and_jitter() -> None:
    c = cluster({"v2": {"readiness": {"delays": ["1s", "2m", "3s"], "delay": "10s"}}})
    c.scale("v2", 2, 0.0)
    c.scale("v2", 4, 5.0)  # the third pod takes delays[2]; the fourth, past the list, delay + jitter
    assert ready_times(c, "v2") == [1.0, 120.0, 8.0, 15.0]
    assert c.replica_counts("v2", 60.0) == (4, 3, 3, 0)


def test_make_ready_only_some_pods() -> None:
    c = cluster({"v1": {"readiness": {"delays": ["0s", "30s", "60s"]}}})
    c.scale("v1", 3, 0.0)
    c.make_ready("v1", 0.0, 1)
    assert [c.replica_counts("v1", t)[1] for t in (0.0, 30.0, 60.0)] == [1, 2, 3]


def started(revision: str) -> Notify:
    return Notify(event="rollout-started", payload={"revision": revision})


def test_attempts_count_rollouts_and_switch_behaviour() -> None:
    revs = {
        "v2": {
            "readiness": {"delay": "5s"},
            "crashLoop": True,
            "attempts": [{"crashLoop": False, "readiness": {"delay": "20s"}}, {"misbehaveAt": {"time": 0}}],
        }
    }
    c = cluster(revs)
    c.scale("v2", 2, 0.0)  # the rollout creates the pods, then announces itself (the engine's order)
    c.apply(started("v2"), 0.0)
    assert c.attempt("v2") == 1 and c.crash_looping("v2")
    assert c.replica_counts("v2", 10.0) == (2, 0, 0, 2)
    c.scale("v2", 3, 100.0)
    c.apply(started("v2"), 100.0)  # a retry: attempt 2 is healthy, slower, and re-draws unready pods
    assert c.attempt("v2") == 2 and not c.crash_looping("v2")
    assert sorted(ready_times(c, "v2")) == [120.0] * 3
    assert c.attempt_started("v2") == 100.0 and c.misbehave_since("v2") is None
    c.apply(started("v2"), 200.0)  # attempt 3: healthy pods kept, misbehaving from its start
    assert c.attempt("v2") == 3 and c.misbehave_since("v2") == 200.0
    c.apply(started("v2"), 300.0)  # the last entry holds for later attempts
    assert c.attempt("v2") == 4 and c.misbehave_since("v2") == 300.0


def test_the_stable_revision_created_without_a_rollout_is_attempt_one() -> None:
    c = cluster({"v1": {"attempts": [{"misbehaveAt": {"time": 0}}]}})
    c.scale("v1", 2, 0.0)
    assert c.attempt("v1") == 1 and c.misbehave_since("v1") is None
    c.apply(started("v1"), 50.0)  # rolled out again (a rollback through a new rollout)
    assert c.attempt("v1") == 2 and c.misbehave_since("v1") == 50.0


def test_a_later_attempt_measures_with_its_own_signals() -> None:
    """``attempts[n].signals`` replaces the revision's signals on that attempt, in measurements too."""
    c = cluster({"v2": {"signals": {"sr": 0.99}, "attempts": [{"signals": {"sr": 0.5}}]}}, [SR])
    c.scale("v2", 1, 0.0)
    c.apply(started("v2"), 0.0)
    metric = MetricPlan(name="success-rate", success_condition="result > 0.9")
    assert measure(c, metric, 10.0).value == 0.99
    c.apply(started("v2"), 100.0)  # a retry: attempt 2
    assert measure(c, metric, 110.0).value == 0.5


def test_a_changed_metric_plan_is_mapped_again() -> None:
    """A spec change can keep a metric's name and template and change its query: the new query decides."""
    revs = {"v2": {"signals": {"a": 0.1, "b": 0.2}}}
    c = cluster(revs, [{"query": "alpha", "signal": "a"}, {"query": "beta", "signal": "b"}])
    before = MetricPlan(name="m", success_condition="result > 0", provider={"p": {"query": "alpha"}})
    after = MetricPlan(name="m", success_condition="result > 0", provider={"p": {"query": "beta"}})
    assert measure(c, before, 0.0).value == 0.1
    assert measure(c, after, 1.0).value == 0.2


SR = {"metric": "success-rate", "signal": "sr"}


def brute_counts(c: MemoryCluster, revision: str, now: float) -> tuple[int, int, int, int]:
    """The counts straight from the pods (the oracle for the cached ones)."""
    rs = c._sets[revision]
    ready = sum(1 for r, _ in rs.pods if r <= now)
    failed = sum(1 for r, k in rs.pods if r > now and k <= now)
    return (rs.desired, ready, ready, failed)


def brute_next_change(c: MemoryCluster, now: float) -> float | None:
    times = [t for rs in c._sets.values() for pod in rs.pods for t in pod if now < t < float("inf")]
    return min(times) if times else None


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["scale", "ready", "started", "observe"]),
            st.sampled_from(["v1", "v2"]),
            st.integers(0, 6),
            st.sampled_from([0.0, 0.5, 3.0, 7.0, 20.0]),
        ),
        max_size=30,
    ),
    seed=st.integers(0, 3),
)
def test_cached_counts_and_next_change_match_the_pods(ops: list, seed: int) -> None:
    """Counts and the next change are cached between pod changes; at every time they are what the pods
    say, whichever operations came before (time may also stand still or, for a reader, go back)."""
    revs = {
        "v1": {"readiness": {"delay": "2s", "jitter": "6s", "delays": ["0s", "4s"]}},
        "v2": {
            "readiness": {"delay": "3s", "jitter": "4s"},
            "crashLoop": True,
            "attempts": [{"crashLoop": False}],
        },
    }
    c = cluster(revs, seed=seed)
    now = 0.0
    for op, rev, n, dt in ops:
        now += dt
        if op == "scale":
            c.scale(rev, n, now)
        elif op == "ready":
            c.make_ready(rev, now, n % 3 or None)
        elif op == "started":
            c.apply(started(rev), now)
        else:
            # what changed since it was last reported, straight from the pods
            want = [
                (r, brute_counts(c, r, now))
                for r, rs in c._sets.items()
                if brute_counts(c, r, now) != rs.reported
            ]
            got = c.observe(now)
            assert [(e.revision, (e.desired, e.ready, e.available, e.failed)) for e in got] == want
            assert c.observe(now) == []
        for t in (now, now + 1.0, max(0.0, now - 2.0), now + 4.0):
            assert c.next_change(t) == brute_next_change(c, t)
            for r in c._sets:
                assert c.replica_counts(r, t) == brute_counts(c, r, t)


@pytest.mark.parametrize(
    "revisions",
    [
        {"v2": {"signals": {"sr": float("nan")}}},
        {"v2": {"signals": {"sr": {"value": 0.9, "noise": float("inf")}}}},
        {"v2": {"readiness": {"delays": [float("inf")]}}},
    ],
)
def test_non_finite_numbers_are_refused(revisions: dict) -> None:
    with pytest.raises(ValidationError, match="finite"):
        ClusterConfig.model_validate({"revisions": revisions})


_opt_float = st.none() | st.floats(-2.0, 2.0)


@given(
    value=st.floats(-2.0, 2.0),
    noise=st.sampled_from([0.0, 0.01, 0.5]),
    misbehaving=_opt_float,
    lag=st.floats(0.0, 60.0),
    low=_opt_float,
    high=_opt_float,
    step=st.none() | st.tuples(st.floats(0.0, 600.0), st.floats(-2.0, 2.0)),
    now=st.floats(0.0, 900.0),
    since=st.none() | st.floats(0.0, 900.0),
    seed=st.integers(0, 2**64 - 1),
)
def test_a_compiled_sampler_is_the_signal(
    value: float,
    noise: float,
    misbehaving: float | None,
    lag: float,
    low: float | None,
    high: float | None,
    step: tuple[float, float] | None,
    now: float,
    since: float | None,
    seed: int,
) -> None:
    """The cluster samples a signal through a sampler compiled from it: the same value and the same draws
    as ``Signal.evaluate`` (the oracle), with or without the parts it compiles."""
    signal = Signal.model_validate(
        {"value": value, "noise": noise, "misbehaving": misbehaving, "lag": lag, "min": low, "max": high}
        | ({"step": {"at": step[0], "value": step[1]}} if step else {})
    )
    sample = _sampler(signal)
    assert (sample == signal.evaluate) == (step is not None)  # a step, a ramp or a series: evaluated
    a, b = random.Random(seed), random.Random(seed)
    around = () if since is None else (since + lag - 0.5, since + lag, since + lag + 0.5)
    for t in (now, now + 1.0, *around):
        assert sample(t, since, a) == signal.evaluate(t, since, b)
    assert a.getstate() == b.getstate()


@settings(max_examples=60, deadline=None)
@given(
    delays=st.lists(st.floats(0, 600), max_size=4),
    delay=st.floats(0, 600),
    jitter=st.floats(0, 60),
    pods=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    seed=st.integers(0, 2**32),
)
def test_pods_are_drawn_as_the_readiness_draws_them(
    delays: list[float], delay: float, jitter: float, pods: list[int], seed: int
) -> None:
    """The cluster reads a readiness's figures once per attempt; its pods' ready times are still exactly
    ``Readiness.draw``'s, draw for draw (the oracle: the model's own method on a twin generator)."""
    readiness = {"delays": delays, "delay": delay, "jitter": jitter}
    c = cluster({"v2": {"readiness": readiness}}, seed=seed)
    model = c.behaviour("v2").readiness
    twin = random.Random(seed)
    want: list[float] = []
    have = 0
    for i, more in enumerate(pods):
        now = 10.0 * i
        c.scale("v2", have + more, now)
        want += [now + model.draw(k, twin) for k in range(have, have + more)]
        have += more
    assert ready_times(c, "v2") == want
