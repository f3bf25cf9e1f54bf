"""ceil_pct: the pods a weight% share needs, rounded up, against an exact rational oracle."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import example, given
from hypothesis import strategies as st

from ebbtide.core import engine
from ebbtide.core.plan import Plan
from ebbtide.core.state import RolloutState
from ebbtide.core.traffic import ceil_pct


@given(st.integers(-1000, 10_000), st.integers(-100, 200))
@example(3, 33)  # 0.99 -> 1
@example(10, 10)  # exactly 1: not rounded up to 2
@example(0, 50)
@example(7, -50)  # -3.5 -> -3 (rounded towards +inf, as math.ceil)
def test_ceil_pct_is_the_exact_ceiling(replicas: int, weight: int) -> None:
    assert ceil_pct(replicas, weight) == math.ceil(Fraction(replicas * weight, 100))


@given(st.integers(0, 10**15), st.integers(0, 100))
def test_ceil_pct_agrees_with_the_float_formula_while_the_product_fits(replicas: int, weight: int) -> None:
    if replicas * weight < 2**53:
        assert ceil_pct(replicas, weight) == math.ceil(replicas * weight / 100.0)


@given(st.integers(0, 10_000), st.integers(0, 99), st.none() | st.integers(0, 100))
def test_the_engine_sizes_a_canary_behind_a_router_by_ceil_pct(
    replicas: int, weight: int, scale: int | None
) -> None:
    """The engine's canary count (:func:`ebbtide.core.engine._canary_replicas_for`, which spells the
    ceiling in integers to save a call) is ``ceil_pct`` of the step's weight, or of a setCanaryScale's."""
    w = engine._W(RolloutState(plan=Plan(replicas=replicas)), 0.0)
    w.canary_scale_weight = scale
    assert engine._canary_replicas_for(w, weight) == ceil_pct(replicas, weight if scale is None else scale)
