"""Argo's ``setMirrorRoute`` step: a percentage of the requests matching its rules is copied to the canary
(its answers dropped) while the weights stay as they are; a step with the route's name and no ``match``
removes it. Compiled from Argo YAML, and run by the engine like a header route."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ebbtide.core.effects import SetTraffic
from ebbtide.core.plan import HeaderMatch, HeaderRoutePlan, RequestMatch, ValueMatch
from ebbtide.core.spec import SpecError, compile_plan, load_text
from tests.core.helpers import Harness

ROLLOUT = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  replicas: 4
  strategy:
    canary:
      canaryService: shop-canary
      stableService: shop-stable
      trafficRouting:
        managedRoutes: [{name: mirror-posts}]
        istio: {virtualService: {name: shop, routes: [primary]}}
      steps:
        - setCanaryScale: {weight: 50}
        - setMirrorRoute:
            name: mirror-posts
            percentage: 35
            match:
              - method: {exact: POST}
                path: {prefix: /cart}
              - headers:
                  x-tester: {exact: "yes"}
        - pause: {duration: 2m}
        - setMirrorRoute: {name: mirror-posts}
        - setWeight: 50
        - pause: {duration: 1m}
"""


def docs() -> list[dict[str, Any]]:
    return [yaml.safe_load(ROLLOUT)]


def steps_of(d: list[dict[str, Any]]) -> list[Any]:
    return d[0]["spec"]["strategy"]["canary"]["steps"]  # type: ignore[no-any-return]


def problems(d: list[dict[str, Any]]) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as exc:
        load_text(yaml.safe_dump_all(d), "r.yaml")
    return [(p.field, p.reason) for p in exc.value.problems]


MIRROR = HeaderRoutePlan(
    name="mirror-posts",
    mirror_percentage=35,
    request_matches=(
        RequestMatch(method=ValueMatch(exact="POST"), path=ValueMatch(prefix="/cart")),
        RequestMatch(headers=(HeaderMatch(header_name="x-tester", exact="yes"),)),
    ),
)


def test_set_mirror_route_compiles() -> None:
    plan = compile_plan(load_text(ROLLOUT))
    assert [s.kind for s in plan.steps] == [
        "setCanaryScale", "setMirrorRoute", "pause", "setMirrorRoute", "setWeight", "pause", "setWeight"
    ]  # fmt: skip
    assert plan.steps[1].header_route == MIRROR
    assert plan.steps[3].header_route == HeaderRoutePlan(name="mirror-posts", mirror_percentage=100)


def test_mirror_route_mistakes_are_located() -> None:
    d = docs()
    mirror = steps_of(d)[1]["setMirrorRoute"]
    mirror["percentage"] = 150
    mirror["match"][0]["path"] = {"regex": "(unclosed"}
    mirror["match"][1] = {}
    found = problems(d)
    at = "spec.strategy.canary.steps[1].setMirrorRoute"
    assert sorted(f for f, _ in found) == [f"{at}.match[0].path.regex", f"{at}.match[1]", f"{at}.percentage"]


def test_a_mirror_route_needs_a_router() -> None:
    d = docs()
    del d[0]["spec"]["strategy"]["canary"]["trafficRouting"]
    steps_of(d)[0] = {"setWeight": 25}
    found = problems(d)
    assert [f for f, _ in found] == [
        "spec.strategy.canary.steps[1].setMirrorRoute",
        "spec.strategy.canary.steps[3].setMirrorRoute",
    ]
    assert "needs a traffic router" in found[0][1]


def test_the_engine_mirrors_without_moving_weights_and_removes_the_route() -> None:
    h = Harness(compile_plan(load_text(ROLLOUT))).live("v1")
    h.deploy("v2")
    h.run_for(30)  # the canary's 2 pods are ready; the mirror route is set; the 2 minute pause runs
    s = h.state
    assert s.phase == "paused" and s.weights == {"v1": 100} and s.header_routes == (MIRROR,)
    sent = [e for r in h.log for e in r.decision.effects if isinstance(e, SetTraffic) and e.header_routes]
    assert sent and all(e.weights == {"v1": 100} and e.header_route_revision == "v2" for e in sent)
    h.run_for(120)  # the pause ends: the route is removed, then 50% of the traffic goes to v2
    assert h.state.header_routes == () and h.state.weights == {"v1": 50, "v2": 50}
    h.run_for(120)
    assert h.state.phase == "live" and h.state.stable == "v2" and h.state.header_routes == ()


def test_a_mirror_route_set_while_the_canary_has_no_ready_pod_waits_for_one() -> None:
    h = Harness(compile_plan(load_text(ROLLOUT)), ready_delay=20.0).live("v1")
    h.deploy("v2")
    h.run_for(1)
    assert not any(e.header_routes for r in h.log for e in r.decision.effects if isinstance(e, SetTraffic)), (
        "no route to a canary with no ready pod"
    )
