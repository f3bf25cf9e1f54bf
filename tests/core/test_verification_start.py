"""A verification run as it starts (``verification.start_run``): one Running status per metric of the
template, its first measurement due after the metric's initial delay, and the step's dry-run names kept in
the template's order, only for metrics the template has."""

from hypothesis import given
from hypothesis import strategies as st

from ebbtide.core.plan import MetricPlan, TemplatePlan
from ebbtide.core.verification import start_run

NAMES = ("a", "b", "c", "d")


@given(
    delays=st.lists(st.sampled_from([0.0, 5.0, 30.0]), min_size=1, max_size=4),
    dry=st.lists(st.sampled_from((*NAMES, "other")), unique=True, max_size=5),
    now=st.floats(min_value=0, max_value=1e6),
)
def test_a_started_run_holds_every_metric_and_the_dry_run_names_in_template_order(
    delays: list[float], dry: list[str], now: float
) -> None:
    metrics = tuple(MetricPlan(name=NAMES[i], initial_delay=d) for i, d in enumerate(delays))
    template = TemplatePlan(name="t", metrics=metrics)
    run = start_run("r-1", template, now, background=True, dry_run=tuple(dry))
    assert (run.id, run.template, run.background, run.started_at) == ("r-1", "t", True, now)
    assert [(s.name, s.phase, s.next_at, s.in_flight) for s in run.metrics] == [
        (NAMES[i], "Running", now + d, False) for i, d in enumerate(delays)
    ]
    assert run.dry_run == tuple(n for n in NAMES[: len(delays)] if n in dry)
    assert isinstance(run.metrics, tuple) and isinstance(run.dry_run, tuple)


def test_a_run_without_dry_run_names_has_none() -> None:
    template = TemplatePlan(name="t", metrics=(MetricPlan(name="a"),))
    assert start_run("r-1", template, 0.0).dry_run == ()
