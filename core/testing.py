"""Hypothesis strategies for property-testing rollout logic (yours or ebbtide's).

    from hypothesis import given
    from ebbtide.core.testing import plans, event_sequences

    @given(plans(), event_sequences())
    def test_my_controller(plan, events): ...

:func:`blue_green_plans` draws blue-green plans the same way.

Every plan generated is valid (what :func:`ebbtide.core.spec.compile_plan` could produce): canary weights
strictly increase and end at 100, rolling strategies start with 100, templates referenced exist.
Conditions are chosen so that :data:`PASS` always passes and :data:`FAIL` always fails.
"""

from __future__ import annotations

from typing import Any

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - depends on how ebbtide was installed
    raise ImportError("ebbtide.core.testing needs hypothesis: pip install 'ebbtide[testing]'") from exc

from ebbtide.core.bluegreen import blue_green_steps
from ebbtide.core.events import Command, Deploy, Event, MeasuredValue, Measurement, ReplicasObserved, Tick
from ebbtide.core.plan import (
    EXTERNAL_FAILURE,
    EXTERNAL_SUCCESS,
    HeaderMatch,
    HeaderRoutePlan,
    MetricPlan,
    Plan,
    StepPlan,
    TemplatePlan,
)

#: a measured value that passes every condition generated here; FAIL fails every one
PASS = 1.0
FAIL = 0.0
#: revision names used by the generated event sequences
REVISIONS: tuple[str, ...] = ("v1", "v2", "v3", "v4", "v5")

_CONDITIONS = (
    {"success_condition": "result >= 0.5"},
    {"success_condition": "result[0] >= 0.5"},
    {"failure_condition": "result < 0.5"},
    {"success_condition": "result > 0.5 && result <= 1"},
    {"failure_condition": "isNaN(result) || result < 0.5"},
)


def _needs_vector(metric: MetricPlan) -> bool:
    return "result[0]" in (metric.success_condition or "") + (metric.failure_condition or "")


def value_for(metric: MetricPlan, passing: bool) -> MeasuredValue:
    """A value that passes (or fails) ``metric``'s condition, shaped as the condition expects."""
    if "external" in metric.provider:
        return "passed" if passing else "failed"  # an external verification's answer
    v = PASS if passing else FAIL
    return [v] if _needs_vector(metric) else v


@st.composite
def metrics(draw: st.DrawFn, name: str = "m") -> MetricPlan:
    cond = draw(st.sampled_from(_CONDITIONS))
    shape = draw(st.sampled_from(["once", "count", "count", "indefinite", "external"]))
    if shape == "external":  # Ocean CD v1: one outside answer, a timeout, a fallback
        return MetricPlan(
            name=name,
            initial_delay=float(draw(st.sampled_from([0, 5]))),
            success_condition=EXTERNAL_SUCCESS,
            failure_condition=EXTERNAL_FAILURE,
            provider={"external": {}},
            timeout=float(draw(st.sampled_from([30, 300]))),
            on_timeout=draw(st.sampled_from(["failed", "successful"])),
        )
    interval: float | None = None
    count: int | None = None
    if shape == "count":
        interval = float(draw(st.integers(1, 120)))
        count = draw(st.integers(1, 5))
    elif shape == "indefinite":
        interval = float(draw(st.integers(1, 120)))
    return MetricPlan(
        name=name,
        interval=interval,
        count=count,
        initial_delay=float(draw(st.sampled_from([0, 0, 5, 30]))),
        failure_limit=draw(st.integers(0, 2)),
        inconclusive_limit=draw(st.integers(0, 1)),
        consecutive_error_limit=draw(st.integers(0, 4)),
        dry_run=draw(st.booleans()) if shape != "indefinite" else False,
        provider={"prometheus": {"query": f"{name}_query"}},
        **cond,
    )


@st.composite
def templates(draw: st.DrawFn, name: str = "t") -> TemplatePlan:
    n = draw(st.integers(1, 3))
    ms = tuple(draw(metrics(name=f"{name}-m{i}")) for i in range(n))
    return TemplatePlan(name=name, metrics=ms)


@st.composite
def plans(draw: st.DrawFn, indefinite_pauses: bool = True, background: bool = True) -> Plan:
    """Valid compiled plans: canary or rolling, with pauses, verifications, scale and header steps."""
    tpl_names = ["t0", "t1", "t2"][: draw(st.integers(1, 3))]
    tpls = {n: draw(templates(name=n)) for n in tpl_names}
    strategy = draw(st.sampled_from(["canary", "canary", "canary", "rolling"]))
    steps: list[StepPlan] = []
    if strategy == "canary":
        weights = sorted(draw(st.sets(st.integers(1, 99), min_size=0, max_size=5)))
        for w in weights:
            steps.append(StepPlan(kind="setWeight", weight=w))
            steps.extend(draw(_extras(tpl_names, indefinite_pauses)))
        steps.append(StepPlan(kind="setWeight", weight=100))
    else:
        steps.append(StepPlan(kind="setWeight", weight=100))
        for _ in range(draw(st.integers(0, 3))):
            steps.extend(draw(_extras(tpl_names, indefinite_pauses, rolling=True)))
    bg = tuple(draw(st.lists(st.sampled_from(tpl_names), max_size=1, unique=True))) if background else ()
    replicas = draw(st.integers(1, 10))
    return Plan(
        strategy=strategy,
        steps=tuple(steps),
        background_templates=tuple(t for t in bg if all(m.count is not None for m in tpls[t].metrics)) or (),
        templates=tpls,
        replicas=replicas,
        **_policy(draw),
        scale_down_delay=float(draw(st.sampled_from([0, 30]))),
        dynamic_stable_scale=draw(st.booleans()),
        max_surge=draw(st.integers(0, 2)) or 1,
        max_unavailable=draw(st.integers(0, 1)),
    )


def _policy(draw: st.DrawFn) -> dict[str, Any]:
    """The failure policy and timing fields every generated plan draws the same way."""
    return {
        "failure_action": draw(st.sampled_from(["rollback", "rollback", "pause", "promote"])),
        "rollback_mode": draw(st.sampled_from(["immediate", "newRollout"])),
        "progress_deadline": float(draw(st.sampled_from([60, 300, 600]))),
        "revision_history_limit": draw(st.integers(2, 10)),
        "rollback_window": draw(st.integers(0, 3)),
        "abort_scale_down_delay": float(draw(st.sampled_from([0, 30]))),
    }


@st.composite
def blue_green_plans(draw: st.DrawFn, indefinite_pauses: bool = True) -> Plan:
    """Valid compiled blue-green plans: a preview of some or all replicas, optional pre- and post-promotion
    verification, promotion at once, after a timed pause or (``indefinite_pauses``) on promote."""
    tpl_names = ["t0", "t1"][: draw(st.integers(1, 2))]
    tpls = {n: draw(templates(name=n)) for n in tpl_names}
    replicas = draw(st.integers(1, 10))
    analysis = st.lists(st.sampled_from(tpl_names), max_size=2, unique=True).map(tuple)
    steps = blue_green_steps(
        replicas,
        preview_replicas=draw(st.one_of(st.none(), st.integers(1, replicas))),
        auto_promotion_enabled=not indefinite_pauses or draw(st.integers(0, 3)) > 0,
        auto_promotion_seconds=draw(st.sampled_from([None, None, 30.0, 600.0])),
        pre_promotion=draw(analysis),
        post_promotion=draw(analysis),
    )
    return Plan(
        strategy="blueGreen",
        steps=tuple(steps),
        templates=tpls,
        replicas=replicas,
        **_policy(draw),
        scale_down_delay=float(draw(st.sampled_from([0, 30, 600]))),
        scale_down_delay_revision_limit=draw(st.sampled_from([None, None, 0, 1])),
        max_surge=draw(st.integers(0, 2)) or 1,
        max_unavailable=draw(st.integers(0, 1)),
    )


@st.composite
def _extras(draw: st.DrawFn, tpl_names: list[str], indefinite: bool, rolling: bool = False) -> list[StepPlan]:
    out: list[StepPlan] = []
    kinds = ["none", "pause", "verification", "verification"]
    if not rolling:
        kinds += ["scale", "header"]
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(kinds))
        if kind == "pause":
            if indefinite and draw(st.integers(0, 4)) == 0:
                out.append(StepPlan(kind="pause"))
            else:
                out.append(StepPlan(kind="pause", duration=float(draw(st.integers(1, 600)))))
        elif kind == "verification":
            names = draw(st.lists(st.sampled_from(tpl_names), min_size=1, max_size=2, unique=True))
            out.append(StepPlan(kind="verification", templates=tuple(names)))
        elif kind == "scale":
            if draw(st.booleans()):
                out.append(StepPlan(kind="setCanaryScale", replicas=draw(st.integers(1, 3))))
            else:
                out.append(StepPlan(kind="setCanaryScale", match_traffic_weight=True))
        elif kind == "header":
            route = HeaderRoutePlan(name="beta", matches=(HeaderMatch(header_name="x-beta", exact="1"),))
            out.append(StepPlan(kind="setHeaderRoute", header_route=route))
    return out


def commands() -> st.SearchStrategy[Command]:
    return st.builds(
        Command,
        action=st.sampled_from(["promote", "promoteFull", "pause", "resume", "abort", "retry", "rollback"]),
        revision=st.one_of(st.none(), st.sampled_from(REVISIONS)),
    )


def deploys() -> st.SearchStrategy[Deploy]:
    return st.builds(Deploy, revision=st.sampled_from(REVISIONS))


def observations(replicas: int = 10) -> st.SearchStrategy[ReplicasObserved]:
    @st.composite
    def _obs(draw: st.DrawFn) -> ReplicasObserved:
        desired = draw(st.integers(0, replicas))
        ready = draw(st.integers(0, desired))
        return ReplicasObserved(
            revision=draw(st.sampled_from(REVISIONS)),
            desired=desired,
            ready=ready,
            available=ready,
            failed=draw(st.integers(0, 2)),
        )

    return _obs()


def measurement_streams(metric: MetricPlan, max_size: int = 10) -> st.SearchStrategy[list[Any]]:
    """Sequences of measurement outcomes for ``metric``: ("value", v) or ("error", text)."""
    outcome = st.one_of(
        st.builds(lambda ok: ("value", value_for(metric, ok)), st.booleans()),
        st.just(("value", None)),
        st.just(("error", "provider timeout")),
    )
    return st.lists(outcome, max_size=max_size)


def event_sequences(max_size: int = 40) -> st.SearchStrategy[list[tuple[float, Event]]]:
    """Timed events with no knowledge of the state: deploys, ticks, observations and commands.

    Measurements need verification ids from the state; a stateful test (see tests/core) draws those.
    """
    event: st.SearchStrategy[Event] = st.one_of(
        deploys(),
        st.just(Tick()),
        observations(),
        commands(),
        st.builds(Measurement, verification=st.just("unknown"), metric=st.just("m"), value=st.just(PASS)),
    )
    dt = st.floats(0, 900, allow_nan=False, allow_infinity=False)
    return st.lists(st.tuples(dt, event), max_size=max_size).map(_accumulate)


def _accumulate(items: list[tuple[float, Event]]) -> list[tuple[float, Event]]:
    now = 0.0
    out = []
    for dt, ev in items:
        now += dt
        out.append((now, ev))
    return out
