"""The rules verification.record reads (conditions compiled, limits in slots) are those of the very
MetricPlan it is given: a rules entry left by another plan is never used, a condition that does not compile
is an error on every value (as when it was compiled on each result), and the entries stay bounded."""

from __future__ import annotations

from ebbtide.core import verification as ver
from ebbtide.core.plan import MetricPlan
from ebbtide.core.state import MetricStatus


def running(name: str = "m") -> MetricStatus:
    return MetricStatus(name=name, phase="Running", in_flight=True, next_at=10.0)


def test_rules_left_by_another_plan_under_the_same_id_are_not_used() -> None:
    lenient = MetricPlan(name="m", success_condition="result > 0", failure_limit=5, interval=30.0)
    strict = MetricPlan(name="m", success_condition="result > 100", failure_limit=0, interval=30.0)
    # as after a plan was freed and a new one was allocated at its address
    ver._RULES[id(strict)] = ver._Rules(lenient)
    try:
        st = ver.record(strict, running(), 50, None, 0.0)
    finally:
        ver._RULES.pop(id(strict), None)
    assert (st.phase, st.failed, st.next_at) == ("Failed", 1, None)


def test_a_condition_that_does_not_compile_is_an_error_on_every_result() -> None:
    mp = MetricPlan(name="m", success_condition="result >", interval=5.0)  # never validated: built in code
    st = running()
    for _ in range(3):
        st = ver.record(mp, st, 1, None, 0.0)
        assert st.last is not None and st.last.startswith("cannot evaluate condition on 1:")
    assert (st.error, st.consecutive_error, st.count, st.next_at) == (3, 3, 0, 5.0)
    assert ver.classify(mp, 1)[0] == "error"


def test_the_rules_stay_bounded_and_are_rebuilt_on_demand() -> None:
    plans = [MetricPlan(name=f"m{i}", success_condition="result > 0") for i in range(ver._MAX_RULES + 10)]
    for mp in plans:
        assert ver.record(mp, running(mp.name), 1, None, 0.0).phase == "Successful"
    assert len(ver._RULES) <= ver._MAX_RULES
    assert ver.record(plans[0], running("m0"), 0, None, 0.0).phase == "Failed"
