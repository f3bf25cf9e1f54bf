"""Effects: what the engine wants the world to look like. Level-based and idempotent.

An effect states desired state ("revision b serves 40%", "revision b runs 3 replicas"), never an increment,
so applying it twice, or applying it after a crash half-way through a reconcile, converges to the same world.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ebbtide.core.plan import Frozen, HeaderRoutePlan, MetricPlan

NotifyEvent = Literal[
    "rollout-started",
    "rollout-failed",
    "rollout-rolled-back",
    "rollout-failed-to-roll-back",
    "rollout-finished",
    "start-external-verification",
    "rollout-paused",
    "rollout-promoted",
    "rollout-canceled",
]


class ScaleRevision(Frozen):
    kind: Literal["scale"] = "scale"
    revision: str
    replicas: int


class SetTraffic(Frozen):
    """Traffic split: integer weights per revision summing to 100, plus header routes to the canary."""

    kind: Literal["traffic"] = "traffic"
    weights: dict[str, int]
    header_routes: tuple[HeaderRoutePlan, ...] = ()
    #: the revision header routes send to (the canary), if any
    header_route_revision: str | None = None


class StartMeasurement(Frozen):
    """Take one measurement of ``metric`` now and report it back as a Measurement event."""

    kind: Literal["measure"] = "measure"
    verification: str
    template: str
    metric: MetricPlan
    #: the revision under test (the canary) and the stable one (for baselines)
    revision: str
    stable: str | None = None


class StopVerification(Frozen):
    """Cancel a verification run: in-flight measurements for it will be ignored."""

    kind: Literal["stop-verification"] = "stop-verification"
    verification: str


class Notify(Frozen):
    kind: Literal["notify"] = "notify"
    event: NotifyEvent
    payload: dict[str, Any] = Field(default_factory=dict)


Effect = Annotated[
    ScaleRevision | SetTraffic | StartMeasurement | StopVerification | Notify, Field(discriminator="kind")
]
