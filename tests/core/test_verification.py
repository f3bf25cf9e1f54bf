"""Promise 7 (verification) as properties over ``ebbtide.core.verification``, plus examples of every
condition style users write for Argo Rollouts and Ocean CD."""

from __future__ import annotations

import dataclasses
import heapq
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from ebbtide.core import step
from ebbtide.core import verification as ver
from ebbtide.core.effects import Notify, StartMeasurement, StopVerification
from ebbtide.core.events import Measurement
from ebbtide.core.plan import MetricPlan, Plan, StepPlan, TemplatePlan
from ebbtide.core.spec import compile_plan, load_text
from ebbtide.core.state import MetricStatus, RolloutState, VerificationRun
from ebbtide.core.testing import FAIL, PASS, measurement_streams, metrics, value_for
from tests.core.helpers import (
    BAD,
    ERROR,
    ERROR_RATE,
    GOOD,
    SILENT,
    Harness,
    canary_plan,
    pause,
    template,
    verify,
    weight,
)

Outcome = tuple[str, Any]


def feed(mp: MetricPlan, stream: list[Outcome], st0: MetricStatus | None = None) -> MetricStatus:
    """Fold a stream into a metric's counters, stopping once the metric reaches a verdict."""
    st_ = st0 or MetricStatus(name=mp.name, phase="Running", next_at=0.0)
    now = 0.0
    for kind, value in stream:
        if st_.phase in ver.TERMINAL:
            break
        now += 1.0
        st_ = dataclasses.replace(st_, in_flight=True)
        if kind == "error":
            st_ = ver.record(mp, st_, None, str(value), now)
        else:
            st_ = ver.record(mp, st_, value, None, now)
    return st_


def run_of(template: TemplatePlan, statuses: list[MetricStatus], background: bool = False) -> VerificationRun:
    return VerificationRun(id="r", template=template.name, background=background, metrics=tuple(statuses))


@st.composite
def metric_and_stream(draw: st.DrawFn, name: str = "m") -> tuple[MetricPlan, list[Outcome]]:
    mp = draw(metrics(name=name))
    return mp, draw(measurement_streams(mp, max_size=12))


# ---------------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------------


@given(metric_and_stream("a"), metric_and_stream("dry"), st.booleans())
def test_dry_run_metrics_never_change_the_verdict(
    real: tuple[MetricPlan, list[Outcome]], dry: tuple[MetricPlan, list[Outcome]], background: bool
) -> None:
    """A dry-run metric's results never count; like Argo, a run still waits for it to complete (so that
    it is measured): the verdict with it is the verdict without it, or Running while it runs."""
    mp, stream = real
    dmp = dry[0].model_copy(update={"dry_run": True})
    with_dry = TemplatePlan(name="t", metrics=(mp, dmp))
    without = TemplatePlan(name="t", metrics=(mp,))
    st_real = feed(mp, stream)
    st_dry = feed(dmp, dry[1])
    got = ver.run_verdict(with_dry, run_of(with_dry, [st_real, st_dry], background))[0]
    alone = ver.run_verdict(without, run_of(without, [st_real], background))[0]
    waits = st_dry.phase not in ver.TERMINAL and not (
        ver.effective_count(dmp) is None and not background and st_dry.count > 0
    )
    assert got == alone or (got == "Running" and alone == "Successful" and waits)


@given(metric_and_stream())
def test_dry_run_is_measured_and_reported_but_a_template_of_only_dry_runs_succeeds(
    ms: tuple[MetricPlan, list[Outcome]],
) -> None:
    mp = ms[0].model_copy(update={"dry_run": True})
    st_ = feed(mp, ms[1])
    template = TemplatePlan(name="t", metrics=(mp,))
    got = ver.run_verdict(template, run_of(template, [st_]))[0]
    assert got in ("Successful", "Running")
    assert got == "Running" or st_.phase in ver.TERMINAL or st_.count > 0


LIMIT_OF = {
    "failed": "failure_limit",
    "consecutive_error": "consecutive_error_limit",
    "inconclusive": "inconclusive_limit",
}
PHASE_OF = {"failed": "Failed", "consecutive_error": "Error", "inconclusive": "Inconclusive"}


@given(
    counter=st.sampled_from(sorted(LIMIT_OF)),
    limit=st.integers(0, 6),
    count=st.integers(0, 10),
    mp=metrics(),
)
def test_each_limit_trips_exactly_when_the_count_is_strictly_greater(
    counter: str, limit: int, count: int, mp: MetricPlan
) -> None:
    mp = mp.model_copy(
        update={
            "failure_limit": 99,
            "consecutive_error_limit": 99,
            "inconclusive_limit": 99,
            LIMIT_OF[counter]: limit,
        }
    )
    st_ = MetricStatus(name=mp.name, phase="Running", **{counter: count})
    phase = ver.metric_phase(mp, st_)
    if count > limit:
        assert phase == PHASE_OF[counter]
    else:
        assert phase in ("Running", "Successful") and phase != PHASE_OF[counter]


@given(counter=st.sampled_from(sorted(LIMIT_OF)), limit=st.integers(0, 4))
def test_limits_through_record(counter: str, limit: int) -> None:
    """Fed one by one through ``record``: limit N tolerates N bad measurements and trips on N+1."""
    mp = MetricPlan(
        name="m",
        interval=1.0,
        success_condition="result >= 0.5",
        **{LIMIT_OF[counter]: limit},  # type: ignore[arg-type]
    )
    bad: Outcome = {
        "failed": ("value", FAIL),
        "consecutive_error": ("error", "timeout"),
        "inconclusive": ("value", None),
    }[counter]
    st_ = feed(mp, [bad] * limit)
    assert st_.phase == "Running", f"{limit} bad measurements within limit {limit}"
    st_ = feed(mp, [bad], st_)
    assert st_.phase == PHASE_OF[counter]


@given(st.lists(metric_and_stream(), min_size=1, max_size=4), st.booleans())
def test_verdict_is_the_worst_metric(items: list[tuple[MetricPlan, list[Outcome]]], background: bool) -> None:
    mps = [mp.model_copy(update={"name": f"m{i}"}) for i, (mp, _) in enumerate(items)]
    statuses = [feed(mp, stream) for mp, (_, stream) in zip(mps, items, strict=True)]
    template = TemplatePlan(name="t", metrics=tuple(mps))
    verdict, message = ver.run_verdict(template, run_of(template, statuses, background))
    counted = [s.phase for mp, s in zip(mps, statuses, strict=True) if not mp.dry_run]
    worst_bad = max(
        (p for p in counted if p in ("Inconclusive", "Error", "Failed")),
        key=ver.SEVERITY.__getitem__,
        default=None,
    )
    running = [(mp, s) for mp, s in zip(mps, statuses, strict=True) if s.phase not in ver.TERMINAL]
    if worst_bad is not None:
        assert verdict == worst_bad and message, "an Inconclusive/Error/Failed metric decides the run at once"
    elif running:
        assert verdict in ("Running", "Successful") and message is None
        if verdict == "Successful":
            # only metrics that measure until the phase ends and already measured can be left running
            for mp, s in running:
                assert ver.effective_count(mp) is None and not background
                assert (s.count if mp.dry_run else s.successful) > 0
    else:
        assert (verdict, message) == ("Successful", None)


def test_severity_order() -> None:
    order = ["Successful", "Running", "Inconclusive", "Error", "Failed"]
    assert [ver.SEVERITY[p] for p in order] == sorted(ver.SEVERITY[p] for p in order)
    assert len({ver.SEVERITY[p] for p in order}) == len(order)


@given(metric_and_stream())
def test_a_failed_or_errored_metric_takes_no_more_measurements(ms: tuple[MetricPlan, list[Outcome]]) -> None:
    mp, stream = ms
    st_ = feed(mp, stream)
    if st_.phase in ("Failed", "Error", "Inconclusive", "Successful"):
        assert st_.next_at is None
    else:
        assert st_.next_at is not None


@given(st.lists(metric_and_stream(), min_size=2, max_size=3))
def test_a_failed_metric_ends_the_run_whatever_its_siblings(
    items: list[tuple[MetricPlan, list[Outcome]]],
) -> None:
    mps = [mp.model_copy(update={"name": f"m{i}", "dry_run": False}) for i, (mp, _) in enumerate(items)]
    failing = mps[0].model_copy(update={"failure_limit": 0})
    failed = feed(failing, [("value", value_for(failing, False))])
    assume(failed.phase == "Failed")
    siblings = [MetricStatus(name=mp.name, phase="Running") for mp in mps[1:]]
    template = TemplatePlan(name="t", metrics=(failing, *mps[1:]))
    verdict, message = ver.run_verdict(template, run_of(template, [failed, *siblings]))
    assert verdict == "Failed" and message and "failureLimit 0" in message


@given(metrics())
def test_effective_count(mp: MetricPlan) -> None:
    n = ver.effective_count(mp)
    if mp.count is not None:
        assert n == mp.count
    elif mp.interval is None:
        assert n == 1, "neither count nor interval: one measurement"
    else:
        assert n is None, "interval only: until the phase ends"


@given(metric_and_stream())
def test_errors_never_count_towards_count(ms: tuple[MetricPlan, list[Outcome]]) -> None:
    mp, stream = ms
    st_ = feed(mp, stream)
    assert st_.count == st_.successful + st_.failed + st_.inconclusive
    if st_.phase == "Successful":
        assert st_.successful > 0 or st_.count > 0


# ---------------------------------------------------------------------------------------------------
# examples: every condition style
# ---------------------------------------------------------------------------------------------------

_BOTH_CONDITIONS = {"success_condition": "result < 0.05", "failure_condition": "result > 0.4"}


@pytest.mark.parametrize(
    ("condition", "value", "outcome"),
    [
        ({"success_condition": "result[0] >= 0.95"}, [0.99], "successful"),
        ({"success_condition": "result[0] >= 0.95"}, [0.5], "failed"),
        ({"success_condition": "result < 0.05 && result >= 0"}, 0.01, "successful"),
        ({"success_condition": "result < 0.05 && result >= 0"}, -1.0, "failed"),
        ({"success_condition": "len(result) > 0"}, [1.0], "successful"),
        ({"success_condition": "len(result) > 0"}, [], "failed"),
        ({"failure_condition": "isNaN(result)"}, float("nan"), "failed"),
        ({"failure_condition": "isNaN(result)"}, 1.0, "successful"),
        ({"failure_condition": "result > 100"}, 250.0, "failed"),
        ({"failure_condition": "result > 100"}, 50, "successful"),
        ({"success_condition": "result == true"}, True, "successful"),
        ({"success_condition": "result >= 0.5"}, None, "inconclusive"),
        ({"success_condition": "result[0] >= 0.95"}, 0.99, "error"),
        ({}, 42, "successful"),
        # neither condition (Argo): data without error is successful; no data is still inconclusive
        ({}, [], "successful"),
        ({}, None, "inconclusive"),
        # both conditions (Argo): failure wins when true, else success when true, else inconclusive
        (_BOTH_CONDITIONS, 0.01, "successful"),
        (_BOTH_CONDITIONS, 0.5, "failed"),
        (_BOTH_CONDITIONS, 0.2, "inconclusive"),
        ({"success_condition": "result >= 0", "failure_condition": "result > 0.4"}, 0.5, "failed"),
        ({"success_condition": "result[0] > 0", "failure_condition": "result > 0.4"}, 0.5, "error"),
        ({"success_condition": "result < 0.05", "failure_condition": "result[0] > 0.4"}, 0.01, "error"),
    ],
)
def test_condition_styles(condition: dict[str, str], value: Any, outcome: str) -> None:
    mp = MetricPlan(name="m", **condition)
    assert ver.classify(mp, value)[0] == outcome


def test_single_measurement_metric_succeeds_on_one_passing_value() -> None:
    mp = MetricPlan(name="m", success_condition="result >= 0.5")
    st_ = feed(mp, [("value", PASS)])
    assert st_.phase == "Successful" and st_.count == 1 and st_.next_at is None


def test_error_is_retried_after_the_error_retry_interval() -> None:
    mp = MetricPlan(name="m", success_condition="result >= 0.5")
    st_ = ver.record(mp, MetricStatus(name="m", phase="Running", in_flight=True), None, "timeout", now=100.0)
    assert st_.phase == "Running" and st_.next_at == 100.0 + ver.ERROR_RETRY_INTERVAL
    assert st_.count == 0 and st_.consecutive_error == 1


def test_a_value_resets_the_consecutive_error_count() -> None:
    mp = MetricPlan(
        name="m", interval=5.0, count=10, success_condition="result >= 0.5", consecutive_error_limit=2
    )
    st_ = feed(mp, [("error", "x"), ("error", "x"), ("value", PASS), ("error", "x"), ("error", "x")])
    assert st_.phase == "Running" and st_.consecutive_error == 2 and st_.error == 4


def test_indefinite_metric_does_not_hold_a_phase_verification_back_once_it_passed() -> None:
    mp = MetricPlan(name="m", interval=30.0, success_condition="result >= 0.5")
    st_ = feed(mp, [("value", PASS)])
    template = TemplatePlan(name="t", metrics=(mp,))
    assert ver.run_verdict(template, run_of(template, [st_]))[0] == "Successful"
    assert ver.run_verdict(template, run_of(template, [st_], background=True))[0] == "Running"


@pytest.mark.parametrize(("interval", "want"), [(None, 1), (30.0, None)])
def test_count_zero_means_not_set(interval: float | None, want: int | None) -> None:
    """Argo's effective count: count 0 is count unset (one measurement, or until the phase ends)."""
    assert ver.effective_count(MetricPlan(name="m", interval=interval, count=0)) == want
    assert ver.effective_count(MetricPlan(name="m", interval=interval)) == want


def test_both_conditions_through_record_count_inconclusive_measurements() -> None:
    mp = MetricPlan(name="m", interval=10.0, count=5, inconclusive_limit=1, **_BOTH_CONDITIONS)
    st_ = feed(mp, [("value", 0.01), ("value", 0.2)])
    assert (st_.successful, st_.inconclusive, st_.phase) == (1, 1, "Running")
    st_ = feed(mp, [("value", 0.2)], st_)
    assert st_.phase == "Inconclusive"


def test_start_run_schedules_the_initial_delay() -> None:
    template = TemplatePlan(name="t", metrics=(MetricPlan(name="m", initial_delay=30.0),))
    run = ver.start_run("r1", template, now=10.0)
    assert run.phase == "Running" and run.metrics[0].next_at == 40.0


# ---------------------------------------------------------------------------------------------------
# the engine acting on verdicts (tests/core/helpers.py harness)
# ---------------------------------------------------------------------------------------------------


def _rollout(plan: Plan, measure: Any) -> Harness:
    """v1 live and ready, then v2 deployed (at t=21)."""
    h = Harness(plan, measure=measure).live("v1")
    h.deploy("v2")
    return h


def _measured(h: Harness, since: float = -1.0) -> list[tuple[float, str]]:
    return [
        (r.t, e.metric.name)
        for r in h.log
        if r.t >= since
        for e in r.decision.effects
        if isinstance(e, StartMeasurement)
    ]


def test_an_inconclusive_metric_ends_its_run_at_once_and_its_siblings_stop() -> None:
    """Argo: an Inconclusive metric terminates the AnalysisRun; the rollout pauses as inconclusive and a
    sibling that would have failed later is never measured again (no rollback)."""
    once = MetricPlan(name="availability", success_condition="result < 0.05")
    often = MetricPlan(name="error-rate", interval=10.0, count=5, success_condition="result < 0.05")
    plan = canary_plan(weight(20), verify(), weight(100), templates={"t": template(once, often)})

    def measure(rev: str, metric: str, now: float) -> Any:
        if rev != "v2":
            return GOOD
        if metric == "availability":
            return None  # no data: inconclusive (inconclusiveLimit 0)
        return GOOD if now < 40 else BAD  # would fail the phase on its third measurement

    h = _rollout(plan, measure)
    h.run_until(600)
    s = h.state
    assert s.phase == "paused" and s.pause_reason == "inconclusive"
    assert "rollout-failed" not in h.notified() and s.weights == {"v1": 80, "v2": 20}
    paused_at = next(t for t, name, _ in h.notifications() if name == "rollout-paused")
    assert _measured(h, since=paused_at + 0.001) == [], "the sibling metric is not measured again"
    (run,) = [r for r in s.verifications if not r.background]
    assert run.phase == "Inconclusive" and "availability" in (run.message or "")
    stops = [
        e
        for r in h.log
        if r.t == paused_at
        for e in r.decision.effects
        if isinstance(e, StopVerification) and e.verification == run.id
    ]
    assert stops, "the run is stopped in the decision that took its verdict"


def test_an_inconclusive_run_stops_the_other_runs_of_its_step() -> None:
    """Argo runs the templates of one analysis step as one AnalysisRun: an inconclusive one ends all."""
    nodata = MetricPlan(name="nodata", success_condition="result < 0.05")
    slow = MetricPlan(name="slow", interval=10.0, count=5, success_condition="result < 0.05")
    plan = canary_plan(
        weight(20),
        verify("a", "b"),
        weight(100),
        templates={"a": template(nodata, name="a"), "b": template(slow, name="b")},
    )
    h = _rollout(plan, lambda rev, m, t: None if (rev, m) == ("v2", "nodata") else GOOD)
    h.run_until(600)
    assert h.state.pause_reason == "inconclusive"
    phases = {r.template: r.phase for r in h.state.verifications}
    assert phases == {"a": "Inconclusive", "b": "Successful"}  # b terminated (Argo: "metric terminated")
    paused_at = next(t for t, name, _ in h.notifications() if name == "rollout-paused")
    assert _measured(h, since=paused_at + 0.001) == []


def _silent_pair(order: tuple[str, str], policy: str = "rollback") -> Harness:
    """Two metrics that never answer, each with consecutiveErrorLimit 0: both time out in the same Tick."""
    ms = {
        name: MetricPlan(name=name, success_condition="result < 0.05", consecutive_error_limit=0)
        for name in order
    }
    plan = canary_plan(
        weight(20),
        verify(),
        weight(100),
        templates={"t": template(*(ms[n] for n in order))},
        failure_action=policy,
    )
    return _rollout(plan, lambda rev, m, t: SILENT if rev == "v2" else GOOD)


@pytest.mark.parametrize("policy", ["rollback", "pause"])
def test_the_failure_reason_does_not_depend_on_the_order_of_metrics(policy: str) -> None:
    a = _silent_pair(("latency", "errors"), policy)
    b = _silent_pair(("errors", "latency"), policy)
    a.run_until(600)
    b.run_until(600)
    assert a.state.failure_reason == b.state.failure_reason is not None
    assert "'errors'" in a.state.failure_reason  # ties go to the metric first by name
    assert a.notifications() == b.notifications()


@pytest.mark.parametrize("names", [("a", "b"), ("b", "a")])
def test_runs_ending_in_the_same_decision_act_worst_first(names: tuple[str, str]) -> None:
    """Under the pause policy a Failed run and an Inconclusive run ending together pause the rollout for
    the failure, whichever template the step names first."""
    fails = MetricPlan(name="fails", success_condition="result < 0.05", consecutive_error_limit=0)
    nodata = MetricPlan(name="nodata", success_condition="result < 0.05", inconclusive_limit=0)
    templates = {"a": template(fails, name="a"), "b": template(nodata, name="b")}
    plan = canary_plan(weight(20), verify(*names), weight(100), templates=templates, failure_action="pause")
    h = _rollout(plan, lambda rev, m, t: SILENT if rev == "v2" else GOOD)
    h.run_until(80)  # both measurements are in flight, neither answered
    s = h.state
    assert s.phase == "verifying"
    runs = {r.template: r for r in s.verifications}
    timeout = runs["a"].metrics[0].next_at
    assert timeout is not None and timeout == runs["b"].metrics[0].next_at
    # the inconclusive answer arrives in the very decision in which the other metric times out (Error)
    d = step(s, Measurement(verification=runs["b"].id, metric="nodata", value=None), timeout)
    assert d.state.phase == "paused" and d.state.pause_reason == "failure-policy"
    assert d.state.failure_reason is not None and "verification 'a' error" in d.state.failure_reason


# ---------------------------------------------------------------------------------------------------
# the order of metrics never matters (a property over any template and any measurement results)
# ---------------------------------------------------------------------------------------------------

MID = 0.2  #: passes neither condition of a metric that has both: inconclusive
_BOTH = {"success_condition": "result < 0.05", "failure_condition": "result > 0.4"}
_CONDITION_STYLES = (
    {"success_condition": "result < 0.05"},
    {"failure_condition": "result > 0.4"},
    _BOTH,
    {},
)
_RESULTS = (GOOD, GOOD, BAD, MID, None, ERROR, SILENT)


@st.composite
def scripted_metric(draw: st.DrawFn, name: str) -> tuple[MetricPlan, list[Any]]:
    shape = draw(st.sampled_from(["once", "count", "indefinite"]))
    interval = None if shape == "once" else float(draw(st.sampled_from([10, 30, 60])))
    mp = MetricPlan(
        name=name,
        interval=interval,
        count=draw(st.integers(1, 4)) if shape == "count" else None,
        initial_delay=float(draw(st.sampled_from([0, 0, 10]))),
        failure_limit=draw(st.integers(0, 1)),
        inconclusive_limit=draw(st.integers(0, 1)),
        consecutive_error_limit=draw(st.integers(0, 2)),
        dry_run=draw(st.booleans()) and draw(st.booleans()),
        **draw(st.sampled_from(_CONDITION_STYLES)),
    )
    return mp, draw(st.lists(st.sampled_from(_RESULTS), min_size=1, max_size=8))


@st.composite
def scripted_templates(draw: st.DrawFn) -> tuple[list[tuple[MetricPlan, list[Any]]], list[int]]:
    n = draw(st.integers(2, 4))
    items = [draw(scripted_metric(f"m{i}")) for i in range(n)]
    return items, draw(st.permutations(range(n)))


class _CanonicalHarness(Harness):
    """Delivers the answers to measurements asked in one decision in metric-name order (not in the order
    of the template), and answers each metric from its own script: the world does not see the order."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.scripts: dict[str, list[Any]] = {}
        self.asked: dict[str, int] = {}
        self.measure = self._answer

    def _answer(self, rev: str, metric: str, now: float) -> Any:
        if rev != "v2":
            return GOOD
        i = self.asked.get(metric, 0)
        self.asked[metric] = i + 1
        script = self.scripts[metric]
        return script[min(i, len(script) - 1)]

    def send(self, event: Any) -> Any:
        before = self._seq
        d = super().send(event)
        fresh = [x for x in self._queue if x[1] > before and isinstance(x[2], Measurement)]
        if len(fresh) > 1:
            keep = [x for x in self._queue if x not in fresh]
            seqs = sorted(x[1] for x in fresh)
            ordered = sorted(fresh, key=lambda x: x[2].metric)
            self._queue = keep + [(x[0], seq, x[2], x[3]) for x, seq in zip(ordered, seqs, strict=True)]
            heapq.heapify(self._queue)
        return d


def _outcome(items: list[tuple[MetricPlan, list[Any]]], policy: str) -> tuple[Any, ...]:
    plan = canary_plan(
        weight(20),
        verify(),
        weight(50),
        verify(),
        weight(100),
        templates={"t": template(*(mp for mp, _ in items))},
        failure_action=policy,
    )
    h = _CanonicalHarness(plan)
    h.scripts = {mp.name: script for mp, script in items}
    h.live("v1")
    h.deploy("v2")
    h.run_until(1500)
    s = h.state
    verdicts = [(r.template, r.phase, r.message) for r in s.verifications]
    return s.phase, s.pause_reason, s.failure_reason, s.weights, s.stable, verdicts, h.notifications()


@given(scripted_templates(), st.sampled_from(["rollback", "pause", "promote"]))
def test_permuting_a_templates_metrics_never_changes_the_outcome(
    drawn: tuple[list[tuple[MetricPlan, list[Any]]], list[int]], policy: str
) -> None:
    items, order = drawn
    assert _outcome(items, policy) == _outcome([items[i] for i in order], policy)


@given(scripted_templates(), st.booleans())
def test_permuting_metrics_never_changes_a_verdict_or_its_message(
    drawn: tuple[list[tuple[MetricPlan, list[Any]]], list[int]], background: bool
) -> None:
    items, order = drawn
    statuses = []
    for mp, script in items:
        stream: list[Outcome] = [
            ("error", "x") if r is ERROR or r is SILENT else ("value", r) for r in script
        ]
        statuses.append(feed(mp, stream))
    permuted = [items[i][0] for i in order]
    t1 = TemplatePlan(name="t", metrics=tuple(mp for mp, _ in items))
    t2 = TemplatePlan(name="t", metrics=tuple(permuted))
    v1 = ver.run_verdict(t1, run_of(t1, statuses, background))
    v2 = ver.run_verdict(t2, run_of(t2, [statuses[i] for i in order], background))
    assert v1 == v2


# ---------------------------------------------------------------------------------------------------
# from the spec a user writes to the engine: count 0, both or neither condition, background reasons
# ---------------------------------------------------------------------------------------------------

SPEC = """
apiVersion: ebbtide.dev/v1alpha1
kind: VerificationTemplate
metadata: {name: checks}
spec:
  metrics:
    - name: both
      successCondition: result < 0.05
      failureCondition: result > 0.4
      provider: {prometheus: {query: errors}}
    - name: neither
      provider: {prometheus: {query: up}}
---
apiVersion: ebbtide.dev/v1alpha1
kind: VerificationTemplate
metadata: {name: watch}
spec:
  metrics:
    - name: error-rate
      interval: 30s
      count: 0
      successCondition: result < 0.05
      provider: {prometheus: {query: errors}}
---
apiVersion: ebbtide.dev/v1alpha1
kind: Strategy
metadata: {name: canary}
spec:
  canary:
    backgroundVerification: {templateNames: [watch]}
    steps:
      - setWeight: 20
      - verification: {templateNames: [checks]}
      - pause: {duration: 10m}
      - setWeight: 60
      - pause: {duration: 10m}
---
apiVersion: ebbtide.dev/v1alpha1
kind: RolloutSpec
metadata: {name: web}
spec:
  replicas: 4
  strategy: {name: canary}
"""


def _spec_plan(text: str = SPEC) -> Plan:
    return compile_plan(load_text(text, "spec.yaml"), "web")


def test_count_zero_compiles_to_count_not_set() -> None:
    (metric,) = _spec_plan().templates["watch"].metrics
    assert metric.count is None and metric.interval == 30.0
    assert ver.effective_count(metric) is None


def test_a_background_metric_with_count_zero_measures_until_the_rollout_ends() -> None:
    h = _rollout(_spec_plan(), lambda rev, m, t: GOOD)
    h.run_until(3000)
    assert h.state.phase == "live" and h.state.stable == "v2"
    started = min(t for t, name, _ in h.notifications() if name == "rollout-started" and t > 0)
    finished = max(t for t, name, _ in h.notifications() if name == "rollout-finished")
    times = [t for t, m in _measured(h) if m == "error-rate"]
    assert len(times) >= (finished - started) // 30 - 1, "measured every 30 s while the rollout ran"
    assert times[-1] > finished - 30


def test_a_background_failure_says_background_in_every_reason() -> None:
    late = lambda rev, m, t: BAD if (rev, m) == ("v2", "error-rate") and t > 500 else GOOD  # noqa: E731
    h = _rollout(_spec_plan(), late)
    h.run_until(3000)
    s = h.state
    assert s.stable == "v1" and "rollout-rolled-back" in h.notified()
    want = "background verification 'watch' failed: metric 'error-rate' failed"
    assert s.failure_reason is not None and s.failure_reason.startswith(want)
    assert h.payload("rollout-failed")["reason"].startswith(want)
    assert h.payload("rollout-rolled-back")["reason"].startswith(want)


def test_a_phase_failure_does_not_say_background() -> None:
    h = _rollout(_spec_plan(), lambda rev, m, t: BAD if (rev, m) == ("v2", "both") else GOOD)
    h.run_until(3000)
    assert h.payload("rollout-failed")["reason"].startswith("verification 'checks' failed: metric 'both'")


@pytest.mark.parametrize(
    ("value", "outcome"),
    [(GOOD, "live"), (BAD, "rollout-failed"), (0.2, "inconclusive"), (None, "inconclusive")],
)
def test_both_and_neither_conditions_through_the_engine(value: Any, outcome: str) -> None:
    """``both`` decides the phase; ``neither`` passes on any value it gets."""
    answers = {"both": value, "neither": 123.0, "error-rate": GOOD}
    h = _rollout(_spec_plan(), lambda rev, m, t: answers[m] if rev == "v2" else GOOD)
    h.run_until(3000)
    s = h.state
    if outcome == "live":
        assert s.phase == "live" and s.stable == "v2"
    elif outcome == "inconclusive":
        assert s.phase == "paused" and s.pause_reason == "inconclusive"
    else:
        assert outcome in h.notified() and s.stable == "v1"


# ---------------------------------------------------------------------------------------------------
# Argo's analysis options: step-level dryRun, background startingStep
# ---------------------------------------------------------------------------------------------------


def test_a_step_dry_run_metric_is_measured_but_only_that_steps_verdict_ignores_it() -> None:
    """The same failing metric: dry-run in the first verification step (passes), not in the second."""
    dry_step = StepPlan(kind="verification", templates=("t",), dry_run=("error-rate",))
    plan = canary_plan(weight(20), dry_step, weight(50), verify(), weight(100))
    h = _rollout(plan, lambda rev, m, t: BAD if rev == "v2" else GOOD)
    h.run_until(3000)
    assert h.state.stable == "v1" and "rollout-rolled-back" in h.notified()
    failed = h.payload("rollout-failed")
    assert failed["reason"].startswith("verification 't' failed"), failed
    steps_measured = {
        r.decision.state.step_index
        for r in h.log
        for e in r.decision.effects
        if isinstance(e, StartMeasurement)
    }
    assert steps_measured == {1, 3}, "the dry-run step is measured too"
    paused_or_failed_at_1 = [
        p for _, n, p in h.notifications() if n in ("rollout-failed", "rollout-paused") and p.get("step") == 1
    ]
    assert not paused_or_failed_at_1


def test_the_dry_run_list_is_kept_on_the_run() -> None:
    dry_step = StepPlan(kind="verification", templates=("t",), dry_run=("error-rate", "other"))
    h = _rollout(canary_plan(weight(20), dry_step, weight(100)), lambda rev, m, t: GOOD)
    h.run_until(30)
    (run,) = [r for r in h.state.verifications if not r.background]
    assert run.dry_run == ("error-rate",)
    assert RolloutState.from_json(h.state.to_json()) == h.state, "it survives a restart"


def test_a_code_built_plan_cannot_start_background_verification_before_step_zero() -> None:
    with pytest.raises(ValidationError):
        Plan(background_starting_step=-1)


def _bg_plan(starting_step: int) -> Plan:
    watch = MetricPlan(name="watch", interval=10.0, success_condition="result < 0.05")
    return canary_plan(
        weight(20),
        pause(60),
        weight(50),
        pause(60),
        weight(100),
        templates={"bg": template(watch, name="bg")},
        background_templates=("bg",),
        background_starting_step=starting_step,
    )


def _step_at(h: Harness, t: float) -> int:
    return max((r for r in h.log if r.t <= t), key=lambda r: r.t).decision.state.step_index


@pytest.mark.parametrize("starting_step", [0, 2, 3])
def test_background_verification_starts_at_its_starting_step(starting_step: int) -> None:
    h = _rollout(_bg_plan(starting_step), lambda rev, m, t: GOOD)
    h.run_until(1000)
    assert h.state.phase == "live"
    measured = [(t, _step_at(h, t)) for t, m in _measured(h) if m == "watch"]
    assert measured, "background verification ran"
    assert min(step for _, step in measured) == starting_step
    first = min(t for t, _ in measured)
    reached = min(r.t for r in h.log if r.decision.state.step_index >= starting_step and r.t > 20)
    assert first == reached, "it starts in the decision that reaches the step"


def test_background_verification_before_its_starting_step_cannot_fail_the_rollout() -> None:
    """A revision bad from the start: with startingStep 2 it fails only once step 2 is reached."""
    h = _rollout(_bg_plan(2), lambda rev, m, t: BAD if rev == "v2" else GOOD)
    h.run_until(1000)
    assert h.payload("rollout-failed")["reason"].startswith("background verification 'bg' failed")
    failed_at = next(t for t, n, _ in h.notifications() if n == "rollout-failed")
    reached = min(r.t for r in h.log if r.t > 21 and r.decision.state.step_index >= 2)
    assert reached == 21 + 5 + 60, "after 20% is ready (5 s) and the 60 s pause"
    assert failed_at == reached and min(t for t, m in _measured(h) if m == "watch") == reached


def test_an_inconclusive_background_run_pauses_and_starts_again_after_promote() -> None:
    """Argo: an inconclusive background AnalysisRun pauses the rollout; once resumed, a new run starts."""
    answers = iter([GOOD, None])
    h = _rollout(_bg_plan(0), lambda rev, m, t: next(answers, GOOD) if rev == "v2" else GOOD)
    h.run_until(40)
    s = h.state
    assert s.phase == "paused" and s.pause_reason == "inconclusive"
    assert s.failure_reason is None
    paused = h.payload("rollout-paused")
    assert paused["message"].startswith("background verification 'bg' inconclusive")
    (old,) = [r for r in s.verifications if r.background]
    d = h.command("promote")
    (new,) = [r for r in d.state.verifications if r.background]
    assert new.id != old.id and new.phase == "Running"
    assert any(isinstance(e, StartMeasurement) and e.verification == new.id for e in d.effects)
    h.run_until(1000)
    assert h.state.phase == "live" and h.state.stable == "v2"


# ---------------------------------------------------------------------------------------------------
# warnings: what a plan does that Argo / Ocean CD users may not expect
# ---------------------------------------------------------------------------------------------------


def test_an_interval_only_metric_in_a_step_is_warned_about_once_per_step() -> None:
    indefinite = MetricPlan(name="watch", interval=30.0, success_condition="result < 0.05")
    plan = canary_plan(
        weight(20),
        verify(),
        weight(50),
        StepPlan(kind="verification", templates=("t",), dry_run=("watch",)),
        weight(100),
        templates={"t": template(indefinite, ERROR_RATE)},
        background_templates=("t",),
    )
    warnings = ver.plan_warnings(plan)
    assert len(warnings) == 1 and warnings[0].startswith("step 1: metric 'watch' of VerificationTemplate 't'")
    assert ver.plan_warnings(canary_plan()) == [], "metrics with a count, and background ones, are fine"


def test_an_interval_only_metric_in_a_step_passes_it_after_one_success() -> None:
    """The deliberate difference the warning is about: the step does not wait forever."""
    indefinite = MetricPlan(name="watch", interval=30.0, success_condition="result < 0.05")
    plan = canary_plan(weight(20), verify(), weight(100), templates={"t": template(indefinite)})
    h = _rollout(plan, lambda rev, m, t: GOOD)
    h.run_until(600)
    assert h.state.phase == "live" and [m for _, m in _measured(h)] == ["watch"]


@pytest.mark.parametrize("first", ["nodata", "fails"])
def test_an_inconclusive_answer_and_a_timeout_in_one_decision_are_judged_together(first: str) -> None:
    """One template, either order: the timeout (Error, consecutiveErrorLimit 0) that is due in the very
    decision in which the other metric answers with no data (Inconclusive) wins: the rollout rolls back."""
    ms = {
        "fails": MetricPlan(name="fails", success_condition="result < 0.05", consecutive_error_limit=0),
        "nodata": MetricPlan(name="nodata", success_condition="result < 0.05"),
    }
    order = (first, "fails" if first == "nodata" else "nodata")
    plan = canary_plan(weight(20), verify(), weight(100), templates={"t": template(*(ms[n] for n in order))})
    h = _rollout(plan, lambda rev, m, t: SILENT if rev == "v2" else GOOD)
    h.run_until(80)
    (run,) = [r for r in h.state.verifications if not r.background]
    timeout = run.metrics[0].next_at
    assert timeout is not None and all(m.next_at == timeout for m in run.metrics)
    d = step(h.state, Measurement(verification=run.id, metric="nodata", value=None), timeout)
    notified = [e.event for e in d.effects if isinstance(e, Notify)]
    assert "rollout-failed" in notified and "rollout-paused" not in notified and d.state.stable == "v1"
    assert d.state.failure_reason == (
        "verification 't' error: metric 'fails' errored: 1 consecutive error(s) > consecutiveErrorLimit 0 "
        "(last: error: measurement timed out)"
    )
