"""Promise 7 (verification) as properties over ``ebbtide.core.verification``, plus examples of every
condition style users write for Argo Rollouts and Ocean CD."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ebbtide.core import verification as ver
from ebbtide.core.plan import MetricPlan, TemplatePlan
from ebbtide.core.state import MetricStatus, VerificationRun
from ebbtide.core.testing import FAIL, PASS, measurement_streams, metrics, value_for

Outcome = tuple[str, Any]


def feed(mp: MetricPlan, stream: list[Outcome], st0: MetricStatus | None = None) -> MetricStatus:
    """Fold a stream into a metric's counters, stopping once the metric reaches a verdict."""
    st_ = st0 or MetricStatus(name=mp.name, phase="Running", next_at=0.0)
    now = 0.0
    for kind, value in stream:
        if st_.phase in ver.TERMINAL:
            break
        now += 1.0
        st_ = st_.model_copy(update={"in_flight": True})
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
    mp, stream = real
    dmp = dry[0].model_copy(update={"dry_run": True})
    with_dry = TemplatePlan(name="t", metrics=(mp, dmp))
    without = TemplatePlan(name="t", metrics=(mp,))
    st_real = feed(mp, stream)
    st_dry = feed(dmp, dry[1])
    assert (
        ver.run_verdict(with_dry, run_of(with_dry, [st_real, st_dry], background))[0]
        == (ver.run_verdict(without, run_of(without, [st_real], background))[0])
    )


@given(metric_and_stream())
def test_dry_run_is_measured_and_reported_but_a_template_of_only_dry_runs_succeeds(
    ms: tuple[MetricPlan, list[Outcome]],
) -> None:
    mp = ms[0].model_copy(update={"dry_run": True})
    st_ = feed(mp, ms[1])
    template = TemplatePlan(name="t", metrics=(mp,))
    assert ver.run_verdict(template, run_of(template, [st_]))[0] == "Successful"


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
    if worst_bad in ("Failed", "Error"):
        assert verdict == worst_bad and message, "a Failed/Error metric decides the run at once"
    elif any(p == "Running" for p in counted):
        assert verdict in ("Running", "Successful", "Inconclusive")
        if verdict == "Successful":
            # only metrics that measure until the phase ends and already passed once can be left running
            for mp, s in zip(mps, statuses, strict=True):
                if not mp.dry_run and s.phase == "Running":
                    assert ver.effective_count(mp) is None and s.successful > 0 and not background
        if verdict == "Inconclusive":
            assert worst_bad == "Inconclusive"
    else:
        assert verdict == (worst_bad or "Successful")
    assert (
        all(ver.SEVERITY[verdict] >= ver.SEVERITY[p] for p in counted if p != "Running")
        or verdict == "Running"
    )


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


def test_start_run_schedules_the_initial_delay() -> None:
    template = TemplatePlan(name="t", metrics=(MetricPlan(name="m", initial_delay=30.0),))
    run = ver.start_run("r1", template, now=10.0)
    assert run.phase == "Running" and run.metrics[0].next_at == 40.0
