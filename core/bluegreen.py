"""Blue-green (Argo Rollouts' ``strategy.blueGreen``) as the engine's ordinary steps.

The new revision runs beside the active one, reachable only through the preview Service (0% of production
traffic); once it has passed its checks the active Service switches to it, all traffic at once; the old
revision stays at full replicas until the rollout finishes, so a failure after the switch goes back to it
in the same decision. Compiled into steps, blue-green gets the failure policies, rollback modes, commands,
deadlines and the property-tested contract of the canary unchanged:

====================================  ============================================================
Argo                                  step
====================================  ============================================================
preview (``previewReplicaCount``,     ``setCanaryScale {replicas}`` at weight 0, named ``preview``
default: all replicas)
``prePromotionAnalysis``              ``verification`` named ``prePromotionAnalysis``
``autoPromotionEnabled: false``       ``pause {}`` named ``promotion``: promote moves on
``autoPromotionSeconds: N``           ``pause {duration: N}`` named ``promotion``
promotion                             ``setWeight 100`` named ``promote``: the new revision scaled to all
                                      replicas, then the active Service switches to it
``postPromotionAnalysis``             ``verification`` named ``postPromotionAnalysis``
====================================  ============================================================

Then the rollout finishes and the old revision is scaled down after ``scaleDownDelaySeconds``
(``abortScaleDownDelaySeconds`` when the new revision was aborted), as for a canary.
"""

from __future__ import annotations

from ebbtide.core.plan import StepPlan

__all__ = ["blue_green_steps"]


def blue_green_steps(
    replicas: int,
    *,
    preview_replicas: int | None = None,
    auto_promotion_enabled: bool = True,
    auto_promotion_seconds: float | None = None,
    pre_promotion: tuple[str, ...] = (),
    post_promotion: tuple[str, ...] = (),
) -> list[StepPlan]:
    """The steps of a blue-green rollout of ``replicas`` replicas (templates by name).

    ``auto_promotion_seconds`` is ignored when ``auto_promotion_enabled`` is false (as in Argo: the
    rollout waits for promote); ``preview_replicas`` above ``replicas`` runs ``replicas``."""
    preview = replicas if preview_replicas is None else min(preview_replicas, replicas)
    steps = [StepPlan(kind="setCanaryScale", name="preview", replicas=preview)]
    if pre_promotion:
        steps.append(StepPlan(kind="verification", name="prePromotionAnalysis", templates=pre_promotion))
    if not auto_promotion_enabled:
        steps.append(StepPlan(kind="pause", name="promotion"))
    elif auto_promotion_seconds:
        steps.append(StepPlan(kind="pause", name="promotion", duration=auto_promotion_seconds))
    steps.append(StepPlan(kind="setWeight", name="promote", weight=100))
    if post_promotion:
        steps.append(StepPlan(kind="verification", name="postPromotionAnalysis", templates=post_promotion))
    return steps
