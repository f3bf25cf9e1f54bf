"""A run whose metric statuses do not match its template's metrics is refused, never judged or measured on
a prefix of them: :func:`ebbtide.core.verification.verdict` and
:func:`ebbtide.core.hotpath.issue_measurements` check the lengths themselves (as ``zip(strict=True)``
would, without the cost of its keyword argument on the hot path)."""

from __future__ import annotations

import pytest

from ebbtide.core.hotpath import issue_measurements
from ebbtide.core.plan import MetricPlan, Plan, TemplatePlan
from ebbtide.core.state import MetricStatus, VerificationRun
from ebbtide.core.verification import start_run, verdict

TEMPLATE = TemplatePlan(name="t", metrics=(MetricPlan(name="a"), MetricPlan(name="b")))
PLAN = Plan(templates={"t": TEMPLATE})


def _statuses(n: int) -> tuple[MetricStatus, ...]:
    return tuple(MetricStatus(name=m, phase="Running", next_at=0.0) for m in "abc"[:n])


@pytest.mark.parametrize("n", [1, 3])
def test_a_verdict_refuses_statuses_that_do_not_match_the_template(n: int) -> None:
    with pytest.raises(ValueError, match="metric statuses"):
        verdict(TEMPLATE, _statuses(n), background=False)


@pytest.mark.parametrize("n", [1, 3])
def test_measurements_are_not_asked_for_a_run_that_does_not_match_its_template(n: int) -> None:
    run = VerificationRun(id="r", template="t", metrics=_statuses(n))
    with pytest.raises(ValueError, match="do not match"):
        issue_measurements((run,), PLAN, "verifying", None, "v1", "v0", 1.0)


def test_a_matching_run_is_judged_and_measured() -> None:
    run = start_run("r", TEMPLATE, 0.0)
    assert verdict(TEMPLATE, run.metrics, background=False) == ("Running", None)
    runs, effects = issue_measurements((run,), PLAN, "verifying", None, "v1", "v0", 1.0)
    assert runs is not None and [m.in_flight for m in runs[0].metrics] == [True, True]
    assert [e.metric.name for e in effects] == ["a", "b"]  # type: ignore[attr-defined]
