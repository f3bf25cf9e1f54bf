"""Every spec field reaches the plan: generated specs compile to plans carrying each field's value, and a
default only where the field is absent (Ocean CD dialect and Argo Rollouts YAML).

The expected plan is computed here from the generated YAML and the documented defaults
(docs/spec-reference.md), never from the compiler.
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from ebbtide.core.plan import Plan
from ebbtide.core.spec import compile_plan, load_text

#: the documented defaults of the RolloutSpec fields, by plan attribute
ROLLOUT_DEFAULTS: dict[str, Any] = {
    "replicas": 1,
    "progress_deadline": 600.0,
    "revision_history_limit": 10,
    "rollback_window": 0,
    "abort_scale_down_delay": 30.0,
    "scale_down_delay": 30.0,
    "dynamic_stable_scale": False,
}
#: RolloutSpec field -> plan attribute (the value is copied as is, seconds as floats)
ROLLOUT_FIELDS = {
    "replicas": "replicas",
    "progressDeadlineSeconds": "progress_deadline",
    "revisionHistoryLimit": "revision_history_limit",
    "abortScaleDownDelaySeconds": "abort_scale_down_delay",
    "scaleDownDelaySeconds": "scale_down_delay",
    "dynamicStableScale": "dynamic_stable_scale",
}
METRIC_DEFAULTS: dict[str, Any] = {
    "interval": None,
    "count": None,
    "initial_delay": 0.0,
    "failure_limit": 0,
    "inconclusive_limit": 0,
    "consecutive_error_limit": 4,
    "dry_run": False,
}
METRIC_FIELDS = {
    "count": "count",
    "failureLimit": "failure_limit",
    "inconclusiveLimit": "inconclusive_limit",
    "consecutiveErrorLimit": "consecutive_error_limit",
}

# ----- generators -------------------------------------------------------------------------------------

_seconds = st.integers(1, 3600)
_duration = st.one_of(_seconds, _seconds.map(lambda s: f"{s}s"), st.integers(1, 59).map(lambda m: f"{m}m"))


def _seconds_of(v: int | str) -> float:
    if isinstance(v, int):
        return float(v)
    return float(v[:-1]) * (60 if v.endswith("m") else 1)


@st.composite
def metric_docs(draw: st.DrawFn, name: str) -> dict[str, Any]:
    m: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "interval": _duration,
                "initialDelay": _duration,
                "failureLimit": st.integers(0, 5),
                "inconclusiveLimit": st.integers(0, 5),
                "consecutiveErrorLimit": st.integers(0, 6),
                "dryRun": st.booleans(),
            },
        )
    )
    if draw(st.booleans()):
        m["count"] = draw(st.integers(1, 5)) if "interval" in m else 1
    m["name"] = name
    m["successCondition" if draw(st.booleans()) else "failureCondition"] = "result < 0.5"
    m["provider"] = {"prometheus": {"query": f"{name}_total"}}
    return m


def _failure_policies() -> st.SearchStrategy[dict[str, Any]]:
    action = st.sampled_from(["rollback", "abort", "pause", "promote"])
    mode = st.sampled_from(["immediate", "newRollout"])

    @st.composite
    def policy(draw: st.DrawFn) -> dict[str, Any]:
        out: dict[str, Any] = draw(st.fixed_dictionaries({}, optional={"action": action}))
        if out.get("action", "rollback") in ("rollback", "abort") and draw(st.booleans()):
            out["rollback"] = draw(st.fixed_dictionaries({}, optional={"mode": mode}))
        return out

    return policy()


@st.composite
def rollout_fields(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "replicas": st.integers(1, 20),
                "progressDeadlineSeconds": st.integers(1, 3600),
                "revisionHistoryLimit": st.integers(0, 20),
                "rollbackWindow": st.builds(lambda n: {"revisions": n}, st.integers(0, 5)),
                "abortScaleDownDelaySeconds": st.integers(0, 600),
                "scaleDownDelaySeconds": st.integers(0, 600),
                "dynamicStableScale": st.booleans(),
                "maxSurge": st.integers(0, 3),
                "maxUnavailable": st.integers(0, 3),
            },
        )
    )
    spec["basic"] = draw(st.booleans())
    if spec.get("maxSurge") == 0 and spec.get("maxUnavailable") == 0:
        spec["maxUnavailable"] = 1  # both 0 is a spec error, not what this property is about
    return spec


@st.composite
def canary_steps(draw: st.DrawFn) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for w in sorted(draw(st.sets(st.integers(1, 100), min_size=1, max_size=4))):
        steps.append({"setWeight": w})
        extra = draw(st.sampled_from(["none", "pause", "timed", "verify", "scale"]))
        if extra == "pause":
            steps.append({"pause": {}})
        elif extra == "timed":
            steps.append({"pause": {"duration": draw(_duration)}})
        elif extra == "verify":
            steps.append({"verification": {"templateNames": ["checks"]}})
        elif extra == "scale":
            steps.append({"setCanaryScale": {"replicas": draw(st.integers(0, 5))}})
    return steps


# ----- the expected plan ------------------------------------------------------------------------------


def _resolve(value: int | str, replicas: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    exact = replicas * int(value.rstrip("%")) / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def check_rollout_fields(plan: Plan, spec: dict[str, Any], router: bool) -> None:
    assert plan.traffic_router == router
    for key, attr in ROLLOUT_FIELDS.items():
        want = spec[key] if key in spec else ROLLOUT_DEFAULTS[attr]
        assert getattr(plan, attr) == want, (key, getattr(plan, attr), want)
    want_window = spec["rollbackWindow"]["revisions"] if "rollbackWindow" in spec else 0
    assert plan.rollback_window == want_window, ("rollbackWindow", plan.rollback_window, want_window)
    n = plan.replicas
    surge = _resolve(spec.get("maxSurge", "25%"), n, round_up=True)
    unavailable = _resolve(spec.get("maxUnavailable", "25%"), n, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # Kubernetes' fencepost: a rollout must be able to make progress
    assert (plan.max_surge, plan.max_unavailable) == (surge, unavailable)


def check_metric(plan: Plan, template: str, m: dict[str, Any]) -> None:
    got = next(x for x in plan.templates[template].metrics if x.name == m["name"])
    for key, attr in METRIC_FIELDS.items():
        want = m[key] if key in m else METRIC_DEFAULTS[attr]
        assert getattr(got, attr) == want, (m["name"], key, getattr(got, attr), want)
    assert got.interval == (_seconds_of(m["interval"]) if "interval" in m else None)
    assert got.initial_delay == (_seconds_of(m["initialDelay"]) if "initialDelay" in m else 0.0)
    assert got.dry_run == m.get("dryRun", False)
    assert got.success_condition == m.get("successCondition")
    assert got.failure_condition == m.get("failureCondition")


def check_steps(plan: Plan, steps: list[dict[str, Any]]) -> None:
    got = list(plan.steps)
    if got[-1].kind == "setWeight" and got[-1].weight == 100 and steps[-1].get("setWeight") != 100:
        got = got[:-1]  # the implicit final 100% step
    assert len(got) == len(steps)
    for plan_step, raw in zip(got, steps, strict=True):
        if "setWeight" in raw:
            assert (plan_step.kind, plan_step.weight) == ("setWeight", raw["setWeight"])
        elif "pause" in raw:
            d = raw["pause"].get("duration")
            assert (plan_step.kind, plan_step.duration) == ("pause", None if d is None else _seconds_of(d))
        elif "verification" in raw:
            assert (plan_step.kind, plan_step.templates) == ("verification", ("checks",))
        else:
            assert (plan_step.kind, plan_step.replicas) == (
                "setCanaryScale",
                raw["setCanaryScale"]["replicas"],
            )


# ----- Ocean CD dialect -------------------------------------------------------------------------------


def _needs_router(rollout: dict[str, Any], steps: list[Any]) -> bool:
    """A traffic router is configured unless the rollout is drawn as a basic canary (``basic``), which
    cannot use dynamicStableScale or setCanaryScale."""
    if rollout.get("dynamicStableScale") or any("setCanaryScale" in s for s in steps):
        return True
    return not rollout.get("basic", False)


def ocean_docs(rollout: dict[str, Any], policy: dict[str, Any], steps: list[Any], metrics: list[Any]) -> str:
    api = "spot.io/v1beta1"
    spec = {"workload": {"name": "web"}, "strategy": {"name": "canary"}}
    spec.update({k: v for k, v in rollout.items() if k != "basic"})
    if _needs_router(rollout, steps):
        spec["traffic"] = {"istio": {"virtualService": {"name": "web"}}}
    if policy:
        spec["failurePolicy"] = policy
    docs = [
        {"apiVersion": api, "kind": "RolloutSpec", "metadata": {"name": "web"}, "spec": spec},
        {
            "apiVersion": api,
            "kind": "Strategy",
            "metadata": {"name": "canary"},
            "spec": {"canary": {"steps": steps}},
        },
        {
            "apiVersion": api,
            "kind": "VerificationTemplate",
            "metadata": {"name": "checks"},
            "spec": {"metrics": metrics},
        },
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)


_metric_lists = st.integers(1, 3).flatmap(lambda n: st.tuples(*(metric_docs(f"m{i}") for i in range(n))))


@given(rollout_fields(), _failure_policies(), canary_steps(), _metric_lists)
@example(  # the slips issue 6 names: rollbackWindow, dynamicStableScale dropped; consecutiveErrorLimit 0 -> 4
    {"rollbackWindow": {"revisions": 2}, "dynamicStableScale": True},
    {"action": "pause"},
    [{"setWeight": 50}, {"verification": {"templateNames": ["checks"]}}],
    (
        {
            "name": "m0",
            "consecutiveErrorLimit": 0,
            "successCondition": "result < 0.5",
            "provider": {"prometheus": {"query": "q"}},
        },
    ),
)
def test_ocean_spec_fields_reach_the_plan(
    rollout: dict[str, Any], policy: dict[str, Any], steps: list[Any], metrics: tuple[Any, ...]
) -> None:
    if not any("verification" in s for s in steps):
        steps = [*steps, {"verification": {"templateNames": ["checks"]}}]
    plan = compile_plan(load_text(ocean_docs(rollout, policy, steps, list(metrics)), "spec.yaml"))
    check_rollout_fields(plan, rollout, _needs_router(rollout, steps))
    action = policy.get("action", "rollback")
    assert plan.failure_action == ("rollback" if action == "abort" else action)
    assert plan.rollback_mode == policy.get("rollback", {}).get("mode", "immediate")
    check_steps(plan, steps)
    for m in metrics:
        check_metric(plan, "checks", m)


# ----- Argo Rollouts YAML -----------------------------------------------------------------------------


def argo_docs(rollout: dict[str, Any], steps: list[Any], metrics: list[Any], dry: list[str]) -> str:
    canary_keys = (
        "dynamicStableScale",
        "abortScaleDownDelaySeconds",
        "scaleDownDelaySeconds",
        "maxSurge",
        "maxUnavailable",
    )
    canary: dict[str, Any] = {k: rollout[k] for k in canary_keys if k in rollout}
    canary["steps"] = [
        {"analysis": {"templates": [{"templateName": "checks"}]}} if "verification" in s else s for s in steps
    ]
    spec = {k: v for k, v in rollout.items() if k not in (*canary_keys, "basic")}
    if _needs_router(rollout, steps):
        canary["trafficRouting"] = {"istio": {"virtualService": {"name": "web", "routes": ["primary"]}}}
    spec["strategy"] = {"canary": canary}
    template_spec: dict[str, Any] = {"metrics": metrics}
    if dry:
        template_spec["dryRun"] = [{"metricName": name} for name in dry]
    docs = [
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": "checks"},
            "spec": template_spec,
        },
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "web"}, "spec": spec},
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)


@given(
    rollout_fields(),
    canary_steps(),
    _metric_lists,
    st.lists(st.sampled_from(["m0", "m1", "m2"]), unique=True),
)
@example(
    {"rollbackWindow": {"revisions": 1}, "dynamicStableScale": True},
    [{"setWeight": 20}, {"verification": {"templateNames": ["checks"]}}],
    (
        {
            "name": "m0",
            "consecutiveErrorLimit": 0,
            "failureCondition": "result < 0.5",
            "provider": {"prometheus": {"query": "q"}},
        },
    ),
    ["m0"],
)
def test_argo_fields_reach_the_plan(
    rollout: dict[str, Any], steps: list[Any], metrics: tuple[Any, ...], dry_names: list[str]
) -> None:
    if not any("verification" in s for s in steps):
        steps = [*steps, {"verification": {"templateNames": ["checks"]}}]
    metrics = tuple({k: v for k, v in m.items() if k != "dryRun"} for m in metrics)
    dry = [name for name in dry_names if any(m["name"] == name for m in metrics)]
    plan = compile_plan(load_text(argo_docs(rollout, steps, list(metrics), dry), "argo.yaml"))
    check_rollout_fields(plan, rollout, _needs_router(rollout, steps))
    assert (plan.failure_action, plan.rollback_mode) == ("rollback", "immediate")  # Argo's behaviour
    check_steps(plan, steps)
    for m in metrics:
        check_metric(plan, "checks", {**m, "dryRun": m["name"] in dry})
