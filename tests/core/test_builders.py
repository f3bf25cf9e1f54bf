"""The generated builders and copiers of core/state.py give exactly the records their classes' own
``__init__`` and ``dataclasses.replace`` give (the hot path builds effects and copies states with them)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebbtide.core.effects import Notify, StartMeasurement, StopVerification
from ebbtide.core.plan import MetricPlan
from ebbtide.core.state import MetricStatus, builder, replacer

names = st.text(min_size=1, max_size=8)


@given(names, names, names, st.none() | names, st.sampled_from(["a", "b"]))
def test_a_built_start_measurement_equals_the_constructed_one(
    run: str, template: str, revision: str, stable: str | None, metric: str
) -> None:
    build = builder(StartMeasurement, "verification", "template", "metric", "revision", "stable")
    mp = MetricPlan(name=metric)
    built = build(run, template, mp, revision, stable)
    made = StartMeasurement(verification=run, template=template, metric=mp, revision=revision, stable=stable)
    assert type(built) is StartMeasurement
    assert built == made and built.model_dump() == made.model_dump()
    assert built.kind == "measure"  # a field not given takes its default


def test_a_builder_takes_defaults_for_fields_not_given_and_refuses_what_it_cannot_build() -> None:
    assert builder(StopVerification, "verification")("r1") == StopVerification(verification="r1")
    with pytest.raises(ValueError, match="no plain default"):
        builder(Notify, "event")  # payload's default is a factory: each record needs its own dict
    with pytest.raises(ValueError, match="no field 'nope'"):
        builder(StopVerification, "verification", "nope")


@given(st.integers(0, 5), st.integers(0, 5), st.none() | st.floats(0, 100), st.booleans())
def test_a_replaced_metric_equals_dataclasses_replace(
    count: int, failed: int, at: float | None, flag: bool
) -> None:
    old = MetricStatus(name="m", count=1, last="x")
    copy = replacer(MetricStatus, "count", "failed", "next_at", "in_flight")
    new = copy(old, count, failed, at, flag)
    assert new == dataclasses.replace(old, count=count, failed=failed, next_at=at, in_flight=flag)
    assert old == MetricStatus(name="m", count=1, last="x")  # the original is left as it was
