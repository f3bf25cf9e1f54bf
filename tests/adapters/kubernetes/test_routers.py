"""Traffic routers: the object each writes for a wanted split, and what none of them may do.

Properties (every router that writes weights): the weights in the written object sum to 100 and give the
canary what was asked; applying the same traffic to the written object writes nothing new; the user's
unrelated routes, backends, annotations and labels come through unchanged; the input is never mutated.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes import client

from ebbtide.adapters.kubernetes.routers import (
    CannotExpress,
    GatewayRoute,
    HeaderMatch,
    HeaderRoute,
    IstioRoute,
    NginxCanary,
    SmiSplit,
    Traffic,
    Write,
    canary_ingress,
    destination_rule,
    http_route,
    replica_ratio,
    traffic_split,
    virtual_service,
)
from ebbtide.core.plan import HeaderMatch as PlanHeaderMatch
from ebbtide.core.plan import HeaderRoutePlan

from .standin import StandIn

MANAGED = ("by-header-a", "by-header-b")
PODS = {"v1": {"ebbtide.dev/revision": "v1"}, "v2": {"ebbtide.dev/revision": "v2"}}


def written(result: Any) -> dict[str, Any]:
    assert isinstance(result, Write), result
    (obj,) = result.objects
    return obj


# -- strategies ------------------------------------------------------------------------------------------
header_matches = st.builds(
    lambda name, kind, value: HeaderMatch(name, **{kind: value}),
    st.sampled_from(["x-canary", "x-user", "x-region"]),
    st.sampled_from(["exact", "prefix", "regex"]),
    st.text("abc.*", min_size=1, max_size=4),
)


@st.composite
def header_routes(draw: st.DrawFn, max_routes: int = 2) -> tuple[HeaderRoute, ...]:
    names = draw(st.lists(st.sampled_from(MANAGED), unique=True, max_size=max_routes))
    routes = []
    for name in names:
        matches = draw(st.lists(header_matches, min_size=1, max_size=2, unique_by=lambda m: m.header_name))
        routes.append(HeaderRoute(name, tuple(matches)))
    return tuple(routes)


@st.composite
def traffics(draw: st.DrawFn, headers: bool = True) -> Traffic:
    canary = draw(st.sampled_from(["v2", None]))
    weight = draw(st.integers(0, 100)) if canary else 0
    weights = {"v1": 100 - weight}
    if canary and (weight or draw(st.booleans())):
        weights["v2"] = weight
    routes = draw(header_routes()) if headers and canary else ()
    return Traffic(weights=weights, stable="v1", canary=canary, header_routes=routes)


def canary_weight(traffic: Traffic) -> int:
    return traffic.weights.get(traffic.canary, 0) if traffic.canary else 0


# -- Istio -----------------------------------------------------------------------------------------------
ISTIO = IstioRoute(stable_host="web-stable", canary_host="web-canary", managed_routes=MANAGED)
UNRELATED_ROUTE = {"name": "admin", "route": [{"destination": {"host": "admin"}, "weight": 100}]}


def virtual_service_obj(stale_header_route: bool = False) -> dict[str, Any]:
    primary = {
        "name": "primary",
        "match": [{"uri": {"prefix": "/api"}}],
        "route": [
            {
                "destination": {"host": "web-stable.shop.svc.cluster.local", "port": {"number": 80}},
                "weight": 100,
            },
            {"destination": {"host": "web-canary", "port": {"number": 80}}, "weight": 0},
        ],
        "retries": {"attempts": 3},
    }
    http = [primary, copy.deepcopy(UNRELATED_ROUTE)]
    if stale_header_route:
        http.insert(0, {"name": "by-header-b", "route": [{"destination": {"host": "web-canary"}}]})
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"team": "checkout"}},
        "spec": {"hosts": ["web.example.com"], "gateways": ["public"], "http": http},
    }


def route_weights(route: dict[str, Any]) -> dict[str, int]:
    return {d["destination"]["host"].split(".")[0]: d.get("weight", 0) for d in route["route"]}


@given(traffics(), st.booleans())
def test_istio_weights_idempotence_and_unrelated_routes(traffic: Traffic, stale: bool) -> None:
    existing = virtual_service_obj(stale)
    before = copy.deepcopy(existing)
    out = written(virtual_service(existing, traffic, ISTIO))
    assert existing == before
    http = {r["name"]: r for r in out["spec"]["http"]}
    primary = route_weights(http["primary"])
    assert sum(primary.values()) == 100 and primary["web-canary"] == canary_weight(traffic)
    assert [r["name"] for r in out["spec"]["http"]] == [
        *(h.name for h in traffic.header_routes),
        "primary",
        "admin",
    ]
    assert http["admin"] == UNRELATED_ROUTE and http["primary"]["retries"] == {"attempts": 3}
    assert out["metadata"] == existing["metadata"] and out["spec"]["gateways"] == ["public"]
    for route in traffic.header_routes:
        (match,) = http[route.name]["match"]
        assert match["uri"] == {"prefix": "/api"}
        assert set(match["headers"]) == {m.header_name for m in route.matches}
        assert route_weights(http[route.name]) == {"web-canary": 100}
    assert virtual_service(out, traffic, ISTIO) == Write((out,))


def test_istio_example_thirty_percent_with_a_header_route() -> None:
    traffic = Traffic(
        {"v1": 70, "v2": 30},
        "v1",
        "v2",
        (HeaderRoute("by-header-a", (HeaderMatch("x-canary", exact="yes"),)),),
    )
    http = written(virtual_service(virtual_service_obj(), traffic, ISTIO))["spec"]["http"]
    assert http[0] == {
        "name": "by-header-a",
        "match": [{"uri": {"prefix": "/api"}, "headers": {"x-canary": {"exact": "yes"}}}],
        "route": [{"destination": {"host": "web-canary", "port": {"number": 80}}, "weight": 100}],
    }
    assert [d["weight"] for d in http[1]["route"]] == [70, 30]


def test_istio_subsets_and_their_destination_rule() -> None:
    config = IstioRoute("web", "web", stable_subset="stable", canary_subset="canary")
    vs = {
        "metadata": {"name": "web"},
        "spec": {
            "http": [
                {
                    "route": [
                        {"destination": {"host": "web", "subset": "stable"}},
                        {"destination": {"host": "web", "subset": "canary"}},
                    ]
                }
            ]
        },
    }
    traffic = Traffic({"v1": 80, "v2": 20}, "v1", "v2")
    out = written(virtual_service(vs, traffic, config))
    assert [d["weight"] for d in out["spec"]["http"][0]["route"]] == [80, 20]
    rule = {
        "metadata": {"name": "web"},
        "spec": {"host": "web", "subsets": [{"name": "stable", "labels": {"app": "web"}}]},
    }
    subsets = written(destination_rule(rule, traffic, config, PODS))["spec"]["subsets"]
    assert subsets == [
        {"name": "stable", "labels": {"app": "web", "ebbtide.dev/revision": "v1"}},
        {"name": "canary", "labels": {"ebbtide.dev/revision": "v2"}},
    ]
    aborted = written(destination_rule(rule, Traffic({"v1": 100}, "v1", None), config, PODS))["spec"][
        "subsets"
    ]
    assert [s["labels"]["ebbtide.dev/revision"] for s in aborted] == ["v1", "v1"]


@pytest.mark.parametrize(
    ("traffic", "reason"),
    [
        (Traffic({"v0": 10, "v1": 60, "v2": 30}, "v1", "v2"), "cannot carry {'v0': 10}"),
        (Traffic({"v1": 60, "v2": 30}, "v1", "v2"), "must sum to 100"),
        (
            Traffic({"v1": 90, "v2": 10}, "v1", "v2", (HeaderRoute("not-managed"),)),
            "not listed in managedRoutes",
        ),
        (
            Traffic(
                {"v1": 90, "v2": 10},
                "v1",
                "v2",
                (HeaderRoute("by-header-a", (HeaderMatch("x", exact="1"), HeaderMatch("x", prefix="2"))),),
            ),
            "matches one header twice",
        ),
        (Traffic({"v1": 100}, "v1", None, (HeaderRoute("by-header-a"),)), "there is no canary"),
    ],
)
def test_istio_cannot_express(traffic: Traffic, reason: str) -> None:
    result = virtual_service(virtual_service_obj(), traffic, ISTIO)
    assert isinstance(result, CannotExpress) and reason in result.reason


def test_istio_needs_both_destinations() -> None:
    vs = virtual_service_obj()
    del vs["spec"]["http"][0]["route"][1]
    result = virtual_service(vs, Traffic({"v1": 50, "v2": 50}, "v1", "v2"), ISTIO)
    assert isinstance(result, CannotExpress) and "one stable and one canary" in result.reason


def test_the_engine_header_route_type_fits() -> None:
    plan_route = HeaderRoutePlan(
        name="by-header-a", matches=(PlanHeaderMatch(header_name="x-beta", regex="on|yes"),)
    )
    out = written(
        virtual_service(
            virtual_service_obj(), Traffic({"v1": 100, "v2": 0}, "v1", "v2", (plan_route,)), ISTIO
        )
    )
    assert out["spec"]["http"][0]["match"][0]["headers"] == {"x-beta": {"regex": "on|yes"}}


# -- Gateway API -----------------------------------------------------------------------------------------
GATEWAY = GatewayRoute("web-stable", "web-canary", managed_routes=MANAGED)
UNRELATED_RULE = {
    "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
    "backendRefs": [{"name": "cdn", "port": 80}],
}


def http_route_obj() -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web", "annotations": {"owner": "team"}},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [
                        {"name": "web-stable", "port": 80, "weight": 100},
                        {"name": "web-canary", "port": 80, "weight": 0},
                    ],
                    "filters": [
                        {
                            "type": "RequestHeaderModifier",
                            "requestHeaderModifier": {"add": [{"name": "a", "value": "b"}]},
                        }
                    ],
                },
                copy.deepcopy(UNRELATED_RULE),
            ],
        },
    }


@given(traffics())
def test_gateway_weights_idempotence_and_unrelated_rules(traffic: Traffic) -> None:
    existing = http_route_obj()
    out = written(http_route(existing, traffic, GATEWAY))
    rules = out["spec"]["rules"]
    assert [r.get("name") for r in rules] == [*(h.name for h in traffic.header_routes), None, None]
    weighted = rules[len(traffic.header_routes)]
    weights = {b["name"]: b["weight"] for b in weighted["backendRefs"]}
    assert sum(weights.values()) == 100 and weights["web-canary"] == canary_weight(traffic)
    assert weighted["filters"] == existing["spec"]["rules"][0]["filters"] and rules[-1] == UNRELATED_RULE
    for route, rule in zip(traffic.header_routes, rules, strict=False):
        assert [b["name"] for b in rule["backendRefs"]] == ["web-canary"]
        assert {h["name"] for h in rule["matches"][0]["headers"]} == {m.header_name for m in route.matches}
    assert http_route(out, traffic, GATEWAY) == Write((out,))


def test_gateway_prefix_header_becomes_an_anchored_regex() -> None:
    traffic = Traffic(
        {"v1": 100, "v2": 0},
        "v1",
        "v2",
        (HeaderRoute("by-header-a", (HeaderMatch("x-user", prefix="qa."),)),),
    )
    rule = written(http_route(http_route_obj(), traffic, GATEWAY))["spec"]["rules"][0]
    assert rule["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/"},
            "headers": [{"name": "x-user", "type": "RegularExpression", "value": r"^qa\..*"}],
        }
    ]


def test_gateway_refuses_a_third_backend_with_traffic() -> None:
    route = http_route_obj()
    route["spec"]["rules"][0]["backendRefs"].append({"name": "legacy", "port": 80, "weight": 5})
    result = http_route(route, Traffic({"v1": 90, "v2": 10}, "v1", "v2"), GATEWAY)
    assert isinstance(result, CannotExpress) and "'legacy' also takes traffic" in result.reason


# -- SMI -------------------------------------------------------------------------------------------------
SMI = SmiSplit("web", "shop", "web", "web-stable", "web-canary")


@given(traffics(headers=False), st.booleans())
def test_smi_weights_idempotence_and_other_backends(traffic: Traffic, fresh: bool) -> None:
    existing = (
        None
        if fresh
        else {
            "apiVersion": "split.smi-spec.io/v1alpha2",
            "kind": "TrafficSplit",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"a": "b"}},
            "spec": {
                "service": "web",
                "backends": [{"service": "dark", "weight": 0}, {"service": "web-stable", "weight": 100}],
            },
        }
    )
    out = written(traffic_split(existing, traffic, SMI))
    weights = {b["service"]: b["weight"] for b in out["spec"]["backends"]}
    assert sum(weights.values()) == 100 and weights["web-canary"] == canary_weight(traffic)
    if existing is not None:
        assert out["metadata"] == existing["metadata"] and weights["dark"] == 0
    assert traffic_split(out, traffic, SMI) == Write((out,))


def test_smi_has_no_header_routes() -> None:
    result = traffic_split(
        None, Traffic({"v1": 90, "v2": 10}, "v1", "v2", (HeaderRoute("by-header-a"),)), SMI
    )
    assert isinstance(result, CannotExpress) and "header" in result.reason


# -- NGINX -----------------------------------------------------------------------------------------------
NGINX = NginxCanary("web-stable", "web-canary")


def stable_ingress() -> dict[str, Any]:
    def path(p: str, service: str) -> dict[str, Any]:
        return {
            "path": p,
            "pathType": "Prefix",
            "backend": {"service": {"name": service, "port": {"number": 80}}},
        }

    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "shop", "annotations": {"cert-manager.io/issuer": "x"}},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "web.example.com",
                    "http": {"paths": [path("/", "web-stable"), path("/docs", "docs")]},
                }
            ],
        },
    }


@given(traffics(), st.booleans())
def test_nginx_weight_idempotence_and_the_stable_ingress_untouched(traffic: Traffic, again: bool) -> None:
    stable = stable_ingress()
    before = copy.deepcopy(stable)
    existing = {"metadata": {"name": "web-canary", "annotations": {"team": "x"}}} if again else None
    result = canary_ingress(stable, existing, traffic, NGINX)
    assert stable == before
    if len(traffic.header_routes) > 1 or any(len(r.matches) > 1 for r in traffic.header_routes):
        assert isinstance(result, CannotExpress)
        return
    out = written(result)
    annotations = out["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert int(annotations["nginx.ingress.kubernetes.io/canary-weight"]) == canary_weight(traffic)
    assert ("nginx.ingress.kubernetes.io/canary-by-header" in annotations) == bool(traffic.header_routes)
    if again:
        assert annotations["team"] == "x"
    (rule,) = out["spec"]["rules"]
    assert [p["backend"]["service"]["name"] for p in rule["http"]["paths"]] == ["web-canary"]
    assert out["spec"]["ingressClassName"] == "nginx"
    assert canary_ingress(stable, out, traffic, NGINX) == Write((out,))


def test_nginx_header_annotations() -> None:
    exact = Traffic(
        {"v1": 100, "v2": 0},
        "v1",
        "v2",
        (HeaderRoute("by-header-a", (HeaderMatch("x-canary", exact="always"),)),),
    )
    out = written(canary_ingress(stable_ingress(), None, exact, NGINX))
    assert out["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "0",
        "nginx.ingress.kubernetes.io/canary-by-header": "x-canary",
        "nginx.ingress.kubernetes.io/canary-by-header-value": "always",
    }
    cleared = written(canary_ingress(stable_ingress(), out, Traffic({"v1": 80, "v2": 20}, "v1", "v2"), NGINX))
    assert cleared["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "20",
    }


def test_nginx_reads_one_header_only() -> None:
    two = tuple(HeaderRoute(n, (HeaderMatch("x", exact="1"),)) for n in MANAGED)
    result = canary_ingress(stable_ingress(), None, Traffic({"v1": 90, "v2": 10}, "v1", "v2", two), NGINX)
    assert isinstance(result, CannotExpress) and "one header" in result.reason


# -- replica ratio (plain Services) -------------------------------------------------------------------------
def service(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"x": "y"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }


def selectors(result: Any) -> list[dict[str, str]]:
    assert isinstance(result, Write)
    return [s["spec"]["selector"] for s in result.objects]


def test_services_follow_the_rollout_both_ways() -> None:
    stable, canary = service("web-stable"), service("web-canary")
    during = replica_ratio(stable, canary, Traffic({"v1": 60, "v2": 40}, "v1", "v2"), PODS)
    assert selectors(during) == [{"app": "web", **PODS["v1"]}, {"app": "web", **PODS["v2"]}]
    aborted = replica_ratio(stable, canary, Traffic({"v1": 100}, "v1", None), PODS)
    assert selectors(aborted) == [{"app": "web", **PODS["v1"]}, {"app": "web", **PODS["v1"]}]
    promoted = replica_ratio(stable, canary, Traffic({"v2": 100}, "v2", None), PODS)
    assert selectors(promoted) == [{"app": "web", **PODS["v2"]}, {"app": "web", **PODS["v2"]}]
    (written_stable, _) = promoted.objects  # type: ignore[union-attr]
    assert written_stable["spec"]["ports"] == [{"port": 80}] and written_stable["metadata"]["labels"] == {
        "x": "y"
    }


@given(traffics(headers=False))
def test_services_are_idempotent(traffic: Traffic) -> None:
    first = replica_ratio(service("s"), service("c"), traffic, PODS)
    assert isinstance(first, Write)
    assert replica_ratio(*first.objects, traffic, PODS) == first


def test_services_cannot_route_by_header() -> None:
    result = replica_ratio(
        service("s"), None, Traffic({"v1": 90, "v2": 10}, "v1", "v2", (HeaderRoute("h"),)), PODS
    )
    assert isinstance(result, CannotExpress)


# -- through the API: a second identical write changes nothing --------------------------------------------
def test_writing_the_same_weights_twice_leaves_the_resource_version(api: StandIn) -> None:
    objects = client.CustomObjectsApi(api.client)
    args = ("networking.istio.io", "v1beta1", "shop", "virtualservices")
    made = objects.create_namespaced_custom_object(*args, virtual_service_obj())
    traffic = Traffic({"v1": 75, "v2": 25}, "v1", "v2")
    first = objects.replace_namespaced_custom_object(
        *args, "web", written(virtual_service(made, traffic, ISTIO))
    )
    second = objects.replace_namespaced_custom_object(
        *args, "web", written(virtual_service(first, traffic, ISTIO))
    )
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert [d["weight"] for d in second["spec"]["http"][0]["route"]] == [75, 25]
