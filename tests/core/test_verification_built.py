"""The records the engine builds positionally on its full path (a run and its statuses as they start, a
run's stop, a notification, a revision's record) equal those their classes' own ``__init__`` gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ebbtide.core import engine, verification
from ebbtide.core.effects import Notify, StopVerification
from ebbtide.core.plan import MetricPlan, TemplatePlan
from ebbtide.core.state import MetricStatus, RevisionRecord, VerificationRun

names = st.text(min_size=1, max_size=8)


@given(
    names,
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True),
    st.floats(0, 1e6),
    st.booleans(),
    st.lists(st.sampled_from(["a", "c", "x"]), unique=True, max_size=3),
)
def test_a_started_run_equals_the_constructed_one(
    run_id: str, metrics: list[str], now: float, background: bool, dry: list[str]
) -> None:
    template = TemplatePlan(name="t", metrics=tuple(MetricPlan(name=m, initial_delay=5) for m in metrics))
    run = verification.start_run(run_id, template, now, background, tuple(dry))
    made = VerificationRun(
        id=run_id,
        template="t",
        background=background,
        started_at=now,
        metrics=tuple(MetricStatus(name=m, phase="Running", next_at=now + 5) for m in metrics),
        dry_run=tuple(m for m in metrics if m in dry),
    )
    assert type(run) is VerificationRun and all(type(s) is MetricStatus for s in run.metrics)
    assert run == made and (run.phase, run.message) == ("Running", None)


@given(names, st.sampled_from(["pending", "live", "failed"]), st.booleans())
def test_the_engine_s_effects_and_records_equal_the_constructed_ones(
    name: str, status: str, live: bool
) -> None:
    assert engine._stop(name) == StopVerification(verification=name)
    payload = {"rolloutId": 1, "revision": name}
    built = engine._notice("rollout-started", payload)
    assert built == Notify(event="rollout-started", payload=payload) and built.kind == "notify"
    record = engine._record(name, status, live)
    assert type(record) is RevisionRecord
    assert record == RevisionRecord(revision=name, status=status, reached_live=live)  # type: ignore[arg-type]
