"""A failed rollout keeps the verification run that failed it, for people to read, until the next rollout.

An immediate rollback (or a failure with nothing to roll back to) is when people open the detailed view to
ask why; the run that failed, with its counters, is what answers (Ocean CD's detailed rollout view shows the
failed rollout's verifications). The oracle is the harness's own record: the measurements it answered for
that run, counted per value it sent, and the ids of the runs the engine asked it to measure per rollout.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ebbtide.core.effects import StartMeasurement
from ebbtide.core.events import Measurement
from ebbtide.core.plan import MetricPlan

from .helpers import BAD, GOOD, Harness, canary_plan, template, verify, weight


def failing_plan(count: int, failure_limit: int, mode: str) -> Harness:
    metric = MetricPlan(
        name="error-rate",
        interval=10.0,
        count=count,
        failure_limit=failure_limit,
        success_condition="result < 0.05",
    )
    plan = canary_plan(
        weight(20),
        verify(),
        weight(60),
        templates={"t": template(metric)},
        rollback_mode=mode,  # type: ignore[arg-type]
    )
    return Harness(plan)


def asked(h: Harness) -> list[StartMeasurement]:
    return [e for r in h.log for e in r.decision.effects if isinstance(e, StartMeasurement)]


@settings(max_examples=40)
@given(
    count=st.integers(2, 5),
    failure_limit=st.integers(0, 1),
    good_first=st.integers(0, 4),
    mode=st.sampled_from(["immediate", "newRollout"]),
)
def test_the_failed_run_stays_with_its_counts_until_the_next_rollout(
    count: int, failure_limit: int, good_first: int, mode: str
) -> None:
    answers: list[float] = []

    def measure(rev: str, metric: str, now: float) -> float:
        value = GOOD if rev == "v1" or len(answers) < good_first else BAD
        if rev == "v2":
            answers.append(value)
        return value

    h = failing_plan(count, failure_limit, mode)
    h.measure = measure
    h.live("v1")
    failed_rollout = h.deploy("v2").state.rollout_id
    h.run_for(600)
    bad = answers.count(BAD)
    if bad <= failure_limit:  # the run passed before failing enough: nothing failed
        assert "rollout-failed" not in h.notified()
        return
    assert "rollout-failed" in h.notified()
    run_ids = {e.verification for e in asked(h) if e.revision == "v2"}
    assert len(run_ids) == 1
    [failed_id] = run_ids
    kept = [r for r in h.state.verifications if r.id == failed_id]
    if mode == "immediate":
        assert h.state.rollout_id == failed_rollout and h.state.phase == "live" and h.state.degraded
        assert len(kept) == 1, "the run that failed the rollout is kept through the rollback"
        [run] = kept
        assert run.phase == "Failed"
        [metric] = run.metrics
        assert (metric.failed, metric.successful) == (bad, answers.count(GOOD))
        assert not metric.in_flight
    else:  # a newRollout rollback is a rollout of its own: it starts with none of the failed one's runs
        assert h.state.rollout_id > failed_rollout and not kept
    h.deploy("v3")
    assert all(not r.id.startswith(f"{failed_rollout}-") for r in h.state.verifications)


def test_late_answers_to_the_kept_run_change_nothing() -> None:
    """A measurement that comes back for the run after it failed is not counted (the run has its verdict)."""
    h = failing_plan(3, 0, "immediate")
    h.measure = lambda rev, metric, now: BAD if rev == "v2" else GOOD
    h.live("v1")
    h.deploy("v2")
    h.run_for(600)
    [run] = h.state.verifications
    before = h.state
    d = h.send(Measurement(verification=run.id, metric="error-rate", value=BAD))
    assert d.state.verifications == before.verifications and d.effects == ()
