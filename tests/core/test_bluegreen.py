"""Blue-green: compiling (ebbtide dialect and Argo Rollouts YAML) and the scenarios users know.

The scenarios run over the engine with tests/core/helpers.py: 4 replicas, ready 5 s after they are asked
for; template ``t`` = one metric, 3 measurements 10 s apart, ``result < 0.05``. v1 is live, v2 is deployed.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ebbtide.core.bluegreen import blue_green_steps
from ebbtide.core.effects import ScaleRevision
from ebbtide.core.plan import Plan, StepPlan
from ebbtide.core.spec import SpecError, compile_plan, load_text
from tests.core.helpers import BAD, GOOD, Harness, template

# ---------------------------------------------------------------------------------------------------
# compiling
# ---------------------------------------------------------------------------------------------------

TEMPLATE = """
apiVersion: ebbtide.dev/v1alpha1
kind: VerificationTemplate
metadata: {name: smoke}
spec:
  metrics:
    - name: ok
      successCondition: result >= 0.9
      provider: {prometheus: {query: up}}
"""

DIALECT = (
    TEMPLATE
    + """
---
apiVersion: ebbtide.dev/v1alpha1
kind: Strategy
metadata: {name: bg}
spec:
  blueGreen:
    activeService: web-active
    previewService: web-preview
    previewReplicaCount: 2
    autoPromotionSeconds: 60
    prePromotionAnalysis: {templateNames: [smoke], dryRun: [{metricName: ok}]}
    postPromotionAnalysis: {templateNames: [smoke]}
---
apiVersion: ebbtide.dev/v1alpha1
kind: RolloutSpec
metadata: {name: web}
spec:
  replicas: 4
  strategy: {name: bg}
  scaleDownDelaySeconds: 45
"""
)

ARGO = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template: {metadata: {labels: {app: web}}, spec: {containers: [{name: web, image: "web:2"}]}}
  strategy:
    blueGreen:
      activeService: web-active
      previewService: web-preview
      previewReplicaCount: 1
      autoPromotionEnabled: false
      autoPromotionSeconds: 20
      scaleDownDelaySeconds: 60
      abortScaleDownDelaySeconds: 10
      scaleDownDelayRevisionLimit: 2
      antiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: {weight: 1}}
      previewMetadata: {labels: {role: preview}}
      activeMetadata: {labels: {role: active}}
      maxUnavailable: 1
      prePromotionAnalysis:
        templates: [{templateName: smoke}]
        args: [{name: svc, value: web-preview}]
      postPromotionAnalysis:
        templates: [{templateName: smoke}]
        args: [{name: svc, value: web-preview}]
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: smoke}
spec:
  args: [{name: svc}]
  metrics:
    - name: ok
      successCondition: result >= 0.9
      provider: {prometheus: {query: "up{service='{{args.svc}}'}"}}
"""


def kinds(plan: Plan) -> list[tuple[str, str | None, Any]]:
    return [(s.kind, s.name, s.replicas or s.weight or s.duration or s.templates or None) for s in plan.steps]


def test_dialect_blue_green_compiles_to_preview_checks_switch() -> None:
    plan = compile_plan(load_text(DIALECT, "bg.yaml"))
    assert plan.strategy == "blueGreen" and plan.traffic_router and not plan.dynamic_stable_scale
    assert kinds(plan) == [
        ("setCanaryScale", "preview", 2),
        ("verification", "prePromotionAnalysis", ("smoke",)),
        ("pause", "promotion", 60.0),
        ("setWeight", "promote", 100),
        ("verification", "postPromotionAnalysis", ("smoke",)),
    ]
    assert plan.steps[1].dry_run == ("ok",) and plan.steps[4].dry_run == ()
    assert (plan.replicas, plan.scale_down_delay, plan.background_templates) == (4, 45.0, ())


def test_argo_blue_green_rollout_loads_unchanged() -> None:
    plan = compile_plan(load_text(ARGO, "argo-bg.yaml"))
    assert plan.strategy == "blueGreen" and plan.failure_action == "rollback"
    assert plan.rollback_mode == "immediate"
    # autoPromotionEnabled: false wins over autoPromotionSeconds (Argo ignores the seconds then)
    assert kinds(plan) == [
        ("setCanaryScale", "preview", 1),
        ("verification", "prePromotionAnalysis", ("smoke",)),
        ("pause", "promotion", None),
        ("setWeight", "promote", 100),
        ("verification", "postPromotionAnalysis", ("smoke",)),
    ]
    assert (plan.replicas, plan.scale_down_delay, plan.abort_scale_down_delay) == (3, 60.0, 10.0)
    assert plan.scale_down_delay_revision_limit == 2
    assert plan.templates["smoke"].metrics[0].provider["prometheus"]["query"] == "up{service='web-preview'}"


def test_minimal_blue_green_promotes_as_soon_as_the_preview_is_ready() -> None:
    assert [(s.kind, s.replicas, s.weight) for s in blue_green_steps(5)] == [
        ("setCanaryScale", 5, None),
        ("setWeight", None, 100),
    ]


def problems_of(text: str) -> list[tuple[str | None, str, str]]:
    with pytest.raises(SpecError) as exc:
        compile_plan(load_text(text, "bg.yaml"))
    return [(p.kind, p.field, p.reason) for p in exc.value.problems]


def test_argo_blue_green_problems_use_argo_field_paths() -> None:
    docs = list(yaml.safe_load_all(ARGO))
    bg = docs[0]["spec"]["strategy"]["blueGreen"]
    del bg["activeService"]
    bg["previewReplicaCount"] = -1
    bg["postPromotionAnalysis"]["typo"] = 1
    bg["surprise"] = True
    at = "spec.strategy.blueGreen"
    assert sorted(problems_of(yaml.safe_dump_all(docs, sort_keys=False))) == [
        ("Rollout", f"{at}.activeService", "required field is missing"),
        ("Rollout", f"{at}.postPromotionAnalysis.typo", "unknown field"),
        ("Rollout", f"{at}.previewReplicaCount", "must be >= 0, not -1"),
        ("Rollout", f"{at}.surprise", "unknown field"),
    ], "each problem once, at the user's path, and no follow-on problem"
    docs = list(yaml.safe_load_all(ARGO))
    docs[0]["spec"]["strategy"]["blueGreen"]["prePromotionAnalysis"]["templates"][0]["templateName"] = "nope"
    assert problems_of(yaml.safe_dump_all(docs, sort_keys=False)) == [
        (
            "Rollout",
            f"{at}.prePromotionAnalysis.templates[0].templateName",
            "unknown AnalysisTemplate 'nope' (known: smoke); if another file defines it, validate the files "
            "together: ebbtide validate --set FILE...",
        )
    ]


def test_dialect_strategy_takes_one_kind_and_blue_green_no_dynamic_stable_scale() -> None:
    both = DIALECT.replace("  blueGreen:\n", "  rolling: {}\n  blueGreen:\n")
    assert ("Strategy", "spec", "exactly one of canary, rolling or blueGreen is required") in problems_of(
        both
    )
    dynamic = DIALECT.replace("  scaleDownDelaySeconds: 45", "  dynamicStableScale: true")
    assert (
        "RolloutSpec",
        "spec.dynamicStableScale",
        "dynamicStableScale applies to canary, not blueGreen",
    ) in problems_of(dynamic)


def test_a_blue_green_plan_switches_all_traffic_at_once() -> None:
    with pytest.raises(ValueError, match="setWeight 100 only"):
        Plan(strategy="blueGreen", steps=(StepPlan(kind="setWeight", weight=50),))
    with pytest.raises(ValueError, match="traffic_router must be true"):
        Plan(strategy="blueGreen", traffic_router=False)
    with pytest.raises(ValueError, match="scale_down_delay_revision_limit must not be negative"):
        Plan(strategy="blueGreen", scale_down_delay_revision_limit=-1)


# ---------------------------------------------------------------------------------------------------
# scenarios over the engine
# ---------------------------------------------------------------------------------------------------


def bg_plan(**kw: Any) -> Plan:
    """4 replicas, a preview of 2, pre- and post-promotion analysis with template t."""
    steps = blue_green_steps(
        4,
        preview_replicas=kw.pop("preview_replicas", 2),
        auto_promotion_enabled=kw.pop("auto_promotion_enabled", True),
        auto_promotion_seconds=kw.pop("auto_promotion_seconds", None),
        pre_promotion=("t",),
        post_promotion=("t",),
    )
    return Plan(strategy="blueGreen", steps=tuple(steps), templates={"t": template()}, replicas=4, **kw)


def rollout(plan: Plan, measure: Any = None) -> Harness:
    h = Harness(plan, measure=measure or (lambda rev, m, t: GOOD)).live("v1")
    h.deploy("v2")
    return h


def scales(h: Harness, rev: str, since: float) -> list[tuple[float, int]]:
    return [
        (r.t, e.replicas)
        for r in h.log
        if r.t >= since
        for e in r.decision.effects
        if isinstance(e, ScaleRevision) and e.revision == rev
    ]


def test_healthy_promotion_switches_all_traffic_once_then_scales_blue_down() -> None:
    h = rollout(bg_plan(scale_down_delay=30.0))
    start = h.now
    h.run_for(10)
    preview = h.state
    assert preview.phase == "verifying" and preview.step_index == 1  # pre-promotion analysis on the preview
    assert preview.weights == {"v1": 100} and preview.replicas == {"v1": 4, "v2": 2}
    h.run_for(300)
    assert h.state.phase == "live" and h.state.stable == "v2"
    # the only traffic change: all of it from v1 to v2, never a split
    assert h.weights(since=start) == [{"v2": 100}]
    switched = next(r for r in h.log if r.decision.state.weights == {"v2": 100})
    assert switched.decision.state.ready == {"v1": 4, "v2": 4}, "switch only once green is full and ready"
    finished = next(t for t, name, _ in h.notifications() if name == "rollout-finished")
    assert finished > switched.t, "the post-promotion analysis ran after the switch"
    # the preview; full once the analysis (3 measurements 10 s apart, from ready at +5 s) passed
    assert scales(h, "v2", start) == [(start, 2), (start + 5 + 20, 4)]
    assert scales(h, "v1", start) == [(finished + 30, 0)], (
        "blue kept full until scaleDownDelaySeconds after the end"
    )


def test_failed_pre_promotion_analysis_never_moves_traffic() -> None:
    h = rollout(bg_plan(abort_scale_down_delay=10.0), measure=lambda rev, m, t: BAD if rev == "v2" else GOOD)
    start = h.now
    h.run_for(300)
    assert h.state.phase == "live" and h.state.stable == "v1" and h.state.degraded
    assert "rollout-failed" in h.notified() and "rollout-rolled-back" in h.notified()
    assert all(w == {"v1": 100} for w in h.weights(since=start)), "the active revision never lost traffic"
    assert all(r.decision.state.weights == {"v1": 100} for r in h.log if r.t >= start)
    failed = next(t for t, name, _ in h.notifications() if name == "rollout-failed")
    assert scales(h, "v2", start) == [(start, 2), (failed + 10, 0)], "preview scaled down after abort delay"
    assert scales(h, "v1", start) == []


def test_failed_post_promotion_analysis_switches_back_in_the_same_decision() -> None:
    # v2 is healthy during the preview's analysis, then fails once it serves production traffic
    switch_at: list[float] = []

    def measure(rev: str, metric: str, now: float) -> float:
        return BAD if rev == "v2" and switch_at and now >= switch_at[0] else GOOD

    h = rollout(bg_plan(), measure=measure)
    for _ in range(100):
        h.run_for(1)
        if h.state.weights == {"v2": 100}:
            switch_at.append(h.now)
            break
    assert switch_at and h.state.replicas == {"v1": 4, "v2": 4}, "blue stays full after the switch"
    h.run_for(300)
    failing = next(
        r for r in h.log if any(getattr(e, "event", None) == "rollout-failed" for e in r.decision.effects)
    )
    assert failing.decision.state.weights == {"v1": 100}, "all traffic back to blue in the failing decision"
    assert h.state.phase == "live" and h.state.stable == "v1" and h.state.degraded
    assert h.weights(since=switch_at[0] + 0.5) == [{"v1": 100}]


def test_manual_promote_after_an_indefinite_pause() -> None:
    h = rollout(bg_plan(auto_promotion_enabled=False, auto_promotion_seconds=30))
    h.run_for(3600)
    s = h.state
    assert (s.phase, s.pause_reason, s.plan.steps[s.step_index].name) == ("paused", "pause-step", "promotion")
    assert s.weights == {"v1": 100} and s.replicas == {"v1": 4, "v2": 2}
    assert h.command("promote").rejected is None
    h.run_for(300)
    assert h.state.phase == "live" and h.state.stable == "v2"
    assert h.weights(since=h.now - 300) == [{"v2": 100}]


def test_timed_auto_promotion_waits_its_seconds() -> None:
    h = rollout(bg_plan(auto_promotion_seconds=120))
    h.run_for(60)
    assert h.state.phase == "paused" and h.state.weights == {"v1": 100}
    h.run_for(300)
    assert h.state.phase == "live" and h.state.stable == "v2"


def test_abort_during_preview_keeps_blue_and_drops_the_preview() -> None:
    h = rollout(bg_plan(auto_promotion_enabled=False, abort_scale_down_delay=10.0))
    start = h.now
    h.run_for(120)
    assert h.state.phase == "paused"
    d = h.command("abort")
    assert d.rejected is None and d.state.weights == {"v1": 100}
    h.run_for(60)
    assert h.state.phase == "live" and h.state.stable == "v1" and h.state.degraded
    assert all(w == {"v1": 100} for w in h.weights(since=start))
    assert scales(h, "v2", start)[-1] == (start + 120 + 10, 0)
    assert h.state.replicas == {"v1": 4}


# ---------------------------------------------------------------------------------------------------
# commands and policies (docs/semantics.md, Blue-green)
# ---------------------------------------------------------------------------------------------------


def test_promote_is_rejected_while_the_preview_waits_for_replicas_then_passes_the_analysis() -> None:
    h = rollout(bg_plan(auto_promotion_enabled=False))
    assert h.command("promote").rejected  # preview replicas not ready yet
    h.run_for(6)
    assert (
        h.state.phase == "verifying" and h.state.plan.steps[h.state.step_index].name == "prePromotionAnalysis"
    )
    assert h.command("promote").rejected is None
    s = h.state
    assert (s.phase, s.pause_reason, s.plan.steps[s.step_index].name) == ("paused", "pause-step", "promotion")
    assert s.weights == {"v1": 100}, "promote passes the analysis, the indefinite pause still holds"
    h.command("promote")
    h.run_for(300)
    assert h.state.stable == "v2"


def test_timed_promotion_pause_starts_when_the_pre_promotion_analysis_passed() -> None:
    h = rollout(bg_plan(auto_promotion_seconds=100))
    start = h.now
    h.run_for(60)
    # ready at +5, measurements at +5, +15, +25: the analysis passes at +25, the pause ends at +125
    assert h.state.phase == "paused" and h.state.pause_until == start + 25 + 100


def test_promote_full_switches_as_soon_as_green_is_ready_skipping_the_analyses() -> None:
    h = rollout(bg_plan(auto_promotion_enabled=False))
    h.run_for(6)
    assert h.command("promoteFull").rejected is None
    assert h.state.weights == {"v1": 100} and h.state.replicas == {"v1": 4, "v2": 4}
    h.run_for(5)
    assert h.state.phase == "live" and h.state.stable == "v2"
    assert next(r.t for r in h.log if r.decision.state.weights == {"v2": 100}) == h.now


def test_pause_policy_keeps_green_serving_after_a_failed_post_promotion_analysis() -> None:
    """... and blue full, so that an abort switches back at once."""
    h = rollout(
        bg_plan(failure_action="pause"), measure=lambda rev, m, t: BAD if rev == "v2" and t > 50 else GOOD
    )
    h.run_for(300)
    s = h.state
    assert (s.phase, s.pause_reason) == ("paused", "failure-policy")
    assert s.weights == {"v2": 100} and s.replicas == {"v1": 4, "v2": 4}
    d = h.command("abort")
    assert d.state.weights == {"v1": 100}, "blue was kept full: the abort switches back at once"


def test_new_rollout_after_a_failed_pre_promotion_analysis_only_verifies_blue_again() -> None:
    h = rollout(bg_plan(rollback_mode="newRollout"), measure=lambda rev, m, t: BAD if rev == "v2" else GOOD)
    h.run_for(8)  # the first measurement of the preview (at +5) failed
    s = h.state
    assert s.initiator == "failure-policy" and s.canary == "v1" and s.weights == {"v1": 100}
    assert s.plan.steps[s.step_index].name == "postPromotionAnalysis"
    h.run_for(300)
    assert h.state.phase == "live" and h.state.stable == "v1"
    assert all(w == {"v1": 100} for w in h.weights(since=21))


def test_new_rollout_after_a_failed_post_promotion_analysis_runs_blue_through_the_steps() -> None:
    h = rollout(
        bg_plan(rollback_mode="newRollout"), measure=lambda rev, m, t: BAD if rev == "v2" and t > 50 else GOOD
    )
    for _ in range(300):
        h.run_for(1)
        if h.state.initiator == "failure-policy":
            break
    s = h.state
    assert s.canary == "v1" and s.weights == {"v2": 100}, "the failed green keeps the traffic meanwhile"
    assert s.plan.steps[s.step_index].name == "prePromotionAnalysis"
    h.run_for(300)
    assert h.state.phase == "live" and h.state.stable == "v1"


@pytest.mark.parametrize(("limit", "v1_down_at_v3_live"), [(None, False), (1, True), (0, True)])
def test_scale_down_delay_revision_limit(limit: int | None, v1_down_at_v3_live: bool) -> None:
    """v2 then v3 promoted within one scaleDownDelaySeconds (600 s): v1 and v2 would both wait; with a limit
    of 1 the older one (v1) is scaled down once v2 starts waiting; with 0 none waits."""
    plan = Plan(
        strategy="blueGreen",
        steps=tuple(blue_green_steps(4)),
        replicas=4,
        scale_down_delay=600.0,
        scale_down_delay_revision_limit=limit,
    )
    h = Harness(plan).live("v1")
    h.deploy("v2")
    h.run_for(20)
    assert h.state.stable == "v2"
    assert ("v1" in h.state.replicas) == (limit != 0), "with a limit of 0 nothing waits"
    h.deploy("v3")
    h.run_for(20)
    assert h.state.stable == "v3"
    running = set(h.state.replicas)
    assert ("v1" not in running) == v1_down_at_v3_live
    assert ("v2" in running) == (limit != 0), "the newest replaced revision waits unless the limit is 0"
